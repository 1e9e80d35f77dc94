"""lpcheck.estimate.fit: the (c2, c3) frontier and the Theorem 1 optimal pair."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lpcheck import bounds
from lpcheck.estimate.fit import best_c2_c3, c2_c3_frontier, c2_for

# measured squared gradient norms and moments: 0 or within 30 orders of magnitude
measured = st.one_of(st.just(0.0), st.floats(1e-15, 1e15))
pts = st.integers(1, 12).flatmap(lambda n: st.tuples(
    hnp.arrays(np.float64, n, elements=measured), hnp.arrays(np.float64, n, elements=measured)))


@given(pts)
def test_frontier_vertices_are_tight_feasible_and_convex(xy):
    x, y = xy
    v = c2_c3_frontier(x, y)
    assert v[0, 0] == 0 and v[0, 1] == pytest.approx(y.max())
    assert (np.diff(v[:, 0]) > 0).all() and (np.diff(v[:, 1]) <= 1e-9).all()
    for c3, c2 in v:
        slack = c2 + c3 * x - y
        assert slack.min() >= -1e-7 * (1 + y.max())  # feasible
        assert c2 == pytest.approx(c2_for(c3, x, y), abs=1e-7 * (1 + y.max()))  # and tight
    if len(v) > 2:  # convex: slopes increase
        s = np.diff(v[:, 1]) / np.diff(v[:, 0])
        assert (np.diff(s) >= -1e-6 * (1 + abs(s).max())).all()


@given(pts, st.floats(0, 1))
def test_frontier_interpolates_c2_for(xy, frac):
    x, y = xy
    v = c2_c3_frontier(x, y)
    c3 = frac * v[-1, 0] * 1.2
    c2 = np.interp(c3, v[:, 0], v[:, 1])
    assert c2 == pytest.approx(c2_for(c3, x, y), abs=1e-7 * (1 + y.max()))


def test_best_pair_beats_a_brute_force_grid():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 50, 30)
    y = 2.0 + 0.7 * x + rng.uniform(0, 3, 30)
    best = best_c2_c3(x, y, c1=0.4, L=5.0, delta=2.0, T=10_000)
    grid = np.linspace(1e-6, 2 * c2_c3_frontier(x, y)[-1, 0], 20001)
    brute = min(bounds.theorem1_bound(0.4, c2_for(c3, x, y), c3, 5.0, 2.0, 10_000)[0] for c3 in grid)
    assert best["bound"] <= brute * (1 + 1e-4)
    assert best["c2"] == pytest.approx(c2_for(best["c3"], x, y), rel=1e-9)


def test_zero_gradient_checkpoint_sets_the_floor():
    v = c2_c3_frontier([0.0, 1.0, 4.0], [3.0, 5.0, 6.0])
    assert v[-1, 1] == 3.0
    np.testing.assert_allclose(v, [[0, 6], [1 / 3, 14 / 3], [2, 3]])


@pytest.mark.parametrize("x,y", [([], []), ([1.0], [1.0, 2.0]), ([np.nan], [1.0]), ([-1.0], [1.0])])
def test_bad_points(x, y):
    with pytest.raises(ValueError, match="grad_sq and moment"):
        c2_c3_frontier(x, y)


# --- bootstrap intervals and the fit over checkpoints ---------------------------------------------

from lpcheck.estimate.fit import bootstrap_intervals, fit_run  # noqa: E402


def test_bootstrap_interval_covers_the_mean_at_about_its_level():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(300):
        x = rng.exponential(1.0, 64)  # skewed, true mean 1
        m, lo, hi = bootstrap_intervals({"x": x}, 0.9, 1000, rng)["x"]
        assert lo <= m <= hi and m == pytest.approx(x.mean())
        hits += lo <= 1.0 <= hi
    assert 0.82 <= hits / 300 <= 0.96  # percentile bootstrap, K = 64: close to 90 %, a little short


def test_bootstrap_resamples_batches_jointly_and_widens_with_level():
    rng = np.random.default_rng(1)
    x = rng.normal(size=16)
    iv = bootstrap_intervals({"a": x, "b": 2 * x}, 0.9, 2000, np.random.default_rng(5))
    assert iv["b"] == pytest.approx(tuple(2 * v for v in iv["a"]), rel=1e-12)  # same resampled batches
    wide = bootstrap_intervals({"a": x}, 0.99, 2000, np.random.default_rng(5))["a"]
    assert wide[1] < iv["a"][1] and wide[2] > iv["a"][2]
    with pytest.raises(ValueError, match="same number K"):
        bootstrap_intervals({"a": x, "b": x[:3]}, 0.9, 100, rng)
    with pytest.raises(ValueError, match="K >= 2"):  # one sample: a zero-width interval, no confidence
        bootstrap_intervals({"a": x[:1]}, 0.9, 100, rng)


def _record(step, grad_sq, align, moment, loss=2.0, lr=0.01, momentum=True, pairs=()):
    s = {"align": align, "moment": moment, "noise": [1.0 + 0.1 * i for i in range(len(align))],
         "noise_l2": [0.5] * len(align)}
    if momentum:
        s.update(align_m=[0.5 * a for a in align], moment_m=[0.25 * m for m in moment])
    return {"step": step, "epoch": 1, "p": 4.0, "lr": lr, "K": len(align), "loss": loss, "grad_sq": grad_sq,
            "grad_norm_q": grad_sq**0.5, "samples": s, "pairs": list(pairs)}


def test_fit_run_takes_bounds_across_checkpoints():
    rng = np.random.default_rng(2)
    pair = {"kind": "step", "dist_p": 0.1, "grad_ratio": 6.0, "quad_xy": 4.5, "quad_yx": -1.0, "grad_norm_q": 1.0}
    recs = [_record(10 * i, g, list(0.8 + 0.1 * rng.standard_normal(16)), list(g + 1 + rng.random(16)),
                    loss=3.0 - i, lr=0.01 * (i + 1), pairs=[pair] if i else [])
            for i, g in enumerate([4.0, 2.0, 1.0, 0.5])]
    out = fit_run(recs, T=1000, confidence=0.9, resamples=1000, seed=0)
    per = out["checkpoints"]
    assert out["sample_sizes"]["per_checkpoint_level"] == pytest.approx(1 - 0.1 / 4)
    a5 = out["assumption5"]
    assert a5["c1"] == min(c["align"]["lo"] for c in per)  # the least lower end
    assert a5["c1"] < a5["estimate"]["c1"] == min(c["align"]["mean"] for c in per)
    for c in per:  # the chosen (c2, c3) upper-bounds every checkpoint's upper confidence bound
        assert c["moment"]["hi"] <= a5["c2"] + a5["c3"] * c["grad_sq"] + 1e-9
    s = out["smoothness"]
    assert s["L"] == 4.5 and s["L_grad"] == 6.0 and s["pairs"] == 3  # eq. 4's form, the larger base
    assert a5["step_cap"] == pytest.approx(a5["c1"] / (4.5 * a5["c3"]))
    assert out["delta"] == 3.0 and out["lr_max"] == pytest.approx(0.04)
    assert a5["lr_within_cap"] == (0.04 <= a5["step_cap"])
    assert fit_run(recs, T=1000, resamples=100, lr_used=0.5)["lr_max"] == 0.5  # the schedule's peak, if given
    assert out["noise"]["sigma_sq"] == max(c["noise"]["hi"] for c in per)
    a6 = out["assumption6"]
    assert a6["c1"] == min(c["align_m"]["lo"] for c in per) and a6["c1"] < a5["c1"]
    # no momentum statistics (LPSGD): no Assumption 6; no pairs: no L, no step cap
    out = fit_run([_record(0, 1.0, [1.0, 1.2], [2.0, 2.5], momentum=False)], T=10, resamples=100)
    assert out["assumption6"] is None and out["smoothness"]["L"] is None and "step_cap" not in out["assumption5"]


def test_fit_run_reports_a_failed_alignment():
    out = fit_run([_record(0, 1.0, [-0.5, -0.4, -0.6], [1.0, 1.1, 0.9])], T=10, resamples=100)
    assert out["assumption5"]["holds"] is False and "step_cap" not in out["assumption5"]


@pytest.mark.parametrize("kw,match", [({"confidence": 1.0}, "confidence"), ({"resamples": 10}, "resamples")])
def test_fit_run_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        fit_run([_record(0, 1.0, [1.0], [1.0])], T=10, **kw)
    with pytest.raises(ValueError, match="at least one checkpoint"):
        fit_run([], T=10)
