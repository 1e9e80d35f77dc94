"""lpcheck.estimate core: eq. 27 and eq. 28 at one point."""

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
    assert float(a) == pytest.approx(float(estimate.alignment(f.numpy(), G.numpy(), 6.0, 1e-8)), rel=1e-13)


@pytest.mark.parametrize("call,match", [
    (lambda: estimate.alignment(np.zeros(3), np.ones((2, 3)), 4, 1e-8), "full_grad is zero"),
    (lambda: estimate.alignment(np.ones(4), np.ones((2, 3)), 4, 1e-8), r"full_grad must have shape \(d,\) = \(3,\)"),
    (lambda: estimate.second_moment(np.ones(3), 4, 1e-8), r"stoch_grads must have shape \(K, d\)"),
    (lambda: estimate.second_moment(np.ones((0, 3)), 4, 1e-8), r"stoch_grads must have shape"),
    (lambda: estimate.second_moment(np.ones((2, 3)), 1.5, 1e-8), r"p must be in \[2, inf\]"),
    (lambda: estimate.second_moment(np.ones((2, 3)), 4, 0.0), r"eps must be"),
    (lambda: estimate.alignment(np.ones(3), np.full((2, 3), np.nan), 4, 1e-8), r"stoch_grads must be finite"),
    (lambda: estimate.alignment(torch.ones(3), np.ones((2, 3)), 4, 1e-8), r"both be numpy arrays or both torch"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
