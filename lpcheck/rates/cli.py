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
(problem, optimizer), so an interrupted run keeps what it measured: until the last study is in, the
JSON says "complete": false and the Markdown opens with "Partial: N of M studies". --render-only
redraws the Markdown and the plots from an existing rates.json. Every option is checked before any
work. --problem module:Class imports (runs) that module: give only code you trust.
"""

from __future__ import annotations

import argparse
import os
import re
import time

DEFAULT_T = "100,300,1000,3000,10000,30000"
T_MAX = 10**9  # steps per run: past this a run takes days, and step counts stop being exact in float32
COUNT_MAX = 10**9  # seeds, K, bootstrap resamplings: the memory check below refines this
QUICK = dict(T=[100, 200, 400], seeds=32, K=64, pilot_seeds=16, pilot_T=200, checkpoint_seeds=4,
             checkpoint_count=6, boot=500)


def _names(values, option=None):
    """Comma-separated or repeated names; an option given but empty ('') is an error naming it."""
    names = [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
    if option is not None and values is not None and not names:
        raise ValueError(f"{option} is empty: give at least one name")
    return list(dict.fromkeys(names))  # a name given twice is one study


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


def _T_grid(text):
    """--T as increasing integers in [1, T_MAX], at least two."""
    from lpcheck.rates.study import check_T_grid

    if text is None:
        return None
    if not text.strip():
        raise ValueError("--T is empty: give increasing integers, e.g. 100,1000,10000")
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--T must be comma-separated integers, got {text!r}") from None
    T = check_T_grid(values, name="--T")
    if T[-1] > T_MAX:
        raise ValueError(f"--T values must be <= {T_MAX:.0e} steps, got {T[-1]}")
    return T


def _plan(args):
    """[(problem name, method name, rule)] from the arguments, validated."""
    from lpcheck.rates.problems import PROBLEMS
    from lpcheck.rates.simulation import METHODS
    from lpcheck.rates.study import STEP_RULES

    problems = _names(args.problem, "--problem") or list(PROBLEMS)
    for name in problems:
        if name not in PROBLEMS and ":" not in name:
            raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)} or give module:Class")
        module, _, attr = name.partition(":")
        if name not in PROBLEMS and not (module and attr):
            raise ValueError(f"--problem {name!r} must be a name or module:Class, both parts given")
    rules = _names([args.step], "--step")
    for rule in rules:
        if rule not in STEP_RULES:
            raise ValueError(f"unknown step rule {rule!r}; choose from {', '.join(STEP_RULES)}")
    pairs = []
    for entry in _names(args.optimizer, "--optimizer") or list(METHODS):
        name, _, rule = entry.partition("@")
        if name not in METHODS:
            raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(METHODS)}")
        if "@" in entry and rule not in STEP_RULES:
            raise ValueError(f"unknown step rule {rule!r} in {entry!r}; choose from {', '.join(STEP_RULES)}")
        pairs += [(name, r) for r in ([rule] if rule else rules)]
    return [(p, m, r) for p in problems for m, r in dict.fromkeys(pairs)]


def _count(option, value, default, low):
    """An integer option in [low, COUNT_MAX]; None takes the default (0 is not None: it is checked)."""
    from lpcheck import checks

    return checks.integer(option, default if value is None else value, low=low, high=COUNT_MAX)


def _settings(args):
    """Every numeric option checked (names and ranges) and resolved against --quick's and the defaults."""
    import torch

    from lpcheck import checks
    from lpcheck.training import check_seed

    quick = QUICK if args.quick else {}
    T = _T_grid(args.T) or quick.get("T") or _T_grid(DEFAULT_T)
    seeds = _count("--seeds", args.seeds, quick.get("seeds", 256), 2)  # the interval is a bootstrap over seeds
    K = _count("--K", args.K, quick.get("K", 256), 2)
    epochs = checks.integer("--epochs", args.epochs, low=1)
    if epochs > T[0]:
        raise ValueError(f"--epochs ({epochs}) must be <= the smallest T ({T[0]}): every epoch of eq. 19 needs a step")
    pilot_T = args.pilot_T if args.pilot_T is not None else quick.get("pilot_T")
    if pilot_T is not None:
        pilot_T = checks.integer("--pilot-T", pilot_T, low=1, high=T_MAX)
        if epochs > pilot_T:
            raise ValueError(f"--pilot-T ({pilot_T}) must be >= --epochs ({epochs}): every epoch needs a step")
    pilot_seeds = _count("--pilot-seeds", args.pilot_seeds, quick.get("pilot_seeds", 32), 1)
    boot = _count("--boot", args.boot, quick.get("boot", 2000), 100)  # fewer cannot resolve a 95% interval
    tolerance = checks.real("--tolerance", args.tolerance, low=0, high=0.5, high_open=True)
    # ^ at 0.5 a flat curve (slope 0, no convergence) would count as T^-1/2
    threads = checks.integer("--threads", args.threads, low=1, high=os.cpu_count() or 1)
    seed = check_seed(args.seed, "--seed")
    dtype = getattr(torch, args.dtype)
    p_max = checks.real("--p-max", args.p_max, low=2)
    p = None if args.p is None else checks.real("--p", args.p, low=2, finite=False)
    momentum = checks.real("--momentum", args.momentum, low=0, high=1, high_open=True)
    if float(torch.tensor(momentum, dtype=dtype)) >= 1:
        raise ValueError(f"--momentum = {args.momentum!r} rounds to 1 in {dtype}: the momentum of eq. 23 would "
                         "never take in a gradient")
    eps = checks.representable("--eps", checks.real("--eps", args.eps, low=0, low_open=True), dtype,
                               why="(|g| + eps)^-rho would be inf at a zero gradient")
    lr = None
    if args.lr is not None:
        lr = checks.representable("--lr", checks.real("--lr", args.lr, low=0, low_open=True), dtype,
                                  why="the iterates would not move")
    return dict(T=T, seeds=seeds, K=K, epochs=epochs, pilot_seeds=pilot_seeds, pilot_T=pilot_T,
                checkpoint_seeds=quick.get("checkpoint_seeds", 8), checkpoint_count=quick.get("checkpoint_count", 12),
                boot=boot, tolerance=tolerance, threads=threads, seed=seed, p_max=p_max, p=p, momentum=momentum,
                eps=eps, lr=lr)


