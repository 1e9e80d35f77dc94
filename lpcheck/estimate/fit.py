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

from lpcheck import bounds, checks

__all__ = ["c2_for", "c2_c3_frontier", "best_c2_c3", "intervals", "t_hall", "simulated_coverage", "fit_run"]


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
# per-checkpoint intervals and their measured coverage, then the constants over all checkpoints

INTERVAL_METHOD = "student-t, stretched on the skewed side by Hall's transformation"

# The laws on which fit_run measures its own intervals at its N, K and level: light tails, heavy tails
# (Student-t(3) has no fourth moment) and skewness 1.41 (the committed CPU run's per-batch statistics
# reach a sample skewness of 1.3, and sample skewness under-estimates it at K ~ 24). name: (draw, mean)
REFERENCE_LAWS = {
    "normal": (lambda rng, shape: rng.standard_normal(shape), 0.0),
    "student_t3": (lambda rng, shape: rng.standard_t(3, shape), 0.0),
    "gamma2": (lambda rng, shape: rng.gamma(2.0, 1.0, shape), 2.0),
}
# A claim of 1 - alpha is kept when the measured miss rate is at most 1.4 alpha: 93 % for 95 %.
COVERAGE_SLACK = 1.4


def intervals(samples: dict, level: float, rng=None) -> dict:
    """Two-sided interval at `level` for the mean of each statistic at ONE checkpoint.

    `samples` maps a statistic's name to its K per-mini-batch values (the same K >= 2 for all).
    Returns {name: (mean, lo, hi)}; each end is a one-sided bound at level (1 + level)/2 (equal tails).
    The interval is the union of two, so it is never shorter than the first on either side:
    - Student t: mean -/+ t_{K-1, (1+level)/2} s/sqrt(K), exact for normal values and conservative for
      symmetric heavy tails, but short on the long side of skewed values;
    - Hall (1992, "On the removal of skewness by transformation"): T = sqrt(K) (mean - mu)/s has the
      Edgeworth expansion P(T <= x) = Phi(x) + K^-1/2 (gamma/6)(2x^2 + 1) phi(x) + O(1/K), gamma the
      skewness of one value; the monotone map h(t) = t + a t^2 + a^2 t^3/3 + a/2, a = gamma/(3 sqrt(K)),
      removes the K^-1/2 term, so mu lies in [mean - s/sqrt(K) h^-1(q), mean - s/sqrt(K) h^-1(-q)] with
      h^-1(y) = ((1 + 3a(y - a/2))^(1/3) - 1)/a, q = t_{K-1, (1+level)/2} and gamma estimated by the
      adjusted sample skewness G1 = g1 sqrt(K(K-1))/(K-2).
    Hall's side toward the skew is the longer one; his short side (and a false skew read from one
    outlier of a heavy-tailed sample) is what the t floor guards. Measured: experiments/coverage.py.
    The method draws nothing: `rng` is accepted so that callers need not know whether it resamples.
    Values all equal (s = 0) give the point interval [mean, mean].
    """
    level = checks.real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if not isinstance(samples, dict) or not samples:
        raise ValueError("samples must be a non-empty dict {statistic name: its K per-mini-batch values}")
    rows = {name: np.asarray(v, dtype=np.float64) for name, v in samples.items()}
    k = {v.size if v.ndim == 1 else -1 for v in rows.values()}
    if len(k) != 1 or min(k) < 2:  # K = 1 would give a zero-width interval: a bound with no confidence
        raise ValueError(f"every statistic needs the same number K >= 2 of samples (one 1-D sequence each), got "
                         f"sizes {sorted(k)}")
    bad = [name for name, v in rows.items() if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"samples must be finite, got non-finite values in {bad}")
    mean, lo, hi = t_hall(np.stack(list(rows.values())), level)
    return {name: (float(m), float(a), float(b)) for name, m, a, b in zip(rows, mean, lo, hi)}


