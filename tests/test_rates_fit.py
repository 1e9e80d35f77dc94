"""lpcheck.rates.fit: slope and bootstrap interval, and the verdict rule."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lpcheck.rates import fit_slope
from lpcheck.rates.fit import SlopeFit, tail_indices, verdict
from lpcheck.rates.problems import Quadratic
from lpcheck.rates.simulation import make_method, simulate

T = np.array([100, 300, 1000, 3000, 10000, 30000], dtype=float)


def _synthetic(a, seeds, sigma, rng, C=3.0):
    """values[s, j] = C T_j^a * (mean-one log-normal noise with log-sd sigma), independent
    entries."""
    return C * T**a * np.exp(sigma * rng.standard_normal((seeds, T.size)) - sigma**2 / 2)


def _expected_width(seeds, sigma):
    """95% width of the least-squares slope when log(mean) has variance (e^sigma^2 - 1)/seeds per
    T."""
    x = np.log(T)
    se = math.sqrt((math.exp(sigma**2) - 1) / seeds / ((x - x.mean()) ** 2).sum())
    return 2 * 1.96 * se


@pytest.mark.parametrize("a", [-0.5, -1.0, -0.25])
@pytest.mark.parametrize("seeds,sigma", [(64, 0.5), (256, 0.3), (32, 0.4)])
def test_recovers_known_exponents_with_honest_intervals(a, seeds, sigma):
    fit = fit_slope(T, _synthetic(a, seeds, sigma, np.random.default_rng(7)), seed=1)
    width = fit.hi - fit.lo
    assert fit.lo <= a <= fit.hi
    # the interval is as wide as the noise makes it: not wider (a useless test), not narrower
    # (overconfident)
    assert 0.6 * _expected_width(seeds, sigma) <= width <= 1.5 * _expected_width(seeds, sigma)
    assert abs(fit.slope - a) <= 0.5 * width + 1e-12


def _slope_coverage(grid, seeds, noise, trials, seed):
    """Fraction of `trials` synthetic studies whose 95% interval holds the true slope -1/2: values 3
    T^-1/2 X with mean-one noise X, normal with sd 0.2 (folded at 0 to stay positive: it moves
    the mean by under 1e-6) or log-normal with log-sd 1 (skewness 6)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(trials):
        z = rng.standard_normal((seeds, len(grid)))
        x = np.abs(1 + 0.2 * z) if noise == "normal" else np.exp(z - 0.5)
        fit = fit_slope(grid, 3.0 * grid**-0.5 * x, seed=i, n_boot=400)
        hits += fit.lo <= -0.5 <= fit.hi
    return hits / trials


QUICK_T = np.array([100.0, 200.0, 400.0])  # lpcheck rates --quick


@pytest.mark.parametrize(
    "grid,seeds,noise,trials",
    [
        (QUICK_T, 32, "normal", 1000),  # --quick's grid and seeds
        (T[3:], 256, "lognormal", 400),  # the default seeds on the verdict's tail grid
        (QUICK_T, 16, "normal", 1000),  # fewer seeds: the percentile bootstrap fell to 92 %
        (QUICK_T, 8, "lognormal", 1000),  # ... and to 87 %
    ],
)
def test_interval_covers_the_true_slope_at_its_level(grid, seeds, noise, trials):
    """>= 93 % for a nominal 95 %, where the union measured 95.2-96.0 %
    (experiments/results/coverage/slopes.md, 2000 runs; 500 with 256 seeds): 3 to 4.6 of this
    test's standard errors above 93 %. The percentile bootstrap used before measured 92.4 % (16
    seeds) and 86.7 % (8 seeds) there and fails those two cases. n_boot = 400 here (2000 by
    default) changed the coverage by under 0.1 % on --quick's grid of log-normal seeds."""
    assert _slope_coverage(grid, seeds, noise, trials, seed=seeds) >= 0.93


def test_seed_rows_are_resampled_together():
    """A seed-wide factor (common across T) moves the mean but not the slope: the interval stays
    tight."""
    rng = np.random.default_rng(3)
    factor = np.exp(rng.standard_normal((128, 1)))
    fit = fit_slope(T, factor * T**-0.5, seed=0)
    assert fit.slope == pytest.approx(-0.5, abs=1e-12)
    assert fit.hi - fit.lo < 1e-12


