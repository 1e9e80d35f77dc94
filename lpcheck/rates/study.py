"""One rate study: a (problem, method, step rule) over a grid of T, from pilot to verdict.

1. Pilot (for the step sizes). eq. 32/47 need c1, c2, c3 before the run. They are measured at
   theta_0 (K noise draws), which gives a first eq. 32 step at T_pilot; a pilot run with that step
   (`pilot_seeds` seeds, T_pilot steps) is measured at checkpoints along its trajectories, which
   gives a second step, and a second pilot run with it (the first step, from one point, can be far
   off; the second comes from whole trajectories); eq. 32/47 at each T of the grid is computed from
   the constants measured along the second round (the (c2, c3) pair on the measured frontier that
   minimises the bound, `lpcheck.estimate.fit.best_c2_c3`). Where the pilot finds no positive
   alignment for a momentum method (eq. 43 fails: c~1 <= 0), eq. 47 has no step; the step then comes
   from the Assumption 5 constants of the same directions without momentum, measured at the same
   checkpoints, and the study says so.
2. Runs: for each T, `seeds` seeds at once with the rule's step: 'theorem' (eq. 32/47 at T), 'sqrt'
   (C/sqrt(T)), 'constant' (C). Without --lr, C is the theorem step at the smallest T (times
   sqrt(T_min) for 'sqrt'), so the three rules agree at the smallest T.
3. Bound check: at each T, the constants are measured again along that run's own trajectories
   (`checkpoint_seeds` seeds x `checkpoint_count` iterations, K draws each) and the observed seed
   mean is divided by eq. 31/46 at the step used (`constants.bound_check`). L is the problem's lp
   constant at the largest of the p's the run uses.
4. Fit and verdict (`fit.fit_slope` on the whole grid and on its tail; `fit.verdict` against the
   claimed `rate`, -1/2 by default) on the seed means of `metric` (`simulation.METRICS`, ||grad
   f||_2^2 by default).

Any other method (a layer method, a user's Method or torch optimizer class:
`lpcheck.rates.optimizers`) goes through the same steps in its own geometry: the constants are its
conditional alignment and moment in its norm (l2 where lpcheck knows none for it), L is the
problem's in that norm, and the bound check holds for the mean of ||grad f||_*^2 of that norm. The
bound check applies only to the metric it bounds (`simulation.bound_metric_reason`); for another
metric a run's bound is None with the reason.

A study whose measured constants give no step (no positive c1, or a pilot that diverges at every
step tried) is reported as inconclusive with the reason (`NoStepError`); bad arguments are not:
every argument is checked before any work, and a ValueError from a user's problem propagates."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from lpcheck import checks
from lpcheck.rates.constants import bound_check, measure, measure_method, theorem_step
from lpcheck.rates.fit import RATE, check_rate, fit_slope, tail_indices, verdict
from lpcheck.rates.optimizers import geometry, has_memory, initial_state
from lpcheck.rates.problems import check_problem
from lpcheck.rates.simulation import (
    Method,
    _as_simulated,
    active_ps,
    bound_metric_reason,
    check_dtype_device,
    metric_reason,
    p_at,
    simulate,
)
from lpcheck.records import ABSENT, Absent, JsonRecord

__all__ = [
    "StudyResult",
    "STEP_RULES",
    "check_T_grid",
    "rate_study",
    "problem_summary",
    "NoStepError",
]


class NoStepError(ValueError):
    """The measured constants give no step (eq. 32/47 undefined, or the pilot diverges): a result of
    the study (inconclusive, with this reason), not a bad argument."""


STEP_RULES = {
    "theorem": "eq. 32 (eq. 47 for momentum) at each T, from the measured constants",
    "sqrt": "C / sqrt(T)",
    "constant": "C, the same for every T (not covered by eq. 33: the negative control)",
}


def check_T_grid(T: Any, name: str = "T") -> Any:
    """T as a list of increasing integers >= 1 (at least 2), or ValueError naming it (`name`)."""
    try:
        T = [checks.as_number(name, t, kind="integer", what="a list of integers") for t in T]
    except TypeError:
        raise ValueError(f"{name} must be a list of integers, got {T!r}") from None
    if len(T) < 2:
        raise ValueError(f"{name} needs at least 2 values for a slope, got {T}")
    if T[0] < 1 or any(b <= a for a, b in zip(T, T[1:])):
        raise ValueError(f"{name} must be strictly increasing integers >= 1, got {T}")
    return T


def smoothness(problem: Any, method: Any, T: Any, epochs: Any) -> Any:
    """L = max over the p's the run uses of the problem's L(p) (Assumption 1 in every active norm);
    for another method, L in its geometry (`lpcheck.rates.optimizers.Geometry.L`)."""
    if not isinstance(method, Method):
        return geometry(_as_simulated(method), problem.d).L(problem)
    return max(float(problem.L(p)) for p in active_ps(method, T, epochs))


def problem_summary(problem: Any) -> dict:
    delta = float(problem.f(problem.x0.double().reshape(1, -1))[0]) - float(problem.f_star)
    out = {
        "name": problem.name,
        "description": problem.describe(),
        "d": problem.d,
        "f_star": float(problem.f_star),
        "delta": delta,
        "noise": problem.noise_description(),
        "L": {str(p): float(problem.L(p)) for p in (2, 3, 4, 6, math.inf)},
    }
    if hasattr(problem, "f_star_gap"):
        out["f_star_gap"] = float(problem.f_star_gap)
    return out


def _measure_run(problem: Any, method: Any, run: Any, cfg: Any, lr: Any) -> Any:
    if not isinstance(method, Method):
        return measure_method(
            problem,
            method,
            run.ck_theta,
            run.ck_state,
            run.ck_epoch,
            run.ck_t,
            lr=lr,
            K=cfg["K"],
            seed=cfg["seed"] + 7919,
        )
    return measure(
        problem,
        method,
        run.ck_theta,
        run.ck_momentum,
        run.ck_p,
        run.ck_t,
        K=cfg["K"],
        eps=cfg["eps"],
        seed=cfg["seed"] + 7919,
    )


def _at_start(problem: Any, method: Any, T_pilot: Any, cfg: Any) -> Any:
    """The constants at theta_0 (K draws), for the first pilot step."""
    x0 = problem.x0.to(device=cfg["device"], dtype=cfg["dtype"]).reshape(1, -1)
    if not isinstance(
        method, Method
    ):  # lr 1: the first step is not known yet, and most directions ignore it
        return measure_method(
            problem,
            method,
            x0,
            [initial_state(method, x0[0])],
            [1],
            [0],
            lr=1.0,
            K=cfg["K"],
            seed=cfg["seed"] + 1,
        )
    zero = torch.zeros_like(x0) if method.momentum > 0 else None
    p0 = [p_at(method, 0, T_pilot, cfg["epochs"])]
    return measure(
        problem, method, x0, zero, p0, [0], K=cfg["K"], eps=cfg["eps"], seed=cfg["seed"] + 1
    )


def _c1_text(c1: Any) -> str:
    """The pilot's c~1 for its note: a number, or none with the reason (never 'nan')."""
    if math.isnan(c1):
        return ": none (no checkpoint resolves the alignment ratio with the draws taken)"
    return f" = {c1:.3g} <= 0"


