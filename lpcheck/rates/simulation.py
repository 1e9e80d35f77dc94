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
`epochs` epochs of T/epochs steps; epoch s covers t with floor(t * epochs / T) = s - 1), or a fixed p.
`simulate` also takes any layer method itself (`lpcheck.methods.make(...)`), at its own fixed
hyperparameters.

The hot loop makes no host synchronisation (the layer's updates read nothing back; a run that
overflows is detected once, at the end).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from lpcheck import methods as layer
from lpcheck.schedule import check_p_max, check_total_epochs, cosine_p

__all__ = ["Method", "METHODS", "make_method", "Run", "simulate", "p_at", "checkpoint_times"]


@dataclass(frozen=True)
class Method:
    """One optimizer to simulate: a layer method with the p schedule of eq. 19. kind 'rescale' (eq. 21/24:
    the layer's lpsgd / lpsgdm) or 'steepest' (eq. 10: the layer's steepest), which is also how
    `lpcheck.rates.constants` measures its directions.

    Exactly one of `p` (fixed) and `p_max` (cosine schedule, eq. 19) is set. `momentum` (beta) > 0
    makes it Algorithm 2 (Theorem 2, Assumption 6); 0 is Algorithm 1 (Theorem 1, Assumption 5).
    """

    name: str
    kind: str
    p: float | None = None
    p_max: float | None = None
    momentum: float = 0.0

    def layer(self, p: float, eps: float = 1e-8) -> layer.Method:
        """The layer's method at p (the active p of eq. 19 at some epoch, or the fixed p)."""
        if self.kind == "steepest":
            return layer.make("steepest", p=p)
        if self.momentum > 0:
            return layer.make("lpsgdm", p=p, eps=eps, momentum=self.momentum)
        return layer.make("lpsgd", p=p, eps=eps)

    @property
    def theorem(self) -> int:
        return 2 if self.momentum > 0 else 1

    def label(self) -> str:
        geometry = f"cosine p from {self.p_max:g}" if self.p_max is not None else f"p = {self.p:g}"
        return f"{self.name} ({geometry}" + (f", beta = {self.momentum:g})" if self.momentum else ")")


METHODS = {
    "lpsgd": "LPSGD (Algorithm 1), cosine p (eq. 19) or --p",
    "lpsgdm": "LPSGDM (Algorithm 2, no weight decay), cosine p or --p, EMA momentum beta",
    "sgd": "SGD: LPSGD at p = 2",
    "sgdm": "SGD with EMA momentum (eq. 23): LPSGDM at p = 2",
    "sign": "sign descent: LPSGD at p = inf, u = g/(|g| + eps)",
    "steepest": "normalized lp steepest descent, eq. 10 (global factor ||g||_q^rho kept), cosine p or --p",
}


def make_method(name: str, p_max=6.0, p=None, momentum=0.9) -> Method:
    """The method `name` (one of METHODS) with the schedule (p_max) or fixed p for the lp methods."""
    if name not in METHODS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(METHODS)}")
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"momentum (beta) must be in [0, 1), got {momentum!r}")
    if p is not None:
        p = float(p)
        if math.isnan(p) or p < 2:
            raise ValueError(f"p must be in [2, inf], got {p}")
    schedule = dict(p=p) if p is not None else dict(p_max=check_p_max(p_max))
    return {
        "lpsgd": lambda: Method("lpsgd", "rescale", **schedule),
        "lpsgdm": lambda: Method("lpsgdm", "rescale", momentum=float(momentum), **schedule),
        "sgd": lambda: Method("sgd", "rescale", p=2.0),
        "sgdm": lambda: Method("sgdm", "rescale", p=2.0, momentum=float(momentum)),
        "sign": lambda: Method("sign", "rescale", p=math.inf),
        "steepest": lambda: Method("steepest", "steepest", **schedule),
    }[name]()


def epoch_of(t: int, T: int, epochs: int) -> int:
    """1-based epoch of iteration t (0-based) when T steps are split into `epochs` epochs."""
    return t * epochs // T + 1


def p_at(method: Method, t: int, T: int, epochs: int) -> float:
    """The active p at iteration t: fixed, or eq. 19 at epoch s(t) (a layer method: its own p, or None)."""
    if isinstance(method, layer.Method):
        return method.hp.get("p")
    if method.p_max is None:
        return method.p
    return cosine_p(epoch_of(t, T, epochs), epochs, method.p_max)


def active_ps(method: Method, T: int, epochs: int):
    """Every p the run uses (for L = max over them)."""
    if isinstance(method, layer.Method):
        return [method.hp.get("p")]
    if method.p_max is None:
        return [method.p]
    return [cosine_p(s, epochs, method.p_max) for s in range(1, min(epochs, T) + 1)]


