"""Why LPSGD and sign descent miss T^-1/2 on the finite-sum problem: a floor in the high-p epochs.

    PYTHONPATH=$PWD python experiments/rates_epoch_floor.py \\
        [--report experiments/results/rates/rates.json]

With mini-batch noise the rescaled direction u = g / (|g| + eps)^rho is biased for rho > 0: its
mean vanishes at a point where grad f does not, so an lp step with p > 2 settles where
||grad f||^2 has a floor that a smaller step does not remove (Assumption 5 fails there: the
alignment ratio is about 0). The cosine schedule spends a fixed fraction of the T steps at large p,
so (1/T) sum ||grad f||^2 keeps that floor's share at every T. Symmetric noise (the quadratics) has
no such bias. For each problem and T this prints and writes the seed mean of ||grad f(theta_t)||^2
averaged over each of the S epochs, with the step the committed report used (eq. 32 at that T).
Output: experiments/results/rates/epoch_floor.json.
"""

import argparse
from pathlib import Path

import torch
from _common import out_dir, run_main  # experiments/_common.py: first, it sets sys.path

from lpcheck import checks
from lpcheck.optim import LPSGD
from lpcheck.rates.problems import make_problem
from lpcheck.rates.simulation import epoch_of
from lpcheck.report import provenance, read_json, write_json


def per_epoch(problem, method, T, eta, seeds, epochs, p_max):
    """Seed mean of ||grad f||^2 averaged over each epoch (lpcheck.optim on a (seeds, d) tensor)."""
    gen = torch.Generator().manual_seed(0)
    theta = problem.x0.expand(seeds, problem.d).clone()
    kw = dict(p=float("inf")) if method == "sign" else dict(p_max=p_max, total_epochs=epochs)
    opt = LPSGD([theta], lr=eta, check_finite=False, **kw)
    sums = torch.zeros(epochs, dtype=torch.float64)
    counts = torch.zeros(epochs)
    with torch.no_grad():
        for t in range(T):
            s = epoch_of(t, T, epochs)
            if method != "sign" and s != opt.param_groups[0]["epoch"]:
                opt.set_epoch(s)
            g_full = problem.grad(theta)
            sums[s - 1] += (g_full * g_full).sum(1).mean()
            counts[s - 1] += 1
            theta.grad = problem.stoch_grad(theta, gen, g_full)
            opt.step()
    return (sums / counts).tolist()


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", default="experiments/results/rates/rates.json")
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--out", default="experiments/results/rates/epoch_floor.json")
    args = parser.parse_args(argv)
    seeds = checks.integer("--seeds", args.seeds, low=1, high=10**7)  # a (seeds, d) tensor per run
    if not args.out or Path(args.out).is_dir():
        raise ValueError(f"--out must be a file name (the JSON to write), got {args.out!r}")
    out_dir(Path(args.out).parent, "--out's folder")
    report = read_json(args.report)
    if (
        not isinstance(report, dict)
        or not isinstance(report.get("config"), dict)
        or not isinstance(report.get("problems"), dict)
    ):
        raise ValueError(
            f"{args.report} is not a report of lpcheck rates (no 'config' and 'problems')"
        )
    torch.set_num_threads(1)
    cfg = report["config"]
    rows = []
    for pname in ("logistic", "aniso"):
        problem = make_problem(pname)
        for method in ("lpsgd", "sign"):
            study = next(
                s
                for s in report["problems"][pname]["studies"]
                if s["method"] == method and s["rule"] == "theorem"
            )
            for run in study["runs"]:
                if run["T"] < 1000:
                    continue
                values = per_epoch(
                    problem, method, run["T"], run["eta"], seeds, cfg["epochs"], cfg["p_max"]
                )
                rows.append(
                    {
                        "problem": pname,
                        "method": method,
                        "T": run["T"],
                        "eta": run["eta"],
                        "per_epoch_grad_sq": values,
                        "mean": sum(values) / len(values),
                    }
                )
                print(pname, method, run["T"], " ".join(f"{v:.2e}" for v in values))
    write_json(
        args.out,
        {
            "rows": rows,
            "seeds": seeds,
            "epochs": cfg["epochs"],
            "p_max": cfg["p_max"],
            "provenance": provenance("cpu"),
        },
    )
    print(f"wrote {Path(args.out)}")
    return 0


if __name__ == "__main__":
    run_main(main, "rates_epoch_floor.py")
