"""The paper's lp-geometry, numerically (eq. 10, 20, 21).

Every function takes a numpy array or a torch tensor and returns the same kind, on the same device
and in the same floating dtype (integers are promoted to float64 / torch's default dtype). Results
are exact to rounding in float64: powers are taken only of numbers in [0, 1] or of numbers that
cannot overflow, so tiny and huge entries give neither overflow nor NaN.

Inputs are validated: complex or non-finite entries and out-of-range exponents raise ValueError
naming the argument. `formulas.py` holds the same equations symbolically; the proof gate
(`lpcheck verify`) checks that both agree.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from lpcheck import checks

# a numpy array or a torch tensor (or what np.asarray reads): each function returns the kind it was
# given, and lp never imports torch itself
Array = Any
# a real number as torch accepts one: int, float, numpy scalar, 0-d tensor (checks.as_number)
Number = Any

__all__ = ["dual_exponent", "lp_norm", "rho", "steepest_descent", "rescale"]


# ---------------------------------------------------------------------------------------------
# scalar exponents


def _real(name: str, value: Number) -> float:
    """A real number as torch takes one (lpcheck.checks.as_number); kept for the estimators that use
    it."""
    return checks.as_number(name, value)


def _exponent(p: Number, low: float, low_open: bool = False, what: str = "") -> float:
    """p as a float in [low, inf] (or (low, inf]), or ValueError naming p and the range."""
    rng = f"{'(' if low_open else '['}{low:g}, inf]"
    p = checks.as_number("p", p, what=f"a real number in {rng}{what}")
    if p < low or (low_open and p == low):
        raise ValueError(f"p must be in {rng}{what}, got {p}")
    return p


def dual_exponent(p: Number) -> float:
    """q with 1/p + 1/q = 1 (Section 3, Notations), for p in [1, inf]; p = inf gives 1, p = 1 gives
    inf."""
    p = _exponent(p, 1.0)
    if p == math.inf:
        return 1.0
    if p == 1:
        return math.inf
    return p / (p - 1)


def rho(p: Number) -> float:
    """eq. 20: rho = (p - 2)/(p - 1), for p in [2, inf]; rho(2) = 0 (SGD), rho(inf) = 1
    (sign-like)."""
    p = _exponent(p, 2.0, what=" (LPSGD's lp geometry needs p >= 2)")
    if p == math.inf:
        return 1.0
    return (p - 2) / (p - 1)


# ---------------------------------------------------------------------------------------------
# array plumbing: one code path for numpy and torch


def _is_torch(x: Array) -> bool:
    return "torch" in sys.modules and isinstance(x, sys.modules["torch"].Tensor)


def _as_float_array(name: str, x: Array, check_finite: bool | None = True) -> tuple[Array, bool]:
    """Return (x as a floating array of its own kind, is_torch); reject complex and non-finite.

    check_finite=False skips the finiteness test, which for a torch tensor reads a flag back to the
    host (a device sync): hot loops that check finiteness themselves, once, use it.
    """
    if _is_torch(x):
        torch = sys.modules["torch"]
        if x.is_complex():
            raise ValueError(f"{name} must be real, got a complex tensor")
        if x.layout != torch.strided:  # sparse kernels lack the ops below (abs, amax, where)
            raise ValueError(f"{name} must be a dense tensor, got layout {x.layout}")
        if x.device.type == "meta":
            raise ValueError(f"{name} is on the meta device: it has a shape but no values")
        if x.dtype == torch.bool:  # True is not a number here, as in lpcheck.checks (a mask?)
            raise ValueError(f"{name} must hold real numbers, got a bool tensor")
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        if check_finite and x.numel() and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} must be finite, got a tensor with inf or nan entries")
        return x, True
    try:
        x = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nesting, tensors numpy cannot read, ...
        raise ValueError(
            f"{name} must be a numpy array or torch tensor of real numbers, got {type(x).__name__} "
            f"({e})"
        ) from None
    if np.iscomplexobj(x):
        raise ValueError(f"{name} must be real, got a complex array")
    if x.dtype.kind == "b":
        raise ValueError(f"{name} must hold real numbers, got a bool array")
    if x.dtype.kind not in "f":
        if x.dtype.kind not in "iu":
            raise ValueError(f"{name} must be a real numeric array, got dtype {x.dtype}")
        x = x.astype(np.float64)
    if check_finite and x.size and not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got an array with inf or nan entries")
    return x, False


def _axis(axis: Any, x: Array) -> int | None:
    """None, or an axis of x as a non-negative int (ValueError naming it when out of range)."""
    if axis is None:
        return None
    ndim = x.ndim
    axis = checks.integer("axis", axis)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis must be None or an integer in [-{ndim}, {ndim}) for a {ndim}-d input, got {axis}"
            if ndim
            else f"axis must be None for a 0-d input, got {axis}"
        )
    return axis % ndim


def _amax(a: Array, axis: int | None, torch_mode: bool) -> Array:
    """max along axis (keepdims), 0 over an empty slice: the norm of an empty vector is 0."""
    if axis is None:
        if torch_mode:
            return a.amax() if a.numel() else a.new_zeros(())
        return np.max(a) if a.size else np.zeros((), a.dtype)
    if a.shape[axis] == 0:
        shape = tuple(1 if i == axis else n for i, n in enumerate(a.shape))
        return a.new_zeros(shape) if torch_mode else np.zeros(shape, a.dtype)
    if torch_mode:
        return a.amax(dim=axis, keepdim=True)
    return np.max(a, axis=axis, keepdims=True)


def _sum(a: Array, axis: int | None, torch_mode: bool, keepdims: bool = True) -> Array:
    if torch_mode:
        return a.sum() if axis is None else a.sum(dim=axis, keepdim=keepdims)
    return np.sum(a, axis=axis, keepdims=keepdims if axis is not None else False)


def _where(cond: Array, a: Array, b: Array, torch_mode: bool) -> Array:
    if torch_mode:
        torch = sys.modules["torch"]
        return torch.where(cond, a, torch.as_tensor(b, dtype=a.dtype, device=a.device))
    return np.where(cond, a, b)


def _sign(x: Array, torch_mode: bool) -> Array:
    return x.sign() if torch_mode else np.sign(x)


def _scaled(a: Array, axis: int | None, torch_mode: bool) -> tuple[Array, Array]:
    """(m, a/m) with m = max|a| along axis (1 where the max is 0), so the ratios lie in [0, 1]."""
    m = _amax(a, axis, torch_mode)
    m_safe = _where(m > 0, m, 1.0, torch_mode)
    return m, a / m_safe


def _norm_of_ratios(r: Array, p: float, axis: int | None, torch_mode: bool) -> Array:
    """||r||_p for r in [0, 1] with max(r) = 1 (or r = 0): the sum lies in [1, d], no overflow."""
    if p == math.inf:
        return _amax(r, axis, torch_mode)
    if p == 1:
        return _sum(r, axis, torch_mode)
    return _sum(r**p, axis, torch_mode) ** (1.0 / p)


def _magnitude(a: Array, m: Array, r: Array, e: float, scale: Array, torch_mode: bool) -> Array:
    """m * (a/m)^e * scale for e > 0. Where the rounded ratio r = a/m fell below the normal range
    (|g_i| over 1e308 times smaller than max|g|) the product is taken in logs, so no entry loses
    its digits to an underflowed intermediate."""
    lib = sys.modules["torch"] if torch_mode else np
    direct = m * r**e * scale
    small = (r < lib.finfo(r.dtype).tiny) & (a > 0)
    if not bool(small.any()):
        return direct
    a_pos = _where(a > 0, a, 1.0, torch_mode)
    m_pos = _where(m > 0, m, 1.0, torch_mode)
    log_m = lib.log(m_pos)
    in_logs = lib.exp(log_m + e * (lib.log(a_pos) - log_m) + lib.log(scale))
    return _where(small, in_logs, direct, torch_mode)


# ---------------------------------------------------------------------------------------------
# eq. 10 and eq. 21


def lp_norm(x: Array, p: Number, axis: int | None = None, *, check_finite: bool = True) -> Array:
    """||x||_p for p in [1, inf], over all entries (axis=None) or along one axis.

    Computed as m * ||x/m||_p with m = max|x|, so no entry is raised to a power outside [0, 1].
    check_finite=False skips the inf/nan check (and its device sync); the caller then owns it.
    """
    p = _exponent(p, 1.0, what=" for a norm")
    x, torch_mode = _as_float_array("x", x, checks.boolean("check_finite", check_finite))
    axis = _axis(axis, x)
    m, r = _scaled(abs(x), axis, torch_mode)
    out = m * _norm_of_ratios(r, p, axis, torch_mode)
    if axis is not None:
        out = out.squeeze(axis) if torch_mode else np.squeeze(out, axis=axis)
    return out


def steepest_descent(g: Array, p: Number, lr: Number = 1.0, axis: int | None = None) -> Array:
    """eq. 10: the displacement d minimising <lr*g, d> + 1/2 ||d||_p^2, for p in (1, inf].

    With q the dual exponent, d_i = -lr * ||g||_q^(2-q) * sign(g_i) |g_i|^(q-1); this is the paper's
    -lr ||g||_q^rho g_i / |g_i|^rho with rho = (p-2)/(p-1) = 2-q, written so that g_i = 0 gives 0.
    The minimiser is unique for 1 < p < inf. At p = inf (q = 1) it is not unique where g_i = 0;
    we return d_i = 0 there, the limit of the closed form as p -> inf. g = 0 gives d = 0.
    `axis` treats each slice along it as its own vector (e.g. one row per seed).
    """
    p = _exponent(
        p, 1.0, low_open=True, what=" for the lp steepest-descent step"
    )  # p = 1: no unique minimiser
    lr = checks.real("lr", lr, low=0.0)
    g, torch_mode = _as_float_array("g", g)
    axis = _axis(axis, g)
    checks.representable("lr", lr, g.dtype, why="the step -lr * (...) would be 0 or inf")
    q = dual_exponent(p)
    a = abs(g)
    m, r = _scaled(a, axis, torch_mode)
    norm_ratio = _norm_of_ratios(
        r, q, axis, torch_mode
    )  # ||g||_q / m: in [1, d^(1/q)], or 0 when g = 0
    norm_ratio = _where(norm_ratio > 0, norm_ratio, 1.0, torch_mode)
    if q == 1:
        magnitude = m * norm_ratio  # ||g||_1 on every coordinate
    else:
        magnitude = _magnitude(a, m, r, q - 1, norm_ratio ** (2 - q), torch_mode)
    return -lr * _sign(g, torch_mode) * magnitude


def rescale(g: Array, p: Number, eps: Number, *, check_finite: bool = True) -> Array:
    """eq. 21: u = g / (|g| + eps)^rho with rho = (p-2)/(p-1), for p in [2, inf] and eps > 0.

    Since 0 <= rho <= 1 and |g| + eps > 0, the denominator neither overflows nor vanishes and
    |u| <= max(1, |g| + eps): no overflow or NaN for any finite g. rho = 0 (p = 2) returns g.
    check_finite=False skips the inf/nan check (and its device sync); the caller then owns it.
    """
    r = rho(p)
    eps = checks.real("eps", eps, low=0.0, low_open=True)
    g, _ = _as_float_array("g", g, checks.boolean("check_finite", check_finite))
    # g + eps is taken in g's dtype: an eps that is 0 there makes 0 / 0**rho = NaN at g_i = 0
    checks.representable(
        "eps", eps, g.dtype, why="|g| + eps would be 0 at a zero entry, and eq. 21 0/0 = NaN"
    )
    if r == 0:
        return g * 1  # a copy, like every other branch
    return g / (abs(g) + eps) ** r
