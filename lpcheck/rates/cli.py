"""Does LPSGD/LPSGDM reach the O(T^-1/2) rate of Theorems 1-2 (eq. 33, 48)? Measure it on synthetic
problems whose constants are known, with many seeds, and check the bound itself.

For each problem and optimizer, `lpcheck rates` runs T steps for every T of a grid (all seeds at once,
one tensor of seeds x d, on the CPU or CUDA), records the seed mean of (1/T) sum_t ||grad f(theta_t)||^2,
fits its log-log slope against T with a 95% bootstrap interval over seeds, and gives a verdict:
confirmed, refuted or inconclusive (the rule is written in the report). It also measures the
Assumption 5/6 constants along the runs and reports observed / (the theorem's right-hand side,
eq. 31/46): a ratio <= 1 means the bound holds.

Problems: strong (eq. 17), weak (eq. 18), aniso (d = 16 quadratic), logsum (sum log(1 + x^2)),
logistic (finite sum, mini-batch noise), heavy (aniso with Student-t noise); or your own class as
--problem my_module:MyProblem (see the README, "Rate fitting"). Optimizers: lpsgd, lpsgdm, sgd, sgdm,
sign, steepest (eq. 10); NAME@RULE picks a step rule for one of them. Step rules: theorem (eq. 32/47
from the measured constants), sqrt (C/sqrt(T)), constant (C).

Examples:
  lpcheck rates --quick --out /tmp/rates                 # all problems, small grid: under 30 s on 2 cores
  lpcheck rates --problem logsum --optimizer lpsgd,sgd@constant --T 100,1000,10000 --seeds 64
  lpcheck rates --out experiments/results/rates          # the full report (about 20 minutes on a CPU)

Writes OUT/rates.json, OUT/rates.md (a table per problem: slope, interval, verdict, bound ratio) and
OUT/rates_<problem>.png (log-log, fitted line, bound); the report is rewritten after every
(problem, optimizer), so an interrupted run keeps what it measured. --render-only redraws the
Markdown and the plots from an existing rates.json.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time

DEFAULT_T = "100,300,1000,3000,10000,30000"
QUICK = dict(T=[100, 200, 400], seeds=32, K=64, pilot_seeds=16, pilot_T=200, checkpoint_seeds=4,
             checkpoint_count=6, boot=500)


def _names(values):
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problem", action="append", metavar="NAME",
                        help="problems, comma-separated or repeated (default: all): strong, weak, aniso, logsum, "
                             "logistic, heavy, or module:Class")
    parser.add_argument("--optimizer", action="append", metavar="NAME[@RULE]",
                        help="optimizers (default: all): lpsgd, lpsgdm, sgd, sgdm, sign, steepest; NAME@RULE sets "
                             "the step rule for that one")
    parser.add_argument("--step", default="theorem", metavar="RULES",
                        help="step rules for optimizers without @RULE: theorem, sqrt, constant (default: theorem)")
    parser.add_argument("--T", default=None, metavar="LIST", help=f"increasing T values (default {DEFAULT_T})")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per run, >= 2 (default 256)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)")
    parser.add_argument("--out", default="rates-report", help="output folder (default ./rates-report)")
    parser.add_argument("--quick", action="store_true",
                        help="T = 100,200,400, 32 seeds, fewer checkpoints and samples: a smoke run")
    parser.add_argument("--p-max", type=float, default=6.0, help="cosine schedule start p (eq. 19), default 6")
    parser.add_argument("--p", type=float, default=None, help="fixed p instead of the schedule (lpsgd, lpsgdm, steepest)")
    parser.add_argument("--epochs", type=int, default=10, help="S: the T steps are split into S epochs (default 10)")
    parser.add_argument("--momentum", type=float, default=0.9, help="beta for lpsgdm and sgdm (default 0.9)")
    parser.add_argument("--eps", type=float, default=1e-8, help="stability constant of eq. 21 (default 1e-8)")
    parser.add_argument("--lr", type=float, default=None,
                        help="C for the sqrt and constant rules (default: from the measured constants)")
    parser.add_argument("--K", type=int, default=None, help="noise samples per checkpoint (default 256)")
    parser.add_argument("--pilot-T", type=int, default=None, help="pilot run length (default: the middle of the grid)")
    parser.add_argument("--pilot-seeds", type=int, default=None, help="pilot seeds (default 32)")
    parser.add_argument("--tolerance", type=float, default=0.1, help="slope tolerance tau of the verdict (default 0.1)")
    parser.add_argument("--boot", type=int, default=None, help="bootstrap resamplings (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the noise (default 0)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the tensors are small, more threads only contend)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: redraw OUT/rates.md and the plots from OUT/rates.json")


def _int_list(text, name):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated integers, got {text!r}") from None


def _plan(args):
    """[(problem name, method name, rule)] from the arguments, validated."""
    from lpcheck.rates.problems import PROBLEMS
    from lpcheck.rates.simulation import METHODS
    from lpcheck.rates.study import STEP_RULES

    problems = _names(args.problem) or list(PROBLEMS)
    for name in problems:
        if name not in PROBLEMS and ":" not in name:
            raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)} or give module:Class")
    rules = _names([args.step])
    for rule in rules:
        if rule not in STEP_RULES:
            raise ValueError(f"unknown step rule {rule!r}; choose from {', '.join(STEP_RULES)}")
    pairs = []
    for entry in _names(args.optimizer) or list(METHODS):
        name, _, rule = entry.partition("@")
        if name not in METHODS:
            raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(METHODS)}")
        if rule and rule not in STEP_RULES:
            raise ValueError(f"unknown step rule {rule!r} in {entry!r}; choose from {', '.join(STEP_RULES)}")
        pairs += [(name, r) for r in ([rule] if rule else rules)]
    return [(p, m, r) for p in problems for m, r in dict.fromkeys(pairs)]


def _settings(args):
    from lpcheck.rates.study import check_T_grid

    quick = QUICK if args.quick else {}
    T = check_T_grid(_int_list(args.T, "T") if args.T else quick.get("T", _int_list(DEFAULT_T, "T")))
    seeds = args.seeds if args.seeds is not None else quick.get("seeds", 256)
    if seeds < 2:
        raise ValueError(f"--seeds must be >= 2 (the interval is a bootstrap over seeds), got {seeds}")
    K = args.K if args.K is not None else quick.get("K", 256)
    if K < 2:
        raise ValueError(f"--K must be >= 2, got {K}")
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if not (args.tolerance >= 0 and math.isfinite(args.tolerance)):
        raise ValueError(f"--tolerance must be finite and >= 0, got {args.tolerance}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    return dict(T=T, seeds=seeds, K=K, pilot_seeds=args.pilot_seeds or quick.get("pilot_seeds", 32),
                pilot_T=args.pilot_T or quick.get("pilot_T"), checkpoint_seeds=quick.get("checkpoint_seeds", 8),
                checkpoint_count=quick.get("checkpoint_count", 12), boot=args.boot or quick.get("boot", 2000))


def _device(name):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    return str(device)


def _render_only(out) -> int:
    from lpcheck.rates.render import plot_problem, render_markdown
    from lpcheck.report import read_json, write_report

    data = read_json(f"{out}/rates.json")  # keeps its provenance: the run that measured it
    for entry in data["problems"].values():
        if entry.get("plot"):
            plot_problem(entry, f"{out}/{entry['plot']}")
    write_report(out, "rates", data, render_markdown)
    return 0


def run(args) -> int:
    if args.render_only:
        return _render_only(args.out)
    plan = _plan(args)
    settings = _settings(args)
    import torch
    from tqdm import tqdm

    from lpcheck.rates.problems import make_problem
    from lpcheck.rates.render import plot_problem, render_markdown
    from lpcheck.rates.simulation import make_method
    from lpcheck.rates.study import problem_summary, rate_study
    from lpcheck.report import provenance, write_report

    device = _device(args.device)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    methods = {name: make_method(name, p_max=args.p_max, p=args.p, momentum=args.momentum) for _, name, _ in plan}
    problems = {name: make_problem(name) for name in dict.fromkeys(p for p, _, _ in plan)}
    config = dict(T=settings["T"], seeds=settings["seeds"], rules=sorted({r for _, _, r in plan}), p_max=args.p_max,
                  p=args.p, epochs=args.epochs, momentum=args.momentum, eps=args.eps, lr=args.lr, K=settings["K"],
                  pilot_seeds=settings["pilot_seeds"], pilot_T=settings["pilot_T"], tolerance=args.tolerance,
                  checkpoint_seeds=settings["checkpoint_seeds"], checkpoint_count=settings["checkpoint_count"],
                  boot=settings["boot"], seed=args.seed, dtype=args.dtype, threads=args.threads, quick=args.quick,
                  device=device)
    data = {"config": config, "problems": {n: {"info": problem_summary(p), "studies": []} for n, p in problems.items()},
            "provenance": provenance(device)}
    out = args.out
    start = time.perf_counter()
    bar = tqdm(total=len(plan) * len(settings["T"]), unit="run", disable=args.quiet or not sys.stderr.isatty(),
               file=sys.stderr)
    for i, (pname, mname, rule) in enumerate(plan):
        bar.set_description(f"{pname}/{mname}/{rule}")
        study = rate_study(problems[pname], methods[mname], rule, settings["T"], seeds=settings["seeds"],
                           epochs=args.epochs, eps=args.eps, lr=args.lr, K=settings["K"], pilot_T=settings["pilot_T"],
                           pilot_seeds=settings["pilot_seeds"], checkpoint_seeds=settings["checkpoint_seeds"],
                           checkpoint_count=settings["checkpoint_count"], tolerance=args.tolerance,
                           n_boot=settings["boot"], seed=args.seed, device=device, dtype=dtype,
                           progress=lambda: bar.update(1))
        entry = data["problems"][pname]
        entry["studies"].append(study)
        if i + 1 == len(plan) or plan[i + 1][0] != pname:  # this problem is done: draw it once
            entry["plot"] = "rates_" + re.sub(r"[^A-Za-z0-9_.-]", "_", pname) + ".png"
            plot_problem(entry, f"{out}/{entry['plot']}")
        data["seconds"] = time.perf_counter() - start
        write_report(out, "rates", data, render_markdown)
    bar.close()
    if not args.quiet:
        print(f"lpcheck rates: {len(plan)} studies in {time.perf_counter() - start:.1f} s; report in {out}/rates.md"
              + (f" (a smoke run: its verdicts are about T <= {max(settings['T'])} only)" if args.quick else ""))
    return 0
