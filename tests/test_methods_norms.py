"""lpcheck.methods.norms: the norms over lists of tensors, their duals, LMOs and sharp operators."""

import math

import numpy as np
import pytest
import torch

from lpcheck import lp
from lpcheck.methods.norms import Ellipsoidal, Layerwise, Lp, newton_schulz, parse

SHAPES = [(4, 3), (5,), (2, 3, 2), ()]


def _tensors(seed, shapes=SHAPES, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) * scale for s in shapes]


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def _inner(a, b):
    return sum(float((x * y).sum()) for x, y in zip(a, b))


NORMS = [
    Lp(1.0),
    Lp(1.5),
    Lp(2.0),
    Lp(3.0),
    Lp(math.inf),
    Ellipsoidal([t.abs() + 0.1 for t in _tensors(99)]),
    Layerwise("sign"),
    Layerwise("l2", radius=2.0),
    Layerwise("rms", radius=0.5),
]


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0, 7.0, math.inf])
def test_lp_is_the_lp_norm_of_the_concatenation(p):
    x = _tensors(0)
    assert float(Lp(p).norm(x)) == pytest.approx(float(lp.lp_norm(_flat(x), p)), rel=1e-14)
    assert float(Lp(p).dual(x)) == pytest.approx(
        float(lp.lp_norm(_flat(x), lp.dual_exponent(p))), rel=1e-14
    )


@pytest.mark.parametrize("p", [1.5, 2.0, 4.0, math.inf])
def test_lp_sharp_is_eq_10(p):
    g = _tensors(1)
    want = -lp.steepest_descent(_flat(g), p)
    torch.testing.assert_close(_flat(Lp(p).sharp(g)), want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("norm", NORMS, ids=repr)
def test_dual_norm_holder_inequality_is_attained_at_minus_the_lmo(norm):
    g = _tensors(2)
    dual = float(norm.dual(g))
    gen = torch.Generator().manual_seed(5)
    for _ in range(50):
        x = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in g]
        assert _inner(g, x) <= dual * float(norm.norm(x)) * (1 + 1e-13)
    star = [-u for u in norm.lmo(g)]
    assert _inner(g, star) == pytest.approx(dual, rel=1e-13)
    assert float(norm.norm(star)) == pytest.approx(1.0, rel=1e-13)
    assert float(norm.norm(norm.sharp(g))) == pytest.approx(dual, rel=1e-13)


def test_layerwise_spectral_norm_is_the_largest_layer_norm_over_the_radius():
    x = _tensors(3)
    norm = Layerwise("sign", radius=2.0)
    per = [
        np.linalg.norm(x[0].numpy(), 2),
        np.abs(x[1].numpy()).max(),
        np.linalg.norm(x[2].numpy().reshape(2, -1), 2),
        abs(float(x[3])),
    ]
    assert float(norm.norm(x)) == pytest.approx(max(per) / 2.0, rel=1e-13)
    duals = [
        np.linalg.norm(x[0].numpy(), "nuc"),
        np.abs(x[1].numpy()).sum(),
        np.linalg.norm(x[2].numpy().reshape(2, -1), "nuc"),
        abs(float(x[3])),
    ]
    assert float(norm.dual(x)) == pytest.approx(2.0 * sum(duals), rel=1e-13)


