"""lpcheck.estimate.smoothness: Assumption 1 in the lp geometry, from pairs of points."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lpcheck import lp
from lpcheck.estimate import smoothness as sm

LAM = np.array([5.0, 1.0, 0.3, 0.0])  # a quadratic f = 1/2 theta^T diag(LAM) theta, LAM >= 0


def _quad_pairs(lam, p, n, seed):
    """max over n random pairs of both ratios, on f = 1/2 theta^T diag(lam) theta."""
    rng = np.random.default_rng(seed)
    best_grad = best_quad = 0.0
    for _ in range(n):
        x, y = rng.standard_normal(lam.size), rng.standard_normal(lam.size)
        f = lambda t: 0.5 * t @ (lam * t)  # noqa: E731
        best_grad = max(best_grad, float(sm.gradient_ratio(x, y, lam * x, lam * y, p)))
        best_quad = max(best_quad, float(sm.quadratic_ratio(x, y, f(x), f(y), lam * x, p)))
    return best_grad, best_quad


def test_exact_lp_smoothness_of_a_quadratic():
    assert sm.quadratic_lp_smoothness(LAM, 2) == 5.0  # the largest eigenvalue
    assert sm.quadratic_lp_smoothness(LAM, math.inf) == pytest.approx(LAM.sum())
    assert sm.quadratic_lp_smoothness(LAM, 4) == pytest.approx(
        np.sqrt((LAM**2).sum())
    )  # p/(p-2) = 2
    assert sm.quadratic_lp_smoothness(LAM, 6) == pytest.approx(((LAM**1.5).sum()) ** (1 / 1.5))


@pytest.mark.parametrize("p", [2.0, 3.0, 6.0, math.inf])
def test_the_hoelder_direction_attains_L(p):
    # d_i ~ lam_i^(1/(p-2)) (sign-free) is where Hoelder's inequality is an equality
    L = sm.quadratic_lp_smoothness(LAM, p)
    d = (
        (LAM == LAM.max()).astype(float)
        if p == 2
        else (np.ones_like(LAM) * (LAM > 0) if p == math.inf else LAM ** (1 / (p - 2)))
    )
    x = np.array([0.3, -1.0, 2.0, 0.5])
    y = x + 0.7 * d
    f = lambda t: 0.5 * t @ (LAM * t)  # noqa: E731
    assert float(sm.gradient_ratio(x, y, LAM * x, LAM * y, p)) == pytest.approx(L, rel=1e-12)
    assert float(sm.quadratic_ratio(x, y, f(x), f(y), LAM * x, p)) == pytest.approx(L, rel=1e-12)


@pytest.mark.parametrize("p", [3.0, 6.0])
def test_random_pairs_approach_L_from_below(p):
    # L is a supremum over directions: random pairs see only part of it, so every estimate is
    # below L_p = ||lambda||_{p/(p-2)}, and more pairs come closer
    L = sm.quadratic_lp_smoothness(LAM, p)
    few = _quad_pairs(LAM, p, 10, seed=0)
    many = _quad_pairs(LAM, p, 3000, seed=0)  # the first 10 pairs are the same ones
    for a, b in zip(few, many):
        assert a <= b <= L * (1 + 1e-12)
    assert min(many) >= 0.9 * L


@given(st.floats(2.0, 30.0), st.integers(0, 2**31 - 1))
def test_ratios_never_exceed_L_on_a_quadratic(p, seed):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0, 3, 6)
    x, y = rng.standard_normal(6), rng.standard_normal(6)
    L = sm.quadratic_lp_smoothness(lam, p)
    f = lambda t: 0.5 * t @ (lam * t)  # noqa: E731
    assert float(sm.gradient_ratio(x, y, lam * x, lam * y, p)) <= L * (1 + 1e-9)
    assert float(sm.quadratic_ratio(x, y, f(x), f(y), lam * x, p)) <= L * (1 + 1e-9)


def test_pair_statistics_agree_with_the_checked_functions():
    rng = np.random.default_rng(1)
    x, y, gx, gy = (torch.tensor(rng.standard_normal(7)) for _ in range(4))
    fx, fy, p = 1.3, 0.4, 5.0
    s = sm.pair_statistics(x, y, fx, fy, gx, gy, p)
    assert float(s["grad_ratio"]) == pytest.approx(
        float(sm.gradient_ratio(x, y, gx, gy, p)), rel=1e-14
    )
    assert float(s["quad_xy"]) == pytest.approx(
        float(sm.quadratic_ratio(x, y, fx, fy, gx, p)), rel=1e-12
    )
    assert float(s["quad_yx"]) == pytest.approx(
        float(sm.quadratic_ratio(y, x, fy, fx, gy, p)), rel=1e-12
    )
    q = lp.dual_exponent(p)
    for a, b in ((gx, 3 * gx), (3 * gx, gx)):  # the smaller dual norm, whichever end it is at
        s2 = sm.pair_statistics(x, y, fx, fy, a, b, p)
        assert float(s2["grad_norm_q"]) == pytest.approx(float(lp.lp_norm(gx, q)), rel=1e-14)
    assert float(s["dist_p"]) == pytest.approx(float(lp.lp_norm(y - x, p)), rel=1e-14)


def test_l0_l1_frontier_of_exp():
    # f(x) = exp(x) in 1-D: for pairs (x, x + h), |f'(y) - f'(x)| / h = e^x (e^h - 1)/h and
    # min(|f'(x)|, |f'(y)|) = e^x, so every pair lies on the line L0 = 0, L1 = (e^h - 1)/h:
    # the frontier runs from (L1 = 0, L0 = max ratio) to (L1 = (e^h - 1)/h, L0 = 0)
    h = 0.1
    xs = np.linspace(-3, 2, 11)
    stats = [
        sm.pair_statistics(
            np.array([x]),
            np.array([x + h]),
            math.exp(x),
            math.exp(x + h),
            np.array([math.exp(x)]),
            np.array([math.exp(x + h)]),
            2.0,
        )
        for x in xs
    ]
    ratio = [float(s["grad_ratio"]) for s in stats]
    norm = [float(s["grad_norm_q"]) for s in stats]
    v = sm.l0_l1_frontier(norm, ratio)
    assert v[0, 0] == 0 and v[0, 1] == pytest.approx(max(ratio))
    assert v[-1, 0] == pytest.approx(math.expm1(h) / h, rel=1e-9) and v[-1, 1] == pytest.approx(
        0, abs=1e-9
    )
    for L1, L0 in v:  # every vertex upper-bounds every pair
        assert all(r <= L0 + L1 * g + 1e-9 for r, g in zip(ratio, norm))


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: sm.gradient_ratio(np.ones(2), np.ones(2), np.ones(2), np.ones(2), 4),
            "x and y must differ",
        ),
        (
            lambda: sm.gradient_ratio(np.ones(2), np.ones(3), np.ones(2), np.ones(2), 4),
            "y must have the shape",
        ),
        (
            lambda: sm.gradient_ratio(np.zeros(2), np.ones(2), np.ones(3), np.ones(2), 4),
            "grad_x must have the shape",
        ),
        (
            lambda: sm.quadratic_ratio(np.zeros(2), np.ones(2), 0.0, 1.0, np.ones(2), 1.5),
            r"p must be in \[2, inf\]",
        ),
        (
            lambda: sm.quadratic_ratio(np.zeros(2), np.ones(2), float("nan"), 1.0, np.ones(2), 4),
            "f_x must be a real number",
        ),
        (lambda: sm.quadratic_lp_smoothness([1.0, -1.0], 4), "hessian_diag"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
