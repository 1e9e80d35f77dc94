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

__all__ = ["c2_for", "c2_c3_frontier", "best_c2_c3", "bootstrap_intervals", "fit_run"]


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


# ---------------------------------------------------------------------------------------------
# fitting a run: per-checkpoint bootstrap intervals, then the constants over all checkpoints


def bootstrap_intervals(samples: dict, level: float, resamples: int, rng) -> dict:
    """Percentile-bootstrap interval of the mean of each statistic at ONE checkpoint.

    `samples` maps a statistic's name to its K per-mini-batch values (all from the same K
    mini-batches). One resampling of the K mini-batches (with replacement) is shared by all
    statistics, so their intervals come from the same resampled batches. Returns
    {name: (mean, lo, hi)} with lo, hi the (1 - level)/2 and (1 + level)/2 quantiles of the
    `resamples` resampled means.
    """
    k = {len(v) for v in samples.values()}
    if len(k) != 1 or min(k) < 2:  # K = 1 would give a zero-width interval: a bound with no confidence
        raise ValueError(f"every statistic needs the same number K >= 2 of samples (the interval is a bootstrap "
                         f"over the K mini-batches), got {sorted(k)}")
    k = k.pop()
    idx = rng.integers(0, k, size=(resamples, k))
    tail = (1 - level) / 2
    out = {}
    for name, v in samples.items():
        v = np.asarray(v, dtype=np.float64)
        means = v[idx].mean(axis=1)
        out[name] = (float(v.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail)))
    return out


def _constants(c1, grad_sq, moment, L, delta, T):
    """c1 with the (c2, c3) frontier of (grad_sq, moment), its best pair for Theorem 1, cap and step.

    Theorem 2 has the same form with the tilde constants (bounds.theorem2_bound is theorem1_bound,
    eta_0 = c~1/(L c~3)), so one function serves both assumptions.
    """
    out = {"c1": c1, "frontier": c2_c3_frontier(grad_sq, moment).tolist(), "holds": c1 > 0}
    if c1 > 0 and L is not None and L > 0:
        best = best_c2_c3(grad_sq, moment, c1, L, delta, T)
        out.update(c2=best["c2"], c3=best["c3"], step_cap=bounds.step_cap(c1, L, best["c3"]),
                   eta=best["eta"], bound=best["bound"], branch=best["branch"])
    return out


