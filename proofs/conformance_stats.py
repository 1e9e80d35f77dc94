"""Conformance of the estimators' and the rates' statistics: what `lpcheck estimate` and
`lpcheck rates` report.

Each check computes the statistic again from its definition in numpy/scipy, sharing no code with
lpcheck, on fixed
data (seeded draws with mixed signs and magnitudes): eq. 27-28 and 43-44 with eq. 21, Assumption 3's
noise in the dual norm, the per-checkpoint interval (Student t joined with Hall's skewness
correction, its inverse found by a root finder rather than the closed form) at the Bonferroni level
1 - (1 - confidence)/N and the constants read from it, Assumption 1's smoothness ratios, the log-log
slope with its jackknife-t and studentized-bootstrap interval, and the Theorem 1 step and bound
check (eq. 30-32) against a search over the (c2, c3) pairs."""

import math

import numpy as np
from hypothesis import strategies as st

from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall

# what these checks exercise (see conformance.CODE_CHECKED; read by experiments/mutation.py)
CODE_CHECKED = {
    "lpcheck/estimate/core.py": [
        "_statistics",
        "_align",
        "_moment",
        "_mix",
        "_noise",
        "alignment",
        "alignment_samples",
        "second_moment",
        "second_moment_samples",
        "momentum_directions",
        "momentum_alignment",
        "momentum_alignment_samples",
        "momentum_second_moment",
        "momentum_second_moment_samples",
        "noise",
        "noise_samples",
    ],
    "lpcheck/estimate/fit.py": [
        "intervals",
        "t_hall",
        "fit_run",
        "c2_for",
        "c2_c3_frontier",
        "_walk",
        "best_c2_c3",
        "_segment_candidates",
        "_constants",
    ],
    "lpcheck/estimate/smoothness.py": [
        "_geometry",
        "_pair",
        "gradient_ratio",
        "quadratic_ratio",
        "pair_statistics",
        "quadratic_lp_smoothness",
    ],
    "lpcheck/rates/fit.py": ["fit_slope", "_slopes", "_jackknife_se"],
    "lpcheck/rates/constants.py": ["theorem_step", "bound_check", "Constants.__init__"],
    "lpcheck/bounds.py": ["theorem1_rhs"],
}
SEEDS = st.integers(0, 2**32 - 1)


def _draw(rng, shape):
    v = rng.standard_normal(shape) * 10.0 ** rng.uniform(-2, 2, shape[-1:])
    v[rng.random(shape) < 0.1] = 0.0
    return v


def _rescale(g, p, eps):
    rho = 1.0 if p == math.inf else (p - 2) / (p - 1)
    return g / (np.abs(g) + eps) ** rho


def _norm(x, p):
    return np.abs(x).max(-1) if p == math.inf else (np.abs(x) ** p).sum(-1) ** (1 / p)


def _dual(p):
    return 1.0 if p == math.inf else p / (p - 1)


def _close(a, b, rel=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rel * np.abs(b) + 1e-300))


# --- eq. 27-28, 43-44, Assumption 3
# -------------------------------------------------------------------------


def check_estimators(est, core):
    def prop(seed, p, eps, beta):
        rng = np.random.default_rng(seed)
        K, d = 6, 5
        G, f, m = _draw(rng, (K, d)), _draw(rng, (d,)), _draw(rng, (d,))
        if not f.any():
            f[0] = 1.0
        f_sq = float(f @ f)
        U = _rescale(G, p, eps)
        V = _rescale(beta * m + (1 - beta) * G, p, eps)  # eq. 41-42 with m_{t-1} fixed
        want = {
            "align": U @ f / f_sq,
            "moment": _norm(U, p) ** 2,
            "noise": _norm(G - f, _dual(p)) ** 2,
            "noise_l2": ((G - f) ** 2).sum(-1),
            "align_m": V @ f / f_sq,
            "moment_m": _norm(V, p) ** 2,
        }
        got = core._statistics(f, f_sq, G, p, eps, m, beta)  # the Probe's per-batch path
        ok = all(_close(got[k], want[k]) for k in want)
        ok &= _close(est.alignment(f, G, p, eps), want["align"].mean())
        ok &= _close(est.second_moment(G, p, eps), want["moment"].mean())
        ok &= _close(est.momentum_alignment(f, G, m, beta, p, eps), want["align_m"].mean())
        ok &= _close(est.momentum_second_moment(G, m, beta, p, eps), want["moment_m"].mean())
        ok &= _close(est.noise(f, G, p), want["noise"].mean())
        return bool(ok)

    return numeric_forall(
        prop,
        {
            "seed": SEEDS,
            "p": st.sampled_from([2.0, 3.0, 6.0, 17.0, math.inf]),
            "eps": st.sampled_from([1e-8, 1e-3, 1.0]),
            "beta": st.sampled_from([0.0, 0.5, 0.9]),
        },
        statement="estimate.alignment/second_moment (eq. 27-28), momentum_alignment/"
        "momentum_second_moment (eq. 43-44, m_{t-1} fixed), noise (Assumption 3, dual "
        "norm) and the Probe's per-sample core._statistics = numpy from the definitions",
        tolerance="1e-12 relative",
        max_examples=30,
    )


