"""lp smoothness (Assumption 1) along a trajectory, from pairs of points with full gradients.

Lemma 1 applies Assumption 1 with the active norm p = p_s(t), so every ratio here is taken in one
given geometry p (q its dual exponent). For a pair (x, y) with Dtheta = y - x:
- gradient form: ||grad f(y) - grad f(x)||_q / ||Dtheta||_p (Lipschitz gradients in (p, q) imply eq.
  4);
- quadratic-upper-bound form, eq. 4 itself: 2 (f(y) - f(x) - <grad f(x), Dtheta>) / ||Dtheta||_p^2,
  and the same with x and y swapped (each pair gives two such values);
- generalized (L0, L1) form: ||D grad f||_q <= (L0 + L1 ||grad f||_q) ||Dtheta||_p. Since the pair
  (x, y) and the pair (y, x) must both satisfy it, a pair constrains (L0, L1) through ratio <= L0 +
  L1 min(||grad f(x)||_q, ||grad f(y)||_q). The (L1, L0) pairs that satisfy every measured pair form
  the same convex frontier as (c3, c2) in eq. 28: `fit.c2_c3_frontier` computes it.

Any norm. `p` may also be a norm: a `lpcheck.methods.Norm` (of the vector as one tensor: lp, or any
norm of one tensor) or a `lpcheck.estimate.core.FlatNorm` (a norm over the model's parameters, e.g.
Adam's ellipsoid or Scion's layerwise spectral norm), with ||.|| in place of ||.||_p and its dual
||.||_* in place of ||.||_q: Assumption 1 in that norm, f(y) <= f(x) + <grad f(x), y - x> + L/2 ||y
- x||^2, the gradient form ||grad f(y) - grad f(x)||_* / ||y - x|| and the (L0, L1) form ||grad f(y)
- grad f(x)||_* <= (L0 + L1 ||grad f(x)||_*) ||y - x|| (the generalized smoothness of the clipped
step, arXiv 2506.01913). Norms are torch functions: with a norm, x, y and the gradients are torch
tensors.

Every value is a LOWER bound on the constant of Assumption 1: L is a supremum over all pairs, and
measured pairs see only the directions they happen to span (on a quadratic with Hessian
diag(lambda), lambda >= 0, the supremum is ||lambda||_{p/(p-2)}, attained only along one direction
d_i ~ lambda_i^(1/(p-2)); random pairs approach it from below).
"""

from __future__ import annotations

import math

import numpy as np

from lpcheck import lp
from lpcheck.estimate import fit

__all__ = [
    "gradient_ratio",
    "quadratic_ratio",
    "pair_statistics",
    "l0_l1_frontier",
    "quadratic_lp_smoothness",
]


def _same(name, a, like):
    if tuple(a.shape) != tuple(like.shape):
        raise ValueError(
            f"{name} must have the shape of x, {tuple(like.shape)}, got {tuple(a.shape)}"
        )


def _geometry(p):
    """(norm, dual) functions of flat vectors for `p`: a number (lp, p in [2, inf], as Lemma 1 uses
    it) or a norm."""
    from lpcheck.estimate.core import FlatNorm
    from lpcheck.methods import Norm

    if isinstance(p, Norm):
        p = FlatNorm(p)
    if isinstance(p, FlatNorm):
        return p.norm, p.dual, True
    lp.rho(p)  # Assumption 1 is used with p in [2, inf]
    q = lp.dual_exponent(p)
    return (
        (lambda v: lp.lp_norm(v, p, check_finite=False)),
        (lambda v: lp.lp_norm(v, q, check_finite=False)),
        False,
    )


def _pair(x, y, p):
    norm, dual, is_norm = _geometry(p)
    x, torch_x = lp._as_float_array("x", x)
    y, _ = lp._as_float_array("y", y)
    if is_norm and not torch_x:
        raise ValueError(
            "with a norm (not a number p), x, y and the gradients must be torch tensors"
        )
    _same("y", y, x)
    dist = norm(y - x)
    if not bool(dist > 0):
        raise ValueError("x and y must differ: a pair of equal points says nothing about L")
    return x, y, dist, dual