def fit_run(records, T, confidence=0.95, resamples=4000, seed=0, lr_used=None) -> dict:
    """Assumptions 1, 3, 5 and 6 fitted over the checkpoints of one run of T optimizer steps.

    Confidence: every checkpoint i gets a two-sided percentile-bootstrap interval [lo_i, hi_i] for
    the mean of each statistic over its K mini-batches (`resamples` resamplings of the K batches,
    seeded by `seed`), at the Bonferroni level 1 - (1 - confidence)/N for N checkpoints. So, as far as
    the bootstrap's normal-theory approximation goes (it is rough for K ~ 16 and skewed values; its
    intervals tend to be a little short), ALL N intervals hold at once with probability >=
    `confidence`, and every constant derived from them is a simultaneous bound at that level:
    - c1 (c~1) = min_i lo_i of the alignment ratio: a lower confidence bound on eq. 27 (eq. 43);
    - (c2, c3) ((c~2, c~3)): the exact frontier of pairs with hi_i(moment) <= c2 + c3 ||grad f_i||_2^2 at
      every checkpoint (eq. 28 / 44 on upper confidence bounds), and the frontier pair minimising the
      Theorem 1 (2) bound for this T with c1 and L, with its step cap c1/(L c3) (eq. 30) and step
      (eq. 32 / 47) next to the largest learning rate of the run (`lr_used`; default: the largest
      at the checkpoints);
    - sigma^2 = max_i hi_i of ||g - grad f||_q^2 (Assumption 3).
    The same fit on the plain means ("estimate") is reported beside it.
    Why this scheme: each constant is an extreme (min or max) over checkpoints, so it is only as
    good as the worst interval: hence simultaneous intervals (Bonferroni needs no assumption on how
    checkpoints depend on each other). The per-batch values (ratios, norms of nonlinear maps) are
    not Gaussian, and the mini-batches are the only independent draws at a checkpoint: hence a
    nonparametric bootstrap over mini-batches, one resampling shared by all statistics of a
    checkpoint because they come from the same batches.

    L is Assumption 1 as the theorems use it, eq. 4: the largest quadratic-form ratio
    2 (f(y) - f(x) - <grad f(x), y - x>) / ||y - x||_p^2 over all measured pairs (both bases). It is a
    lower bound on the true L (a supremum), so the step cap above is optimistic (an upper bound on
    the cap the true L gives). It has no interval: it is exact for the pairs measured. The gradient
    form (L_grad, a lower bound on the Lipschitz constant of grad f from p to q, which can exceed
    eq. 4's L) and the (L0, L1) frontier are reported beside it. delta = f(theta_0) - f* is taken
    as the loss at the first checkpoint (f* >= 0 for cross-entropy, so this over-estimates delta:
    a safe choice).
    """
    from lpcheck.estimate import smoothness  # smoothness builds on this module's frontier

    records = list(records)
    n = len(records)
    if n < 1:
        raise ValueError("fit_run needs at least one checkpoint record")
    if not (0 < confidence < 1):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 100:
        raise ValueError(f"resamples must be an integer >= 100, got {resamples!r}")
    level = 1 - (1 - confidence) / n
    rng = np.random.default_rng(seed)
    per = []
    for r in records:
        iv = bootstrap_intervals(r["samples"], level, resamples, rng)
        per.append({"step": r["step"], "epoch": r["epoch"], "p": r["p"], "lr": r["lr"], "K": r["K"],
                    "loss": r["loss"], "grad_sq": r["grad_sq"], "grad_norm_q": r["grad_norm_q"],
                    **{name: {"mean": m, "lo": lo, "hi": hi} for name, (m, lo, hi) in iv.items()}})
    grad_sq = np.array([c["grad_sq"] for c in per])
    pairs = [pr for r in records for pr in r.get("pairs", [])]
    L_grad = max((pr["grad_ratio"] for pr in pairs), default=None)
    L_quad = max((max(pr["quad_xy"], pr["quad_yx"]) for pr in pairs), default=None)
    L = L_quad  # eq. 4, the form Lemma 1 uses
    delta = float(records[0]["loss"])
    lr_max = max(float(r["lr"]) for r in records) if lr_used is None else float(lr_used)

    def assumption(align, moment):
        lo = min(c[align]["lo"] for c in per)
        point = min(c[align]["mean"] for c in per)
        conservative = _constants(lo, grad_sq, np.array([c[moment]["hi"] for c in per]), L, delta, T)
        estimate = _constants(point, grad_sq, np.array([c[moment]["mean"] for c in per]), L, delta, T)
        if "step_cap" in conservative:
            conservative["lr_within_cap"] = lr_max <= conservative["step_cap"]
        return {**conservative, "estimate": estimate}

    out = {
        "sample_sizes": {"checkpoints": n, "K": [r["K"] for r in records], "resamples": resamples, "pairs": len(pairs),
                         "confidence": confidence, "per_checkpoint_level": level, "T": T, "seed": seed},
        "delta": delta, "lr_max": lr_max,
        "assumption5": assumption("align", "moment"),
        "assumption6": (assumption("align_m", "moment_m")
                        if all("align_m" in r["samples"] for r in records) else None),
        "smoothness": {"L": L, "L_grad": L_grad, "L_quad": L_quad, "pairs": len(pairs),
                       "l0_l1_frontier": (smoothness.l0_l1_frontier([pr["grad_norm_q"] for pr in pairs],
                                                                    [pr["grad_ratio"] for pr in pairs]).tolist()
                                          if pairs else None)},
        "noise": {"sigma_sq": max(c["noise"]["hi"] for c in per), "sigma_sq_estimate": max(c["noise"]["mean"] for c in per)},
        "checkpoints": per,
    }
    out["noise"]["sigma"] = math.sqrt(out["noise"]["sigma_sq"])
    return out