@obligation(
    "conf.estimate.statistics",
    "lpcheck.estimate computes eq. 27-28, eq. 43-44 and Assumption 3's noise "
    "(the public functions and the Probe's per-sample path)",
    "21, 27, 28, 41-44, 6",
    kind="conformance",
)
def conf_estimators():
    from lpcheck import estimate
    from lpcheck.estimate import core

    return check_estimators(estimate, core)


# --- intervals, the Bonferroni level, the constants read from them
# -----------------------------------------


def reference_interval(x, level):
    """Student t at level, joined with Hall's transformation h(t) = t + a t^2 + a^2 t^3/3 + a/2 (a =
    G1/(3 sqrt K)), whose inverse is found by a root finder."""
    from scipy import optimize, stats

    K = x.size
    mean, s = x.mean(), x.std(ddof=1)
    se = s / math.sqrt(K)
    G1 = float(stats.skew(x, bias=False)) if K > 2 and s > 0 else 0.0
    q = float(stats.t.ppf((1 + level) / 2, K - 1))
    a = G1 / (3 * math.sqrt(K))

    def h_inv(y):
        if abs(a) < 1e-12:
            return y

        def h(t):  # monotone: h' = (1 + a t)^2
            return t + a * t * t + a * a * t**3 / 3 + a / 2 - y

        return optimize.brentq(h, -1e6, 1e6, xtol=1e-14, rtol=1e-15)

    return mean, mean - se * max(q, h_inv(q)), mean - se * min(-q, h_inv(-q))


def _record(step, rng, K):
    """A checkpoint record as the Probe writes it, with skewed per-batch values."""
    s = {
        "align": 0.8 + 0.2 * rng.standard_normal(K),
        "moment": rng.gamma(2.0, 1.0, K),
        "noise": rng.lognormal(0.0, 0.5, K),
        "noise_l2": rng.gamma(3.0, 1.0, K),
    }
    g = float(rng.uniform(0.5, 4.0))
    return {
        "step": step,
        "epoch": 1,
        "p": 4.0,
        "lr": 0.01,
        "K": K,
        "loss": 3.0 - step / 100,
        "grad_sq": g,
        "grad_norm_q": g**0.5,
        "samples": {k: v.tolist() for k, v in s.items()},
        "pairs": [],
    }


def check_intervals(fit):
    def prop(seed, N, K, confidence):
        rng = np.random.default_rng(seed)
        recs = [_record(10 * i, rng, K) for i in range(N)]
        out = fit.fit_run(recs, T=1000, confidence=confidence, resamples=100, seed=0)
        level = 1 - (1 - confidence) / N  # Bonferroni over N checkpoints
        ok = math.isclose(out["sample_sizes"]["per_checkpoint_level"], level, rel_tol=1e-15)
        per = {}
        for r, c in zip(recs, out["checkpoints"]):
            for name, v in r["samples"].items():
                m, lo, hi = reference_interval(np.asarray(v), level)
                per.setdefault(name, []).append((lo, hi))
                ok &= _close([c[name]["mean"], c[name]["lo"], c[name]["hi"]], [m, lo, hi], 1e-9)
        a5 = out["assumption5"]
        ok &= math.isclose(
            a5["c1"], min(lo for lo, _ in per["align"]), rel_tol=1e-9
        )  # c1: the least lower end
        ok &= math.isclose(
            out["noise"]["sigma_sq"], max(hi for _, hi in per["noise"]), rel_tol=1e-9
        )
        return bool(ok)

    return numeric_forall(
        prop,
        {
            "seed": SEEDS,
            "N": st.integers(1, 5),
            "K": st.integers(3, 24),
            "confidence": st.sampled_from([0.8, 0.9, 0.95, 0.99]),
        },
        statement="fit_run's per-checkpoint intervals = Student t joined with Hall's skewness "
        "correction (scipy's t quantile and skewness, h inverted by a root finder) at the "
        "level 1 - (1 - confidence)/N; c1 = the least lower end of the alignment, "
        "sigma^2 the largest upper end of the noise",
        tolerance="1e-9 relative",
        max_examples=12,
    )


