"""Fitting Assumption 5/6 constants over checkpoints.

At checkpoint i we know x_i = ||grad f(theta_i)||_2^2 and (an upper confidence bound of) the
second moment y_i = E||u||_p^2. eq. 28 holds at every checkpoint for (c2, c3) iff
y_i <= c2 + c3 x_i for all i. For each c3 >= 0 the least such c2 is max_i (y_i - c3 x_i): a convex,
piecewise-linear, non-increasing function of c3 whose graph is the Pareto frontier of (c3, c2).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from lpcheck import bounds

__all__ = ["c2_for", "c2_c3_frontier", "best_c2_c3"]


def _points(grad_sq, moment):
    x = np.asarray(grad_sq, dtype=np.float64).ravel()
    y = np.asarray(moment, dtype=np.float64).ravel()
    if x.size == 0 or x.shape != y.shape:
        raise ValueError(f"grad_sq and moment must be non-empty and of equal length, got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or (x < 0).any() or (y < 0).any():
        raise ValueError("grad_sq and moment must be finite and >= 0")
    return x, y


def c2_for(c3, grad_sq, moment):
    """The least c2 with moment_i <= c2 + c3 grad_sq_i at every checkpoint (clipped at 0)."""
    x, y = _points(grad_sq, moment)
    return max(0.0, float(np.max(y - c3 * x)))


def c2_c3_frontier(grad_sq, moment):
    """Vertices (c3, c2) of the frontier, c3 ascending from 0 to where c2 reaches its floor.

    As c3 grows, the checkpoint that decides c2 = max_i (y_i - c3 x_i) walks the upper convex hull
    of the points (x_i, y_i) from the highest point to the leftmost one; the vertices' c3 are the
    hull's slopes. The hull is built in exact rational arithmetic, so extreme or nearly collinear
    measurements cannot reorder it. The floor is max{y_i : x_i = 0} (0 if no checkpoint has a zero
    gradient); past the last vertex c2 stays at the floor. Returns an array of shape (n, 2).
    """
    x, y = _points(grad_sq, moment)
    floor = float(y[x == 0].max()) if (x == 0).any() else 0.0
    highest = {}  # per x only the highest y can ever decide c2
    for a, b in zip(x.tolist(), y.tolist()):
        highest[a] = max(b, highest.get(a, b))
    pts = [(Fraction(a), Fraction(b)) for a, b in sorted(highest.items())]
    hull = []  # upper hull, left to right (monotone chain)
    for pt in pts:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], pt) >= 0:
            hull.pop()
        hull.append(pt)
    top = max(range(len(hull)), key=lambda i: (hull[i][1], -i))  # highest; leftmost among ties
    verts = [(0.0, float(hull[top][1]))]
    floor_q = Fraction(floor)
    for k in range(top, -1, -1):  # walk left: the slopes grow
        xr, yr = hull[k]
        c3 = (yr - hull[k - 1][1]) / (xr - hull[k - 1][0]) if k > 0 else None
        if c3 is None or yr - c3 * xr <= floor_q:  # this point's line reaches the floor first
            if xr > 0 and yr > floor_q:
                verts.append((_float((yr - floor_q) / xr), floor))
            break
        verts.append((_float(c3), float(yr - c3 * xr)))
    return np.asarray(verts)


def _float(q):
    try:
        return float(q)
    except OverflowError:  # c3 beyond 1e308: a checkpoint with a vanishing gradient but a real moment
        return math.inf


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def best_c2_c3(grad_sq, moment, c1, L, delta, T, per_segment=32):
    """The frontier pair minimising the Theorem 1 bound (eq. 31 at eq. 32's step) for a run of T steps.

    Returns a dict with c2, c3, eta, bound, branch. The frontier's pairs with c2 = 0 or c3 = 0 are
    limits (Assumption 5 asks c2, c3 > 0); they are kept only as limits of the search.
    """
    verts = c2_c3_frontier(grad_sq, moment)
    cands = [verts[0]]
    for (a3, a2), (b3, b2) in zip(verts[:-1], verts[1:]):
        t = np.linspace(0, 1, per_segment + 1)[1:]
        cands += list(zip(a3 + t * (b3 - a3), a2 + t * (b2 - a2)))
    # beyond the last vertex c2 stays at its floor while c3 grows: the bound only worsens there
    best = None
    for c3, c2 in cands:
        c3 = max(c3, 1e-300)  # c3 -> 0+ (no multiplicative term): the step cap is then unbounded
        value, eta, branch = bounds.theorem1_bound(c1, c2, c3, L, delta, T)
        if best is None or value < best["bound"]:
            best = {"c2": float(c2), "c3": float(c3), "eta": eta, "bound": value, "branch": branch}
    if not math.isfinite(best["bound"]):
        raise ValueError("no frontier pair gives a finite Theorem 1 bound")
    return best