def test_exact_power_law_has_zero_residual_and_a_point_interval():
    fit = fit_slope(T, np.tile(2.0 * T**-1.0, (3, 1)))
    assert fit.slope == pytest.approx(-1.0, abs=1e-12) and fit.residual < 1e-12
    assert fit.lo == pytest.approx(-1.0, abs=1e-12) and fit.hi == pytest.approx(-1.0, abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(2.0), abs=1e-12)


def test_residual_is_the_largest_absolute_deviation_from_the_line():
    # one T far below the power law: the line passes above it, so its deviation is the largest and
    # negative
    values = np.tile(T**-0.5 * np.exp([0.0, 0.0, -1.0, 0.0, 0.0, 0.0]), (3, 1))
    x, y = np.log(T), np.log(values.mean(0))
    dev = y - np.polyval(np.polyfit(x, y, 1), x)
    fit = fit_slope(T, values)
    assert fit.residual == pytest.approx(np.abs(dev).max(), rel=1e-12)
    assert fit.residual > dev.max() + 0.1  # the signed largest deviation would understate it


def test_bootstrap_draws_are_the_same_in_blocks_as_in_one_draw(monkeypatch):
    # many seeds make fit_slope draw its resamplings in blocks (bounded memory); every block must
    # continue the one generator (a block that restarts it repeats resamplings: fewer independent
    # draws than n_boot)
    from lpcheck.rates import fit as fit_module

    rng = np.random.default_rng(7)
    values = T**-0.5 * rng.lognormal(0.0, 0.5, (40, T.size))
    whole = fit_slope(T, values, seed=3, n_boot=300, level=0.9)
    monkeypatch.setattr(fit_module, "BLOCK_ENTRIES", 40 * T.size * 64)  # blocks of 64 resamplings
    blocks = fit_slope(T, values, seed=3, n_boot=300, level=0.9)
    assert (blocks.lo, blocks.hi) == (whole.lo, whole.hi)


def test_it_is_the_log_of_the_mean_not_the_mean_of_the_logs():
    """E over seeds first (eq. 31 is about (1/T) sum E||grad f||^2), then the log."""
    values = np.stack([T**-1.0, T**-0.25])  # two seeds with different rates
    want = np.polyfit(np.log(T), np.log(values.mean(0)), 1)[0]
    assert fit_slope(T, values).slope == pytest.approx(want, abs=1e-12)
    assert abs(want - (-0.625)) > 0.1  # the mean of the logs would give -0.625


def test_result_is_attributes_and_a_mapping():
    fit = fit_slope([1, 10], [[1.0, 0.1], [2.0, 0.2]])
    assert isinstance(fit, SlopeFit)
    assert fit["slope"] == fit.slope and fit["lo"] == fit.lo and fit["hi"] == fit.hi
    assert set(dict(fit)) >= {"slope", "lo", "hi"} and len(fit) == len(list(fit))
    with pytest.raises(KeyError):
        fit["nope"]


def test_torch_values_and_same_seed_same_interval():
    v = _synthetic(-0.5, 16, 0.5, np.random.default_rng(1))
    a, b = fit_slope(T, torch.as_tensor(v), seed=4), fit_slope(T, v, seed=4)
    assert (a.lo, a.hi) == (b.lo, b.hi)
    c = fit_slope(T, v, seed=5)  # the bootstrap half of the interval depends on the seed
    assert (c.lo, c.hi) != (a.lo, a.hi)


@given(st.floats(-2, 0.5), st.floats(0.01, 100))
def test_slope_is_invariant_to_scale(a, C):
    v = _synthetic(a, 8, 0.2, np.random.default_rng(0))
    assert fit_slope(T, C * v).slope == pytest.approx(fit_slope(T, v).slope, abs=1e-9)


