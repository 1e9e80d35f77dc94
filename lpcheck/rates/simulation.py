"""Many seeds at once: the methods, the schedule, and one vectorised run (seeds x d).

All seeds of a run live in ONE tensor theta of shape (seeds, d), on the CPU or a CUDA device. Each
step is one call of a method of the layer (`lpcheck.methods`) with batched=True: row i evolves
exactly as seed i would alone (elementwise methods by construction; eq. 10's ||g||_q is taken per
row; the tests hold the batch to one lpcheck.optim optimizer per seed, step for step). The methods
here are the layer's, with the paper's p schedule attached:

- lpsgd / lpsgdm: `lpcheck.methods` 'lpsgd' / 'lpsgdm' (eq. 21 / eq. 23-24) at the active p.
- sgd:  LPSGD at fixed p = 2 (rho = 0): theta <- theta - eta g, plain SGD.
- sgdm: LPSGDM at fixed p = 2: the EMA momentum of eq. 23, m <- beta m + (1 - beta) g from m = 0,
  theta <- theta - eta m (torch.optim.SGD's momentum is the layer's 'heavyball', which differs in
  its first step: it copies g into the buffer).
- sign: LPSGD at fixed p = inf (rho = 1): u = g / (|g| + eps), the sign of g wherever |g| >> eps
  (the p -> inf limit of Section 4.1; the layer's 'sign' is the exact sign).
- steepest: the normalized lp steepest descent of eq. 10 with its global factor kept (the layer's
  'steepest'), ||g||_q per row.

lpsgd, lpsgdm and steepest follow the cosine schedule of eq. 19 from `p_max` (T steps split into
`epochs` epochs of T/epochs steps; epoch s covers t with floor(t * epochs / T) = s - 1), or a fixed
p. A p schedule of one's own replaces eq. 19 for them: a function (epoch, epochs) -> p, epoch
1-based in [1, epochs] as in eq. 19 (p is constant within an epoch), p in [2, inf] at every epoch
(`--p-schedule MODULE:FUNCTION`).

`simulate` also takes any layer method itself (`lpcheck.methods.make(...)`), at its own fixed
hyperparameters, and the other methods `resolve_method` gives (`lpcheck.rates.optimizers`: any layer
method, a user's Method or torch.optim.Optimizer class; batched where rows are independent, else per
seed).

Along the run every seed records a metric (`METRICS`): ||grad f(theta_t)||_2^2 by default (eq.
31/33's left side), or ||grad f||_2, or ||grad f||_q^2 at the active p, or the dual norm of the
method's geometry, squared or not.

The hot loop makes no host synchronisation (the layer's updates read nothing back; a run that
overflows is detected once, at the end).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from lpcheck import checks
from lpcheck import methods as layer
from lpcheck.rates.optimizers import (
    LayerMethod,
    LayerSteps,
    TorchMethod,
    TorchSteps,
    bound_metrics,
    geometry,
    layer_method,
    torch_method,
)
from lpcheck.schedule import check_p_max, check_total_epochs, cosine_p

__all__ = [
    "Method",
    "METHODS",
    "make_method",
    "resolve_method",
    "Run",
    "simulate",
    "p_at",
    "checkpoint_times",
    "METRICS",
    "metric_reason",
    "bound_metric_reason",
    "schedule_p",
]


def schedule_p(schedule: Any, name: str, s: int, epochs: int) -> float:
    """p = schedule(s, epochs) at epoch s (1-based) of `epochs`, checked in [2, inf]; its failure a
    named ValueError."""
    try:
        value = schedule(s, epochs)
    except (
        Exception
    ) as e:  # a user's function: whatever it raises is a bad --p-schedule, said in one line
        raise ValueError(
            f"{name} raised {type(e).__name__} at epoch {s} of {epochs}: {e}"
        ) from None
    return checks.real(f"{name} at epoch {s} of {epochs}", value, low=2.0, finite=False)


@dataclass(frozen=True)
class Method:
    """One optimizer to simulate: a layer method with the p schedule of eq. 19. kind 'rescale' (eq.
    21/24: the layer's lpsgd / lpsgdm) or 'steepest' (eq. 10: the layer's steepest), which is also
    how `lpcheck.rates.constants` measures its directions.

    Exactly one of `p` (fixed), `p_max` (cosine schedule, eq. 19) and `schedule` (a function (epoch,
    epochs) -> p, named `schedule_name`) is set. `momentum` (beta) > 0 makes it Algorithm 2 (Theorem
    2, Assumption 6); 0 is Algorithm 1 (Theorem 1, Assumption 5)."""

    name: str
    kind: str
    p: float | None = None
    p_max: float | None = None
    momentum: float = 0.0
    schedule: Callable | None = None
    schedule_name: str | None = None

    def layer(self, p: float, eps: float = 1e-8) -> layer.Method:
        """The layer's method at p (the active p of eq. 19 at some epoch, or the fixed p)."""
        if self.kind == "steepest":
            return layer.make("steepest", p=p)
        if self.momentum > 0:
            return layer.make("lpsgdm", p=p, eps=eps, momentum=self.momentum)
        return layer.make("lpsgd", p=p, eps=eps)

    def p_epoch(self, s: int, epochs: int) -> float:
        """The p of epoch s (1-based) of `epochs`: fixed, eq. 19, or the schedule's."""
        if self.schedule is not None:
            return schedule_p(self.schedule, self.schedule_name or "p schedule", s, epochs)
        if self.p_max is None:
            assert self.p is not None  # make_method gives a method p or p_max
            return self.p
        return cosine_p(s, epochs, self.p_max)

    @property
    def theorem(self) -> int:
        return 2 if self.momentum > 0 else 1

    def label(self) -> str:
        if self.schedule is not None:
            geometry = f"p by {self.schedule_name}"
        else:
            geometry = (
                f"cosine p from {self.p_max:g}" if self.p_max is not None else f"p = {self.p:g}"
            )
        return f"{self.name} ({geometry}" + (
            f", beta = {self.momentum:g})" if self.momentum else ")"
        )