def _device(name):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return str(device)


def _check_memory(problems, settings, dtype, device):
    """The largest tensors a study allocates, against the device's free memory: a huge --seeds or --K is
    refused here, not by the allocator in the middle of a study."""
    import torch

    from lpcheck.training import _available_bytes

    size = dtype.itemsize
    d = max(problem.d for problem in problems.values())
    n_ck = settings["checkpoint_seeds"] * settings["checkpoint_count"]
    s = settings
    parts = {f"--seeds = {s['seeds']}": 8 * s["seeds"] * d * size,  # theta, gradients, noise, optimizer state
             f"--pilot-seeds = {s['pilot_seeds']}": 8 * s["pilot_seeds"] * d * size,
             f"--K = {s['K']}": 3 * (n_ck + 16) * s["K"] * d * size,  # the draws at all checkpoints, refinements
             f"--boot = {s['boot']} x --seeds = {s['seeds']}": 8 * s["boot"] * (s["seeds"] + len(s["T"]))}
    have = _available_bytes(torch.device(device))
    label, _ = max(parts.items(), key=lambda kv: kv[1])
    if have is not None and sum(parts.values()) > have:
        raise ValueError(f"{label} needs about {sum(parts.values()) / 2**30:.3g} GiB (d = {d}), {device} has "
                         f"{have / 2**30:.3g} GiB available")


def _problem(name):
    """make_problem, with a user module that does not even compile named as the problem's error."""
    from lpcheck.rates.problems import make_problem

    try:
        return make_problem(name)
    except SyntaxError as e:
        raise ValueError(f"cannot load problem {name!r}: {type(e).__name__}: {e}") from None


def _markdown(data) -> str:
    """render_markdown, opened by a line that says so when the report is partial."""
    from lpcheck.rates.render import render_markdown

    body = render_markdown(data)
    if data.get("complete", True):
        return body
    done, planned = data.get("studies_done", 0), data.get("studies_planned", "?")
    note = (f"**Partial: {done} of {planned} studies.** The run was interrupted (or is still running); the "
            "studies below are complete, the others were not measured.\n\n")
    head, sep, rest = body.partition("\n\n")
    return head + sep + note + rest if sep else note + body


