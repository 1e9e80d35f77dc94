"""Does LPSGD/LPSGDM reach the O(T^-1/2) rate of Theorems 1-2 (eq. 33, 48)? Does any method reach
the rate its paper claims? Measure it on synthetic problems whose constants are known, with many
seeds, and check the bound itself.

For each problem and optimizer, `lpcheck rates` runs T steps for every T of a grid (all seeds at
once, one tensor of seeds x d, on the CPU or CUDA), records the seed mean of a metric (default (1/T)
sum_t ||grad f(theta_t)||_2^2), fits its log-log slope against T with a 95% interval over seeds
(jackknife t joined with a studentized bootstrap), and gives a verdict against the claimed rate
(--rate, default -1/2): confirmed, refuted or inconclusive (the rule is written in the report). It
also measures the Assumption 5/6 constants along the runs and reports observed / (the theorem's
right-hand side, eq. 31/46): a ratio <= 1 means the bound holds.

Problems: strong (eq. 17), weak (eq. 18), aniso (d = 16 quadratic), logsum (sum log(1 + x^2)),
logistic (finite sum, mini-batch noise), heavy (aniso with Student-t noise); or your own class as
--problem my_module:MyProblem (see the README, "Rate fitting").
Optimizers: the paper's lpsgd, lpsgdm, sgd, sgdm, sign (LPSGD at p = inf: g/(|g| + eps)), steepest
(eq. 10); any method of lpcheck.methods (heavyball, lion, adam, rmsprop, scion, clipped; signsgd:
the exact sign), with NAME:key=value,... hyperparameters; or your own class as
MODULE:CLASS[:key=value,...]: a torch.optim.Optimizer subclass (built with lr = the step and those
keyword arguments; one copy per seed, batched where the update is known to be elementwise) or a
lpcheck.methods.Method subclass. NAME@RULE picks a step rule for one of them. Step rules: theorem
(eq. 32/47 from the constants measured in the method's geometry), sqrt (C/sqrt(T)), constant (C).
Metrics (--metric): grad_l2_sq (default), grad_l2 (||grad f||_2, first power), grad_q_sq (||grad
f||_q^2 at the active p), dual_sq (the method's dual norm, squared), dual (first power). --rate r:
the claimed O(T^r) (default -1/2). --p-schedule MODULE:FUNCTION: p = FUNCTION(epoch, epochs) in
place of eq. 19's cosine for lpsgd, lpsgdm and steepest.

Examples:
  # all problems, small grid: under 30 s on 2 cores
  lpcheck rates --quick --out /tmp/rates
  lpcheck rates --problem logsum --optimizer lpsgd,sgd@constant --T 100,1000,10000 --seeds 64
  lpcheck rates --problem aniso --optimizer "clipped:rho=0.5,solver=svd" --metric dual --rate -1/4
  # my_opt.py in the current folder: any torch optimizer
  lpcheck rates --problem weak --optimizer my_opt:NormSGD:momentum=0.5@sqrt --metric grad_l2 \\
      --rate -1/4
  # the full report (about 20 minutes on a CPU)
  lpcheck rates --out experiments/results/rates

Writes OUT/rates.json, OUT/rates.md (a table per problem: slope, interval, verdict, bound ratio) and
OUT/rates_<problem>.png (log-log, fitted line, bound); the report is rewritten after every
(problem, optimizer), so an interrupted run keeps what it measured: until the last study is in, the
JSON says "complete": false and the Markdown opens with "Partial: N of M studies". --render-only
redraws the Markdown and the plots from an existing rates.json. Every option is checked before any
work. --problem module:Class, --optimizer MODULE:CLASS and --p-schedule MODULE:FUNCTION import (run)
that module: give only code you trust.
"""

from __future__ import annotations

import argparse
import os
import re
import time

DEFAULT_T = "100,300,1000,3000,10000,30000"
T_MAX = (
    10**9
)  # steps per run: past this a run takes days, and step counts stop being exact in float32
COUNT_MAX = 10**9  # seeds, K, bootstrap resamplings: the memory check below refines this
QUICK = dict(
    T=[100, 200, 400],
    seeds=32,
    K=64,
    pilot_seeds=16,
    pilot_T=200,
    checkpoint_seeds=4,
    checkpoint_count=6,
    boot=500,
)


