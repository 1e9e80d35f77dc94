"""Fig. 1 of the paper: the Hessian eigenvalue density of a CIFAR model at checkpoints over
training.

For each optimizer (default SGDM and LPSGDM, the paper's Appendix A rows) the model is trained with
lpcheck.training; at --checkpoints evenly spaced epochs (the first at initialisation) the Hessian of
the training loss on a fixed set of --hessian-batches batches is probed (lpcheck.curvature):
  - the spectral density by stochastic Lanczos quadrature (--vectors x --lanczos-steps HVPs),
  - the top eigenvalue (a separate Lanczos run) and the fraction of negative spectral mass.
The mode is explicit (--mode eval by default, as PyHessian does; train mode uses batch statistics
and leaves BatchNorm's running statistics untouched). OUT/fig1.json is rewritten after every
checkpoint; fig1.md and fig1.png (densities per checkpoint, one panel per optimizer) are rendered
from it.

    python experiments/fig1_hessian.py --device cuda --epochs 10 --checkpoints 6 --amp bf16
    # CPU smoke run
    python experiments/fig1_hessian.py --width 0.0625 --train-subset 512 --epochs 2 \\
        --checkpoints 2 --hessian-batches 1 --vectors 1 --lanczos-steps 8 --out /tmp/fig1
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import (  # first: it sets sys.path
    ROOT,
    command,
    names,
    out_dir,
    parser,
    run_main,
    setup,
)

from lpcheck import checks, curvature, models, report
from lpcheck import data as cifar
from lpcheck.training import (
    OPTIMIZERS,
    Progress,
    Training,
    check_seed,
    evaluate,
    make_optimizer,
    paper_hyperparameters,
)


def parse(argv=None):
    ap = parser(__doc__)
    ap.add_argument("--optimizers", default="sgdm,lpsgdm")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument(
        "--checkpoints",
        type=int,
        default=6,
        help="probes at evenly spaced epochs, the first at initialisation",
    )
    ap.add_argument(
        "--hessian-batches", type=int, default=4, help="fixed training batches defining the Hessian"
    )
    ap.add_argument("--hessian-batch-size", type=int, default=128)
    ap.add_argument("--vectors", type=int, default=2, help="SLQ random starts")
    ap.add_argument("--lanczos-steps", type=int, default=48)
    ap.add_argument("--mode", choices=["train", "eval"], default="eval")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "fig1"))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    args.optimizers = names(args.optimizers, "--optimizers", OPTIMIZERS)
    # Lanczos keeps every step's vector (steps x parameters floats), each start repeats it
    for name, high in (
        ("epochs", 10**6),
        ("hessian_batches", 10**6),
        ("hessian_batch_size", 10**6),
        ("vectors", 10**4),
        ("lanczos_steps", 10**4),
    ):
        setattr(
            args,
            name,
            checks.integer(f"--{name.replace('_', '-')}", getattr(args, name), low=1, high=high),
        )
    args.checkpoints = checks.integer(
        "--checkpoints", args.checkpoints, low=1, high=args.epochs + 1
    )
    args.seed = check_seed(args.seed, "--seed")
    out_dir(args.out)
    return args


def probe_epochs(epochs, n):
    """n checkpoints at evenly spaced epochs in [0, epochs] (0 = initialisation)."""
    return sorted({round(i * epochs / max(1, n - 1)) for i in range(n)}) if n > 1 else [0]


def measure(model, batches, args, generator):
    op = curvature.HessianOperator(
        model,
        lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]),
        batches,
        mode=args.mode,
    )
    t0 = time.perf_counter()
    slq = curvature.spectral_density(
        op, vectors=args.vectors, steps=args.lanczos_steps, generator=generator
    )
    top = curvature.top_eigenvalues(op, k=1, steps=args.lanczos_steps, generator=generator)
    nodes, weights = np.concatenate(slq["nodes"]), np.concatenate(slq["weights"]) / slq["vectors"]
    # mass below -1% of the top eigenvalue: SLQ's Ritz values near 0 carry either sign by chance
    significant = float(weights[nodes < -0.01 * abs(float(top[0]))].sum())
    return {
        "top_eigenvalue": float(top[0]),
        "negative_mass": slq["negative_mass"],
        "negative_mass_below_1pct": significant,
        "min_node": slq["min_node"],
        "max_node": slq["max_node"],
        "nodes": slq["nodes"],
        "weights": slq["weights"],
        "hvps": op.calls,
        "kept_graphs": op.retained,
        "seconds": time.perf_counter() - t0,
    }


def render(data):
    lines = [
        f"# Fig. 1: Hessian spectrum of {data['config']['model']} over training\n",
        f"Hessian of the training loss on {data['hessian_images']} fixed training images, "
        f"{data['config']['mode']} mode; SLQ with {data['config']['vectors']} vectors x "
        f"{data['config']['lanczos_steps']} Lanczos steps.\n",
    ]
    rows = [
        [
            opt,
            c["epoch"],
            f"{c['top_eigenvalue']:.4g}",
            f"{c['min_node']:.4g}",
            f"{c['negative_mass']:.3f}",
            f"{c['negative_mass_below_1pct']:.3f}",
            f"{c.get('test_top1', float('nan')):.2f}",
            f"{c['seconds']:.1f}",
        ]
        for opt, cps in data["checkpoints"].items()
        for c in cps
    ]
    lines.append(
        report.markdown_table(
            [
                "optimizer",
                "epoch",
                "top eigenvalue",
                "smallest Ritz value",
                "negative mass",
                "mass below -1% of the top",
                "test top-1 (%)",
                "probe s",
            ],
            rows,
        )
    )
    lines.append("\n![densities](fig1.png)\n")
    return "\n".join(lines)


def plot(data, out):
    opts = list(data["checkpoints"])
    fig, axes = report.new_figure(
        1, max(1, len(opts)), figsize=(5 * max(1, len(opts)), 4), squeeze=False
    )
    for ax, opt in zip(axes[0], opts):
        cps = data["checkpoints"][opt]
        if not cps:
            continue
        lo = min(c["min_node"] for c in cps)
        hi = max(c["max_node"] for c in cps)
        span = max(hi - lo, 1e-9)
        grid = np.linspace(lo - 0.05 * span, hi + 0.05 * span, 600)
        sigma = span / 150
        for k, c in enumerate(cps):
            nodes, weights = (
                np.concatenate(c["nodes"]),
                np.concatenate(c["weights"]) / len(c["nodes"]),
            )
            dens = (
                weights[None, :] * np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sigma) ** 2)
            ).sum(1)
            ax.plot(grid, np.log10(dens + 1e-8) + 2 * k, lw=0.8, label=f"epoch {c['epoch']}")
        ax.set_title(opt)
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("log10 density (offset per checkpoint)")
        ax.legend(fontsize=7)
    report.save_figure(fig, out / "fig1.png")


def main(argv=None):
    args = parse(argv)
    device, dataset, amp = setup(args, copies=5)
    out = Path(args.out)
    train, test = cifar.DeviceCifar.train(dataset, device), cifar.DeviceCifar.test(dataset, device)
    hb = args.hessian_batch_size
    n_hess = min(args.hessian_batches * hb, len(train))
    hess_idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[
        :n_hess
    ].to(device)
    batches = [
        train.batch(hess_idx[i : i + hb]) for i in range(0, n_hess, hb)
    ]  # fixed, un-augmented
    at = probe_epochs(args.epochs, args.checkpoints)
    cmd = command("fig1_hessian.py", argv)
    data = {
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "quiet", "threads")},
        "hessian_images": n_hess,
        "probe_epochs": at,
        "checkpoints": {},
        "provenance": report.provenance(device, command=cmd),
    }
    for opt_name in args.optimizers:
        torch.manual_seed(args.seed)
        model = models.build(args.model, num_classes=dataset.num_classes, width=args.width).to(
            device
        )
        hp = paper_hyperparameters(dataset.name, args.model, opt_name)
        opt = make_optimizer(opt_name, model.parameters(), hp, args.epochs)
        steps = len(train) // hp["batch_size"]
        run = Training(
            model,
            opt,
            train,
            batch_size=hp["batch_size"],
            epochs=args.epochs,
            steps_per_epoch=steps,
            warmup_steps=round(0.025 * args.epochs * steps),
            lr=hp["lr"],
            seed=args.seed,
            autocast=amp,
        )
        data["checkpoints"][opt_name] = []
        gen = torch.Generator(device).manual_seed(args.seed + 7)
        progress = Progress(run.T, quiet=args.quiet)
        for epoch in range(0, args.epochs + 1):
            if epoch > 0:
                for _ in range(steps):
                    run.step()
                    progress.update()
            if epoch in at:
                m = measure(model, batches, args, gen) | {
                    "epoch": epoch,
                    "test_top1": 100 * evaluate(model, test)["accuracy"],
                }
                data["checkpoints"][opt_name].append(m)
                report.write_report(out, "fig1", data, render)
                print(
                    f"{opt_name} epoch {epoch}: top eigenvalue {m['top_eigenvalue']:.4g}, "
                    f"negative mass {m['negative_mass']:.3f} ({m['seconds']:.1f} s)",
                    file=sys.stderr,
                )
        progress.close()
        plot(data, out)
    return 0


if __name__ == "__main__":
    run_main(main, "fig1_hessian.py")