def gradient_ratio(x, y, grad_x, grad_y, p):
    """||grad f(y) - grad f(x)||_* / ||y - x||: a lower bound on the Lipschitz constant of grad f
    from the norm (lp, or the norm given as p) to its dual."""
    x, y, dist, dual = _pair(x, y, p)
    gx, _ = lp._as_float_array("grad_x", grad_x)
    gy, _ = lp._as_float_array("grad_y", grad_y)
    _same("grad_x", gx, x)
    _same("grad_y", gy, x)
    return dual(gy - gx) / dist


def quadratic_ratio(x, y, f_x, f_y, grad_x, p):
    """2 (f(y) - f(x) - <grad f(x), y - x>) / ||y - x||^2: eq. 4 (in the norm given by p) holds for
    this pair iff L >= it."""
    x, y, dist, _ = _pair(x, y, p)
    gx, _ = lp._as_float_array("grad_x", grad_x)
    _same("grad_x", gx, x)
    f_x, f_y = lp._real("f_x", f_x), lp._real("f_y", f_y)
    return 2 * (f_y - f_x - (gx * (y - x)).sum()) / dist**2


def pair_statistics(x, y, f_x, f_y, grad_x, grad_y, p) -> dict:
    """All ratios of one pair in geometry p (a number for lp, or a norm), unvalidated (the Probe's
    path; inputs finite, x != y).

    Returns scalars (tensors for torch input): dist_p = ||y - x||, grad_ratio, quad_xy (base x),
    quad_yx (base y), grad_norm_q = min(||grad f(x)||_*, ||grad f(y)||_*) for the (L0, L1) form (the
    keys keep the lp names: p the norm, q its dual).
    """
    norm, dual, _ = _geometry(p)
    d = y - x
    dist = norm(d)
    gx_q, gy_q = dual(grad_x), dual(grad_y)
    return {
        "dist_p": dist,
        "grad_ratio": dual(grad_y - grad_x) / dist,
        "quad_xy": 2 * (f_y - f_x - (grad_x * d).sum()) / dist**2,
        "quad_yx": 2 * (f_x - f_y + (grad_y * d).sum()) / dist**2,
        "grad_norm_q": gx_q if bool(gx_q < gy_q) else gy_q,
    }


def l0_l1_frontier(grad_norm_q, grad_ratio):
    """Vertices (L1, L0) of the (L0, L1) pairs with ratio_i <= L0 + L1 grad_norm_q_i for every pair
    i.

    The same frontier as (c3, c2) in eq. 28, computed by `fit.c2_c3_frontier` (x = ||grad f||_q,
    y = the gradient ratio); L1 = 0 gives L0 = max ratio (plain Lipschitz), L0 falls as L1 grows.
    """
    return fit.c2_c3_frontier(grad_norm_q, grad_ratio)


def quadratic_lp_smoothness(hessian_diag, p) -> float:
    """The exact L of Assumption 1 in geometry p for f = 1/2 theta^T diag(lambda) theta,
    lambda >= 0.

    sup_d d^T diag(lambda) d / ||d||_p^2 = ||lambda||_{p/(p-2)} by Hoelder (d_i^2 is in l_{p/2},
    whose dual exponent is p/(p-2)); the gradient form sup ||lambda * d||_q / ||d||_p has the same
    value. p = 2 gives max(lambda), p = inf gives sum(lambda).
    """
    lam = np.asarray(hessian_diag, dtype=np.float64)
    if lam.ndim != 1 or lam.size == 0 or not np.isfinite(lam).all() or (lam < 0).any():
        raise ValueError("hessian_diag must be a non-empty 1-D array of finite values >= 0")
    lp.rho(p)
    p = float(p)
    r = math.inf if p == 2 else (1.0 if p == math.inf else p / (p - 2))
    return float(lp.lp_norm(lam, r))