METHODS = {
    "lpsgd": "LPSGD (Algorithm 1), cosine p (eq. 19), --p or --p-schedule",
    "lpsgdm": (
        "LPSGDM (Algorithm 2, no weight decay), cosine p, --p or --p-schedule, EMA momentum beta"
    ),
    "sgd": "SGD: LPSGD at p = 2",
    "sgdm": "SGD with EMA momentum (eq. 23): LPSGDM at p = 2",
    "sign": (
        "sign descent as the p -> inf limit of LPSGD: u = g/(|g| + eps) (signsgd: the exact sign)"
    ),
    "steepest": (
        "normalized lp steepest descent, eq. 10 (global factor ||g||_q^rho kept), cosine p, --p or "
        "--p-schedule"
    ),
}
LP_METHODS = ("lpsgd", "lpsgdm", "steepest")  # the ones with a p schedule
OWN_HP = {
    "lpsgd": ("p", "p_max"),
    "lpsgdm": ("p", "p_max", "momentum"),
    "steepest": ("p", "p_max"),
    "sgd": (),
    "sgdm": ("momentum",),
    "sign": ("momentum",),
}
ALIASES = {
    "signsgd": "sign"
}  # the layer's exact sign (Signum with momentum=beta) under a name of its own


def make_method(
    name: str,
    p_max: float | None = 6.0,
    p: float | None = None,
    momentum: float = 0.9,
    schedule: Callable | None = None,
    schedule_name: str | None = None,
) -> Method:
    """The method `name` (one of METHODS) with the schedule (p_max, or a function `schedule`) or
    fixed p for the lp methods (p wins over schedule, schedule over p_max)."""
    if name not in METHODS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(METHODS)}")
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"momentum (beta) must be in [0, 1), got {momentum!r}")
    if p is not None:
        p = float(p)
        if math.isnan(p) or p < 2:
            raise ValueError(f"p must be in [2, inf], got {p}")
    if schedule is not None and not callable(schedule):
        raise ValueError(
            f"schedule must be a function (epoch, epochs) -> p, got {type(schedule).__name__}"
        )
    plan: dict[str, Any]
    if p is not None:
        plan = dict(p=p)
    elif schedule is not None:
        plan = dict(
            schedule=schedule,
            schedule_name=schedule_name or getattr(schedule, "__name__", "schedule"),
        )
    else:
        plan = dict(p_max=check_p_max(p_max))
    return {
        "lpsgd": lambda: Method("lpsgd", "rescale", **plan),
        "lpsgdm": lambda: Method("lpsgdm", "rescale", momentum=float(momentum), **plan),
        "sgd": lambda: Method("sgd", "rescale", p=2.0),
        "sgdm": lambda: Method("sgdm", "rescale", p=2.0, momentum=float(momentum)),
        "sign": lambda: Method("sign", "rescale", p=math.inf),
        "steepest": lambda: Method("steepest", "steepest", **plan),
    }[name]()


