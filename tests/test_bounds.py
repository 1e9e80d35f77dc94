"""lpcheck.bounds: Theorems 1-2 numerically (eq. 30-32, 46-47)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpcheck import bounds

pos = st.floats(1e-3, 1e3)


@given(pos, pos, pos, pos, pos, st.integers(1, 10**7))
def test_eq32_minimises_eq31_over_eta_when_balanced(c1, c2, c3, L, delta, T):
    value, eta, branch = bounds.theorem1_bound(c1, c2, c3, L, delta, T)
    assert eta <= bounds.step_cap(c1, L, c3) * (1 + 1e-12)
    if branch == "balanced":
        # eq. 31 is convex in eta with its minimum at the balanced step; and equals C / sqrt(T)
        for f in (0.9, 1.1):
            assert bounds.theorem1_rhs(eta * f, c1, c2, L, delta, T) >= value * (1 - 1e-12)
        assert value == pytest.approx(
            bounds.rate_constant(c1, c2, L, delta) / math.sqrt(T), rel=1e-12
        )
    else:
        assert value == pytest.approx(2 * delta * L * c3 / (c1**2 * T) + c2 / c3, rel=1e-12)


def test_cap_branch_for_short_runs_and_balanced_for_long():
    args = dict(c1=0.5, c2=1.0, c3=2.0, L=10.0, delta=3.0)
    assert bounds.theorem1_bound(**args, T=1)[2] == "cap"
    assert bounds.theorem1_bound(**args, T=10**9)[2] == "balanced"
    # switch point T* = 2 delta L c3^2 / (c1^2 c2)
    t_star = 2 * 3.0 * 10.0 * 4.0 / (0.25 * 1.0)
    assert bounds.theorem1_bound(**args, T=t_star * 0.99)[2] == "cap"
    assert bounds.theorem1_bound(**args, T=t_star * 1.01)[2] == "balanced"


def test_theorem2_has_theorem1s_form():
    assert bounds.theorem2_bound(0.3, 2.0, 1.5, 4.0, 1.0, 1000) == bounds.theorem1_bound(
        0.3, 2.0, 1.5, 4.0, 1.0, 1000
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(c1=0, L=1, c3=1), "c1 must be > 0"),
        (dict(c1=1, L=-1, c3=1), "L must be > 0"),
        (dict(c1=1, L=1, c3=math.nan), "c3 must be a finite"),
    ],
)
def test_step_cap_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bounds.step_cap(**kwargs)


def test_T_must_be_at_least_one():
    with pytest.raises(ValueError, match="T must be"):
        bounds.theorem1_rhs(0.1, 1, 1, 1, 1, 0)


@given(pos, pos, pos, pos, st.integers(1, 10**7))
def test_no_cap_form_is_the_limit_c3_to_0(c1, c2, L, delta, T):
    """eq. 28 with c3 -> 0: eq. 30's cap is unbounded, eq. 32 is its balanced branch, eq. 31 is
    C / sqrt(T)."""
    value, eta = bounds.theorem1_bound_no_cap(c1, c2, L, delta, T)
    assert eta == bounds.balanced_step(c2, L, delta, T)
    assert value == pytest.approx(bounds.rate_constant(c1, c2, L, delta) / math.sqrt(T), rel=1e-12)
    tiny = (
        c1 / (L * eta) * 1e-6
    )  # a c3 > 0 whose cap is far above the balanced step: the same step and bound
    assert bounds.theorem1_bound(c1, c2, tiny, L, delta, T) == (value, eta, "balanced")
    assert bounds.theorem2_bound_no_cap(c1, c2, L, delta, T) == (value, eta)


def test_no_cap_form_needs_c2():
    with pytest.raises(ValueError, match="c2 must be > 0 when there is no step cap"):
        bounds.theorem1_bound_no_cap(1.0, 0.0, 1.0, 1.0, 10)
    assert bounds.balanced_step(0.0, 1.0, 1.0, 10) == math.inf  # eq. 32 then rests on the cap alone


def test_numbers_torch_accepts_are_accepted():
    import numpy as np
    import torch

    assert bounds.step_cap(np.float32(0.5), torch.tensor(2.0), np.array(4)) == bounds.step_cap(
        0.5, 2.0, 4.0
    )
    assert bounds.theorem1_rhs(0.1, 1, 1, 1, 1, np.int64(10)) == bounds.theorem1_rhs(
        0.1, 1, 1, 1, 1, 10
    )


@pytest.mark.parametrize(
    "fn,args",
    [
        (bounds.step_cap, (1.0, 1e-200, 1e-200)),  # L c3 underflows: a division by 0.0
        (bounds.theorem1_rhs, (1e-200, 1e-200, 1.0, 1.0, 1.0, 1)),
        (bounds.theorem1_step, (1.0, 1e-200, 1.0, 1e-200, 1.0, 1)),
        (bounds.rate_constant, (1e-300, 1e300, 1e300, 1e300)),  # inf, silently
    ],
)
def test_results_beyond_float64_are_a_named_error(fn, args):
    with pytest.raises(ValueError, match=rf"^{fn.__name__}\(.*overflows a float"):
        fn(*args)
