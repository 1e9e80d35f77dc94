"""lpcheck.schedule: eq. 19."""

import math

import mpmath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpcheck.schedule import cosine_p

p_maxes = st.floats(2.0, 1e6)
totals = st.integers(2, 500)


@given(totals, p_maxes)
def test_endpoints_are_exact(S, p_max):
    assert cosine_p(1, S, p_max) == p_max
    assert cosine_p(S, S, p_max) == 2.0


@given(totals, p_maxes)
def test_non_increasing_and_in_range(S, p_max):
    ps = [cosine_p(s, S, p_max) for s in range(1, S + 1)]
    assert all(a >= b for a, b in zip(ps, ps[1:]))
    assert all(2.0 <= v <= p_max for v in ps)


@given(totals, p_maxes, st.data())
def test_matches_eq19_and_is_point_symmetric(S, p_max, data):
    s = data.draw(st.integers(1, S))
    with mpmath.workdps(40):
        exact = 2 + (p_max - 2) * (1 + mpmath.cos(mpmath.pi * (s - 1) / (S - 1))) / 2
    assert cosine_p(s, S, p_max) == pytest.approx(float(exact), rel=1e-14, abs=1e-12)
    # cos(pi - x) = -cos(x): the schedule is symmetric about its midpoint
    assert cosine_p(s, S, p_max) + cosine_p(S + 1 - s, S, p_max) == pytest.approx(
        2 + p_max, rel=1e-13
    )


def test_single_epoch_runs_at_p_max():
    # eq. 19 is 0/0 at S = 1; lpcheck takes p_1 = p_max, the value every S > 1 gives at s = 1.
    assert cosine_p(1, 1, 6.0) == 6.0
    assert cosine_p(1, 1, 2.0) == 2.0


def test_p_max_2_is_constant():
    assert {cosine_p(s, 9, 2.0) for s in range(1, 10)} == {2.0}


@pytest.mark.parametrize(
    "args,match",
    [
        ((0, 10, 6), "epoch must be"),
        ((11, 10, 6), "epoch must be"),
        ((-1, 10, 6), "epoch must be"),
        ((1.5, 10, 6), "epoch must be an integer"),
        ((1, 0, 6), "total_epochs must be"),
        ((1, 2.5, 6), "total_epochs must be"),
        ((1, 10, 1.9), "p_max must be"),
        ((1, 10, math.inf), "p_max must be"),
        ((1, 10, math.nan), "p_max must be"),
        ((True, 10, 6), "epoch must be"),
    ],
)
def test_bad_arguments_raise(args, match):
    with pytest.raises(ValueError, match=match):
        cosine_p(*args)


def test_numbers_torch_accepts_are_accepted():
    import numpy as np
    import torch

    assert cosine_p(np.int64(3), torch.tensor(10), np.float32(6.0)) == cosine_p(3, 10, 6.0)
    assert cosine_p(3.0, np.array(10), torch.tensor([6.0])) == cosine_p(3, 10, 6.0)