@obligation(
    "conf.estimate.intervals",
    "lpcheck.estimate.fit's intervals have the stated level with the Bonferroni "
    "correction over checkpoints, and c1 and sigma^2 are read from the right ends",
    "27, 6",
    kind="conformance",
)
def conf_intervals():
    from lpcheck.estimate import fit

    return check_intervals(fit)


class _NoMultiplicity:
    """A mutant fit_run that gives every checkpoint the plain confidence level (no Bonferroni)."""

    def __getattr__(self, name):
        from lpcheck.estimate import fit

        return getattr(fit, name)

    @staticmethod
    def fit_run(records, T, confidence, **kw):
        from lpcheck.estimate import fit

        out = fit.fit_run(records[:1], T, confidence, **kw)  # one checkpoint: level = confidence
        out["sample_sizes"]["per_checkpoint_level"] = 1 - (1 - confidence) / len(records)
        for r in records[1:]:
            out["checkpoints"].append(fit.fit_run([r], T, confidence, **kw)["checkpoints"][0])
        return out


@control(
    "control.conf.intervals_without_bonferroni",
    "intervals at the plain confidence at each checkpoint (no "
    "multiplicity correction) conform to fit_run's stated level",
    "27",
)
def intervals_without_bonferroni():
    return check_intervals(_NoMultiplicity())


# --- Assumption 1's ratios
# --------------------------------------------------------------------------------


def check_smoothness(sm):
    def prop(seed, p):
        rng = np.random.default_rng(seed)
        d = 5
        x, y, gx, gy = (_draw(rng, (d,)) for _ in range(4))
        y = y + (y == x)  # x != y
        fx, fy = rng.standard_normal(2) * 10
        dist, q = _norm(y - x, p), _dual(p)
        want = {
            "dist_p": dist,
            "grad_ratio": _norm(gy - gx, q) / dist,
            "quad_xy": 2 * (fy - fx - gx @ (y - x)) / dist**2,
            "quad_yx": 2 * (fx - fy - gy @ (x - y)) / dist**2,
            "grad_norm_q": min(_norm(gx, q), _norm(gy, q)),
        }
        got = sm.pair_statistics(x, y, fx, fy, gx, gy, p)
        ok = all(_close(got[k], want[k], 1e-11) for k in want)
        ok &= _close(sm.gradient_ratio(x, y, gx, gy, p), want["grad_ratio"], 1e-11)
        ok &= _close(sm.quadratic_ratio(x, y, fx, fy, gx, p), want["quad_xy"], 1e-11)
        lam = (
            np.abs(_draw(rng, (d,))) + 0.01
        )  # a quadratic's exact L: the ratio along the best direction
        dstar = (
            np.ones(d)
            if p == math.inf
            else (lam ** (1 / (p - 2)) if p > 2 else (lam == lam.max()) * 1.0)
        )
        best = float(dstar @ (lam * dstar)) / _norm(dstar, p) ** 2
        ok &= _close(sm.quadratic_lp_smoothness(lam, p), best, 1e-11)
        return bool(ok)

    return numeric_forall(
        prop,
        {"seed": SEEDS, "p": st.sampled_from([2.0, 3.0, 5.0, 12.0, math.inf])},
        statement="estimate.smoothness: ||Dg||_q/||Dtheta||_p, eq. 4's quadratic ratio from both "
        "ends, min ||grad f||_q, and a quadratic's L = its ratio along d_i ~ "
        "lambda_i^(1/(p-2)) = numpy from the definitions",
        tolerance="1e-11 relative",
        max_examples=30,
    )


@obligation(
    "conf.estimate.smoothness",
    "lpcheck.estimate.smoothness computes Assumption 1's ratios in the lp geometry (eq. 4)",
    "4",
    kind="conformance",
)
def conf_smoothness():
    from lpcheck.estimate import smoothness

    return check_smoothness(smoothness)


# --- the rates: slope, interval, step and bound check
# ---------------------------------------------------------