def resolve_method(
    spec: str,
    *,
    p_max: float | None = 6.0,
    p: float | None = None,
    momentum: float = 0.9,
    schedule: Callable | None = None,
    schedule_name: str | None = None,
) -> Any:
    """What `--optimizer SPEC` names (without @RULE), checked before any work:

    - one of METHODS, with 'NAME:key=value,...' over its own settings (OWN_HP: p, p_max, momentum):
      a rates `Method`, the p schedule (`p`, else `schedule`, else eq. 19 from `p_max`) for the lp
      methods. These keep their meaning in lpcheck rates: 'sign' is LPSGD at p = inf (u = g/(|g| +
      eps)), 'sgdm' the EMA of eq. 23;
    - a method of `lpcheck.methods.METHODS` ('NAME:key=value,...'; 'signsgd' is the layer's exact
      'sign'): a `LayerMethod`, batched;
    - 'MODULE:CLASS[:key=value,...]': a user's Method subclass (a `LayerMethod`) or
      torch.optim.Optimizer subclass (a `TorchMethod`, built per run with lr = the step and these
      keyword arguments).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"--optimizer must name a method, got {spec!r}")
    text = spec.strip()
    head, _, rest = text.partition(":")
    if head in METHODS:
        return _paper_method(head, rest, text, p_max, p, momentum, schedule, schedule_name)
    if head in ALIASES or head in layer.BUILTINS:
        try:
            return layer_method(layer.make(ALIASES.get(head, head), **layer.parse_hp(rest)), text)
        except ValueError as e:
            raise ValueError(f"--optimizer {text}: {e}") from None
    if not rest:
        raise ValueError(
            f"unknown optimizer {head!r}; choose from {', '.join(METHODS)}, "
            f"{', '.join(n for n in layer.METHODS if n not in METHODS)}, {', '.join(ALIASES)}, or "
            "give a class as MODULE:CLASS[:key=value,...]"
        )
    found = _load(text)
    if isinstance(found, layer.Method):
        return layer_method(found, text)
    return torch_method(found.cls, found.kwargs, text)


def _load(text: Any) -> Any:
    """lpcheck.methods.resolve on a user's MODULE:CLASS, every failure of the user's module a
    ValueError naming it."""
    try:
        found = layer.resolve(text)
    except (ValueError, FileNotFoundError) as e:
        raise type(e)(f"--optimizer {text}: {e}") from None
    except Exception as e:  # the module's own code failed on import, or the class's constructor did
        raise ValueError(f"--optimizer {text}: cannot load it ({type(e).__name__}: {e})") from None
    if isinstance(found, layer.BlackBox) or not isinstance(
        found, (layer.Method, layer.OptimizerClass)
    ):
        raise ValueError(
            f"--optimizer {text}: not a lpcheck.methods.Method or torch.optim.Optimizer class"
        )
    return found


def _paper_method(
    head: str,
    rest: str,
    text: str,
    p_max: Any,
    p: Any,
    momentum: Any,
    schedule: Any,
    schedule_name: Any,
) -> Method:
    try:
        hp = layer.parse_hp(rest) if rest else {}
    except ValueError as e:
        raise ValueError(f"--optimizer {text}: {e}") from None
    unknown = sorted(set(hp) - set(OWN_HP[head]))
    if unknown:
        own = ", ".join(OWN_HP[head]) or "none"
        raise ValueError(
            f"--optimizer {text}: {head} has no setting {', '.join(unknown)} in lpcheck rates; its "
            f"settings are {own} (for the layer's own methods use their names, e.g. signsgd, "
            "heavyball)"
        )
    for key in ("p", "p_max"):
        if key in hp:
            hp[key] = checks.real(
                f"--optimizer {text}: {key}", hp[key], low=2.0, finite=key == "p_max"
            )
    if "momentum" in hp:
        hp["momentum"] = checks.probability(f"--optimizer {text}: momentum", hp["momentum"])
    own_p = "p" in hp or "p_max" in hp
    m = make_method(
        head,
        p_max=hp.get("p_max", p_max),
        p=hp.get("p", None if own_p else p),
        momentum=hp.get("momentum", momentum),
        schedule=None if own_p else schedule,
        schedule_name=schedule_name,
    )
    if (
        head == "sign" and "momentum" in hp
    ):  # sign's beta is only its own (--momentum is lpsgdm's and sgdm's)
        m = replace(m, momentum=hp["momentum"])
    return replace(m, name=text) if rest else m


def epoch_of(t: int, T: int, epochs: int) -> int:
    """1-based epoch of iteration t (0-based) when T steps are split into `epochs` epochs."""
    return t * epochs // T + 1


def _as_simulated(method: Any) -> Any:
    """A rates Method, LayerMethod or TorchMethod; a bare layer Method (the API's) is a batched
    LayerMethod."""
    if isinstance(method, layer.Method) and not isinstance(method, layer.BlackBox):
        return LayerMethod(method, method.spec())
    if isinstance(method, (Method, LayerMethod, TorchMethod)):
        return method
    raise ValueError(
        "method must be a rates Method (make_method, resolve_method) or a lpcheck.methods.Method, "
        f"got {type(method).__name__}"
    )


def p_at(method: Method, t: int, T: int, epochs: int) -> float | None:
    """The active p at iteration t: fixed, or eq. 19 (or the schedule) at epoch s(t); a layer
    method: its own p, or None (as for a torch optimizer class)."""
    if isinstance(method, layer.Method):
        return method.hp.get("p")
    if isinstance(method, LayerMethod):
        return method.method.hp.get("p")
    if isinstance(method, TorchMethod):
        return None
    return method.p_epoch(epoch_of(t, T, epochs), epochs)


def active_ps(method: Method, T: int, epochs: int) -> Any:
    """Every p the run uses (for L = max over them)."""
    if isinstance(method, layer.Method):
        return [method.hp.get("p")]
    if method.p_max is None and method.schedule is None:
        return [method.p]
    return [method.p_epoch(s, epochs) for s in range(1, min(epochs, T) + 1)]


METRICS = {
    "grad_l2_sq": (
        "(1/T) sum_t ||grad f(theta_t)||_2^2: eq. 31/33's left side (Theorems 1-2 bound it for "
        "LPSGD, LPSGDM)"
    ),
    "grad_l2": (
        "(1/T) sum_t ||grad f(theta_t)||_2, first power: what rates for normalized steps bound "
        "(e.g. O(T^-1/4) for normalized SGD with momentum), in l2, so defined for every method"
    ),
    "grad_q_sq": (
        "(1/T) sum_t ||grad f(theta_t)||_q^2, 1/p + 1/q = 1 at the active p: the lp method's dual "
        "norm"
    ),
    "dual_sq": (
        "(1/T) sum_t ||grad f(theta_t)||_*^2 in the method's own norm (the lp dual for the paper's "
        "methods): what eq. 31 bounds with the constants measured in that norm"
    ),
    "dual": (
        "(1/T) sum_t ||grad f(theta_t)||_*, first power: what the LMO / normalized methods' "
        "results bound (e.g. O(T^-1/4) with momentum under (L0, L1)-smoothness, Pethick et al. "
        "2025)"
    ),
}


FIRST_POWER = ("grad_l2", "dual")  # the metrics that are norms, not squared norms


def metric_reason(method: Any, metric: str, d: int) -> Any:
    """None where `metric` is defined along runs of `method` (a problem of dimension d), else why
    not."""
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if metric in ("grad_l2_sq", "grad_l2") or isinstance(method, Method):
        return None
    method = _as_simulated(method)
    geo = geometry(method, d)
    if not geo.native:
        return (
            f"{method.name} has no norm of its own to measure it in ({geo.why}); "
            "use grad_l2_sq or grad_l2"
        )
    if metric == "grad_q_sq" and geo.scale != 1:
        return f"{method.name}'s norm {geo.norm!r} is not an lp norm (use dual_sq or dual)"
    return None


def bound_metric_reason(method: Any, metric: str, d: int) -> Any:
    """None where eq. 31/46 (with the constants measured for `method`) bounds the mean of `metric`,
    else why not."""
    if isinstance(method, Method):
        if metric == "grad_l2_sq":
            return None
        return (
            "no bound for this metric: eq. 31/46 bounds the mean of ||grad f||_2^2 (Assumptions "
            "5-6 as the paper states them)"
        )
    allowed = bound_metrics(_as_simulated(method), d)
    if metric in allowed:
        return None
    what = (
        "a mean of squared norms"
        if metric in FIRST_POWER
        else "the mean of ||grad f||_*^2 in the norm it is measured in"
    )
    return f"no bound for this metric: eq. 31 bounds {what}" + (
        f" ({', '.join(sorted(allowed))} here)" if allowed else ""
    )


def _metric_norm(method: Any, metric: str, s: int, epochs: int, d: int) -> Any:
    """The norm whose dual is the metric at epoch s (None: ||.||_2^2, the fast path)."""
    if metric == "grad_l2_sq":
        return None
    if metric == "grad_l2":
        return layer.Lp(2.0)
    if isinstance(method, Method):
        return layer.Lp(method.p_epoch(s, epochs))
    return geometry(method, d).norm


def check_dtype_device(dtype: Any, device: Any) -> tuple:
    """(dtype, device) of a simulation: a floating torch dtype, and a device torch has here
    ('tpu' raised RuntimeError, 'cuda' without CUDA an AssertionError, deep inside torch)."""
    from lpcheck.training import torch_device

    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype (torch.float64), got {dtype!r}")
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"device must be cpu or cuda[:i], got {device!r}")
    return dtype, torch_device(str(device), "device")


def checkpoint_times(T: int, n: int) -> Any:
    """n (or fewer, distinct) iterations in [0, T-1], geometrically spaced, always 0 and T-1."""
    if n < 2 or T < 2:
        return [0]
    if n - 1 > T * (math.log(T) + 1):
        # the grid's widest gap, T (1 - T^(-1/(n-1))) <= T ln T / (n-1), is below 1: it rounds to
        # every iteration, so a huge n (10**12) is not allocated
        return list(range(T))
    grid = torch.logspace(0, math.log10(T), n, dtype=torch.float64) - 1
    return sorted({int(round(float(v))) for v in grid} | {0, T - 1})


@dataclass
class Run:
    """One vectorised run: per-seed results plus checkpoints for the constant estimates.

    grad_sq_mean[i] = (1/T) sum_{t<T} ||grad f(theta_t)||_2^2 for seed i (the left side of eq. 31);
    metric_mean[i]: the same mean of `metric` (METRICS; grad_sq_mean itself for grad_l2_sq);
    f_final[i] = f(theta_T); finite[i] is False where seed i overflowed. The checkpoints hold, for
    the first `checkpoint_seeds` seeds at iterations `ck_t`: theta_t, the momentum buffer m_{t-1}
    before step t (None without momentum, and for methods other than the paper's six) and the active
    p; for the other methods `ck_state` holds each checkpoint's state before step t (one (d,)
    parameter's) and `ck_epoch` its epoch.
    """

    grad_sq_mean: torch.Tensor
    f_final: torch.Tensor
    finite: torch.Tensor
    ck_theta: torch.Tensor
    ck_momentum: torch.Tensor | None
    ck_p: list
    ck_t: list
    seconds: float
    metric: str = "grad_l2_sq"
    metric_mean: torch.Tensor | None = None
    ck_state: list | None = None
    ck_epoch: list | None = None

    def __post_init__(self) -> None:
        if self.metric_mean is None:
            self.metric_mean = self.grad_sq_mean


def _schedule(method: Any, T: int, epochs: int, eps: float) -> Any:
    """s -> the layer method stepping epoch s (a rates Method at p_s of its schedule; a layer method
    as it is)."""
    if isinstance(method, LayerMethod):
        return lambda s: method.method
    if method.p_max is None and method.schedule is None:
        fixed = method.layer(method.p, eps)
        return lambda s: fixed
    return lambda s: method.layer(method.p_epoch(s, epochs), eps)


def _stepper(method: Any, theta: Any, eta: Any, T: Any, epochs: Any, eps: Any) -> Any:
    if isinstance(method, TorchMethod):
        return TorchSteps(method, theta, eta)
    return LayerSteps(_schedule(method, T, epochs, eps), theta, getattr(method, "batched", True))


def simulate(
    problem: Any,
    method: Method,
    T: int,
    eta: float,
    seeds: int,
    *,
    epochs: int = 10,
    eps: float = 1e-8,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    checkpoint_seeds: int = 8,
    checkpoint_count: int = 12,
    metric: str = "grad_l2_sq",
) -> Run:
    """Run `method` for T steps with step size eta from problem.x0, every seed at once.

    The noise of all seeds comes from one torch.Generator seeded with `seed`: row i draws the same
    numbers in every run with the same `seeds`, so runs of different T share their random numbers
    (the bootstrap in `fit_slope` resamples a seed's row across T as one unit). `metric` (METRICS)
    is recorded for every seed along the run, beside ||grad f||_2^2.
    """
    from lpcheck import checks
    from lpcheck.training import check_seed

    # counts through checks.integer: int() truncated T = 20.5 and read seeds = '3' or True silently
    T = checks.as_number("T", T, kind="integer", what="an integer >= 1")
    seeds = checks.as_number("seeds", seeds, kind="integer", what="an integer >= 1")
    if T < 1 or seeds < 1:
        raise ValueError(f"T and seeds must be >= 1, got T = {T}, seeds = {seeds}")
    eta = checks.as_number("eta", eta, what="finite and > 0")
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be finite and > 0, got {eta}")
    epochs = check_total_epochs(epochs)
    seed = check_seed(seed, "seed")
    checkpoint_seeds = checks.integer("checkpoint_seeds", checkpoint_seeds, low=1)
    checkpoint_count = checks.integer("checkpoint_count", checkpoint_count, low=1)
    dtype, device = check_dtype_device(dtype, device)
    method = _as_simulated(method)
    why = metric_reason(method, metric, problem.d)
    if why is not None:
        raise ValueError(f"metric {metric!r} is not defined for {method.name}: {why}")
    start = time.perf_counter()
    gen = torch.Generator(device=device).manual_seed(int(seed))
    theta = problem.x0.to(device=device, dtype=dtype).expand(seeds, problem.d).clone()
    acc = torch.zeros(seeds, device=device, dtype=dtype)
    macc = None if metric == "grad_l2_sq" else torch.zeros_like(acc)
    times = checkpoint_times(T, checkpoint_count)
    slot = {t: i for i, t in enumerate(times)}
    n_ck = min(checkpoint_seeds, seeds)
    ck_theta = torch.empty(len(times), n_ck, problem.d, device=device, dtype=dtype)
    paper = isinstance(method, Method)
    ck_m = torch.zeros_like(ck_theta) if paper and method.momentum > 0 else None
    ck_state: list | None = None if paper else []
    ck_p = [p_at(method, t, T, epochs) for t in times]
    epoch = 1
    steps = _stepper(method, theta, eta, T, epochs, eps)
    norm = _metric_norm(method, metric, 1, epochs, problem.d)
    with torch.no_grad():
        if isinstance(steps, TorchSteps):
            steps.epoch(1)
        for t in range(T):
            s = epoch_of(t, T, epochs)
            if s != epoch:
                epoch = s
                steps.epoch(s)
                norm = _metric_norm(method, metric, s, epochs, problem.d)
            g_full = problem.grad(theta)
            acc.add_((g_full * g_full).sum(1))
            if macc is not None:
                value = norm.dual([g_full], batched=True)
                macc.add_(value if metric in FIRST_POWER else value * value)
            if t in slot:
                ck_theta[slot[t]] = theta[:n_ck]
                if ck_m is not None and t > 0:
                    ck_m[slot[t]] = steps.state["momentum_buffer"][0][:n_ck]
                if ck_state is not None:
                    ck_state += [steps.row_state(i) for i in range(n_ck)]
            g = problem.stoch_grad(theta, gen, g_full)
            steps.step(theta, g, eta)
        f_final = problem.f(theta)
    grad_sq_mean = acc / T
    finite = torch.isfinite(grad_sq_mean) & torch.isfinite(f_final)
    metric_mean = grad_sq_mean if macc is None else macc / T
    finite &= torch.isfinite(metric_mean)
    return Run(
        grad_sq_mean,
        f_final,
        finite,
        ck_theta.reshape(-1, problem.d),
        None if ck_m is None else ck_m.reshape(-1, problem.d),
        [p for p in ck_p for _ in range(n_ck)],
        [t for t in times for _ in range(n_ck)],
        time.perf_counter() - start,
        metric,
        metric_mean,
        ck_state,
        None if paper else [epoch_of(t, T, epochs) for t in times for _ in range(n_ck)],
    )