def _pilot(problem: Any, method: Any, T_grid: Any, delta: Any, cfg: Any) -> Any:
    """Constants for the step sizes (module docstring, step 1): two pilot rounds, the second one
    measured."""
    T_pilot = cfg["pilot_T"] or T_grid[len(T_grid) // 2]
    L = smoothness(problem, method, T_pilot, cfg["epochs"])
    consts = _at_start(problem, method, T_pilot, cfg)
    eta = _theorem_step(consts, L, delta, T_pilot)["eta"]
    etas, note = [], ""
    for _ in range(
        2
    ):  # the first step rests on theta_0 alone; the second on the first round's trajectories
        run = _stable_pilot_run(problem, method, T_pilot, eta, cfg)
        eta = run.eta
        etas.append(eta)
        consts = _measure_run(problem, method, run, cfg, eta)
        if isinstance(method, Method) and method.momentum > 0 and not consts.c1 > 0:
            note = (
                f"eq. 43 fails on the pilot (c~1{_c1_text(consts.c1)}): eq. 47 has no step; the "
                "step comes from the Assumption 5 constants of the same directions without "
                "momentum at the same checkpoints"
            )
            consts = measure(
                problem,
                replace(method, momentum=0.0),
                run.ck_theta,
                None,
                run.ck_p,
                run.ck_t,
                K=cfg["K"],
                eps=cfg["eps"],
                seed=cfg["seed"] + 7919,
            )
        elif (
            not isinstance(method, Method)
            and not consts.c1 > 0
            and any(has_memory(method, x) for x in run.ck_state)
        ):
            note = (
                "the alignment given the method's state fails on the pilot "
                f"(c~1{_c1_text(consts.c1)}): eq. 32 has no step from it; the step comes from the "
                "constants of its directions from its initial state (no memory) at the same "
                "checkpoints"
            )
            fresh = [initial_state(method, theta) for theta in run.ck_theta]
            consts = measure_method(
                problem,
                method,
                run.ck_theta,
                fresh,
                run.ck_epoch,
                run.ck_t,
                lr=eta,
                K=cfg["K"],
                seed=cfg["seed"] + 7919,
            )
        eta = _theorem_step(consts, L, delta, T_pilot)["eta"]
    summary = {
        "T": T_pilot,
        "seeds": cfg["pilot_seeds"],
        "eta": etas,
        **consts.summary(),
        "note": note,
    }
    return consts, summary


def _theorem_step(consts: Any, L: Any, delta: Any, T: Any) -> Any:
    """theorem_step, with 'no positive c1 was measured' raised as NoStepError (a result, not bad
    input); any other ValueError from it is a bad argument and propagates."""
    if not consts.c1 > 0:
        try:
            theorem_step(consts, L, delta, T)  # raises, and its message says why there is no step
        except ValueError as e:
            raise NoStepError(str(e)) from None
    return theorem_step(consts, L, delta, T)


def _stable_pilot_run(problem: Any, method: Any, T_pilot: Any, eta: Any, cfg: Any) -> Any:
    """A pilot run at eta, or at eta/4, eta/16, ... if it overflows (a step from few constants can
    overshoot); the run carries the step it was taken with (`run.eta`)."""
    for _ in range(8):
        run = simulate(
            problem,
            method,
            T_pilot,
            eta,
            cfg["pilot_seeds"],
            epochs=cfg["epochs"],
            eps=cfg["eps"],
            seed=cfg["seed"] + 2,
            device=cfg["device"],
            dtype=cfg["dtype"],
            checkpoint_seeds=cfg["checkpoint_seeds"],
            checkpoint_count=cfg["checkpoint_count"],
        )
        if bool(run.finite.all()):
            # the step this pilot was taken with, carried on it
            run.eta = eta  # type: ignore[attr-defined]
            return run
        eta /= 4
    raise NoStepError(
        f"{problem.name}/{method.name}: the pilot run diverges even at eta = {eta:.3g}"
    )


def _steps(
    rule: Any, consts: Any, problem: Any, method: Any, T_grid: Any, delta: Any, cfg: Any
) -> Any:
    """(eta per T, the pilot's eq. 31 bound at eq. 32's step per T or None)."""

    def theorem(T: Any) -> Any:
        return _theorem_step(consts, smoothness(problem, method, T, cfg["epochs"]), delta, T)

    if rule == "theorem":
        steps = [theorem(T) for T in T_grid]
        return [s["eta"] for s in steps], [s["bound"] for s in steps]
    T0 = T_grid[0]
    C = (
        cfg["lr"]
        if cfg["lr"] is not None
        else theorem(T0)["eta"] * (math.sqrt(T0) if rule == "sqrt" else 1.0)
    )
    if rule == "sqrt":
        return [C / math.sqrt(T) for T in T_grid], None
    return [C] * len(T_grid), None


@dataclass(kw_only=True)
class StudyResult(JsonRecord):
    """What `rate_study` returns (one entry of rates.json's "studies"), typed:
    `StudyResult.from_dict(study)`, and `to_dict()` is that JSON key for key. Keys a study may
    lack are ABSENT: the pilot (a fixed lr), tail_T and bound_reason (no fit, a bound that
    applies), and the method's metric/rate/how of reports written before they were recorded
    (experiments/results/rates)."""

    problem: str
    method: str
    label: str
    rule: str
    theorem: str | None
    T: list[int]
    seeds: int
    delta: float
    metric: str | Absent = ABSENT
    rate: float | Absent = ABSENT
    p_epochs: list[float] | None | Absent = ABSENT
    execution: str | Absent = ABSENT
    geometry: str | Absent = ABSENT
    pilot: dict[str, Any] | Absent = ABSENT
    eta: list[float]
    promised_bound: list[float] | None
    runs: list[dict[str, Any]]
    fit: dict[str, Any] | None
    tail_fit: dict[str, Any] | None
    tail_T: list[int] | Absent = ABSENT
    verdict: str
    regime: str
    reason: str
    bound_ratio_max: float | None
    bound_checked: str
    bound_reason: str | Absent = ABSENT
    seconds: float


def _without_lr(rule: str) -> str:
    """Why a 'sqrt' or 'constant' study has no step either: its C comes from eq. 32/47 without
    --lr. A direction that ascends (c1 < 0) is measured only with a C given."""
    if rule == "theorem":
        return ""
    return (
        f"; the {rule} rule's C is eq. 32/47's step when no lr is given: give --lr C (lr=C) to run "
        "it with that C"
    )


def rate_study(
    problem: Any,
    method: Any,
    rule: str,
    T_grid: Sequence[int],
    *,
    seeds: int = 256,
    epochs: int = 10,
    eps: float = 1e-8,
    lr: float | None = None,
    K: int = 256,
    pilot_T: int | None = None,
    pilot_seeds: int = 32,
    checkpoint_seeds: int = 8,
    checkpoint_count: int = 12,
    tolerance: float = 0.1,
    n_boot: int = 2000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: Callable[[], object] | None = None,
    metric: str = "grad_l2_sq",
    rate: float = RATE,
) -> dict:
    """Everything the report says about one (problem, method, rule); JSON-ready (module docstring).

    `metric`: the quantity fitted (`simulation.METRICS`); `rate`: the claimed exponent, < 0 (-1/2:
    eq. 33/48).
    """
    if not isinstance(rule, str) or rule not in STEP_RULES:
        raise ValueError(f"unknown step rule {rule!r}; choose from {', '.join(STEP_RULES)}")
    T_grid = check_T_grid(T_grid)
    seeds = checks.integer("seeds", seeds, low=2)  # the interval is a bootstrap over seeds
    epochs = checks.integer(
        "epochs", epochs, low=1, high=T_grid[0]
    )  # every epoch of eq. 19 needs a step
    eps = checks.representable("eps", checks.real("eps", eps, low=0, low_open=True), dtype)
    if lr is not None:
        lr = checks.representable("lr", checks.real("lr", lr, low=0, low_open=True), dtype)
    K = checks.integer("K", K, low=2)
    if pilot_T is not None:
        pilot_T = checks.integer("pilot_T", pilot_T, low=epochs)
    pilot_seeds = checks.integer("pilot_seeds", pilot_seeds, low=1)
    checkpoint_seeds = checks.integer("checkpoint_seeds", checkpoint_seeds, low=1)
    checkpoint_count = checks.integer("checkpoint_count", checkpoint_count, low=1)
    rate = check_rate(rate)
    tolerance = checks.real(
        "tolerance", tolerance, low=0, high=-rate, high_open=True
    )  # at |rate|: flat = confirmed
    n_boot = checks.integer("n_boot", n_boot, low=100)
    from lpcheck.training import check_seed

    seed = check_seed(seed, "seed")
    check_dtype_device(dtype, device)  # the run keeps device as given: its JSON says it so
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be None or a callable, got {type(progress).__name__}")
    method = _as_simulated(method)
    problem = check_problem(problem)
    why = metric_reason(method, metric, problem.d)
    if why is not None:
        raise ValueError(f"metric {metric!r} is not defined for {method.name}: {why}")
    p_epochs = (
        [method.p_epoch(s, epochs) for s in range(1, epochs + 1)]
        if isinstance(method, Method)
        else None
    )
    problem = problem.to(device, dtype) if hasattr(problem, "to") else problem
    cfg = dict(
        epochs=epochs,
        eps=eps,
        lr=lr,
        K=K,
        pilot_T=pilot_T,
        pilot_seeds=pilot_seeds,
        seed=seed,
        checkpoint_seeds=checkpoint_seeds,
        checkpoint_count=checkpoint_count,
        device=device,
        dtype=dtype,
    )
    start = time.perf_counter()
    delta = problem_summary(problem)["delta"]
    out = {
        "problem": problem.name,
        "method": method.name,
        "label": method.label(),
        "rule": rule,
        "theorem": method.theorem if isinstance(method, Method) else None,
        "T": T_grid,
        "seeds": seeds,
        "delta": delta,
        "metric": metric,
        "rate": rate,
        **_how(method, problem.d, p_epochs),
    }
    no_bound = bound_metric_reason(method, metric, problem.d)
    if rule == "theorem" or lr is None:
        try:
            consts, out["pilot"] = _pilot(problem, method, T_grid, delta, cfg)
            eta, promised = _steps(rule, consts, problem, method, T_grid, delta, cfg)
        except (
            NoStepError
        ) as e:  # no step from the measured constants: say so, keep the other studies going
            out.update(
                eta=[],
                promised_bound=None,
                runs=[],
                fit=None,
                tail_fit=None,
                verdict="inconclusive",
                regime="",
                reason=f"no step: {e}" + _without_lr(rule),
                bound_ratio_max=None,
                bound_checked="0/0",
                seconds=time.perf_counter() - start,
            )
            for _ in T_grid if progress is not None else ():
                progress()  # type: ignore[misc]  # the loop is empty without a progress callback
            return out
    else:
        eta, promised = _steps(rule, None, problem, method, T_grid, delta, cfg)
    out.update(eta=eta, promised_bound=promised)
    values, rows = [], []
    for T, step in zip(T_grid, eta):
        run = simulate(
            problem,
            method,
            T,
            step,
            seeds,
            epochs=epochs,
            eps=eps,
            seed=seed,
            device=device,
            dtype=dtype,
            checkpoint_seeds=checkpoint_seeds,
            checkpoint_count=checkpoint_count,
            metric=metric,
        )
        assert run.metric_mean is not None  # simulate always records the metric's mean
        values.append(run.metric_mean.double().cpu().numpy())
        rows.append(_run_row(problem, method, run, T, step, values[-1], delta, no_bound, cfg))
        if progress is not None:
            progress()
    out["runs"] = rows
    out.update(
        _fit_and_verdict(np.stack(values, 1), T_grid, promised, tolerance, n_boot, seed, rate)
    )
    ratios = [r["bound"]["ratio"] for r in rows if r["bound"].get("ratio") is not None]
    out["bound_ratio_max"] = max(ratios) if ratios else None
    out["bound_checked"] = f"{len(ratios)}/{len(rows)}"
    if no_bound is not None:
        out["bound_reason"] = no_bound
    out["seconds"] = time.perf_counter() - start
    return out


def _how(method: Any, d: Any, p_epochs: Any) -> dict:
    """What the report says about how the method was run and measured."""
    if isinstance(method, Method):
        return {
            "p_epochs": p_epochs,
            "execution": "batched",
            "geometry": "the paper's (Assumptions 5-6 with "
            "||grad f||_2^2, L in lp at the largest active p)",
        }
    return {"p_epochs": None, "execution": method.how, "geometry": geometry(method, d).describe()}


def _run_row(
    problem: Any,
    method: Any,
    run: Any,
    T: int,
    step: float,
    v: Any,
    delta: float,
    no_bound: str | None,
    cfg: dict,
) -> dict:
    """One T: the observed mean of the metric, and the bound check where it applies (None with a
    reason where not)."""
    finite = run.finite.cpu().numpy()
    L = smoothness(problem, method, T, cfg["epochs"])
    row = {"T": T, "eta": step, "L": L, "finite_seeds": int(finite.sum()), "seconds": run.seconds}
    if finite.any():
        row["f_final_mean"] = float(run.f_final[run.finite].double().mean())
    else:
        row.update(f_final_mean=None, f_final_reason="no seed has a finite f(theta_T)")
    if not finite.all():
        diverged = f"{int((~finite).sum())} seed(s) diverged"
        row.update(
            mean=None,
            sem=None,
            mean_reason=diverged + ": no mean over all seeds",
            constants=None,
            bound={"ratio": None, "note": diverged, "status": "diverged"},
        )
        return row
    row.update(mean=float(v.mean()), sem=float(v.std(ddof=1) / math.sqrt(v.size)))
    if no_bound is not None:
        row.update(
            constants=None,
            bound={"ratio": None, "rhs": None, "note": no_bound, "status": "no bound"},
        )
        return row
    along = _measure_run(
        problem, method, run, cfg, step
    )  # this run's own trajectories, not the pilot's
    row["constants"] = along.summary()
    row["bound"] = bound_check(v.mean(), step, along, L, delta, T)
    return row


def _fit_and_verdict(
    values: np.ndarray,
    T_grid: Any,
    promised: Any,
    tolerance: float,
    n_boot: int,
    seed: int,
    rate: float = RATE,
) -> dict:
    finite = np.isfinite(values).all(1)
    diverged = int((~finite).sum())
    if finite.sum() < 2:
        return {
            "fit": None,
            "tail_fit": None,
            "verdict": "inconclusive",
            "regime": "",
            "reason": f"{diverged} seed(s) diverged; fewer than 2 finite seeds",
        }
    kept = values[finite]
    fit = fit_slope(T_grid, kept, seed=seed, n_boot=n_boot)
    tail = tail_indices(len(T_grid))
    tail_fit = fit_slope(T_grid[tail], kept[:, tail], seed=seed, n_boot=n_boot)
    pre = False
    if (
        promised is not None
    ):  # the theorem's own bound over the tail: is it in its T^-1/2 regime (eq. 33's rate)?
        x, y = np.log(T_grid[tail]), np.log(promised[tail])
        pre = bool(abs(np.polyfit(x, y, 1)[0] - RATE) > tolerance)
    v, regime, reason = verdict(
        tail_fit, rate=rate, tolerance=tolerance, pre_asymptotic=pre, diverged=diverged
    )
    return {
        "fit": dict(fit),
        "tail_fit": dict(tail_fit),
        "tail_T": T_grid[tail],
        "verdict": v,
        "regime": regime,
        "reason": reason,
    }