def reference_slope(T, values, seed, n_boot, level):
    """slope of log(mean over seeds) on log T (np.polyfit); the union of jackknife t and the
    studentized bootstrap of the seeds, the resamples drawn as lpcheck draws them (one block)."""
    from scipy import stats

    x = np.log(T)
    slope = np.polyfit(x, np.log(values.mean(0)), 1)[0]
    n = values.shape[0]

    def jack(v):
        s = np.array([np.polyfit(x, np.log(np.delete(v, i, 0).mean(0)), 1)[0] for i in range(n)])
        return math.sqrt((n - 1) / n * ((s - s.mean()) ** 2).sum())

    se = jack(values)
    q = stats.t.ppf((1 + level) / 2, n - 1)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    z = []
    for idx in draws:
        v = values[idx]
        sb, seb = np.polyfit(x, np.log(v.mean(0)), 1)[0], jack(v)
        z.append((sb - slope) / seb if seb > 0 else 0.0)
    q_lo, q_hi = np.quantile(z, [(1 - level) / 2, (1 + level) / 2])
    return slope, min(slope - q * se, slope - q_hi * se), max(slope + q * se, slope - q_lo * se)


def reference_line(T, values):
    """(intercept, residual): np.polyfit's line through log(seed mean) on log T and the largest
    |deviation| from it."""
    x, y = np.log(T), np.log(values.mean(0))
    slope, intercept = np.polyfit(x, y, 1)
    return intercept, float(np.max(np.abs(y - (intercept + slope * x))))


def check_slope(fit_slope):
    def prop(seed, n, k, level):
        rng = np.random.default_rng(seed)
        T = np.cumsum(rng.integers(5, 200, k)).astype(float)
        values = T ** rng.uniform(-1.2, -0.2) * rng.lognormal(0.0, 0.4, (n, k))
        got = fit_slope(T, values, seed=seed % 1000, n_boot=100, level=level)
        want = reference_slope(T, values, seed % 1000, 100, level) + reference_line(T, values)
        return _close([got.slope, got.lo, got.hi, got.intercept, got.residual], want, 1e-9)

    return numeric_forall(
        prop,
        {
            "seed": SEEDS,
            "n": st.integers(3, 8),
            "k": st.integers(3, 6),
            "level": st.sampled_from([0.9, 0.95]),
        },
        statement="rates.fit_slope: the least-squares slope and intercept of log(seed mean) on log "
        "T (np.polyfit), "
        "the largest |log residual|, [lo, hi] = jackknife t (scipy's t quantile) joined with the "
        "studentized bootstrap of seeds, recomputed by loops",
        tolerance="1e-9 relative",
        max_examples=10,
    )


def check_slope_resamples(fit_slope, n=12_000, k=4, n_boot=100, level=0.95):
    """With many seeds fit_slope draws its resamplings in blocks (bounded memory): the n_boot
    resamplings must still be n_boot independent draws of default_rng(seed), as one draw of (n_boot,
    n) gives them. The reference is vectorised (the loops of check_slope would take minutes at n =
    12000); the jackknife is written out."""

    def interval(T, values, seed):
        from scipy import stats

        x = np.log(T)
        xc = x - x.mean()

        def slopes(logs):
            return (logs - logs.mean(-1, keepdims=True)) @ xc / (xc @ xc)

        def jack(v):  # v: (B, n, k) -> (B,)
            s = slopes(np.log((v.sum(1, keepdims=True) - v) / (n - 1)))
            return np.sqrt((n - 1) / n * ((s - s.mean(1, keepdims=True)) ** 2).sum(1))

        slope = float(slopes(np.log(values.mean(0))))
        se = float(jack(values[None])[0])
        q = stats.t.ppf((1 + level) / 2, n - 1)
        draws = values[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))]
        z = (slopes(np.log(draws.mean(1))) - slope) / jack(draws)
        q_lo, q_hi = np.quantile(z, [(1 - level) / 2, (1 + level) / 2])
        return min(slope - q * se, slope - q_hi * se), max(slope + q * se, slope - q_lo * se)

    def prop(seed):
        rng = np.random.default_rng(seed)
        T = np.cumsum(rng.integers(5, 200, k)).astype(float)
        values = T ** rng.uniform(-1.2, -0.2) * rng.lognormal(0.0, 0.4, (n, k))
        got = fit_slope(T, values, seed=seed % 1000, n_boot=n_boot, level=level)
        return _close([got.lo, got.hi], interval(T, values, seed % 1000), 1e-9)

    return numeric_forall(
        prop,
        {"seed": SEEDS},
        statement=f"rates.fit_slope with {n} seeds x {k} T values (resamplings drawn in several "
        "blocks): the "
        f"studentized bootstrap's {n_boot} resamplings are those of one draw of "
        "default_rng(seed), (n_boot, n)",
        tolerance="1e-9 relative",
        max_examples=4,
    )


@obligation(
    "conf.rates.fit_slope",
    "lpcheck.rates.fit_slope computes the log-log slope and its interval over seeds as documented",
    "33, 48",
    kind="conformance",
)
def conf_slope():
    from lpcheck.rates.fit import fit_slope

    return [check_slope(fit_slope), check_slope_resamples(fit_slope)]


