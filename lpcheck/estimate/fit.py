"""Fitting Assumption 5/6 constants over checkpoints.

At checkpoint i we know x_i = ||grad f(theta_i)||_2^2 and (an upper confidence bound of) the
second moment y_i = E||u||_p^2 (for a method in its own norm: x_i = ||grad f(theta_i)||_*^2 and
y_i = E||d||^2, see `fit_run`). eq. 28 holds at every checkpoint for (c2, c3) iff
y_i <= c2 + c3 x_i for all i. For each c3 >= 0 the least such c2 is max_i (y_i - c3 x_i): a convex,
piecewise-linear, non-increasing function of c3 whose graph is the Pareto frontier of (c3, c2).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from lpcheck import bounds, checks
from lpcheck.records import ABSENT, Absent, JsonRecord

__all__ = [
    "FitResult",
    "c2_for",
    "c2_c3_frontier",
    "jsonable_frontier",
    "best_c2_c3",
    "intervals",
    "t_hall",
    "simulated_coverage",
    "fit_run",
]


def _points(grad_sq: Any, moment: Any) -> Any:
    x = np.asarray(grad_sq, dtype=np.float64).ravel()
    y = np.asarray(moment, dtype=np.float64).ravel()
    if x.size == 0 or x.shape != y.shape:
        raise ValueError(
            f"grad_sq and moment must be non-empty and of equal length, got {x.size} and {y.size}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or (x < 0).any() or (y < 0).any():
        raise ValueError("grad_sq and moment must be finite and >= 0")
    return x, y


def c2_for(c3: Any, grad_sq: Any, moment: Any) -> Any:
    """The least c2 with moment_i <= c2 + c3 grad_sq_i at every checkpoint (clipped at 0)."""
    x, y = _points(grad_sq, moment)
    return max(0.0, float(np.max(y - c3 * x)))


def c2_c3_frontier(grad_sq: Any, moment: Any) -> Any:
    """Vertices (c3, c2) of the frontier, c3 ascending from 0 to where c2 reaches its floor.

    As c3 grows, the checkpoint that decides c2 = max_i (y_i - c3 x_i) walks the upper convex hull
    of the points (x_i, y_i) from the highest point to the leftmost one; the vertices' c3 are the
    hull's slopes. The hull is built in exact rational arithmetic, so extreme or nearly collinear
    measurements cannot reorder it. The floor is max{y_i : x_i = 0} (0 if no checkpoint has a zero
    gradient); past the last vertex c2 stays at the floor. Returns an array of shape (n, 2); a
    vertex whose c3 exceeds the float range (a checkpoint with a vanishing gradient but a real
    moment) has c3 = inf there (`jsonable_frontier` turns it into null with a reason).
    """
    verts, _ = _walk(*_points(grad_sq, moment))
    return np.asarray([(_float(c3), float(c2)) for c3, c2 in verts])


def _walk(x: Any, y: Any) -> Any:
    """The frontier in exact rationals: vertices [(c3, c2)], and for the segment from vertex i to
    vertex i + 1 the checkpoint (x_k, y_k) that decides c2 there (c2 = y_k - c3 x_k on it)."""
    floor = Fraction(float(y[x == 0].max())) if (x == 0).any() else Fraction(0)
    highest: dict = {}  # per x only the highest y can ever decide c2
    for a, b in zip(x.tolist(), y.tolist()):
        highest[a] = max(b, highest.get(a, b))
    pts = [(Fraction(a), Fraction(b)) for a, b in sorted(highest.items())]
    hull: list = []  # upper hull, left to right (monotone chain)
    for pt in pts:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], pt) >= 0:
            hull.pop()
        hull.append(pt)
    top = max(range(len(hull)), key=lambda i: (hull[i][1], -i))  # highest; leftmost among ties
    verts, lines = [(Fraction(0), hull[top][1])], []
    for k in range(top, -1, -1):  # walk left: the slopes grow
        xr, yr = hull[k]
        c3 = (yr - hull[k - 1][1]) / (xr - hull[k - 1][0]) if k > 0 else None
        if c3 is None or yr - c3 * xr <= floor:  # this point's line reaches the floor first
            if xr > 0 and yr > floor:
                verts.append(((yr - floor) / xr, floor))
                lines.append((xr, yr))
            break
        verts.append((c3, yr - c3 * xr))
        lines.append((xr, yr))
    return verts, lines


def _float(q: Any) -> Any:
    try:
        return float(q)
    except (
        OverflowError
    ):  # c3 beyond 1e308: a checkpoint with a vanishing gradient but a real moment
        return math.inf


def _cross(o: Any, a: Any, b: Any) -> Any:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def jsonable_frontier(vertices: Any) -> tuple[list, str | None]:
    """Frontier vertices as JSON-ready [c3, c2] lists: a c3 beyond the float range is null, with the
    reason."""
    out, reason = [], None
    for c3, c2 in np.asarray(vertices, dtype=np.float64).tolist():
        if not math.isfinite(c3):
            c3, reason = (
                None,
                (
                    "the last vertex's c3 exceeds the float range (1.8e308): a checkpoint with a "
                    "vanishing ||grad f||^2 but a real moment; c2 reaches its floor only there"
                ),
            )
        out.append([c3, c2])
    return out, reason


NO_CAP = (
    "eq. 28 holds at every checkpoint with c3 -> 0 (the largest moment is at a zero gradient: no "
    "multiplicative term is needed), and eq. 30's c1/(L c3) is then unbounded"
)


def best_c2_c3(grad_sq: Any, moment: Any, c1: Any, L: Any, delta: Any, T: Any) -> Any:
    """The frontier pair minimising the Theorem 1 bound (eq. 31 at eq. 32's step) for a run of
    T steps.

    Exact, not a grid search. On a frontier segment c2 = a - b c3 (the line of the checkpoint that
    decides c2 there), the eq. 30 cap c1/(L c3) falls and eq. 32's balanced step sqrt(2 delta/(L c2
    T)) rises with c3, so the segment splits at one switch point s: below s the step is balanced and
    the bound (2/c1) sqrt(2 delta L c2 / T) does not rise with c3; above s the step is the cap and
    the bound A c3 + a/c3 - b (A = 2 delta L / (c1^2 T)) is convex, least at sqrt(a/A). So the
    minimum over a segment is at one of: its ends, s, sqrt(a/A) clipped into the cap part. Past the
    last vertex c2 stays at its floor while c3 only shrinks the cap: nothing better there.

    Returns a dict: c2, c3, eta, bound, branch ('cap' or 'balanced'), step_cap. The frontier's
    c3 = 0 end is a limit (Assumption 5 asks c3 > 0): when it is the best pair (a flat frontier,
    only when the largest moment has ||grad f||^2 = 0) c3 is 0.0 as a limit, step_cap is None with
    `step_cap_reason`, and eta is eq. 32's balanced branch alone (`bounds.theorem1_bound_no_cap`).
    """
    x, y = _points(grad_sq, moment)
    c1 = checks.real("c1", c1, low=0, low_open=True)
    L = checks.real("L", L, low=0, low_open=True)
    delta = checks.real("delta", delta, low=0, low_open=True)
    T = checks.real("T", T, low=1)
    verts, lines = _walk(x, y)
    best = None
    for (lo, _), (hi, _), (b, a) in zip(verts[:-1], verts[1:], lines):
        for c3 in _segment_candidates(_float(lo), _float(hi), float(a), float(b), c1, L, delta, T):
            c2 = c2_for(c3, x, y)
            value, eta, branch = bounds.theorem1_bound(c1, c2, c3, L, delta, T)
            if best is None or value < best["bound"]:
                best = {
                    "c2": c2,
                    "c3": c3,
                    "eta": eta,
                    "bound": value,
                    "branch": branch,
                    "step_cap": bounds.step_cap(c1, L, c3),
                }
    c2_top = float(verts[0][1])
    # The c3 -> 0 end is a limit with no cap. Where the frontier slopes down from it (the top
    # checkpoint has ||grad f||^2 > 0), the segment's switch point has a smaller bound, so the limit
    # is the answer only on a flat frontier (no segment): comparing the two there would let rounding
    # pick a limit the math rules out.
    if best is None and c2_top > 0:
        value, eta = bounds.theorem1_bound_no_cap(c1, c2_top, L, delta, T)
        best = {
            "c2": c2_top,
            "c3": 0.0,
            "eta": eta,
            "bound": value,
            "branch": "balanced",
            "step_cap": None,
            "step_cap_reason": NO_CAP,
        }
    if best is None:
        raise ValueError(
            "every measured moment is 0 (c2 = c3 = 0): eq. 31 tends to 0 as eta grows and no step "
            "attains it; Theorem 1 gives no pair to report"
        )
    return best


def _segment_candidates(
    lo: Any, hi: Any, a: Any, b: Any, c1: Any, L: Any, delta: Any, T: Any
) -> Any:
    """c3 values on the segment [lo, hi] (c2 = a - b c3) among which the bound's minimum lies (see
    best_c2_c3)."""
    k = c1 * c1 * T
    # switch point: c1/(L c3) = sqrt(2 delta/(L (a - b c3) T)),
    # i.e. 2 delta L c3^2 + k b c3 - k a = 0
    root = math.hypot(
        k * b, math.sqrt(8 * delta * L * k * a)
    )  # the stable root: no cancellation, no overflow
    s = 2 * k * a / (k * b + root) if root > 0 else 0.0
    stationary = math.sqrt(a * k / (2 * delta * L))
    cands = {min(max(stationary, lo, s), hi), min(max(s, lo), hi), lo, hi}
    return sorted(c for c in cands if 0 < c < math.inf)


# ---------------------------------------------------------------------------------------------
# per-checkpoint intervals and their measured coverage, then the constants over all checkpoints

INTERVAL_METHOD = "student-t, stretched on the skewed side by Hall's transformation"

# The laws on which fit_run measures its own intervals at its N, K and level: light tails, heavy
# tails (Student-t(3) has no fourth moment) and skewness 1.41 (the committed CPU run's per-batch
# statistics reach a sample skewness of 1.3, and sample skewness under-estimates it at K ~ 24).
# name: (draw, mean)
REFERENCE_LAWS = {
    "normal": (lambda rng, shape: rng.standard_normal(shape), 0.0),
    "student_t3": (lambda rng, shape: rng.standard_t(3, shape), 0.0),
    "gamma2": (lambda rng, shape: rng.gamma(2.0, 1.0, shape), 2.0),
}
# A claim of 1 - alpha is kept when the measured miss rate is at most 1.4 alpha: 93 % for 95 %.
COVERAGE_SLACK = 1.4


def intervals(samples: dict, level: float, rng: np.random.Generator | None = None) -> dict:
    """Two-sided interval at `level` for the mean of each statistic at ONE checkpoint.

    `samples` maps a statistic's name to its K per-mini-batch values (the same K >= 2 for all).
    Returns {name: (mean, lo, hi)}; each end is a one-sided bound at level (1 + level)/2 (equal
    tails). The interval is the union of two, so it is never shorter than the first on either side:
    - Student t: mean -/+ t_{K-1, (1+level)/2} s/sqrt(K), exact for normal values and conservative
      for symmetric heavy tails, but short on the long side of skewed values;
    - Hall (1992, "On the removal of skewness by transformation"): T = sqrt(K) (mean - mu)/s has the
      Edgeworth expansion P(T <= x) = Phi(x) + K^-1/2 (gamma/6)(2x^2 + 1) phi(x) + O(1/K), gamma the
      skewness of one value; the monotone map h(t) = t + a t^2 + a^2 t^3/3 + a/2, a = gamma/(3
      sqrt(K)), removes the K^-1/2 term, so mu lies in [mean - s/sqrt(K) h^-1(q), mean - s/sqrt(K)
      h^-1(-q)] with h^-1(y) = ((1 + 3a(y - a/2))^(1/3) - 1)/a, q = t_{K-1, (1+level)/2} and gamma
      estimated by the adjusted sample skewness G1 = g1 sqrt(K(K-1))/(K-2).
    Hall's side toward the skew is the longer one; his short side (and a false skew read from one
    outlier of a heavy-tailed sample) is what the t floor guards. Measured: experiments/coverage.py.
    The method draws nothing: `rng` is accepted so that callers need not know whether it resamples.
    Values all equal (s = 0) give the point interval [mean, mean]."""
    level = checks.real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if not isinstance(samples, dict) or not samples:
        raise ValueError(
            "samples must be a non-empty dict {statistic name: its K per-mini-batch values}"
        )
    rows = {name: _sample_row(name, v) for name, v in samples.items()}
    k = {v.size if v.ndim == 1 else -1 for v in rows.values()}
    if (
        len(k) != 1 or min(k) < 2
    ):  # K = 1 would give a zero-width interval: a bound with no confidence
        raise ValueError(
            f"every statistic needs the same number K >= 2 of samples (one 1-D sequence each), got "
            f"sizes {sorted(k)}"
        )
    bad = [name for name, v in rows.items() if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"samples must be finite, got non-finite values in {bad}")
    mean, lo, hi = t_hall(np.stack(list(rows.values())), level)
    return {name: (float(m), float(a), float(b)) for name, m, a, b in zip(rows, mean, lo, hi)}


def _sample_row(name: Any, values: Any) -> Any:
    """One statistic's samples as a float64 array, or ValueError naming it (numpy's own errors for
    strings, complex numbers or a set do not say which statistic); None entries read as NaN, which
    the finiteness check refuses."""
    return checks.real_array(f"samples[{name!r}]", values, noun="a sequence", none_as_nan=True)


def t_hall(x: Any, level: Any, rng: Any = None, adjust: Any = True, floor: Any = True) -> Any:
    """(mean, lo, hi) arrays for the rows of x, shape (M, K): the interval of `intervals`,
    vectorised. For the comparisons of experiments/coverage.py: adjust=False estimates the
    skewness by g1 instead of G1, floor=False gives Hall's interval alone (without the Student-t
    floor)."""
    from scipy.special import stdtrit  # Student t quantiles (scipy.stats is a slow import)

    x = np.asarray(x, dtype=np.float64)
    k = x.shape[-1]
    # each row divided by the power of two at its largest |value|: the sums and moments below
    # neither overflow (values near 1e308) nor underflow to a zero spread (subnormal values); a
    # power of two divides exactly, so rows in the normal range get the same bits as unscaled
    # (by its exponent: 2**1024, the power at a value >= 2**1023, is no float64 but inf, and the
    # rows came back nan)
    top = np.abs(x).max(-1) if k else np.ones(x.shape[:-1])
    exponent = np.frexp(np.where(top > 0, top, 1.0))[1]
    x = np.ldexp(x, -exponent[..., None])
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

    def h_inv(y: Any) -> Any:
        small = np.abs(a) < 1e-12  # a -> 0: h is the identity
        safe = np.where(small, 1.0, a)
        return np.where(small, y, (np.cbrt(1 + 3 * safe * (y - safe / 2)) - 1) / safe)

    if not floor:
        lo, hi = mean - se * h_inv(q), mean - se * h_inv(-q)
    else:
        lo, hi = mean - se * np.maximum(q, h_inv(q)), mean - se * np.minimum(-q, h_inv(-q))
    with np.errstate(over="ignore"):  # an end past 1.8e308 is +-inf: unbounded there, honestly
        return np.ldexp(mean, exponent), np.ldexp(lo, exponent), np.ldexp(hi, exponent)


def simulated_coverage(
    Ks: Any,
    level: float,
    law: str,
    trials: int,
    rng: np.random.Generator,
    methods: Any = None,
    chunk: int | None = None,
) -> dict:
    """Coverage of interval methods over N = len(Ks) checkpoints, measured on data from a known law.

    Each of `trials` simulated runs draws Ks[i] values at checkpoint i from REFERENCE_LAWS-style
    `law` (a name there, or a (draw(rng, shape), mean) pair) and asks each method for its interval
    at `level`. `methods` maps a name to f(x (M, K), level, rng) -> (mean, lo, hi) (default:
    {INTERVAL_METHOD: t_hall}), all evaluated on the same draws. Returns {name: {coverage, se,
    lower, upper, width}}: coverage is the fraction of runs where all N intervals contain the mean,
    se its Monte-Carlo standard error, lower/upper the fraction where all N lower/upper ends hold,
    width the mean of hi - lo.
    """
    draw, mu = REFERENCE_LAWS[law] if isinstance(law, str) else law
    methods = methods or {INTERVAL_METHOD: t_hall}
    groups: dict = {}
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
                ok[name] &= np.stack(
                    [((lo <= mu) & (hi >= mu)).all(1), (lo <= mu).all(1), (hi >= mu).all(1)]
                )
                sums[name][3] += (hi - lo).sum() / len(Ks)
        for name in methods:
            sums[name][:3] += ok[name].sum(1)
        done += c
    out = {}
    for name, (both, lower, upper, width) in sums.items():
        cov = both / trials
        out[name] = {
            "coverage": float(cov),
            "se": math.sqrt(cov * (1 - cov) / trials),
            "lower": float(lower / trials),
            "upper": float(upper / trials),
            "width": float(width / trials),
        }
    return out


def observed_laws(records: Any) -> dict:
    """Laws as skewed and as long-tailed as this run's own per-batch values, for `interval_check`.

    Per statistic, the median over checkpoints of (a) the adjusted sample skewness |G1| and, for a
    statistic whose values are all positive (second moments, noise norms), (b) the standard
    deviation of log(values); the largest over statistics gives a gamma law of that skewness and a
    lognormal of that log-sd. Two laws because equal skewness does not mean equal risk: a
    lognormal's tail is longer than a gamma's, and it is what positive squared norms tend to look
    like. Medians, not maxima, because a maximum over N noisy estimates from K values each is biased
    upward. Empty without K >= 3.
    """
    skew: dict = {}
    logsd: dict = {}
    for r in records:
        for name, v in r["samples"].items():
            x = np.asarray(v, dtype=np.float64)
            k = x.size
            if k < 3:
                continue
            dev = x - x.mean()
            m2, m3 = (dev**2).mean(), (dev**3).mean()
            skew.setdefault(name, []).append(
                abs(m3 / m2**1.5 * math.sqrt(k * (k - 1)) / (k - 2)) if m2 > 0 else 0.0
            )
            if (x > 0).all():
                logsd.setdefault(name, []).append(float(np.log(x).std(ddof=1)))
    laws = {}
    gamma = max((float(np.median(v)) for v in skew.values()), default=0.0)
    if gamma > 0.1:
        shape = 4.0 / gamma**2  # a gamma law's skewness is 2/sqrt(shape)
        laws[f"observed skewness {gamma:.2g} (gamma)"] = (
            (lambda rng, size: rng.gamma(shape, 1.0, size)),
            shape,
        )
    sigma = max((float(np.median(v)) for v in logsd.values()), default=0.0)
    if sigma > 0.05:
        laws[f"observed log-sd {sigma:.2g} (lognormal)"] = (
            (lambda rng, size: rng.lognormal(0.0, sigma, size)),
            math.exp(sigma**2 / 2),
        )
    return laws


def interval_check(
    Ks: Any, level: Any, confidence: Any, trials: Any, rng: Any, observed: Any = None
) -> dict:
    """What fit_run records about its intervals: the method, the level, and their coverage measured
    at this run's N = len(Ks) and K on REFERENCE_LAWS and on the `observed` laws
    (`observed_laws`: as skewed and as long-tailed as this run's own values). The reference laws
    stand for the data's kind, the observed ones for these data: values as skewed as lognormal(0,
    1) pass the reference laws at K = 24 but are covered only ~84 % of the time, and the observed
    lognormal says so. adequate: every law's measured miss rate is at most COVERAGE_SLACK
    (1 - confidence); otherwise `note` says which law fell short and asks for a larger K."""
    laws = dict(REFERENCE_LAWS, **(observed or {}))
    coverage = {
        law: simulated_coverage(Ks, level, spec, trials, rng)[INTERVAL_METHOD]
        for law, spec in laws.items()
    }
    floor = 1 - COVERAGE_SLACK * (1 - confidence)
    short = {law: c["coverage"] for law, c in coverage.items() if c["coverage"] < floor}
    note = ""
    if short:
        note = (
            f"K = {min(Ks)} mini-batches is too small for simultaneous {confidence:.0%} intervals "
            f"over {len(Ks)} checkpoints: measured coverage "
            + ", ".join(f"{c:.1%} on {law}" for law, c in short.items())
            + f" (below {floor:.1%}); raise K"
        )
    return {
        "method": INTERVAL_METHOD,
        "per_checkpoint_level": level,
        "confidence": confidence,
        "coverage": {law: {k: c[k] for k in ("coverage", "se")} for law, c in coverage.items()},
        "trials": trials,
        "floor": floor,
        "adequate": not short,
        "note": note,
    }


def _constants(
    c1: Any, grad_sq: Any, moment: Any, L: Any, delta: Any, T: Any, bounded: Any = None
) -> Any:
    """c1 with the (c2, c3) frontier of (grad_sq, moment), its best pair for Theorem 1, cap and
    step.

    Theorem 2 has the same form with the tilde constants (bounds.theorem2_bound is theorem1_bound,
    eta_0 = c~1/(L c~3)), so one function serves both assumptions. Every key is always there: where
    there is no number, the value is None and a `*_reason` key says why. `bounded` (the reason)
    marks directions of bounded norm (LMO steps): their pair is c3 = 0 with c2 the largest moment,
    no cap.
    """
    out = {"c1": c1, "holds": c1 > 0}
    out["frontier"], why = jsonable_frontier(c2_c3_frontier(grad_sq, moment))
    if why:
        out["frontier_reason"] = why
    out.update(c2=None, c3=None, step_cap=None, eta=None, bound=None, branch=None)
    if c1 <= 0:
        out["pair_reason"] = (
            f"c1 = {c1:.4g} <= 0: the alignment (eq. 27/43) fails at a checkpoint, so Theorem 1/2 "
            "gives no step and no bound"
        )
    elif L is None:
        out["pair_reason"] = (
            "no smoothness pairs were measured: L (Assumption 1) is unknown, so eq. 30-32 have no "
            "value"
        )
    elif L <= 0:
        out["pair_reason"] = (
            f"L = {L:.4g} <= 0: eq. 4's ratio is <= 0 on every measured pair (f curves down along "
            "them), so no L > 0 is measured and eq. 30-32 have no value"
        )
    elif bounded and float(np.max(moment)) > 0:
        c2 = float(np.max(moment))
        bound, eta = bounds.theorem1_bound_no_cap(c1, c2, L, delta, T)
        out.update(
            c2=c2,
            c3=0.0,
            eta=eta,
            bound=bound,
            branch="balanced",
            c3_is_limit=True,
            step_cap_reason=bounded,
        )
    else:
        best = best_c2_c3(grad_sq, moment, c1, L, delta, T)
        out.update({k: best[k] for k in ("c2", "c3", "step_cap", "eta", "bound", "branch")})
        if best["step_cap"] is None:
            out["c3_is_limit"] = (
                True  # c3 = 0 is the limit c3 -> 0+, not a measured pair (Assumption 5 asks c3 > 0)
            )
            out["step_cap_reason"] = best["step_cap_reason"]
    if out["step_cap"] is None and "step_cap_reason" not in out:
        out["step_cap_reason"] = out["pair_reason"]
    return out


def _peak_lr(lr_used: Any, records: Any, T: Any) -> Any:
    """(the run's largest lr or None, where it comes from or why there is none, the checkpoints'
    largest)."""
    seen = max(float(r["lr"]) for r in records)
    if lr_used is None:
        steps = {int(r["step"]) for r in records}
        if steps >= set(range(T)):
            return (
                max(float(r["lr"]) for r in records if r["step"] < T),
                "observed at every step",
                seen,
            )
        return (
            None,
            (
                "lr_used was not given and the checkpoints saw the lr at "
                f"{len(steps & set(range(T)))} of the T = {T} steps, so the run's largest lr (e.g. "
                "a warm-up's peak) may lie between them; pass lr_used = the peak lr, a callable t "
                "-> lr, or the T per-step lrs"
            ),
            seen,
        )
    if callable(lr_used):
        values = [checks.real(f"lr_used({t})", lr_used(t), low=0) for t in range(T)]
        source = "the schedule lr_used(t), t = 0..T-1"
    elif (
        isinstance(lr_used, (list, tuple, range)) or getattr(lr_used, "ndim", 0) >= 1
    ):  # numpy, torch
        values = [checks.real(f"lr_used[{t}]", v, low=0) for t, v in enumerate(lr_used)]
        if len(values) != T:
            raise ValueError(
                f"lr_used as a sequence must hold the lr of each of the T = {T} steps, "
                f"got {len(values)} values"
            )
        source = "the T per-step lrs (lr_used)"
    else:
        number = isinstance(lr_used, numbers.Real) or hasattr(
            lr_used, "ndim"
        )  # numpy, torch scalars
        if isinstance(lr_used, (str, bytes, bool)) or not number:
            raise ValueError(
                "lr_used must be the run's peak lr (a number >= 0), a callable t -> lr or the T "
                f"per-step lrs, got {type(lr_used).__name__}"
            )
        values = [checks.real("lr_used", lr_used, low=0)]
        source = "stated (lr_used)"
    peak = max(values)
    if len(values) > 1:
        source += f", largest at step {values.index(peak)}"
    if seen > peak * (1 + 1e-9):
        raise ValueError(
            f"lr_used gives a largest lr of {peak:.6g}, but the lr at a checkpoint was {seen:.6g}: "
            "lr_used must be (or give) the run's largest lr, the one compared with Theorem 1's "
            "step cap"
        )
    return peak, source, seen


def _delta(records: Any, loss_lower_bound: Any) -> Any:
    """(delta = f(theta_0) - f*, the lower bound on f* used, where it comes from), checked against
    every loss."""
    losses = [(float(r["loss"]), r["step"]) for r in records]
    low, at = min(losses)
    if loss_lower_bound is None:
        bound, source = (
            0.0,
            "the default, right for a non-negative loss (cross-entropy, squared error)",
        )
        if low < 0:
            raise ValueError(
                f"the loss measured at step {at} is negative ({low:.6g}), so the default lower "
                "bound f* >= 0 does not hold: pass loss_lower_bound (f* or a lower bound on it; "
                "delta = f(theta_0) - f* is then taken with it)"
            )
    else:
        bound, source = (
            checks.real("loss_lower_bound", loss_lower_bound),
            "stated (loss_lower_bound)",
        )
        if low < bound:
            raise ValueError(
                f"loss_lower_bound = {bound:.6g} is above the loss measured at step {at} "
                f"({low:.6g}): it is not a lower bound on f*; pass a value <= every loss the run "
                "can reach"
            )
    delta = losses[0][0] - bound
    if not delta > 0:
        raise ValueError(
            f"loss_lower_bound = {bound:.6g} equals the loss at the first checkpoint: "
            "delta = f(theta_0) - f* must be > 0 for eq. 31-32 (with delta = 0 they give no step)"
        )
    return delta, bound, source


def bounded_reason(method: str) -> str:
    """Why Theorem 1's step cap is not reported for a method whose directions have bounded norm (an
    LMO step)."""
    why = (
        f"{method}'s directions have bounded norm whatever the gradient (an LMO step: ||d|| <= 1 "
        "in its own norm), so E||d||^2 <= c2 holds at every step with c3 = 0, not only at the "
        "checkpoints: Theorem 1 then needs no step condition (eq. 30's c1/(L c3) is unbounded) "
        "and its step is eq. 32's balanced branch; the frontier's c3 > 0 pairs would only fit the "
        "gradient sizes the checkpoints saw"
    )
    if method == "clipped":
        why += (
            "; the clipped step's own analysis (Pethick, Xie et al. 2025, arXiv 2506.01913) uses "
            "(L0, L1)-smoothness: see smoothness.l0_l1_frontier"
        )
    return why


def _geometry(records: Any) -> dict | None:
    """What the records measured: None for the paper's forms (LPSGD/LPSGDM in their own lp norm,
    phi = ||grad f||_2^2; records without these keys are such), else the method, its norms,
    phi = ||grad f||_*^2."""
    kinds: set[tuple]
    kinds = {
        ("l2",)
        if r.get("phi", "l2") == "l2"
        # a run resumed from records without these keys is one run
        else (
            r.get("method"),
            r["phi"],
            r.get("directions", "scaled"),
            r.get("norm_from", "method"),
        )
        for r in records
    }
    if len(kinds) > 1:
        raise ValueError(
            f"the records measure different methods or geometries {sorted(map(str, kinds))}: fit "
            "each run (one method in one kind of geometry) on its own"
        )
    kind = kinds.pop()
    if kind == ("l2",):
        return None
    method, phi, directions, norm_from = kind
    if phi != "dual":
        raise ValueError(f"a record's phi must be 'l2' or 'dual', got {phi!r}")
    norms = list(dict.fromkeys(r["norm"] for r in records))
    out = {
        "method": method,
        "optimizer": records[0].get("optimizer"),
        "source": records[0].get("source"),
        "norms": norms,
        "norm_from": norm_from,
        "phi": "||grad f||_*^2 (the dual norm of each checkpoint's norm)",
        "directions": directions,
    }
    fallbacks = sorted({r["fallback"] for r in records if r.get("fallback")})
    if fallbacks:
        out["fallback"] = fallbacks
    return out


def _phi(r: Any) -> float:
    """The gradient measure of eq. 27-28 (the frontier's x): ||grad f||_2^2 in the paper's forms,
    else ||grad f||_*^2."""
    return float(r["grad_sq"]) if r.get("phi", "l2") == "l2" else float(r["grad_norm_q"]) ** 2


@dataclass(kw_only=True)
class FitResult(JsonRecord):
    """What `fit_run` returns (constants.json's "fit"), typed: `FitResult.from_dict(fit_run(...))`,
    and `to_dict()` is that JSON key for key. The nested objects (each assumption's constants,
    the smoothness and noise summaries, the per-checkpoint rows) stay dicts, as `fit_run`
    documents them. delta_from, lr_source and lr_max_at_checkpoints are ABSENT only in reports
    written before they were recorded (estimate-cpu)."""

    sample_sizes: dict[str, Any]
    delta: float
    delta_from: dict[str, Any] | Absent = ABSENT
    lr_max: float | None
    lr_source: str | None | Absent = ABSENT
    lr_max_at_checkpoints: float | None | Absent = ABSENT
    assumption5: dict[str, Any]
    assumption6: dict[str, Any] | None
    smoothness: dict[str, Any]
    noise: dict[str, Any]
    checkpoints: list[dict[str, Any]]
    assumption6_reason: str | Absent = ABSENT
    geometry: dict[str, Any] | Absent = ABSENT
    lr_note: str | Absent = ABSENT


def fit_run(
    records: Sequence[Mapping[str, Any]],
    T: int,
    confidence: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
    lr_used: float | Sequence[float] | Callable[[int], float] | None = None,
    loss_lower_bound: float | None = None,
) -> dict:
    """Assumptions 1, 3, 5 and 6 fitted over the checkpoints of one run of T optimizer steps.

    Confidence: every checkpoint i gets an interval [lo_i, hi_i] for the mean of each statistic over
    its K mini-batches (`intervals`: Student t, stretched on the skewed side by Hall's
    transformation), at the level 1 - (1 - confidence)/N for N checkpoints (Bonferroni over
    checkpoints: no assumption on how they depend on each other). The claim is per statistic: its N
    two-sided intervals hold at once with probability `confidence` (measured at N = 20, K = 32 for
    95 %: 96-98 % on normal and Student-t(3) values, 94.6 % on gamma(2), 93 % on log-normal(0, 0.5),
    85 % on log-normal(0, 1)); each constant below uses one end of one statistic's N intervals, so
    each constant, on its own, holds with at least that probability:
    - c1 (c~1) = min_i lo_i of the alignment ratio: a lower confidence bound on eq. 27 (eq. 43);
    - (c2, c3) ((c~2, c~3)): the exact frontier of pairs with hi_i(moment) <= c2 + c3 ||grad
      f_i||_2^2 at every checkpoint (eq. 28 / 44 on upper confidence bounds), and the frontier pair
      minimising the Theorem 1 (2) bound for this T with c1 and L (`best_c2_c3`), with its step cap
      c1/(L c3) (eq. 30; None with `step_cap_reason` when the best pair is the limit c3 -> 0) and
      step (eq. 32 / 47);
    - sigma^2 = max_i hi_i of ||g - grad f||_q^2 (Assumption 3).
    Several constants at once hold with probability >= 1 - S (1 - confidence) for S of them
    (Bonferroni; e.g. 90 % for Theorem 1's c1 with (c2, c3)); ask for confidence 1 - (1 - c)/S to
    have all S at c. Why two-sided intervals although each constant reads one end: the end a
    constant reads is the statistic's long tail (alignment skews left, moments and noise right),
    where every method measured misses about twice its nominal rate at these levels and K; one-sided
    bounds at 1 - (1 - confidence)/N held for all N checkpoints in 91.5 % of runs for 95 % on
    gamma(2) values at N = 20, K = 32, the end of the two-sided interval in 94.9 %
    (experiments/results/coverage). The coverage is not a theorem (no interval for the mean of an
    unbounded law is; Bahadur and Savage 1956): `sample_sizes["interval"]` records the coverage
    measured at this run's N, K and level on normal, Student-t(3) and gamma(2) values (`resamples`
    simulated runs each, seeded by `seed`) and `adequate` False with a note when it falls below 1 -
    1.4 (1 - confidence) (93 % for 95 %): K too small for the claim. The same fit on the plain means
    ("estimate") is reported beside it. Why this scheme: each constant is an extreme (min or max)
    over checkpoints, so it is only as good as the worst interval: hence simultaneous intervals. The
    mini-batches are the only independent draws at a checkpoint; the per-batch values (ratios, norms
    of nonlinear maps) are not Gaussian: hence an interval that corrects for their skewness (the
    percentile bootstrap used before covered 88 % on normal, 79-80 % on gamma(2) and 44-50 % on
    log-normal(0, 1) values at (N, K) = (12, 24), (20, 32)).

    L is Assumption 1 as the theorems use it, eq. 4: the largest quadratic-form ratio 2 (f(y) - f(x)
    - <grad f(x), y - x>) / ||y - x||_p^2 over all measured pairs (both bases). It is a lower bound
    on the true L (a supremum), so the step cap above is optimistic (an upper bound on the cap the
    true L gives). It has no interval: it is exact for the pairs measured. The gradient form
    (L_grad, a lower bound on the Lipschitz constant of grad f from p to q, which can exceed eq. 4's
    L) and the (L0, L1) frontier are reported beside it.

    Any method in its own geometry (records of `Probe.measure` with phi = 'dual'): the same fit with
    ||grad f||_2^2 replaced by phi = ||grad f||_*^2 (the dual of each checkpoint's norm: the
    frontier's x), the moment ||d||^2, L and the pairs in that norm and sigma in its dual;
    `geometry` says which. Theorem 1's proof holds verbatim in any norm (its descent step uses L and
    ||d|| in one norm, eq. 27-28 one measure phi of the gradient), so the cap c1/(L c3) is reported
    for every method whose directions scale with the gradient; for directions of bounded norm (LMO
    steps: sign, Lion, Scion, the clipped step) the pair is c3 = 0 with c2 the largest moment and no
    cap (`step_cap_reason` says why). Assumption 6 is LPSGDM's alone (its second direction); another
    method's direction is in `assumption5`.

    delta = f(theta_0) - f*, with f(theta_0) the loss at the first checkpoint and f* replaced by
    `loss_lower_bound` (default 0, right for a non-negative loss such as cross-entropy). A lower
    bound on f* over-estimates delta, which only loosens eq. 31 and the balanced step: the safe
    direction. A measured loss below the bound (or below 0 with the default) is a ValueError.

    The cap is compared with the run's largest lr (`lr_within_cap`). `lr_used` gives it: a number
    (the peak), a callable t -> lr (evaluated at t = 0..T-1) or the T per-step lrs (e.g. a torch
    scheduler's get_last_lr() recorded at every step). Without it the comparison is made only when
    the checkpoints saw every step's lr; otherwise `lr_within_cap` is None with the reason (a
    warm-up's peak can fall between checkpoints).
    """
    from lpcheck.estimate import smoothness  # smoothness builds on this module's frontier

    records, T, resamples, seed = _check_fit_args(records, T, confidence, resamples, seed)
    n = len(records)
    geometry = _geometry(records)
    bounded = (
        bounded_reason(records[0]["method"]) if records[0].get("directions") == "bounded" else None
    )
    delta, f_low, f_low_source = _delta(records, loss_lower_bound)
    lr_max, lr_source, lr_seen = _peak_lr(lr_used, records, T)
    level = 1 - (1 - confidence) / n
    rng = np.random.default_rng(seed)
    per = _checkpoint_rows(records, level, geometry)
    grad_sq = np.array(
        [_phi(r) for r in records]
    )  # the frontier's x: phi of eq. 27-28 in the records' geometry
    pairs = [pr for r in records for pr in r.get("pairs", [])]
    L_grad = max((pr["grad_ratio"] for pr in pairs), default=None)
    L_quad = max((max(pr["quad_xy"], pr["quad_yx"]) for pr in pairs), default=None)
    L = L_quad  # eq. 4, the form Lemma 1 uses

    def assumption(align: Any, moment: Any) -> Any:
        return _assumption(per, align, moment, grad_sq, L, delta, T, bounded, lr_max, lr_source)

    l0_l1, l0_l1_reason = (
        jsonable_frontier(
            smoothness.l0_l1_frontier(
                [pr["grad_norm_q"] for pr in pairs], [pr["grad_ratio"] for pr in pairs]
            )
        )
        if pairs
        else (None, "no smoothness pairs were measured")
    )
    out = {
        "sample_sizes": {
            "checkpoints": n,
            "K": [r["K"] for r in records],
            "resamples": resamples,
            "pairs": len(pairs),
            "confidence": confidence,
            "per_checkpoint_level": level,
            "T": T,
            "seed": seed,
        },
        "delta": delta,
        "delta_from": {
            "f_theta0_step": records[0]["step"],
            "f_theta0": float(records[0]["loss"]),
            "loss_lower_bound": f_low,
            "source": f_low_source,
        },
        "lr_max": lr_max,
        "lr_source": lr_source,
        "lr_max_at_checkpoints": lr_seen,
        "assumption5": assumption("align", "moment"),
        "assumption6": (
            assumption("align_m", "moment_m")
            if all("align_m" in r["samples"] for r in records)
            else None
        ),
        "smoothness": {
            "L": L,
            "L_grad": L_grad,
            "L_quad": L_quad,
            "pairs": len(pairs),
            "l0_l1_frontier": l0_l1,
        },
        "noise": {
            "sigma_sq": max(c["noise"]["hi"] for c in per),
            "sigma_sq_estimate": max(c["noise"]["mean"] for c in per),
        },
        "checkpoints": per,
    }
    _add_reasons(out, records, geometry, l0_l1_reason)
    out["noise"]["sigma"] = math.sqrt(out["noise"]["sigma_sq"])
    out["sample_sizes"]["interval"] = interval_check(
        [r["K"] for r in records],
        level,
        confidence,
        resamples,
        rng,
        observed=observed_laws(records),
    )
    return out


def _check_fit_args(records: Any, T: Any, confidence: Any, resamples: Any, seed: Any) -> Any:
    """(records as a list, T, resamples, seed) checked, with every record's loss and lr, before any
    fitting."""
    records = list(records)
    if len(records) < 1:
        raise ValueError("fit_run needs at least one checkpoint record")
    T = checks.integer("T", T, low=1)
    checks.real("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    resamples = checks.integer("resamples", resamples, low=100)
    seed = checks.integer("seed", seed, low=0)
    for r in records:
        checks.real(f"the loss at step {r.get('step')}", r["loss"])
        checks.real(f"the lr at step {r.get('step')}", r["lr"], low=0)
    return records, T, resamples, seed


def _checkpoint_rows(records: Any, level: Any, geometry: Any) -> list[dict]:
    """One row per checkpoint: its settings, gradient norms and each statistic's mean with its
    interval at `level`."""
    per = []
    for r in records:
        iv = intervals(r["samples"], level)
        per.append(
            {
                "step": r["step"],
                "epoch": r["epoch"],
                "p": r["p"],
                "lr": r["lr"],
                "K": r["K"],
                "loss": r["loss"],
                "grad_sq": r["grad_sq"],
                "grad_norm_q": r["grad_norm_q"],
                **({"grad_dual_sq": _phi(r)} if geometry else {}),
                **{name: {"mean": m, "lo": lo, "hi": hi} for name, (m, lo, hi) in iv.items()},
            }
        )
    return per


def _assumption(
    per: list[dict],
    align: str,
    moment: str,
    grad_sq: np.ndarray,
    L: float | None,
    delta: float,
    T: int,
    bounded: str | None,
    lr_max: float | None,
    lr_source: str | None,
) -> dict:
    """Assumption 5 (or 6) from the statistics `align` and `moment`: the constants on the intervals'
    ends (conservative) with the same on the plain means beside them ("estimate"), and the run's
    peak lr against the cap."""
    lo = min(c[align]["lo"] for c in per)
    point = min(c[align]["mean"] for c in per)
    conservative = _constants(
        lo, grad_sq, np.array([c[moment]["hi"] for c in per]), L, delta, T, bounded
    )
    estimate = _constants(
        point, grad_sq, np.array([c[moment]["mean"] for c in per]), L, delta, T, bounded
    )
    conservative["lr_within_cap"] = None
    if conservative.get("c3_is_limit"):
        conservative["lr_within_cap_reason"] = "no step cap: " + conservative["step_cap_reason"]
    elif conservative["step_cap"] is None:
        conservative["lr_within_cap_reason"] = (
            "no step cap to compare with: " + conservative["step_cap_reason"]
        )
    elif lr_max is None:
        conservative["lr_within_cap_reason"] = lr_source
    else:
        conservative["lr_within_cap"] = lr_max <= conservative["step_cap"]
    return {**conservative, "estimate": estimate}


def _add_reasons(out: Any, records: Any, geometry: Any, l0_l1_reason: Any) -> None:
    """The reasons beside what was not measured (None values), the geometry, and the note on mixed
    lrs."""
    if out["smoothness"]["L"] is None:
        out["smoothness"]["L_reason"] = "no smoothness pairs were measured"
    if l0_l1_reason:
        out["smoothness"]["l0_l1_frontier_reason"] = l0_l1_reason
    if out["assumption6"] is None and geometry is None:
        out["assumption6_reason"] = (
            "no momentum statistics (LPSGD has no momentum buffer): Assumption 6 is not measured"
        )
    elif out["assumption6"] is None:
        out["assumption6_reason"] = (
            f"Assumption 6 (eq. 43-44) is LPSGDM's second direction v; {geometry['method']}'s "
            "one direction d, with its state before the step fixed (F_t, as eq. 43-44 "
            "condition), is measured under assumption5"
        )
    if geometry is not None:
        out["geometry"] = geometry
    if any(len({g["lr"] for g in r.get("groups", [])}) > 1 for r in records):
        out["lr_note"] = (
            "the param groups use different lrs: Theorems 1-2 have one step size for every "
            "coordinate, so the cap is compared with the largest group lr, and the theorems do not "
            "cover the smaller steps of the other groups as stated"
        )