def _render_only(out) -> int:
    from lpcheck.rates.render import plot_problem
    from lpcheck.report import read_json, write_report

    if not out:
        raise ValueError("--out is empty: give the folder that holds rates.json")
    path = f"{out}/rates.json"
    data = read_json(path)  # keeps its provenance: the run that measured it
    if not isinstance(data, dict) or not isinstance(data.get("problems"), dict) or not all(
            isinstance(e, dict) and isinstance(e.get("studies"), list) for e in data["problems"].values()):
        raise ValueError(f"{path} is not a rates report (it needs 'problems', each with 'studies')")
    try:  # render everything before writing anything: a broken report changes no file
        markdown = _markdown(data)
        figures = [(entry, f"{out}/{entry['plot']}") for entry in data["problems"].values() if entry.get("plot")]
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as e:
        raise ValueError(f"{path} is not a complete rates report ({type(e).__name__}: {e})") from None
    for entry, png in figures:
        try:
            plot_problem(entry, png)
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(f"{path} is not a complete rates report ({type(e).__name__}: {e})") from None
    write_report(out, "rates", data, lambda d: markdown)
    return 0


def run(args) -> int:
    if args.render_only:
        return _render_only(args.out)
    from lpcheck.report import check_out_dir

    plan = _plan(args)
    settings = _settings(args)
    check_out_dir(args.out, "--out")
    import torch

    from lpcheck.progress import Progress
    from lpcheck.rates.render import plot_problem
    from lpcheck.rates.simulation import make_method
    from lpcheck.rates.study import problem_summary, rate_study
    from lpcheck.report import provenance, write_report

    device = _device(args.device)
    dtype = getattr(torch, args.dtype)
    methods = {name: make_method(name, p_max=settings["p_max"], p=settings["p"], momentum=settings["momentum"])
               for _, name, _ in plan}
    problems = {name: _problem(name) for name in dict.fromkeys(p for p, _, _ in plan)}
    _check_memory(problems, settings, dtype, device)
    torch.set_num_threads(settings["threads"])
    config = dict(T=settings["T"], seeds=settings["seeds"], rules=sorted({r for _, _, r in plan}),
                  p_max=settings["p_max"], p=settings["p"], epochs=settings["epochs"], momentum=settings["momentum"],
                  eps=settings["eps"], lr=settings["lr"], K=settings["K"], pilot_seeds=settings["pilot_seeds"],
                  pilot_T=settings["pilot_T"], tolerance=settings["tolerance"],
                  checkpoint_seeds=settings["checkpoint_seeds"], checkpoint_count=settings["checkpoint_count"],
                  boot=settings["boot"], seed=settings["seed"], dtype=args.dtype, threads=settings["threads"],
                  quick=args.quick, device=device)
    data = {"config": config, "complete": False, "studies_done": 0, "studies_planned": len(plan),
            "problems": {n: {"info": problem_summary(p), "studies": []} for n, p in problems.items()},
            "provenance": provenance(device)}
    out = args.out
    start = time.perf_counter()
    # the bar counts runs; the ETA weights each run by its T (a run's cost grows with T)
    progress = Progress("lpcheck rates", {"T": len(plan) * sum(settings["T"])},
                        bar_total=len(plan) * len(settings["T"]), unit="run", quiet=args.quiet)
    for i, (pname, mname, rule) in enumerate(plan):
        progress.note(f"{pname}/{mname}/{rule}")
        study = rate_study(problems[pname], methods[mname], rule, settings["T"], seeds=settings["seeds"],
                           epochs=settings["epochs"], eps=settings["eps"], lr=settings["lr"], K=settings["K"],
                           pilot_T=settings["pilot_T"], pilot_seeds=settings["pilot_seeds"],
                           checkpoint_seeds=settings["checkpoint_seeds"], checkpoint_count=settings["checkpoint_count"],
                           tolerance=settings["tolerance"], n_boot=settings["boot"], seed=settings["seed"],
                           device=device, dtype=dtype,
                           progress=lambda ts=iter(settings["T"]): progress.advance("T", next(ts), bar=1))
        entry = data["problems"][pname]
        entry["studies"].append(study)
        if i + 1 == len(plan) or plan[i + 1][0] != pname:  # this problem is done: draw it once
            entry["plot"] = "rates_" + re.sub(r"[^A-Za-z0-9_.-]", "_", pname) + ".png"
            plot_problem(entry, f"{out}/{entry['plot']}")
        data["seconds"] = time.perf_counter() - start
        data.update(studies_done=i + 1, complete=i + 1 == len(plan))
        write_report(out, "rates", data, _markdown)
        progress.milestone(f"study {i + 1}/{len(plan)} {pname}/{mname}/{rule}: {study['verdict']}, "
                           f"{study['seconds']:.1f} s")
    progress.close()
    if not args.quiet:
        print(f"lpcheck rates: {len(plan)} studies in {time.perf_counter() - start:.1f} s; report in {out}/rates.md"
              + (f" (a smoke run: its verdicts are about T <= {max(settings['T'])} only)" if args.quick else ""))
    return 0