def _bound(c1, c2, c3, L, delta, T):
    """eq. 31 at eq. 32's step, written out (c3 = 0: no cap)."""
    cap = math.inf if c3 == 0 else c1 / (L * c3)
    balanced = math.inf if c2 == 0 else math.sqrt(2 * delta / (L * c2 * T))
    eta = min(cap, balanced)
    return 2 * delta / (eta * c1 * T) + L * eta * c2 / c1, eta


def check_step_and_bound(constants):
    def prop(seed):
        rng = np.random.default_rng(seed)
        N = int(rng.integers(2, 7))
        grad_sq, moment = rng.uniform(0.01, 5.0, N), rng.uniform(0.1, 10.0, N)
        L, delta = rng.uniform(0.5, 20.0), rng.uniform(0.5, 10.0)
        T = int(rng.integers(10, 10**5))
        # alignments that differ, some not resolved (standard error > 0.1 x |ratio|): c1 is the
        # least resolved one
        align = rng.uniform(0.05, 1.0, N)
        se = np.where(rng.random(N) < 0.4, align * rng.uniform(0.2, 2.0, N), 0.05 * align)
        se[rng.integers(N)] = 0.0  # at least one resolved
        c1 = float(align[se <= 0.1 * align].min())
        C = constants.Constants(align, se, moment, grad_sq, [4.0] * N, list(range(N)), 0.1, 64)
        if C.c1 != c1:
            return False

        def c2_of(c3):
            return max(
                0.0, float(np.max(moment - c3 * grad_sq))
            )  # least c2 with moment <= c2 + c3 grad_sq

        step = constants.theorem_step(C, L, delta, T)
        c3 = step["c3"] or 0.0
        bound, eta = _bound(c1, c2_of(c3), c3, L, delta, T)
        grid = np.concatenate(
            [
                [0.0],
                np.geomspace(1e-6, 1e6, 400),
                (moment[:, None] - moment).ravel().clip(0)
                / np.maximum(np.abs(grad_sq[:, None] - grad_sq).ravel(), 1e-300),
            ]
        )
        best = min(_bound(c1, c2_of(g), g, L, delta, T)[0] for g in grid if c2_of(g) > 0 or g > 0)
        ok = math.isclose(step["bound"], bound, rel_tol=1e-9) and math.isclose(
            step["eta"], eta, rel_tol=1e-9
        )
        ok &= step["bound"] <= best * (1 + 1e-9)  # no pair on the frontier does better
        eta_used = eta * rng.uniform(0.1, 2.0)
        chk = constants.bound_check(0.5, eta_used, C, L, delta, T)
        c3u = c1 / (L * eta_used)
        rhs = (
            2 * delta / (eta_used * c1 * T) + L * eta_used * c2_of(c3u) / c1
        )  # eq. 31 at the step used
        ok &= math.isclose(chk["rhs"], rhs, rel_tol=1e-12) and math.isclose(
            chk["ratio"], 0.5 / rhs, rel_tol=1e-12
        )
        return bool(ok)

    return numeric_forall(
        prop,
        {"seed": SEEDS},
        statement=(
            "rates.constants: c1 = the least resolved alignment ratio (standard error <= 0.1 x "
            "|ratio|); theorem_step = the (c2, c3) pair minimising eq. 31 at eq. 32's step over a "
            "search of c3 (c2 the least with eq. 28 at every checkpoint); bound_check = eq. 31 at "
            "the step used with c3 = c1/(L eta)"
        ),
        tolerance="1e-9 relative",
        max_examples=25,
    )


@obligation(
    "conf.rates.step_and_bound",
    "lpcheck.rates' Theorem 1 step (eq. 30-32 at the best measured (c2, c3)) "
    "and its bound check (eq. 31 at the step used)",
    "28, 30-32",
    kind="conformance",
)
def conf_step_and_bound():
    from lpcheck.rates import constants

    return check_step_and_bound(constants)


class _HalfBound:
    """A mutant of rates.constants whose bound check drops eq. 31's factor 2 on the bias term."""

    def __getattr__(self, name):
        from lpcheck.rates import constants

        return getattr(constants, name)

    @staticmethod
    def bound_check(observed, eta, C, L, delta, T):
        from lpcheck.rates import constants

        return constants.bound_check(observed, eta, C, L, delta / 2, T)


@control(
    "control.conf.bound_check_half_bias",
    "a bound check with delta/(eta c1 T) in place of eq. 31's 2 delta/(eta c1 T) conforms",
    "31",
)
def bound_half_bias():
    return check_step_and_bound(_HalfBound())