def checkpoint_times(T: int, n: int):
    """n (or fewer, distinct) iterations in [0, T-1], geometrically spaced, always 0 and T-1."""
    if n < 2 or T < 2:
        return [0]
    grid = torch.logspace(0, math.log10(T), n, dtype=torch.float64) - 1
    return sorted({int(round(float(v))) for v in grid} | {0, T - 1})


@dataclass
class Run:
    """One vectorised run: per-seed results plus checkpoints for the constant estimates.

    grad_sq_mean[i] = (1/T) sum_{t<T} ||grad f(theta_t)||_2^2 for seed i (the left side of eq. 31);
    f_final[i] = f(theta_T); finite[i] is False where seed i overflowed. The checkpoints hold, for the
    first `checkpoint_seeds` seeds at iterations `ck_t`: theta_t, the momentum buffer m_{t-1} before
    step t (None without momentum) and the active p.
    """

    grad_sq_mean: torch.Tensor
    f_final: torch.Tensor
    finite: torch.Tensor
    ck_theta: torch.Tensor
    ck_momentum: torch.Tensor | None
    ck_p: list
    ck_t: list
    seconds: float


def _schedule(method, T: int, epochs: int, eps: float):
    """s -> the layer method stepping epoch s (a rates Method at eq. 19's p_s; a layer method as it is)."""
    if isinstance(method, layer.Method):
        return lambda s: method
    if not isinstance(method, Method):
        raise ValueError(f"method must be a rates Method (make_method) or a lpcheck.methods.Method, got "
                         f"{type(method).__name__}")
    if method.p_max is None:
        fixed = method.layer(method.p, eps)
        return lambda s: fixed
    return lambda s: method.layer(cosine_p(s, epochs, method.p_max), eps)


def simulate(problem, method: Method, T: int, eta: float, seeds: int, *, epochs=10, eps=1e-8, seed=0,
             device="cpu", dtype=torch.float64, checkpoint_seeds=8, checkpoint_count=12) -> Run:
    """Run `method` for T steps with step size eta from problem.x0, every seed at once.

    The noise of all seeds comes from one torch.Generator seeded with `seed`: row i draws the same
    numbers in every run with the same `seeds`, so runs of different T share their random numbers
    (the bootstrap in `fit_slope` resamples a seed's row across T as one unit).
    """
    T, seeds = int(T), int(seeds)
    if T < 1 or seeds < 1:
        raise ValueError(f"T and seeds must be >= 1, got T = {T}, seeds = {seeds}")
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"eta must be finite and > 0, got {eta}")
    epochs = check_total_epochs(epochs)
    device = torch.device(device)
    start = time.perf_counter()
    gen = torch.Generator(device=device).manual_seed(int(seed))
    theta = problem.x0.to(device=device, dtype=dtype).expand(seeds, problem.d).clone()
    acc = torch.zeros(seeds, device=device, dtype=dtype)
    times = checkpoint_times(T, checkpoint_count)
    slot = {t: i for i, t in enumerate(times)}
    n_ck = min(checkpoint_seeds, seeds)
    ck_theta = torch.empty(len(times), n_ck, problem.d, device=device, dtype=dtype)
    at = _schedule(method, T, epochs, eps)
    momentum = isinstance(method, Method) and method.momentum > 0
    ck_m = torch.zeros_like(ck_theta) if momentum else None
    ck_p = [p_at(method, t, T, epochs) for t in times]
    epoch = 1
    step = at(epoch)
    state = step.init([theta])
    with torch.no_grad():
        for t in range(T):
            s = epoch_of(t, T, epochs)
            if s != epoch:
                epoch, step = s, at(s)
            g_full = problem.grad(theta)
            acc.add_((g_full * g_full).sum(1))
            if t in slot:
                ck_theta[slot[t]] = theta[:n_ck]
                if ck_m is not None and t > 0:
                    ck_m[slot[t]] = state["momentum_buffer"][0][:n_ck]
            g = problem.stoch_grad(theta, gen, g_full)
            direction, state = step.update([g], state, params=[theta] if step.needs_params(step.hp) else None,
                                           batched=True)
            theta.add_(direction[0], alpha=-eta)
        f_final = problem.f(theta)
    grad_sq_mean = acc / T
    finite = torch.isfinite(grad_sq_mean) & torch.isfinite(f_final)
    return Run(grad_sq_mean, f_final, finite, ck_theta.reshape(-1, problem.d),
               None if ck_m is None else ck_m.reshape(-1, problem.d),
               [p for p in ck_p for _ in range(n_ck)], [t for t in times for _ in range(n_ck)],
               time.perf_counter() - start)

