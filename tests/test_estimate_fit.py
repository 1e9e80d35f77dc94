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
