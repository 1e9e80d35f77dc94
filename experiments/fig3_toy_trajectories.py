"""Fig. 3 of the paper, extended: GD, signGD and LPSGD at several fixed p on eq. 17 and eq. 18.

eq. 17 (strongly anisotropic, Hessian diag(200, 0.05)) and eq. 18 (weakly anisotropic, diag(1.2,
0.8)), both with minimiser (1, 4), from (-0.7, -1.3) as default: off the integer lattice around the
minimiser, so that a sign step of size 1 cannot land on it exactly (from (-1, -2) it would, in 6
steps). For each method the step size is the best of a log-spaced grid (smallest f after --steps
steps), so no method is handicapped by one shared lr; the chosen lr is reported. GD is lpcheck's
LPSGD at p = 2, LPSGD runs lpcheck.optim.LPSGD at fixed p, signGD is theta <- theta - lr sign(grad
f). Writes JSON + Markdown + PNG (contours with trajectories) to OUT (default
experiments/results/fig3/).

    python experiments/fig3_toy_trajectories.py
    python experiments/fig3_toy_trajectories.py --steps 100 --p 3,6 --out /tmp/fig3
    # redraw from results/fig3/fig3.json
    python experiments/fig3_toy_trajectories.py --render-only
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from _common import numbers, out_dir, run_main  # experiments/_common.py: first, it sets sys.path

from lpcheck import checks, report
from lpcheck.optim import LPSGD, NonFiniteGradientError

PROBLEMS = {
    "eq17": {"lambda": (200.0, 0.05), "title": "eq. 17: strong anisotropy, H = diag(200, 0.05)"},
    "eq18": {"lambda": (1.2, 0.8), "title": "eq. 18: weak anisotropy, H = diag(1.2, 0.8)"},
}
MINIMIZER = np.array([1.0, 4.0])


def f_and_grad(lam, x):
    lam = np.asarray(lam)
    with np.errstate(over="ignore"):  # a diverging lr is discarded by best_lr
        return float(0.5 * np.sum(lam * (x - MINIMIZER) ** 2)), lam * (x - MINIMIZER)


def run(method, lam, lr, steps, start, eps):
    """Trajectory (steps+1, 2) of one method."""
    x = np.array(start, dtype=float)
    path = [x.copy()]
    if method == "signGD":
        for _ in range(steps):
            x = x - lr * np.sign(f_and_grad(lam, x)[1])
            path.append(x.copy())
        return np.array(path)
    p = 2.0 if method == "GD" else float(method.split("=")[1])
    w = torch.nn.Parameter(torch.tensor(x, dtype=torch.float64))
    opt = LPSGD([w], lr=lr, p=p, eps=eps)
    for _ in range(steps):
        w.grad = torch.tensor(f_and_grad(lam, w.detach().numpy())[1])
        opt.step()
        path.append(w.detach().numpy().copy())
    return np.array(path)


def best_lr(method, lam, steps, start, eps, grid):
    best = None
    for lr in grid:
        try:
            path = run(method, lam, lr, steps, start, eps)
        except NonFiniteGradientError:  # this lr diverges
            continue
        final = f_and_grad(lam, path[-1])[0]
        if math.isfinite(final) and (best is None or final < best[1]):
            best = (lr, final, path)
    return best


def render(data):
    lines = [
        "# Fig. 3: trajectories on the paper's toy problems\n",
        f"{data['steps']} steps from {data['start']}; per method the best lr of "
        f"{len(data['lr_grid'])} log-spaced values in [{data['lr_grid'][0]:g}, "
        f"{data['lr_grid'][-1]:g}] (smallest final f). eps = {data['eps']:g}.\n",
    ]
    for name, res in data["problems"].items():
        lines.append(f"## {PROBLEMS[name]['title']}\n")
        rows = [
            [
                m,
                f"{r['lr']:.3g}",
                f"{r['final_f']:.3e}",
                f"{r['final_distance']:.3e}",
                r["steps_to_1e-3"],
            ]
            for m, r in res.items()
        ]
        lines.append(
            report.markdown_table(
                ["method", "best lr", "final f", "distance to (1, 4)", "steps to f < 1e-3"], rows
            )
        )
        lines.append(f"![{name}]({name}.png)\n")
    return "\n".join(lines)


def _contours(ax, lam, xlim, ylim):
    xs, ys = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    zs = 0.5 * (lam[0] * (xs - 1) ** 2 + lam[1] * (ys - 4) ** 2)
    ax.contour(xs, ys, np.log10(zs + 1e-9), levels=20, cmap="Greys", linewidths=0.5)


def _zoom_box(res):
    """The box around the minimiser holding the last quarter of the steps of the methods whose final
    distance is at most the median: where the closest methods zig-zag, each axis padded on its
    own."""
    dist = np.array([r["final_distance"] for r in res.values()])
    near = [np.array(r["path"]) for r in res.values() if r["final_distance"] <= np.median(dist)]
    pts = np.vstack([p[-max(1, len(p) // 4) :] for p in near] + [MINIMIZER[None]])
    lo, hi = pts.min(0), pts.max(0)
    pad = np.maximum(0.1 * (hi - lo), 1e-3)
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def plot(name, res, out):
    """Three panels: the trajectories on the contours of f, a zoom around the minimiser (1, 4), and
    f against the step on a log axis (which method gets how close, how fast)."""
    lam = PROBLEMS[name]["lambda"]
    fig, (full, zoom, fs) = report.new_figure(1, 3, figsize=(15, 4.8), layout="constrained")
    _contours(full, lam, (-1.5, 2.5), (-2.5, 5.5))
    (x0, x1), (y0, y1) = _zoom_box(res)
    _contours(zoom, lam, (x0, x1), (y0, y1))
    for i, (method, r) in enumerate(res.items()):
        path, color = np.array(r["path"]), f"C{i}"
        label = f"{method} (lr {r['lr']:.2g})"
        for ax in (full, zoom):
            ax.plot(
                path[:, 0],
                path[:, 1],
                ".-",
                ms=2,
                lw=0.8,
                color=color,
                label=label if ax is full else None,
            )
        f = [0.5 * float(np.sum(np.asarray(lam) * (x - MINIMIZER) ** 2)) for x in path]
        fs.plot(np.arange(len(f)), np.maximum(f, 1e-16), "-", lw=1.2, color=color, label=label)
    for ax in (full, zoom):
        ax.plot(*MINIMIZER, "k*", ms=10, zorder=5)
        ax.set_xlabel(r"$\theta^{(1)}$")
        ax.set_ylabel(r"$\theta^{(2)}$")
    zoom.set_xlim(x0, x1)
    zoom.set_ylim(y0, y1)
    full.set_title(PROBLEMS[name]["title"], fontsize=9)
    zoom.set_title(
        "zoom (axes not to scale): the last quarter of the steps of the methods that end nearest "
        "(1, 4)",
        fontsize=8,
    )
    fs.axhline(1e-3, color="0.5", ls=":", lw=1, label=r"$f = 10^{-3}$")
    fs.set(yscale="log", xlabel="step", ylabel=r"$f(\theta_t) - f^\star$ (floored at 1e-16)")
    fs.set_title("f against the step", fontsize=9)
    full.legend(fontsize=7, loc="lower right")
    fs.legend(fontsize=7)
    report.save_figure(fig, out / f"{name}.png")


def render_only(out) -> int:
    """Redraw the figures and fig3.md from fig3.json alone (its provenance kept: the run that
    measured it)."""
    data = report.read_json(out / "fig3.json")
    if not isinstance(data, dict) or not isinstance(data.get("problems"), dict):
        raise ValueError(f"{out / 'fig3.json'} is not a fig3 report (it needs 'problems')")
    for name, res in data["problems"].items():
        if name not in PROBLEMS:
            raise ValueError(
                f"{out / 'fig3.json'}: unknown problem {name!r}; known: {', '.join(PROBLEMS)}"
            )
        plot(name, res, out)
    report.write_report(out, "fig3", data, render)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    ap.add_argument(
        "--p", default="3,6,9", help="fixed p values for LPSGD, comma-separated (default 3,6,9)"
    )
    ap.add_argument("--eps", type=float, default=1e-8, help="LPSGD's eps (default 1e-8, Table 4)")
    ap.add_argument("--start", default="-0.7,-1.3", help="starting point (default -0.7,-1.3)")
    ap.add_argument(
        "--grid",
        type=int,
        default=25,
        help="number of lrs tried per method, log-spaced in [1e-4, 1]",
    )
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "fig3"))
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="redraw the figures from OUT/fig3.json, run nothing",
    )
    args = ap.parse_args(argv)
    if args.render_only:
        return render_only(out_dir(args.out))
    args.steps = checks.integer(
        "--steps", args.steps, low=1, high=10**5
    )  # every step's point goes in fig3.json
    args.eps = checks.representable(
        "--eps", checks.real("--eps", args.eps, low=0, low_open=True), torch.float64
    )
    args.grid = checks.integer(
        "--grid", args.grid, low=1, high=10**4
    )  # each lr is a whole run per method
    ps = numbers(args.p, "--p", lambda o, v: checks.real(f"{o} values", v, low=2, finite=False))
    start = numbers(args.start, "--start", lambda o, v: checks.real(o, v))
    if len(start) != 2:
        raise ValueError(f"--start must be 2 comma-separated coordinates, got {args.start!r}")
    out = out_dir(args.out)
    methods = ["GD", "signGD"] + [f"LPSGD p={p:g}" for p in ps]
    grid = np.logspace(-4, 0, args.grid).tolist()
    data = {
        "steps": args.steps,
        "start": start,
        "eps": args.eps,
        "lr_grid": grid,
        "problems": {},
        "provenance": report.provenance(
            command=[
                "python",
                "experiments/fig3_toy_trajectories.py",
                *(argv if argv is not None else sys.argv[1:]),
            ]
        ),
    }
    for name, spec in PROBLEMS.items():
        res = {}
        for method in methods:
            best = best_lr(method, spec["lambda"], args.steps, start, args.eps, grid)
            if best is None:  # every lr of the grid diverged: a result to report, not a crash
                raise ValueError(
                    f"{name} {method}: every lr in [{grid[0]:g}, {grid[-1]:g}] diverges from "
                    f"--start {start}; widen --grid or move --start"
                )
            lr, final, path = best
            fs = [f_and_grad(spec["lambda"], x)[0] for x in path]
            hit = next((t for t, v in enumerate(fs) if v < 1e-3), None)
            res[method] = {
                "lr": lr,
                "final_f": final,
                "final_distance": float(np.linalg.norm(path[-1] - MINIMIZER)),
                "steps_to_1e-3": hit,
                "path": path.tolist(),
            }
            print(f"{name} {method:<12} lr {lr:.3g}  final f {final:.3e}", file=sys.stderr)
        data["problems"][name] = res
        plot(name, res, out)
        report.write_report(out, "fig3", data, render)  # incremental: rewritten after each problem
    return 0


if __name__ == "__main__":
    run_main(main, "fig3_toy_trajectories.py")