def t_hall(x, level, rng=None, adjust=True, floor=True):
    """(mean, lo, hi) arrays for the rows of x, shape (M, K): the interval of `intervals`, vectorised.
    For the comparisons of experiments/coverage.py: adjust=False estimates the skewness by g1 instead of
    G1, floor=False gives Hall's interval alone (without the Student-t floor)."""
    from scipy.special import stdtrit  # Student t quantiles (scipy.stats is a slow import)

    x = np.asarray(x, dtype=np.float64)
    k = x.shape[-1]
    mean = x.mean(-1)
    dev = x - mean[..., None]
    m2, m3 = (dev**2).mean(-1), (dev**3).mean(-1)
    se = np.sqrt(m2 / (k - 1))  # s / sqrt(K)
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = np.where(m2 > 0, m3 / m2**1.5, 0.0)
    if k <= 2:  # two values have no skewness
        gamma = np.zeros_like(g1)
    else:
        gamma = g1 * math.sqrt(k * (k - 1)) / (k - 2) if adjust else g1
    q = float(stdtrit(k - 1, (1 + level) / 2))
    a = gamma / (3 * math.sqrt(k))

    def h_inv(y):
        small = np.abs(a) < 1e-12  # a -> 0: h is the identity
        safe = np.where(small, 1.0, a)
        return np.where(small, y, (np.cbrt(1 + 3 * safe * (y - safe / 2)) - 1) / safe)

    if not floor:
        return mean, mean - se * h_inv(q), mean - se * h_inv(-q)
    return mean, mean - se * np.maximum(q, h_inv(q)), mean - se * np.minimum(-q, h_inv(-q))


