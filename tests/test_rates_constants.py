"""lpcheck.rates.constants: Assumption 5/6 constants at checkpoints, and the Theorem 1/2 bound
check."""

import math

import numpy as np
import pytest
import torch

from lpcheck import bounds
from lpcheck.estimate.fit import c2_for
from lpcheck.rates.constants import bound_check, measure, theorem_step
from lpcheck.rates.problems import Quadratic
from lpcheck.rates.simulation import make_method, simulate

SIGMA = 0.5
PROBLEM = Quadratic([4.0, 1.0, 0.25], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], sigma=SIGMA)


def _points(n=6):
    g = torch.Generator().manual_seed(0)
    return 1.0 + 2.0 * torch.randn(n, 3, generator=g, dtype=torch.float64)


def test_sgd_constants_are_the_textbook_ones():
    """u = g: E<grad f, g> = ||grad f||^2 (c1 = 1) and E||g||^2 = ||grad f||^2 + d sigma^2
    (c2 = d sigma^2, c3 = 1)."""
    theta = _points()
    c = measure(PROBLEM, make_method("sgd"), theta, None, [2.0] * 6, list(range(6)), K=20000)
    assert c.resolved.all()
    np.testing.assert_allclose(c.alignment, 1.0, atol=4 * c.alignment_se.max())
    full = PROBLEM.grad(theta)
    want = (full**2).sum(1).numpy() + 3 * SIGMA**2
    np.testing.assert_allclose(c.moment, want, rtol=0.03)
    np.testing.assert_allclose(c.grad_sq, (full**2).sum(1).numpy(), rtol=1e-14)
    assert c.c1 == pytest.approx(1.0, abs=0.03)


def test_sign_second_moment_is_one_in_l_inf():
    theta = _points()
    c = measure(
        PROBLEM, make_method("sign"), theta, None, [math.inf] * 6, list(range(6)), K=500, eps=1e-12
    )
    np.testing.assert_allclose(c.moment, 1.0, rtol=1e-9)


def test_momentum_constants_condition_on_the_buffer():
    """eq. 43 given F_t: a buffer pointing against grad f makes the conditional alignment
    negative."""
    theta = _points(4)
    full = PROBLEM.grad(theta)
    method = make_method("sgdm", momentum=0.9)
    against = measure(PROBLEM, method, theta, -5 * full, [2.0] * 4, list(range(4)), K=4000)
    along = measure(PROBLEM, method, theta, 5 * full, [2.0] * 4, list(range(4)), K=4000)
    # p = 2: v = 0.9 m + 0.1 g, so E<grad f, v>/||grad f||^2 = 0.9 * (+-5) + 0.1 exactly in
    # expectation
    np.testing.assert_allclose(against.alignment, -4.4, atol=4 * against.alignment_se.max() + 1e-12)
    np.testing.assert_allclose(along.alignment, 4.6, atol=4 * along.alignment_se.max() + 1e-12)
    assert against.c1 < 0 and bound_check(1.0, 0.1, against, 4.0, 1.0, 100)["ratio"] is None


def test_steepest_direction_is_measured_with_its_own_norm():
    theta = _points(3)
    g_free = Quadratic(
        [4.0, 1.0, 0.25], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], sigma=0.0
    )  # u = -eq.10(grad f)
    c = measure(g_free, make_method("steepest", p=4.0), theta, None, [4.0] * 3, [0, 1, 2], K=2)
    full = g_free.grad(theta)
    q = 4.0 / 3.0
    # eq. 10: <g, d> = -||g||_q^2 and ||d||_p = ||g||_q
    dual = (full.abs() ** q).sum(1) ** (1 / q)
    np.testing.assert_allclose(c.alignment, (dual**2 / (full**2).sum(1)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(c.moment, (dual**2).numpy(), rtol=1e-12)


def test_unresolved_checkpoints_do_not_set_c1():
    theta = torch.cat(
        [_points(3), PROBLEM.center[None] + 1e-6]
    )  # the last: a tiny gradient, ratio is noise
    c = measure(PROBLEM, make_method("sgd"), theta, None, [2.0] * 4, list(range(4)), K=64)
    assert c.resolved[:3].all() and not c.resolved[3]
    assert c.c1 == pytest.approx(float(c.alignment[:3].min()))
    assert c.summary()["resolved"] == 3 and c.summary()["checkpoints"] == 4
    assert c.summary()["c1_upper"] == pytest.approx(float((c.alignment + 2 * c.alignment_se).min()))


def test_an_unresolved_ratio_is_measured_again_with_more_draws():
    theta = PROBLEM.center[None] + torch.tensor(
        [[0.31 / 4, 0.0, 0.0]], dtype=torch.float64
    )  # ||grad f|| = 0.31
    # SGD: standard error sigma / (||grad f|| sqrt(K)) = 0.2 at K = 64 (unresolved), 0.05 after 16 x
    # 64 more
    once = measure(PROBLEM, make_method("sgd"), theta, None, [2.0], [0], K=64, refine=1)
    again = measure(PROBLEM, make_method("sgd"), theta, None, [2.0], [0], K=64, refine=16)
    assert not once.resolved[0] and once.refined == 0
    assert again.resolved[0] and again.refined == 1
    assert again.alignment_se[0] == pytest.approx(SIGMA / (0.31 * math.sqrt(17 * 64)), rel=0.1)
    assert again.c1 == pytest.approx(1.0, abs=4 * again.alignment_se[0])


def test_bound_check_is_eq31_at_the_step_used_with_the_largest_allowed_c3():
    run = simulate(PROBLEM, make_method("sgd"), 200, 0.05, 16, seed=0)
    c = measure(PROBLEM, make_method("sgd"), run.ck_theta, None, run.ck_p, run.ck_t, K=256)
    L, delta, eta = PROBLEM.L(2), float(PROBLEM.f(PROBLEM.x0[None])[0]), 0.05
    observed = float(run.grad_sq_mean.mean())
    out = bound_check(observed, eta, c, L, delta, 200)
    assert out["c3"] == pytest.approx(c.c1 / (L * eta), rel=1e-12)  # eq. 30 holds with equality
    assert out["c2"] == pytest.approx(c2_for(out["c3"], c.grad_sq, c.moment), rel=1e-12)
    assert out["rhs"] == pytest.approx(
        bounds.theorem1_rhs(eta, c.c1, out["c2"], L, delta, 200), rel=1e-12
    )
    assert out["ratio"] == pytest.approx(observed / out["rhs"], rel=1e-12)
    assert 0 < out["ratio"] <= 1  # Theorem 1 holds on this run


def test_theorem_step_is_eq32_for_the_best_frontier_pair():
    run = simulate(PROBLEM, make_method("sgd"), 200, 0.05, 16, seed=0)
    c = measure(PROBLEM, make_method("sgd"), run.ck_theta, None, run.ck_p, run.ck_t, K=256)
    step = theorem_step(c, 4.0, 2.0, 1000)
    assert step["eta"] == pytest.approx(
        bounds.theorem1_step(c.c1, step["c2"], step["c3"], 4.0, 2.0, 1000), rel=1e-12
    )
    no_alignment = measure(
        PROBLEM,
        make_method("sgdm"),
        run.ck_theta[:2],
        -10 * PROBLEM.grad(run.ck_theta[:2]),
        [2.0, 2.0],
        [0, 1],
        K=64,
    )
    with pytest.raises(ValueError, match="eq. 32/47 has no step"):
        theorem_step(no_alignment, 4.0, 2.0, 1000)
