"""lpcheck.estimate core: eq. 27-28, eq. 43-44 and Assumption 3 at one point."""

import math

import numpy as np
import pytest
import torch

from lpcheck import estimate, lp


def test_alignment_and_second_moment_by_hand():
    f = np.array([1.0, -2.0])
    G = np.array([[1.0, -2.0], [3.0, 0.0]])
    p, eps = 4.0, 1e-3
    U = np.stack([lp.rescale(g, p, eps) for g in G])
    want_align = np.mean(U @ f) / 5.0
    want_m2 = np.mean([float(lp.lp_norm(u, p)) ** 2 for u in U])
    assert float(estimate.alignment(f, G, p, eps)) == pytest.approx(want_align, rel=1e-14)
    assert float(estimate.second_moment(G, p, eps)) == pytest.approx(want_m2, rel=1e-14)
    np.testing.assert_allclose(estimate.alignment_samples(f, G, p, eps), (U @ f) / 5.0, rtol=1e-14)


def test_p2_alignment_of_exact_gradients_is_one():
    rng = np.random.default_rng(0)
    f = rng.normal(size=50)
    G = np.tile(f, (4, 1))
    assert float(estimate.alignment(f, G, 2.0, 1e-8)) == pytest.approx(1.0, rel=1e-14)
    assert float(estimate.second_moment(G, 2.0, 1e-8)) == pytest.approx(f @ f, rel=1e-13)


def test_torch_in_torch_out():
    f = torch.randn(10, dtype=torch.float64)
    G = torch.randn(3, 10, dtype=torch.float64)
    a = estimate.alignment(f, G, 6.0, 1e-8)
    assert isinstance(a, torch.Tensor) and a.ndim == 0
    assert float(a) == pytest.approx(
        float(estimate.alignment(f.numpy(), G.numpy(), 6.0, 1e-8)), rel=1e-13
    )


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: estimate.alignment(np.zeros(3), np.ones((2, 3)), 4, 1e-8), "full_grad is zero"),
        (
            lambda: estimate.alignment(np.ones(4), np.ones((2, 3)), 4, 1e-8),
            r"full_grad must have shape \(d,\) = \(3,\)",
        ),
        (
            lambda: estimate.second_moment(np.ones(3), 4, 1e-8),
            r"stoch_grads must have shape \(K, d\)",
        ),
        (lambda: estimate.second_moment(np.ones((0, 3)), 4, 1e-8), r"stoch_grads must have shape"),
        (lambda: estimate.second_moment(np.ones((2, 3)), 1.5, 1e-8), r"p must be in \[2, inf\]"),
        (lambda: estimate.second_moment(np.ones((2, 3)), 4, 0.0), r"eps must be"),
        (
            lambda: estimate.alignment(np.ones(3), np.full((2, 3), np.nan), 4, 1e-8),
            r"stoch_grads must be finite",
        ),
        (
            lambda: estimate.alignment(torch.ones(3), np.ones((2, 3)), 4, 1e-8),
            r"both be numpy arrays or both torch",
        ),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- ground truth: f(x) = sum log(1 + x_i^2), g = grad f + sigma * xi with xi ~ N(0, I) --------
# E<grad f, u> = sum_i grad_i E[u_i] with u_i = z/(|z| + eps)^rho, z ~ N(mu_i, s^2): one 1-D
# integral per coordinate, done by scipy quadrature. For the momentum direction (eq. 43, m fixed)
# z = beta m_i + (1 - beta) g_i ~ N(beta m_i + (1 - beta) grad_i, ((1 - beta) sigma)^2).

import scipy.integrate  # noqa: E402 -- the ground-truth section's own imports
import scipy.stats  # noqa: E402

X = np.array([-2.0, -1.0, -0.5, -0.1, 0.3, 0.8, 1.5, 3.0])
GRAD = 2 * X / (1 + X**2)
SIGMA = 0.5
M = np.array([0.5, -0.2, 0.1, 0.3, -0.4, 0.2, 0.6, -0.1])  # a fixed momentum buffer m_{t-1}
BETA = 0.9


def _expected_rescaled(mu, s, p, eps):
    rho = lp.rho(p)
    h = lambda z: z / (abs(z) + eps) ** rho * scipy.stats.norm.pdf(z, mu, s)  # noqa: E731
    lo, hi = mu - 12 * s, mu + 12 * s
    pts = [0.0] if lo < 0 < hi else None
    # full_output: quad reports (rather than warns) where roundoff stops it short of 1e-11 (p = inf,
    # the near-jump at 0); the reference then checks its own error estimate, far below the tests'
    # rel=0.01
    value, abserr, *_ = scipy.integrate.quad(
        h, lo, hi, points=pts, limit=400, epsabs=1e-13, epsrel=1e-11, full_output=1
    )
    assert abserr <= 1e-6 * max(1.0, abs(value)), (mu, s, p, eps, value, abserr)
    return value


def _gradients(K, seed):
    return GRAD + SIGMA * np.random.default_rng(seed).standard_normal((K, X.size))


@pytest.mark.parametrize(
    "p,eps", [(3.0, 1e-8), (6.0, 1e-8), (6.0, 0.3), (20.0, 1e-3), (math.inf, 1e-8), (2.0, 1e-8)]
)
def test_alignment_matches_quadrature(p, eps):
    G = _gradients(100_000, seed=1)
    want = sum(gi * _expected_rescaled(gi, SIGMA, p, eps) for gi in GRAD) / (GRAD @ GRAD)
    assert float(estimate.alignment(GRAD, G, p, eps)) == pytest.approx(want, rel=0.01)
    want_m = sum(
        gi * _expected_rescaled(BETA * mi + (1 - BETA) * gi, (1 - BETA) * SIGMA, p, eps)
        for gi, mi in zip(GRAD, M)
    ) / (GRAD @ GRAD)
    assert float(estimate.momentum_alignment(GRAD, G, M, BETA, p, eps)) == pytest.approx(
        want_m, rel=0.01
    )