def simulated_coverage(Ks, level, law, trials, rng, methods=None, chunk=None) -> dict:
    """Coverage of interval methods over N = len(Ks) checkpoints, measured on data from a known law.

    Each of `trials` simulated runs draws Ks[i] values at checkpoint i from REFERENCE_LAWS-style `law`
    (a name there, or a (draw(rng, shape), mean) pair) and asks each method for its interval at `level`.
    `methods` maps a name to f(x (M, K), level, rng) -> (mean, lo, hi) (default: {INTERVAL_METHOD: t_hall}),
    all evaluated on the same draws. Returns {name: {coverage, se, lower, upper, width}}: coverage is
    the fraction of runs where all N intervals contain the mean, se its Monte-Carlo standard error,
    lower/upper the fraction where all N lower/upper ends hold, width the mean of hi - lo.
    """
    draw, mu = REFERENCE_LAWS[law] if isinstance(law, str) else law
    methods = methods or {INTERVAL_METHOD: t_hall}
    groups = {}
    for kk in Ks:
        groups[int(kk)] = groups.get(int(kk), 0) + 1
    chunk = chunk or max(1, min(trials, 2_000_000 // max(1, sum(Ks))))
    sums = {name: np.zeros(4) for name in methods}
    done = 0
    while done < trials:
        c = min(chunk, trials - done)
        ok = {name: np.ones((3, c), dtype=bool) for name in methods}
        for kk, n in groups.items():
            x = draw(rng, (c * n, kk))
            for name, f in methods.items():
                _, lo, hi = f(x, level, rng)
                lo, hi = lo.reshape(c, n), hi.reshape(c, n)
                ok[name] &= np.stack([((lo <= mu) & (hi >= mu)).all(1), (lo <= mu).all(1), (hi >= mu).all(1)])
                sums[name][3] += (hi - lo).sum() / len(Ks)
        for name in methods:
            sums[name][:3] += ok[name].sum(1)
        done += c
    out = {}
    for name, (both, lower, upper, width) in sums.items():
        cov = both / trials
        out[name] = {"coverage": float(cov), "se": math.sqrt(cov * (1 - cov) / trials),
                     "lower": float(lower / trials), "upper": float(upper / trials), "width": float(width / trials)}
    return out


def interval_check(Ks, level, confidence, trials, rng) -> dict:
    """What fit_run records about its intervals: the method, the level, and their coverage measured at
    this run's N = len(Ks) and K on REFERENCE_LAWS. adequate: every law's measured miss rate is at most
    COVERAGE_SLACK (1 - confidence); otherwise `note` says which law fell short and asks for a larger K."""
    coverage = {law: simulated_coverage(Ks, level, law, trials, rng)[INTERVAL_METHOD] for law in REFERENCE_LAWS}
    floor = 1 - COVERAGE_SLACK * (1 - confidence)
    short = {law: c["coverage"] for law, c in coverage.items() if c["coverage"] < floor}
    note = ""
    if short:
        note = (f"K = {min(Ks)} mini-batches is too small for simultaneous {confidence:.0%} intervals over "
                f"{len(Ks)} checkpoints: measured coverage "
                + ", ".join(f"{c:.1%} on {law}" for law, c in short.items())
                + f" (below {floor:.1%}); raise K")
    return {"method": INTERVAL_METHOD, "per_checkpoint_level": level, "confidence": confidence,
            "coverage": {law: {k: c[k] for k in ("coverage", "se")} for law, c in coverage.items()},
            "trials": trials, "floor": floor, "adequate": not short, "note": note}


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

    Confidence: every checkpoint i gets an interval [lo_i, hi_i] for the mean of each statistic over its
    K mini-batches (`intervals`: Student t, stretched on the skewed side by Hall's transformation), at
    the level 1 - (1 - confidence)/N for N checkpoints (Bonferroni over checkpoints: no assumption on how
    they depend on each other). The claim is per statistic: its N two-sided intervals hold at once with
    probability `confidence` (measured at N = 20, K = 32 for 95 %: 96-98 % on normal and Student-t(3)
    values, 94.6 % on gamma(2), 93 % on log-normal(0, 0.5), 85 % on log-normal(0, 1)); each constant
    below uses one end of one statistic's N intervals, so each constant, on its own, holds with at least
    that probability:
    - c1 (c~1) = min_i lo_i of the alignment ratio: a lower confidence bound on eq. 27 (eq. 43);
    - (c2, c3) ((c~2, c~3)): the exact frontier of pairs with hi_i(moment) <= c2 + c3 ||grad f_i||_2^2 at
      every checkpoint (eq. 28 / 44 on upper confidence bounds), and the frontier pair minimising the
      Theorem 1 (2) bound for this T with c1 and L, with its step cap c1/(L c3) (eq. 30) and step
      (eq. 32 / 47) next to the largest learning rate of the run (`lr_used`; default: the largest
      at the checkpoints);
    - sigma^2 = max_i hi_i of ||g - grad f||_q^2 (Assumption 3).
    Several constants at once hold with probability >= 1 - S (1 - confidence) for S of them (Bonferroni;
    e.g. 90 % for Theorem 1's c1 with (c2, c3)); ask for confidence 1 - (1 - c)/S to have all S at c.
    Why two-sided intervals although each constant reads one end: the end a constant reads is the
    statistic's long tail (alignment skews left, moments and noise right), where every method measured
    misses about twice its nominal rate at these levels and K; one-sided bounds at 1 - (1 - confidence)/N
    held for all N checkpoints in 91.5 % of runs for 95 % on gamma(2) values at N = 20, K = 32, the end
    of the two-sided interval in 94.9 % (experiments/results/coverage). The coverage is not a theorem (no interval for the mean of an
    unbounded law is; Bahadur and Savage 1956): `sample_sizes["interval"]` records the coverage
    measured at this run's N, K and level on normal, Student-t(3) and gamma(2) values (`resamples`
    simulated runs each, seeded by `seed`) and `adequate` False with a note when it falls below
    1 - 1.4 (1 - confidence) (93 % for 95 %): K too small for the claim.
    The same fit on the plain means ("estimate") is reported beside it.
    Why this scheme: each constant is an extreme (min or max) over checkpoints, so it is only as
    good as the worst interval: hence simultaneous intervals. The mini-batches are the only independent
    draws at a checkpoint; the per-batch values (ratios, norms of nonlinear maps) are not Gaussian: hence
    an interval that corrects for their skewness (the percentile bootstrap used before covered 88 % on
    normal, 79-80 % on gamma(2) and 44-50 % on log-normal(0, 1) values at (N, K) = (12, 24), (20, 32)).

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
        iv = intervals(r["samples"], level)
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
    out["sample_sizes"]["interval"] = interval_check([r["K"] for r in records], level, confidence, resamples, rng)
    return out