def _names(values, option=None):
    """Comma-separated or repeated names; an option given but empty ('') is an error naming it."""
    names = [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
    if option is not None and values is not None and not names:
        raise ValueError(f"{option} is empty: give at least one name")
    return list(dict.fromkeys(names))  # a name given twice is one study


def _split(text):
    """Split at the commas outside brackets ('adam:betas=(0.9,0.99),eps=1e-6,sgd' -> 3 pieces)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [p.strip() for p in parts + [text[start:]] if p.strip()]


def _optimizer_entries(values):
    """--optimizer values as specs 'NAME[:k=v,...][@RULE]': a comma-separated piece 'key=value'
    continues the hyperparameters of the spec before it ('lpsgdm:p=4,momentum=0.95,sgd' is two
    specs)."""
    entries = []
    for item in values or []:
        own = []
        for piece in _split(item):
            key = piece.partition("=")[0]
            if "=" in piece and ":" not in key and "@" not in key:
                if not own or ":" not in own[-1] or "@" in own[-1]:
                    raise ValueError(
                        f"--optimizer {item!r}: {piece!r} is a key=value with no NAME:key=value "
                        "spec before it (write NAME:key=value,key=value[@RULE])"
                    )
                own[-1] += "," + piece
            else:
                own.append(piece)
        entries += own
    if values is not None and not entries:
        raise ValueError("--optimizer is empty: give at least one name")
    return list(dict.fromkeys(entries))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--problem",
        action="append",
        metavar="NAME",
        help="problems, comma-separated or repeated (default: all): strong, weak, aniso, logsum, "
        "logistic, heavy, or module:Class",
    )
    parser.add_argument(
        "--optimizer",
        action="append",
        metavar="SPEC[@RULE]",
        help=(
            "optimizers, comma-separated or repeated (default: the paper's six): lpsgd, lpsgdm, "
            "sgd, sgdm, sign, steepest; any method of lpcheck.methods (heavyball, lion, adam, "
            "rmsprop, scion, clipped, signsgd) as NAME or NAME:key=value,...; or "
            "MODULE:CLASS[:key=value,...], a torch.optim.Optimizer or lpcheck.methods.Method "
            "subclass (MODULE.py may sit in the current folder); SPEC@RULE sets the step rule for "
            "that one"
        ),
    )
    parser.add_argument(
        "--step",
        default="theorem",
        metavar="RULES",
        help="step rules for optimizers without @RULE: theorem, sqrt, constant (default: theorem)",
    )
    parser.add_argument(
        "--T", default=None, metavar="LIST", help=f"increasing T values (default {DEFAULT_T})"
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds per run, >= 2 (default 256)")
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)"
    )
    parser.add_argument(
        "--out", default="rates-report", help="output folder (default ./rates-report)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="T = 100,200,400, 32 seeds, fewer checkpoints and samples: a smoke run",
    )
    parser.add_argument(
        "--p-max", type=float, default=6.0, help="cosine schedule start p (eq. 19), default 6"
    )
    parser.add_argument(
        "--p",
        type=float,
        default=None,
        help="fixed p instead of the schedule (lpsgd, lpsgdm, steepest)",
    )
    parser.add_argument(
        "--p-schedule",
        default=None,
        metavar="MODULE:FUNCTION",
        help=(
            "p = FUNCTION(epoch, epochs) (epoch 1-based, as eq. 19; p in [2, inf]) in place of eq. "
            "19's cosine for lpsgd, lpsgdm and steepest"
        ),
    )
    parser.add_argument(
        "--metric",
        default="grad_l2_sq",
        metavar="NAME",
        help=(
            "what is averaged over the run and fitted: grad_l2_sq (||grad f||_2^2, eq. 31; "
            "default), grad_l2 (||grad f||_2, first power), grad_q_sq (||grad f||_q^2 at the "
            "active p), dual_sq (the method's dual norm squared), dual (its first power)"
        ),
    )
    parser.add_argument(
        "--rate",
        default="-1/2",
        metavar="R",
        help=(
            "the claimed exponent r of O(T^r), < 0, a number or a fraction (default -1/2: eq. "
            "33/48; e.g. -1/4 for the stochastic LMO / (L0, L1) results)"
        ),
    )
    # '--rate -1/4': argparse (3.11) reads '-1/4' (and '-1e-3', '-inf') as an unknown option, as
    # only '-1' and '-.25' look like numbers to it; rates are written as fractions, so a '-' and a
    # digit is a value here (no option of this parser starts with a digit)
    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = re.compile(r"^-\.?\d|^-inf$")
    parser.add_argument(
        "--epochs", type=int, default=10, help="S: the T steps are split into S epochs (default 10)"
    )
    parser.add_argument(
        "--momentum", type=float, default=0.9, help="beta for lpsgdm and sgdm (default 0.9)"
    )
    parser.add_argument(
        "--eps", type=float, default=1e-8, help="stability constant of eq. 21 (default 1e-8)"
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="C for the sqrt and constant rules (default: from the measured constants)",
    )
    parser.add_argument(
        "--K", type=int, default=None, help="noise samples per checkpoint (default 256)"
    )
    parser.add_argument(
        "--pilot-T",
        type=int,
        default=None,
        help="pilot run length (default: the middle of the grid)",
    )
    parser.add_argument("--pilot-seeds", type=int, default=None, help="pilot seeds (default 32)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.1,
        help="slope tolerance tau of the verdict, in [0, |rate|) (default 0.1)",
    )
    parser.add_argument(
        "--boot", type=int, default=None, help="bootstrap resamplings (default 2000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the noise (default 0)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the tensors are small, more threads only contend)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: redraw OUT/rates.md and the plots from OUT/rates.json",
    )


def _fraction(option, text):
    """A number or a fraction ('-1/4') as a float (the range is the caller's check); else a
    ValueError naming it."""
    if not isinstance(text, str):
        return text
    from fractions import Fraction

    try:
        return float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"{option} must be a number or a fraction such as -0.5 or -1/4, got {text!r}"
        ) from None


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
    """[(problem name, optimizer spec, rule)] from the arguments, their syntax validated (the specs
    are resolved, and their classes checked, in `_methods`)."""
    from lpcheck import methods as layer
    from lpcheck.rates.problems import PROBLEMS
    from lpcheck.rates.simulation import ALIASES, METHODS
    from lpcheck.rates.study import STEP_RULES

    problems = _names(args.problem, "--problem") or list(PROBLEMS)
    for name in problems:
        if name not in PROBLEMS and ":" not in name:
            raise ValueError(
                f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)} or give module:Class"
            )
        module, _, attr = name.partition(":")
        if name not in PROBLEMS and not (module and attr):
            raise ValueError(f"--problem {name!r} must be a name or module:Class, both parts given")
    rules = _names([args.step], "--step")
    for rule in rules:
        if rule not in STEP_RULES:
            raise ValueError(f"unknown step rule {rule!r}; choose from {', '.join(STEP_RULES)}")
    known = list(METHODS) + [n for n in layer.METHODS if n not in METHODS] + list(ALIASES)
    pairs = []
    for entry in _optimizer_entries(args.optimizer) or list(METHODS):
        name, at, rule = entry.rpartition("@") if "@" in entry else (entry, "", "")
        head, _, rest = name.partition(":")
        if head not in known and not (head and rest.partition(":")[0]):
            raise ValueError(
                f"unknown optimizer {name!r}; choose from {', '.join(known)}, or give a class as "
                "MODULE:CLASS[:key=value,...]"
            )
        if at and rule not in STEP_RULES:
            raise ValueError(
                f"unknown step rule {rule!r} in {entry!r}; choose from {', '.join(STEP_RULES)}"
            )
        pairs += [(name, r) for r in ([rule] if at else rules)]
    return [(p, m, r) for p in problems for m, r in dict.fromkeys(pairs)]


def _schedule(text, epochs, p):
    """--p-schedule MODULE:FUNCTION loaded (the current folder first, as for --optimizer) and
    checked at every epoch 1..epochs the runs use (every run splits its T steps into the same
    epochs): p in [2, inf]."""
    from lpcheck.methods.registry import _import
    from lpcheck.rates.simulation import schedule_p

    if text is None:
        return None
    if p is not None:
        raise ValueError("--p and --p-schedule both fix p: give one of them")
    module, _, name = text.rpartition(":")
    if not module or not name:
        raise ValueError(f"--p-schedule must be MODULE:FUNCTION, got {text!r}")
    try:
        fn = getattr(_import(module), name)
    except AttributeError:
        raise ValueError(f"--p-schedule {text}: module {module!r} has no {name!r}") from None
    except (ValueError, FileNotFoundError) as e:
        raise type(e)(f"--p-schedule {text}: {e}") from None
    except Exception as e:  # the module's own code failed on import
        raise ValueError(f"--p-schedule {text}: cannot load it ({type(e).__name__}: {e})") from None
    if not callable(fn):
        raise ValueError(
            f"--p-schedule {text} is not a function (epoch, epochs) -> p, got {type(fn).__name__}"
        )
    for s in range(1, epochs + 1):
        schedule_p(fn, f"--p-schedule {text}", s, epochs)
    return fn


def _methods(plan, settings, schedule, text):
    """Every optimizer spec of the plan resolved (imports, probe steps: `resolve_method`), and
    --p-schedule used."""
    from lpcheck.rates.simulation import Method, resolve_method

    methods = {
        name: resolve_method(
            name,
            p_max=settings["p_max"],
            p=settings["p"],
            momentum=settings["momentum"],
            schedule=schedule,
            schedule_name=f"--p-schedule {text}" if text else None,
        )
        for _, name, _ in plan
    }
    if schedule is not None and not any(
        isinstance(m, Method) and m.schedule is not None for m in methods.values()
    ):
        raise ValueError(
            "--p-schedule sets p for lpsgd, lpsgdm and steepest (without their own p or p_max); "
            "none of the optimizers planned uses it"
        )
    return methods


def _check_metric(metric, plan, methods, problems):
    """--metric is defined for every (problem, method) planned, or a ValueError naming the first
    that has none."""
    from lpcheck.rates.simulation import METRICS, metric_reason

    if metric not in METRICS:
        raise ValueError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    for pname, mname, _ in plan:
        why = metric_reason(methods[mname], metric, problems[pname].d)
        if why is not None:
            raise ValueError(f"--metric {metric} is not defined for --optimizer {mname}: {why}")


def _count(option, value, default, low):
    """An integer option in [low, COUNT_MAX]; None takes the default (0 is not None: it is
    checked)."""
    from lpcheck import checks

    return checks.integer(option, default if value is None else value, low=low, high=COUNT_MAX)


def _settings(args):
    """Every numeric option checked (names and ranges) and resolved against --quick's and the
    defaults."""
    import torch

    from lpcheck import checks
    from lpcheck.training import check_seed

    quick = QUICK if args.quick else {}
    T = _T_grid(args.T) or quick.get("T") or _T_grid(DEFAULT_T)
    seeds = _count(
        "--seeds", args.seeds, quick.get("seeds", 256), 2
    )  # the interval resamples seeds
    K = _count("--K", args.K, quick.get("K", 256), 2)
    epochs = checks.integer("--epochs", args.epochs, low=1)
    if epochs > T[0]:
        raise ValueError(
            f"--epochs ({epochs}) must be <= the smallest T ({T[0]}): every epoch of eq. 19 needs "
            "a step"
        )
    pilot_T = args.pilot_T if args.pilot_T is not None else quick.get("pilot_T")
    if pilot_T is not None:
        pilot_T = checks.integer("--pilot-T", pilot_T, low=1, high=T_MAX)
        if epochs > pilot_T:
            raise ValueError(
                f"--pilot-T ({pilot_T}) must be >= --epochs ({epochs}): every epoch needs a step"
            )
    pilot_seeds = _count("--pilot-seeds", args.pilot_seeds, quick.get("pilot_seeds", 32), 1)
    boot = _count(
        "--boot", args.boot, quick.get("boot", 2000), 100
    )  # fewer cannot resolve a 95% interval
    rate = checks.real("--rate", _fraction("--rate", args.rate), high=0, high_open=True)
    tolerance = checks.real("--tolerance", args.tolerance, low=0, high=-rate, high_open=True)
    # ^ at |rate| a flat curve (slope 0, no convergence) would count as T^rate
    threads = checks.integer("--threads", args.threads, low=1, high=os.cpu_count() or 1)
    seed = check_seed(args.seed, "--seed")
    dtype = getattr(torch, args.dtype)
    p_max = checks.real("--p-max", args.p_max, low=2)
    p = None if args.p is None else checks.real("--p", args.p, low=2, finite=False)
    momentum = checks.real("--momentum", args.momentum, low=0, high=1, high_open=True)
    if float(torch.tensor(momentum, dtype=dtype)) >= 1:
        raise ValueError(
            f"--momentum = {args.momentum!r} rounds to 1 in {dtype}: the momentum of eq. 23 would "
            "never take in a gradient"
        )
    eps = checks.representable(
        "--eps",
        checks.real("--eps", args.eps, low=0, low_open=True),
        dtype,
        why="(|g| + eps)^-rho would be inf at a zero gradient",
    )
    lr = None
    if args.lr is not None:
        lr = checks.representable(
            "--lr",
            checks.real("--lr", args.lr, low=0, low_open=True),
            dtype,
            why="the iterates would not move",
        )
    return dict(
        T=T,
        seeds=seeds,
        K=K,
        epochs=epochs,
        pilot_seeds=pilot_seeds,
        pilot_T=pilot_T,
        checkpoint_seeds=quick.get("checkpoint_seeds", 8),
        checkpoint_count=quick.get("checkpoint_count", 12),
        boot=boot,
        tolerance=tolerance,
        threads=threads,
        seed=seed,
        p_max=p_max,
        p=p,
        momentum=momentum,
        eps=eps,
        lr=lr,
        rate=rate,
    )


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
    """The largest tensors a study allocates, against the device's free memory: a huge --seeds or
    --K is refused here, not by the allocator in the middle of a study."""
    import torch

    from lpcheck.training import _available_bytes

    size = dtype.itemsize
    d = max(problem.d for problem in problems.values())
    n_ck = settings["checkpoint_seeds"] * settings["checkpoint_count"]
    s = settings
    parts = {
        f"--seeds = {s['seeds']}": 8
        * s["seeds"]
        * d
        * size,  # theta, gradients, noise, optimizer state
        f"--pilot-seeds = {s['pilot_seeds']}": 8 * s["pilot_seeds"] * d * size,
        f"--K = {s['K']}": 3
        * (n_ck + 16)
        * s["K"]
        * d
        * size,  # the draws at all checkpoints, refinements
        f"--boot = {s['boot']} x --seeds = {s['seeds']}": 8
        * s["boot"]
        * (s["seeds"] + len(s["T"])),
    }
    have = _available_bytes(torch.device(device))
    label, _ = max(parts.items(), key=lambda kv: kv[1])
    if have is not None and sum(parts.values()) > have:
        raise ValueError(
            f"{label} needs about {sum(parts.values()) / 2**30:.3g} GiB (d = {d}), {device} has "
            f"{have / 2**30:.3g} GiB available"
        )


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
    note = (
        f"**Partial: {done} of {planned} studies.** The run was interrupted (or is still running); "
        "the studies below are complete, the others were not measured.\n\n"
    )
    head, sep, rest = body.partition("\n\n")
    return head + sep + note + rest if sep else note + body


def _plot_options(data) -> dict:
    """The report's claimed rate and metric for its plots (a report from before --rate and --metric:
    eq. 33's)."""
    from lpcheck.rates.fit import RATE

    cfg = data.get("config") or {}
    return {"rate": cfg.get("rate", RATE), "metric": cfg.get("metric", "grad_l2_sq")}


def _render_only(out) -> int:
    from lpcheck.rates.render import plot_problem
    from lpcheck.report import read_json, write_report

    if not out:
        raise ValueError("--out is empty: give the folder that holds rates.json")
    path = f"{out}/rates.json"
    data = read_json(path)  # keeps its provenance: the run that measured it
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("problems"), dict)
        or not all(
            isinstance(e, dict) and isinstance(e.get("studies"), list)
            for e in data["problems"].values()
        )
    ):
        raise ValueError(f"{path} is not a rates report (it needs 'problems', each with 'studies')")
    try:  # render everything before writing anything: a broken report changes no file
        markdown = _markdown(data)
        figures = [
            (entry, f"{out}/{entry['plot']}")
            for entry in data["problems"].values()
            if entry.get("plot")
        ]
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as e:
        raise ValueError(
            f"{path} is not a complete rates report ({type(e).__name__}: {e})"
        ) from None
    for entry, png in figures:
        try:
            plot_problem(entry, png, **_plot_options(data))
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(
                f"{path} is not a complete rates report ({type(e).__name__}: {e})"
            ) from None
    write_report(out, "rates", data, lambda d: markdown)
    return 0