@pytest.mark.parametrize(
    "Tv,values,match",
    [
        ([100], [[1.0], [1.0]], "at least 2 iteration counts"),
        ([100, 100], [[1.0, 1.0]] * 2, "strictly increasing"),
        ([300, 100], [[1.0, 1.0]] * 2, "strictly increasing"),
        ([0, 100], [[1.0, 1.0]] * 2, ">= 1"),
        ([1, np.inf], [[1.0, 1.0]] * 2, "finite"),
        ([1, 10], [[1.0, 1.0]], "at least 2 seeds"),
        ([1, 10], [[1.0, 1.0, 1.0]] * 2, r"shape \(seeds, len\(T\)\) = \(seeds, 2\)"),
        ([1, 10], [1.0, 1.0], r"shape \(seeds, len\(T\)\)"),
        ([1, 10], [[1.0, 0.0]] * 2, "> 0"),
        ([1, 10], [[1.0, np.nan]] * 2, "finite and > 0"),
    ],
)
def test_bad_input(Tv, values, match):
    with pytest.raises(ValueError, match=match):
        fit_slope(Tv, values)


def test_bad_bootstrap_settings():
    with pytest.raises(ValueError, match="n_boot"):
        fit_slope([1, 10], [[1.0, 0.5]] * 2, n_boot=10)
    with pytest.raises(ValueError, match="level"):
        fit_slope([1, 10], [[1.0, 0.5]] * 2, level=1.0)


def _fit(slope, lo, hi, residual=0.0):
    return SlopeFit(slope, lo, hi, 0.0, residual, 0.95, 2000)


@pytest.mark.parametrize(
    "fit,kw,want",
    [
        (_fit(-0.5, -0.52, -0.48), {}, ("confirmed", "T^-1/2")),
        (_fit(-1.0, -1.02, -0.98), {}, ("confirmed", "faster")),
        (_fit(-0.45, -0.50, -0.40), {}, ("confirmed", "T^-1/2")),  # hi exactly at r + tau
        (_fit(-0.1, -0.15, -0.05), {}, ("refuted", "slower")),
        (_fit(-0.1, -0.15, -0.05), {"pre_asymptotic": True}, ("inconclusive", "slower")),
        (_fit(-0.4, -0.7, -0.1), {}, ("inconclusive", "T^-1/2")),
        (
            _fit(-0.3, -0.45, -0.15),
            {},
            ("inconclusive", "T^-1/2"),
        ),  # the point estimate alone would refute
        (_fit(-0.6, -0.62, -0.58, residual=0.2), {}, ("inconclusive", "T^-1/2")),
        (_fit(-0.6, -0.62, -0.58), {"diverged": 3}, ("inconclusive", "T^-1/2")),
    ],
)
def test_verdict_rule(fit, kw, want):
    assert verdict(fit, **kw)[:2] == want


@pytest.mark.parametrize("tolerance", [0.1, 0.05, 0.2])
def test_verdict_edge_is_the_rate_plus_the_tolerance(tolerance):
    # just above r + tau: refuted; just below (with hi there too): confirmed; for every tolerance
    edge = -0.5 + tolerance
    above = SlopeFit(edge + 0.02, edge + 0.01, edge + 0.03, 0.0, 0.0, 0.95, 2000)
    below = SlopeFit(edge - 0.03, edge - 0.05, edge - 0.01, 0.0, 0.0, 0.95, 2000)
    assert verdict(above, tolerance=tolerance)[0] == "refuted"
    assert verdict(below, tolerance=tolerance)[0] == "confirmed"


@pytest.mark.parametrize("rate", [-0.5, -0.25, -1.0])
def test_verdict_refuses_a_tolerance_that_reaches_the_rate(rate):
    # at tolerance = |rate| the edge r + tau is 0: a mean that does not decay at all (slope 0, a
    # tight interval at 0) would be 'confirmed'; just below |rate| the same flat curve is refuted
    flat = SlopeFit(0.0, -1e-3, 1e-3, 0.0, 0.0, 0.95, 2000)
    with pytest.raises(ValueError, match=r"^tolerance \(.*\) must be < \|rate\|"):
        verdict(flat, rate=rate, tolerance=-rate)
    assert verdict(flat, rate=rate, tolerance=-rate * (1 - 1e-2))[0] == "refuted"


def test_tail_is_the_upper_half_and_at_least_three():
    assert (
        tail_indices(6) == slice(3, 6)
        and tail_indices(3) == slice(0, 3)
        and tail_indices(2) == slice(0, 2)
    )
    assert tail_indices(9) == slice(4, 9)


def _tail_verdict(problem, rule, Ts, seeds=8):
    eta0 = 0.1
    values = []
    for t in Ts:
        eta = eta0 * math.sqrt(Ts[0] / t) if rule == "sqrt" else eta0
        values.append(
            simulate(problem, make_method("sgd"), t, eta, seeds, seed=0).grad_sq_mean.numpy()
        )
    v = np.stack(values, 1)
    return verdict(fit_slope(Ts, v))