@pytest.mark.parametrize("norm", NORMS + [Layerwise("sign", solver="newton_schulz")], ids=repr)
def test_batched_rows_are_separate_vectors(norm):
    seeds = 3
    rows = [_tensors(10 + s) for s in range(seeds)]
    batch = [torch.stack([rows[s][i] for s in range(seeds)]) for i in range(len(SHAPES))]
    if isinstance(norm, Ellipsoidal):
        norm_b = Ellipsoidal([torch.stack([a] * seeds) for a in norm.a])
    else:
        norm_b = norm
    nb, db, lb = (
        norm_b.norm(batch, batched=True),
        norm_b.dual(batch, batched=True),
        norm_b.lmo(batch, batched=True),
    )
    assert nb.shape == (seeds,) and db.shape == (seeds,)
    for s in range(seeds):
        assert float(nb[s]) == pytest.approx(float(norm.norm(rows[s])), rel=1e-12)
        assert float(db[s]) == pytest.approx(float(norm.dual(rows[s])), rel=1e-12)
        for a, b in zip(lb, norm.lmo(rows[s])):
            torch.testing.assert_close(a[s], b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("norm", NORMS + [Layerwise("sign", solver="newton_schulz")], ids=repr)
def test_zero_gradient_gives_zero_lmo_and_no_nan(norm):
    g = [torch.zeros(s, dtype=torch.float64) for s in SHAPES]
    for out in (norm.lmo(g), norm.sharp(g)):
        assert all(torch.equal(t, torch.zeros_like(t)) for t in out)
    assert float(norm.dual(g)) == 0 and float(norm.norm(g)) == 0


@pytest.mark.parametrize("p", [1.5, 3.0, math.inf])
def test_lp_has_no_overflow_at_huge_entries(p):
    g = _tensors(4, scale=1e300)
    assert math.isfinite(float(Lp(p).norm(g))) and math.isfinite(float(Lp(p).dual(g)))
    assert all(bool(torch.isfinite(t).all()) for t in Lp(p).lmo(g))


def test_l1_lmo_shares_ties_and_stays_a_minimiser():
    g = [torch.tensor([3.0, -3.0, 1.0], dtype=torch.float64)]
    x = Lp(1.0).lmo(g)[0]
    torch.testing.assert_close(x, torch.tensor([-0.5, 0.5, 0.0], dtype=torch.float64))
    assert _inner(g, [x]) == pytest.approx(-3.0)


def test_spectral_lmo_is_minus_u_v_transposed_and_zero_on_the_null_space():
    gen = torch.Generator().manual_seed(6)
    a, b = (
        torch.randn(5, 2, generator=gen, dtype=torch.float64),
        torch.randn(2, 4, generator=gen, dtype=torch.float64),
    )
    G = a @ b  # rank 2
    X = Layerwise("sign")._block_lmo(G, False)
    U, S, Vh = np.linalg.svd(G.numpy())
    torch.testing.assert_close(X, torch.from_numpy(-(U[:, :2] @ Vh[:2])), rtol=1e-12, atol=1e-12)
    assert _inner([G], [X]) == pytest.approx(-S.sum(), rel=1e-12)


def test_newton_schulz_lands_near_u_v_transposed():
    """The quintic iteration's singular values land in roughly [0.7, 1.2] (not 1: it is an
    approximate LMO), along G's own singular vectors; batched matrices take the same iteration
    each."""
    gen = torch.Generator().manual_seed(7)
    G = torch.randn(3, 6, 9, generator=gen, dtype=torch.float64)
    X = newton_schulz(G)
    for i in range(3):
        U, S, Vh = torch.linalg.svd(G[i], full_matrices=False)
        inner = U.mT @ X[i] @ Vh.mT  # diagonal if X shares G's singular vectors
        assert float((inner - torch.diag(torch.diagonal(inner))).abs().max()) < 1e-10
        s = torch.linalg.svdvals(X[i])
        assert 0.6 < float(s.min()) and float(s.max()) < 1.25
        torch.testing.assert_close(newton_schulz(G[i]), X[i], rtol=1e-12, atol=1e-13)
    tall = newton_schulz(G[0].mT)
    torch.testing.assert_close(tall, X[0].mT, rtol=1e-12, atol=1e-13)


def test_ellipsoidal_is_adams_geometry():
    """d = A^-1 g is the steepest-descent direction of ||.||_A: sharp(g) = g / a."""
    a = [t.abs() + 0.5 for t in _tensors(8)]
    g = _tensors(9)
    for x, y, ai in zip(Ellipsoidal(a).sharp(g), g, a):
        torch.testing.assert_close(x, y / ai)
    want = math.sqrt(sum(float((ai * y * y).sum()) for ai, y in zip(a, g)))
    assert float(Ellipsoidal(a).norm(g)) == pytest.approx(want)


@pytest.mark.parametrize(
    "spec,want",
    [
        ("l2", "l2"),
        ("LINF", "linf"),
        ("l1", "l1"),
        ("lp:4", "lp:4"),
        ("lp:inf", "linf"),
        (" lp:2 ", "l2"),
        ("spectral", "layerwise(spectral, l2, radius=1, svd)"),
    ],
)
def test_parse(spec, want):
    assert repr(parse(spec)) == want


@pytest.mark.parametrize(
    "spec,match",
    [
        ("l3", "norm must be one of"),
        ("lp:x", r"lp:P.*number"),
        ("lp:0.5", r"p must be .* \[1, inf\]"),
        (3, "norm must be a Norm"),
        ("lp:nan", "p must be"),
    ],
)
def test_parse_refuses_by_name(spec, match):
    with pytest.raises(ValueError, match=match):
        parse(spec)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(vector="max"), "vector must be one of"),
        (dict(radius=0), "radius must be"),
        (dict(solver="qr"), "solver must be one of"),
        (dict(ns_steps=0), "ns_steps must be"),
    ],
)
def test_layerwise_refuses_by_name(kw, match):
    with pytest.raises(ValueError, match=match):
        Layerwise(**kw)