def _moment_mc(p, eps, shift, scale, K, seed):
    """E||rescale(z)||_p^2 for z = shift + scale * N(0, I), written out independently, in chunks."""
    rho = lp.rho(p)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(K // 100_000):
        z = shift + scale * rng.standard_normal((100_000, X.size))
        a = np.abs(z) / (np.abs(z) + eps) ** rho
        total += (a.max(1) ** 2).sum() if p == math.inf else ((a**p).sum(1) ** (2 / p)).sum()
    return total / K


@pytest.mark.parametrize("p,eps", [(3.0, 1e-8), (6.0, 0.3), (math.inf, 1e-8)])
def test_second_moments_match_an_independent_monte_carlo(p, eps):
    G = _gradients(100_000, seed=2)
    want = _moment_mc(p, eps, GRAD, SIGMA, 1_000_000, seed=3)
    assert float(estimate.second_moment(G, p, eps)) == pytest.approx(want, rel=0.01)
    want_m = _moment_mc(p, eps, BETA * M + (1 - BETA) * GRAD, (1 - BETA) * SIGMA, 1_000_000, seed=4)
    assert float(estimate.momentum_second_moment(G, M, BETA, p, eps)) == pytest.approx(
        want_m, rel=0.01
    )


def test_noise_in_l2_is_sigma_squared_times_d():
    # p = 2: q = 2 and E||sigma xi||_2^2 = sigma^2 d exactly
    G = _gradients(100_000, seed=5)
    assert float(estimate.noise(GRAD, G, 2.0)) == pytest.approx(SIGMA**2 * X.size, rel=0.01)


# --- momentum and noise by hand -----------------------------------------------------------------


def test_momentum_versions_by_hand():
    f = np.array([1.0, -2.0, 0.5])
    G = np.array([[1.0, -2.0, 0.0], [3.0, 0.0, -1.0]])
    m = np.array([0.2, 0.4, -0.6])
    beta, p, eps = 0.9, 4.0, 1e-3
    V = np.stack([lp.rescale(beta * m + (1 - beta) * g, p, eps) for g in G])
    np.testing.assert_allclose(
        estimate.momentum_directions(G, m, beta), beta * m + (1 - beta) * G, rtol=1e-15
    )
    np.testing.assert_allclose(
        estimate.momentum_alignment_samples(f, G, m, beta, p, eps), V @ f / (f @ f), rtol=1e-14
    )
    np.testing.assert_allclose(
        estimate.momentum_second_moment_samples(G, m, beta, p, eps),
        [float(lp.lp_norm(v, p)) ** 2 for v in V],
        rtol=1e-14,
    )
    # beta = 0 is LPSGD's direction: the momentum versions reduce to eq. 27-28
    np.testing.assert_allclose(
        estimate.momentum_alignment_samples(f, G, m, 0.0, p, eps),
        estimate.alignment_samples(f, G, p, eps),
        rtol=1e-15,
    )


def test_noise_by_hand_uses_the_dual_norm():
    f = np.array([1.0, -2.0])
    G = np.array([[2.0, -2.0], [2.0, -1.0]])  # g - grad f = (1, 0) and (1, 1)
    q = 4.0 / 3.0  # the dual exponent of p = 4
    want = [1.0, 2.0 ** (2 / q)]  # ||(1, 0)||_q^2 and ||(1, 1)||_q^2 = (1 + 1)^(2/q)
    np.testing.assert_allclose(estimate.noise_samples(f, G, 4.0), want, rtol=1e-14)
    assert float(estimate.noise(f, G, 4.0)) == pytest.approx(np.mean(want), rel=1e-14)


def test_momentum_torch_in_torch_out():
    f, G, m = (
        torch.randn(6, dtype=torch.float64),
        torch.randn(3, 6, dtype=torch.float64),
        torch.randn(6, dtype=torch.float64),
    )
    a = estimate.momentum_alignment(f, G, m, 0.9, 6.0, 1e-8)
    assert isinstance(a, torch.Tensor)
    assert float(a) == pytest.approx(
        float(estimate.momentum_alignment(f.numpy(), G.numpy(), m.numpy(), 0.9, 6.0, 1e-8)),
        rel=1e-13,
    )


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: estimate.momentum_alignment(
                np.ones(3), np.ones((2, 3)), np.ones(3), 1.0, 4, 1e-8
            ),
            r"beta .* \[0, 1\)",
        ),
        (
            lambda: estimate.momentum_alignment(
                np.ones(3), np.ones((2, 3)), np.ones(3), -0.1, 4, 1e-8
            ),
            r"beta",
        ),
        (
            lambda: estimate.momentum_second_moment(np.ones((2, 3)), np.ones(4), 0.9, 4, 1e-8),
            r"momentum_buffer must have shape",
        ),
        (
            lambda: estimate.momentum_second_moment(
                np.ones((2, 3)), np.array([1, np.inf, 0]), 0.9, 4, 1e-8
            ),
            r"momentum_buffer must be finite",
        ),
        (lambda: estimate.noise(np.ones(3), np.ones((2, 3)), 1.5), r"p must be in \[2, inf\]"),
        (lambda: estimate.noise(np.ones(2), np.ones((2, 3)), 4), r"full_grad must have shape"),
    ],
)
def test_bad_momentum_and_noise_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
