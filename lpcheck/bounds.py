"""Theorems 1 and 2 numerically: step-size conditions, step choices and right-hand sides.

The symbolic twins are in `formulas.py`; the proof gate checks that both agree. Arguments keep the
paper's names: c1, c2, c3 (Assumption 5; c~1..c~3 of Assumption 6 for Theorem 2), L (Assumption 1),
delta = f(theta_0) - f*, T the number of iterations, eta the step size.
"""

from __future__ import annotations

import functools
import inspect
import math

from lpcheck import checks

__all__ = [
    "step_cap",
    "theorem1_rhs",
    "theorem1_step",
    "theorem1_bound",
    "balanced_step",
    "theorem1_bound_no_cap",
    "theorem2_rhs",
    "theorem2_step",
    "theorem2_bound",
    "theorem2_bound_no_cap",
    "rate_constant",
]


def _pos(name, v, allow_zero=False):
    try:
        v = checks.as_number(
            name, v
        )  # numbers as torch takes them: numpy scalars, one-element tensors
    except ValueError:
        raise ValueError(f"{name} must be a finite real number, got {v!r}") from None
    if v == math.inf:
        raise ValueError(f"{name} must be a finite real number, got {v!r}")
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")
    return v


def _t(T):
    try:
        T = checks.as_number("T", T)
    except ValueError:
        raise ValueError(f"T must be a number of iterations >= 1, got {T!r}") from None
    if not (T >= 1) or T == math.inf:
        raise ValueError(f"T must be a number of iterations >= 1, got {T!r}")
    return T


def _finite_result(fn):
    """A ValueError naming the arguments where valid ones are so far apart in scale that the result
    over- or underflows a float (1 / (L c3) with L = c3 = 1e-200 is a division by 0.0), never a
    ZeroDivisionError or a silent inf."""

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except (ZeroDivisionError, OverflowError):
            out = math.inf
        if any(
            isinstance(v, float) and not math.isfinite(v)
            for v in (out if isinstance(out, tuple) else (out,))
        ):
            names = list(inspect.signature(fn).parameters)
            given = ", ".join(f"{k}={v!r}" for k, v in [*zip(names, args), *kwargs.items()])
            raise ValueError(
                f"{fn.__name__}({given}): the result overflows a float; the arguments are too far "
                "apart in scale for float64"
            )
        return out

    return checked


@_finite_result
def step_cap(c1, L, c3):
    """eq. 30: the largest step Theorem 1 allows, c1 / (L c3) (eta_0 of Theorem 2 with c~)."""
    return _pos("c1", c1) / (_pos("L", L) * _pos("c3", c3))


@_finite_result
def theorem1_rhs(eta, c1, c2, L, delta, T):
    """eq. 31: 2 delta / (eta c1 T) + L eta c2 / c1, the bound on (1/T) sum E||grad
    f(theta_t)||_2^2."""
    eta, c1, c2, L = _pos("eta", eta), _pos("c1", c1), _pos("c2", c2, True), _pos("L", L)
    return 2 * _pos("delta", delta, True) / (eta * c1 * _t(T)) + L * eta * c2 / c1


def balanced_step(c2, L, delta, T):
    """eq. 32's second branch, sqrt(2 delta / (L c2 T)): the step minimising eq. 31 when no cap
    binds.

    It is inf when c2 = 0 (eq. 31 then falls as eta grows: only the cap stops it).
    """
    c2, L, delta, T = _pos("c2", c2, True), _pos("L", L), _pos("delta", delta, True), _t(T)
    return math.inf if c2 == 0 else math.sqrt(2 * delta / (L * c2 * T))


@_finite_result
def theorem1_step(c1, c2, c3, L, delta, T):
    """eq. 32: eta = min{c1/(L c3), sqrt(2 delta / (L c2 T))} (the second branch is inf when
    c2 = 0)."""
    return min(step_cap(c1, L, c3), balanced_step(c2, L, delta, T))


@_finite_result
def theorem1_bound(c1, c2, c3, L, delta, T):
    """eq. 31 at eq. 32's step: (bound, eta, branch) with branch 'cap' or 'balanced'."""
    eta = theorem1_step(c1, c2, c3, L, delta, T)
    branch = "cap" if eta == step_cap(c1, L, c3) else "balanced"
    return theorem1_rhs(eta, c1, c2, L, delta, T), eta, branch


@_finite_result
def theorem1_bound_no_cap(c1, c2, L, delta, T):
    """eq. 31 at eq. 32's balanced step when eq. 28 holds with c3 -> 0: (bound, eta), no step cap.

    With no multiplicative term (c3 -> 0+) eq. 30's cap c1/(L c3) grows without bound, so eq. 32
    is its balanced branch alone; this is the limit of `theorem1_bound` as c3 -> 0+. c2 must be
    > 0: with c2 = c3 = 0, eq. 31 tends to 0 as eta grows and no step attains it.
    """
    c1, L = _pos("c1", c1), _pos("L", L)
    if _pos("c2", c2, True) == 0:
        raise ValueError(
            "c2 must be > 0 when there is no step cap (c3 -> 0): with c2 = c3 = 0, eq. 31 tends to "
            "0 as eta grows and no step attains it"
        )
    eta = balanced_step(c2, L, delta, T)
    return theorem1_rhs(eta, c1, c2, L, delta, T), eta


@_finite_result
def rate_constant(c1, c2, L, delta):
    """eq. 31 at the balanced step of eq. 32 is C / sqrt(T) with C = (2/c1) sqrt(2 delta L c2)."""
    return (
        2
        / _pos("c1", c1)
        * math.sqrt(2 * _pos("delta", delta, True) * _pos("L", L) * _pos("c2", c2, True))
    )


# Theorem 2 has the same form with Assumption 6's constants and eta_0 = c~1 / (L c~3) (its
# "one admissible choice"); eq. 46 and eq. 47 are eq. 31 and eq. 32 with c -> c~.
theorem2_rhs = theorem1_rhs  # eq. 46
theorem2_step = theorem1_step  # eq. 47 with eta_0 = c~1 / (L c~3)
theorem2_bound = theorem1_bound
theorem2_bound_no_cap = theorem1_bound_no_cap  # eq. 46 at eq. 47's second branch when c~3 -> 0