# what --render-only uses; every other option would be ignored by it
_RENDER_OPTIONS = {"out", "render_only", "quiet", "command", "_run"}


def _ignored_by_render_only(args) -> list:
    """The options given (not at their defaults) that --render-only would ignore: it redraws
    rates.json as measured, so e.g. --rate -1/4 with it would leave every verdict at the old
    rate."""
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    default = vars(defaults.parse_args([]))
    return [
        "--" + k.replace("_", "-")
        for k, v in vars(args).items()
        if k not in _RENDER_OPTIONS and k in default and v != default[k]
    ]


def run(args) -> int:
    if args.render_only:
        ignored = _ignored_by_render_only(args)
        if ignored:
            raise ValueError(
                f"--render-only redraws OUT/rates.json as it was measured and would ignore "
                f"{', '.join(ignored)}: drop them, or measure again without --render-only"
            )
        return _render_only(args.out)
    from lpcheck.report import check_out_dir

    plan = _plan(args)
    settings = _settings(args)
    check_out_dir(args.out, "--out")
    import torch

    from lpcheck.progress import Progress
    from lpcheck.rates.render import plot_problem
    from lpcheck.rates.study import problem_summary, rate_study
    from lpcheck.report import provenance, write_report

    device = _device(args.device)
    dtype = getattr(torch, args.dtype)
    schedule = _schedule(args.p_schedule, settings["epochs"], settings["p"])
    methods = _methods(plan, settings, schedule, args.p_schedule)
    problems = {name: _problem(name) for name in dict.fromkeys(p for p, _, _ in plan)}
    _check_metric(args.metric, plan, methods, problems)
    _check_memory(problems, settings, dtype, device)
    torch.set_num_threads(settings["threads"])
    config = dict(
        T=settings["T"],
        seeds=settings["seeds"],
        rules=sorted({r for _, _, r in plan}),
        p_max=settings["p_max"],
        p=settings["p"],
        p_schedule=args.p_schedule,
        epochs=settings["epochs"],
        momentum=settings["momentum"],
        eps=settings["eps"],
        lr=settings["lr"],
        K=settings["K"],
        pilot_seeds=settings["pilot_seeds"],
        pilot_T=settings["pilot_T"],
        tolerance=settings["tolerance"],
        metric=args.metric,
        rate=settings["rate"],
        checkpoint_seeds=settings["checkpoint_seeds"],
        checkpoint_count=settings["checkpoint_count"],
        boot=settings["boot"],
        seed=settings["seed"],
        dtype=args.dtype,
        threads=settings["threads"],
        quick=args.quick,
        device=device,
    )
    data = {
        "config": config,
        "complete": False,
        "studies_done": 0,
        "studies_planned": len(plan),
        "problems": {n: {"info": problem_summary(p), "studies": []} for n, p in problems.items()},
        "provenance": provenance(device),
    }
    out = args.out
    start = time.perf_counter()
    # the bar counts runs; the ETA weights each run by its T (a run's cost grows with T)
    progress = Progress(
        "lpcheck rates",
        {"T": len(plan) * sum(settings["T"])},
        bar_total=len(plan) * len(settings["T"]),
        unit="run",
        quiet=args.quiet,
    )
    for i, (pname, mname, rule) in enumerate(plan):
        progress.note(f"{pname}/{mname}/{rule}")
        iter_T = iter(settings["T"])  # one iterator per study, bound into its progress callback
        study = rate_study(
            problems[pname],
            methods[mname],
            rule,
            settings["T"],
            seeds=settings["seeds"],
            epochs=settings["epochs"],
            eps=settings["eps"],
            lr=settings["lr"],
            K=settings["K"],
            pilot_T=settings["pilot_T"],
            pilot_seeds=settings["pilot_seeds"],
            checkpoint_seeds=settings["checkpoint_seeds"],
            checkpoint_count=settings["checkpoint_count"],
            tolerance=settings["tolerance"],
            n_boot=settings["boot"],
            seed=settings["seed"],
            device=device,
            dtype=dtype,
            metric=args.metric,
            rate=settings["rate"],
            progress=lambda ts=iter_T: progress.advance("T", next(ts), bar=1),
        )
        entry = data["problems"][pname]
        entry["studies"].append(study)
        if i + 1 == len(plan) or plan[i + 1][0] != pname:  # this problem is done: draw it once
            entry["plot"] = "rates_" + re.sub(r"[^A-Za-z0-9_.-]", "_", pname) + ".png"
            plot_problem(entry, f"{out}/{entry['plot']}", **_plot_options(data))
        data["seconds"] = time.perf_counter() - start
        data.update(studies_done=i + 1, complete=i + 1 == len(plan))
        write_report(out, "rates", data, _markdown)
        progress.milestone(
            f"study {i + 1}/{len(plan)} {pname}/{mname}/{rule}: {study['verdict']}, "
            f"{study['seconds']:.1f} s"
        )
    progress.close()
    if not args.quiet:
        print(
            f"lpcheck rates: {len(plan)} studies in {time.perf_counter() - start:.1f} s; report in "
            f"{out}/rates.md"
            + (
                f" (a smoke run: its verdicts are about T <= {max(settings['T'])} only)"
                if args.quick
                else ""
            )
        )
    return 0