def test_constant_step_is_told_apart_from_a_one_over_sqrt_T_step():
    """With noise, a constant step stalls at its floor (refuted); eta ~ 1/sqrt(T) reaches T^-1/2
    (confirmed). Without noise, a constant step gives 1/T: confirmed, but in the 'faster' regime,
    again not T^-1/2."""
    Ts = [100, 300, 1000]
    noisy = Quadratic([4.0, 1.0, 0.25], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], sigma=1.0)
    quiet = Quadratic([4.0, 1.0, 0.25], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], sigma=0.0)
    constant, sqrt = _tail_verdict(noisy, "constant", Ts), _tail_verdict(noisy, "sqrt", Ts)
    deterministic = _tail_verdict(quiet, "constant", Ts, seeds=2)
    assert constant[:2] == ("refuted", "slower")
    assert sqrt[:2] == ("confirmed", "T^-1/2")
    assert deterministic[:2] == ("confirmed", "faster")


def test_a_resampling_of_one_repeated_seed_does_not_blow_up_the_interval():
    """With 3 seeds, about 1 resampling in 9 repeats one seed: its jackknife se* is 0, and computed
    it was a rounding residue that made the studentized bootstrap's end 5e12 (the gate's
    conf.rates.fit_slope found these inputs)."""
    rng = np.random.default_rng(1530749)
    T = np.cumsum(rng.integers(5, 200, 6)).astype(float)
    values = T ** rng.uniform(-1.2, -0.2) * rng.lognormal(0.0, 0.4, (3, 6))
    fit = fit_slope(T, values, seed=749, n_boot=100, level=0.95)
    assert -1.13 < fit.lo < fit.slope < fit.hi < -0.53


def _loo_se(x, v):
    """The jackknife standard error of the log-mean slope over the seeds (rows) of v, by its
    definition: the n leave-one-seed-out slopes, (n - 1)/n times their squared spread."""
    n = len(v)
    s = np.array([np.polyfit(x, np.log(np.delete(v, i, 0).mean(0)), 1)[0] for i in range(n)])
    return math.sqrt((n - 1) / n * ((s - s.mean()) ** 2).sum())


def test_the_interval_is_the_union_of_jackknife_t_and_the_studentized_bootstrap():
    """fit_slope's interval recomputed from its docstring, one resampling at a time: jackknife t
    joined with [slope - q_hi se, slope - q_lo se], q the (1 -/+ level)/2 quantiles of (s* - slope)
    / se* over the resamplings (drawn as fit_slope draws them: one generator seeded by `seed`, all
    rows of seed indices at once). 8 skewed seeds: the bootstrap's end is the outer one on the
    skewed side, so a wrong quantile there moves the interval."""
    from scipy.stats import t as student

    rng = np.random.default_rng(11)
    values = 3.0 * T**-0.5 * np.exp(rng.standard_normal((8, T.size)) - 0.5)
    level, n_boot = 0.95, 400
    fit = fit_slope(T, values, seed=5, n_boot=n_boot, level=level)
    x, n = np.log(T), len(values)
    slope = np.polyfit(x, np.log(values.mean(0)), 1)[0]
    se = _loo_se(x, values)
    q = student.ppf((1 + level) / 2, n - 1)
    idx = np.random.default_rng(5).integers(0, n, size=(n_boot, n))
    z = []
    for rows in idx:
        draw = values[rows]
        s_b = np.polyfit(x, np.log(draw.mean(0)), 1)[0]
        se_b = 0.0 if (rows == rows[0]).all() else _loo_se(x, draw)
        z.append((s_b - slope) / se_b if se_b > 0 else 0.0)
    q_lo, q_hi = np.quantile(z, [(1 - level) / 2, (1 + level) / 2])
    boot = (slope - q_hi * se, slope - q_lo * se)
    assert boot[0] < slope - q * se or boot[1] > slope + q * se  # the bootstrap binds somewhere
    assert fit.lo == pytest.approx(min(slope - q * se, boot[0]), rel=1e-9)
    assert fit.hi == pytest.approx(max(slope + q * se, boot[1]), rel=1e-9)
