"""lpcheck.lp: eq. 10 (steepest descent), eq. 20 (rho), eq. 21 (rescale), norms."""

import math

import mpmath
import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lpcheck import lp

# no subnormals: c * g must scale exactly for the scaling laws
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False).filter(
    lambda v: v == 0 or abs(v) > 1e-290
)
vectors = hnp.arrays(np.float64, st.integers(1, 8), elements=finite)
p_finite = st.floats(1.05, 60.0)
p_any = st.one_of(p_finite, st.just(math.inf))
lrs = st.floats(1e-3, 10.0)


def objective(g, d, p, lr):
    """eq. 9 without the constant: <lr g, d> + 1/2 ||d||_p^2."""
    return lr * float(np.dot(g, d)) + 0.5 * float(lp.lp_norm(d, p)) ** 2


# --- exponents ---------------------------------------------------------------------------------


@given(p_any)
def test_dual_exponent_is_conjugate(p):
    q = lp.dual_exponent(p)
    assert 1 / p + 1 / q == pytest.approx(1.0, rel=1e-14)
    assert lp.dual_exponent(q) == pytest.approx(p, rel=1e-12) if math.isfinite(p) else q == 1.0


def test_exponent_special_values():
    assert lp.dual_exponent(2) == 2.0
    assert lp.dual_exponent(math.inf) == 1.0
    assert lp.dual_exponent(1) == math.inf
    assert lp.rho(2) == 0.0 and lp.rho(math.inf) == 1.0 and lp.rho(3) == 0.5


@given(st.floats(2.0, 1e6))
def test_rho_range_and_identity(p):
    r = lp.rho(p)
    assert 0 <= r < 1
    assert r == pytest.approx(2 - lp.dual_exponent(p), abs=1e-12)  # rho = 2 - q (eq. 10 vs eq. 20)


@pytest.mark.parametrize("bad", [1.999, 0, -3, math.nan, "4", True])
def test_rho_rejects_p_below_2(bad):
    with pytest.raises(ValueError, match=r"p must be"):
        lp.rho(bad)


@pytest.mark.parametrize("bad", [0.5, -1, math.nan])
def test_dual_exponent_rejects(bad):
    with pytest.raises(ValueError, match=r"p must be"):
        lp.dual_exponent(bad)


# --- norms -------------------------------------------------------------------------------------

moderate = st.one_of(
    st.just(0.0), st.floats(1e-30, 1e3), st.floats(-1e3, -1e-30)
)  # where numpy does not underflow


@given(
    hnp.arrays(np.float64, st.integers(1, 8), elements=moderate),
    st.sampled_from([1, 1.5, 2, 3, 7.5, math.inf]),
)
def test_lp_norm_matches_numpy(x, p):
    assert float(lp.lp_norm(x, p)) == pytest.approx(np.linalg.norm(x, ord=p), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e200, 1e300])
@pytest.mark.parametrize("p", [1.5, 2, 6, math.inf])
def test_lp_norm_no_overflow_or_underflow(scale, p):
    x = np.array([3.0, -4.0, 0.5])
    got = float(lp.lp_norm(x * scale, p))
    assert math.isfinite(got) and got > 0
    assert got == pytest.approx(scale * np.linalg.norm(x, ord=p), rel=1e-13)


def test_lp_norm_axis_and_kinds():
    x = np.arange(12.0).reshape(3, 4) - 5
    np.testing.assert_allclose(
        lp.lp_norm(x, 3, axis=1), np.linalg.norm(x, ord=3, axis=1), rtol=1e-13
    )
    t = torch.tensor(x, dtype=torch.float32)
    out = lp.lp_norm(t, 3, axis=1)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (3,)
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(x, ord=3, axis=1), rtol=1e-6)
    assert float(lp.lp_norm(np.zeros(4), 2)) == 0.0


# --- eq. 10 ------------------------------------------------------------------------------------


@given(vectors, p_any, lrs)
def test_eq10_attains_optimal_value_and_norm(g, p, lr):
    d = lp.steepest_descent(g, p, lr)
    gq = float(lp.lp_norm(g, lp.dual_exponent(p)))
    assert float(lp.lp_norm(d, p)) == pytest.approx(lr * gq, rel=1e-10, abs=1e-280)
    assert objective(g, d, p, lr) == pytest.approx(-(lr**2) * gq**2 / 2, rel=1e-9, abs=1e-280)


@given(vectors, p_finite, lrs, st.data())
def test_eq10_is_a_minimum_under_perturbation(g, p, lr, data):
    assume(np.abs(g).max() > 1e-3)
    d = lp.steepest_descent(g, p, lr)
    direction = data.draw(hnp.arrays(np.float64, g.shape, elements=st.floats(-1, 1)))
    t = data.draw(st.floats(1e-4, 1.0))
    best = objective(g, d, p, lr)
    assert objective(g, d + t * direction * (1 + np.abs(d)), p, lr) >= best - 1e-9 * (1 + abs(best))


@given(vectors, lrs)
def test_eq10_p2_is_gradient_step(g, lr):
    # entries over 1e308 below max|g| take the log branch: ~1e-13 relative there
    np.testing.assert_allclose(lp.steepest_descent(g, 2, lr), -lr * g, rtol=1e-14, atol=1e-295)


@given(vectors, p_any, st.floats(1e-3, 1e3), lrs)
def test_eq10_scaling_laws(g, p, c, lr):
    d = lp.steepest_descent(g, p, lr)
    np.testing.assert_allclose(lp.steepest_descent(c * g, p, lr), c * d, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(lp.steepest_descent(g, p, c * lr), c * d, rtol=1e-12, atol=1e-300)


@given(
    hnp.arrays(
        np.float64, st.integers(2, 4), elements=st.floats(-5, 5).filter(lambda v: abs(v) > 1e-2)
    ),
    st.floats(1.5, 8.0),
    lrs,
)
def test_eq10_agrees_with_an_independent_numeric_minimizer(g, p, lr):
    # Minimise eq. 9 with scipy from the gradient step, without using the closed form.
    res = scipy.optimize.minimize(
        lambda d: objective(g, d, p, lr),
        -lr * g,
        method="BFGS",
        options={"gtol": 1e-12, "maxiter": 2000},
    )
    d = lp.steepest_descent(g, p, lr)
    assert objective(g, d, p, lr) <= res.fun + 1e-9 * (1 + abs(res.fun))
    scale = lr * float(lp.lp_norm(g, lp.dual_exponent(p)))
    np.testing.assert_allclose(res.x, d, atol=2e-3 * scale)


def test_eq10_special_cases():
    g = np.array([3.0, 0.0, -1.0])
    np.testing.assert_array_equal(lp.steepest_descent(np.zeros(5), 4.0), np.zeros(5))
    # p = inf: -lr ||g||_1 sign(g), and 0 where g_i = 0 (the p -> inf limit)
    np.testing.assert_allclose(lp.steepest_descent(g, math.inf, 0.5), -0.5 * 4.0 * np.sign(g))
    np.testing.assert_allclose(
        lp.steepest_descent(g, 1e7, 0.5), lp.steepest_descent(g, math.inf, 0.5), rtol=1e-5
    )
    for scale in (1e-300, 1e300):
        d = lp.steepest_descent(g * scale, 6.0)
        assert np.isfinite(d).all()
        np.testing.assert_allclose(d, scale * lp.steepest_descent(g, 6.0), rtol=1e-13)


@pytest.mark.parametrize("p", [1.5, 2.0, 4.0, 60.0])
def test_eq10_keeps_digits_across_a_huge_dynamic_range(p):
    # |g_0| / |g_1| < 1e-308: the scaled ratio underflows, the log branch keeps the entry exact.
    g = [5e-310, -1.0, 3e-200]
    d = lp.steepest_descent(np.array(g), p, 0.5)
    q = lp.dual_exponent(p)
    with mpmath.workdps(60):
        gm = [mpmath.mpf(v) for v in g]
        nq = sum(abs(v) ** q for v in gm) ** (1 / mpmath.mpf(q))
        exact = [float(-0.5 * nq ** (2 - q) * mpmath.sign(v) * abs(v) ** (q - 1)) for v in gm]
    for got, want in zip(d, exact):
        assert got == pytest.approx(want, rel=1e-11, abs=1e-322)


def test_eq10_axis_treats_rows_separately():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(5, 7))
    D = lp.steepest_descent(G, 3.0, 0.1, axis=1)
    for row, drow in zip(G, D):
        np.testing.assert_allclose(drow, lp.steepest_descent(row, 3.0, 0.1), rtol=1e-14)


def test_eq10_torch_matches_numpy():
    g = np.random.default_rng(1).normal(size=(4, 6))
    out = lp.steepest_descent(torch.tensor(g), 5.0, 0.3)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), lp.steepest_descent(g, 5.0, 0.3), rtol=1e-15)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(p=1.0), "p must be in \\(1, inf\\]"),
        (dict(p=0.5), "p must be"),
        (dict(p=3, lr=-1), "lr must be"),
        (dict(p=3, lr=math.inf), "lr must be"),
    ],
)
def test_eq10_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lp.steepest_descent(np.ones(3), **kwargs)


# --- eq. 21 ------------------------------------------------------------------------------------


def _exact_rescale(g, r, eps):
    with mpmath.workdps(60):
        return float(mpmath.mpf(g) / (abs(mpmath.mpf(g)) + mpmath.mpf(eps)) ** mpmath.mpf(r))


@given(
    st.floats(-1e300, 1e300, allow_subnormal=True),
    st.floats(2.0, 100.0),
    st.sampled_from([1e-300, 1e-12, 1e-8, 1e-3, 1.0]),
)
def test_eq21_exact_to_rounding(g, p, eps):
    u = float(lp.rescale(np.array([g]), p, eps)[0])
    exact = _exact_rescale(g, lp.rho(p), eps)
    assert u == pytest.approx(exact, rel=4e-16 * 4, abs=1e-320)  # a few ulp: abs, +, pow, /


@given(
    hnp.arrays(
        np.float64, st.integers(1, 16), elements=st.floats(-1e308, 1e308, allow_subnormal=True)
    ),
    st.one_of(st.floats(2.0, 1e6), st.just(math.inf)),
    st.sampled_from([5e-324, 1e-300, 1e-8, 1.0]),
)
def test_eq21_never_overflows_or_nans(g, p, eps):
    u = lp.rescale(g, p, eps)
    assert np.isfinite(u).all()
    assert (np.sign(u) == np.sign(g)).all()
    assert (np.abs(u) <= np.maximum(1.0, np.abs(g) + eps) * (1 + 1e-15)).all()


@given(vectors)
def test_eq21_p2_is_identity(g):
    np.testing.assert_array_equal(lp.rescale(g, 2.0, 1e-8), g)


@given(st.floats(2.0, 50.0), st.floats(1e-12, 1.0))
def test_eq21_is_increasing_in_g(p, eps):
    g = np.linspace(-10, 10, 2001)
    u = lp.rescale(g, p, eps)
    assert (np.diff(u) > 0).all()


def test_eq21_approaches_sign_descent():
    g = np.array([-7.0, -1e-3, 2e-2, 5.0, 1e4])
    for p, eps, tol in [(1e3, 1e-10, 2e-2), (1e6, 1e-14, 5e-5)]:
        np.testing.assert_allclose(lp.rescale(g, p, eps), np.sign(g), atol=tol)
    np.testing.assert_allclose(lp.rescale(g, math.inf, 1e-14), np.sign(g), atol=1e-10)


def test_eq21_kinds_and_dtypes():
    t = torch.tensor([1e-30, -2.0, 3e30], dtype=torch.float32)
    u = lp.rescale(t, 6.0, 1e-8)
    assert isinstance(u, torch.Tensor) and u.dtype == torch.float32 and torch.isfinite(u).all()
    ref = lp.rescale(t.double().numpy(), 6.0, 1e-8)
    np.testing.assert_allclose(u.numpy(), ref, rtol=2e-6)
    assert lp.rescale([1, -2], 3, 1e-8).dtype == np.float64  # lists and ints become float64


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(p=1.5, eps=1e-8), "p must be in \\[2, inf\\]"),
        (dict(p=4, eps=0.0), "eps must be"),
        (dict(p=4, eps=-1e-8), "eps must be"),
        (dict(p=4, eps=math.nan), "eps must be"),
    ],
)
def test_eq21_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lp.rescale(np.ones(3), **kwargs)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1.0, np.nan]),
        np.array([np.inf, 1.0]),
        torch.tensor([1.0, float("nan")]),
        np.array([1 + 1j]),
    ],
)
def test_non_finite_or_complex_input_raises(bad):
    with pytest.raises(ValueError, match="g must be"):
        lp.rescale(bad, 4, 1e-8)
    with pytest.raises(ValueError, match="g must be"):
        lp.steepest_descent(bad, 4)


def test_check_finite_false_skips_only_the_finiteness_test():
    # hot loops check finiteness once themselves; the flag must not change any finite result
    g = torch.tensor([1.0, -2.0, float("nan")])
    with pytest.raises(ValueError, match="must be finite"):
        lp.rescale(g, 4.0, 1e-8)
    u = lp.rescale(g, 4.0, 1e-8, check_finite=False)
    assert torch.isnan(u[2]) and torch.equal(u[:2], lp.rescale(g[:2], 4.0, 1e-8))
    assert math.isnan(float(lp.lp_norm(g, 3.0, check_finite=False)))
    x = np.array([3.0, -4.0])
    assert lp.lp_norm(x, 2, check_finite=False) == lp.lp_norm(x, 2) == 5.0


# --- arguments as torch takes them; empty inputs --------------------------------------------------


def test_numbers_torch_accepts_are_accepted():
    g = np.array([3.0, -4.0, 0.0])
    assert (
        lp.rho(np.float32(3.0)) == lp.rho(torch.tensor(3.0)) == lp.rho(np.array(3.0)) == 0.5
    )  # 0-d arrays too
    np.testing.assert_array_equal(
        lp.rescale(g, torch.tensor(4.0), np.float64(1e-8)), lp.rescale(g, 4.0, 1e-8)
    )
    np.testing.assert_array_equal(
        lp.steepest_descent(g, np.int64(3), torch.tensor([0.5], dtype=torch.float64)),
        lp.steepest_descent(g, 3.0, 0.5),
    )
    assert lp.lp_norm(np.ones((2, 3)), 2.0, axis=np.int64(-1)).shape == (2,)


@pytest.mark.parametrize("x", [np.ones((2, 3)), torch.ones(2, 3)])
@pytest.mark.parametrize("axis", [2, -3, 1.5, True])
def test_axis_out_of_range_or_not_an_integer_names_axis(x, axis):
    with pytest.raises(ValueError, match=r"^axis must be"):
        lp.lp_norm(x, 2.0, axis=axis)
    with pytest.raises(ValueError, match=r"^axis must be"):
        lp.steepest_descent(x, 3.0, axis=axis)


@pytest.mark.parametrize("kind", [np.zeros, torch.zeros])
def test_empty_vectors_have_norm_zero_and_step_zero(kind):
    x = kind((0, 3))
    assert list(lp.lp_norm(x, 3.0, axis=0)) == [0.0, 0.0, 0.0]  # three empty vectors
    assert tuple(lp.lp_norm(x, 3.0, axis=1).shape) == (0,)  # no vectors
    assert float(lp.lp_norm(x, 3.0)) == 0.0
    assert tuple(lp.steepest_descent(x, 3.0, axis=0).shape) == (0, 3)
    assert tuple(lp.rescale(x, 3.0, 1e-8).shape) == (0, 3)


@pytest.mark.parametrize(
    "g", [torch.tensor([0.0, 1.0], dtype=torch.float16), np.array([0.0, 1.0], dtype=np.float16)]
)
def test_eps_that_is_zero_in_gs_dtype_is_refused(g):
    # g + eps is taken in g's dtype: eps = 1e-8 is 0 in float16, and eq. 21 was 0/0 = NaN at g = 0
    with pytest.raises(
        ValueError, match=r"eps = 1e-08 rounds to 0 in (torch.float16|numpy float16)"
    ):
        lp.rescale(g, 4.0, 1e-8)
    u = lp.rescale(g, 4.0, 1e-3)
    assert (u == u).all() and float(u[0]) == 0.0


def test_lr_that_is_zero_in_gs_dtype_is_refused():
    with pytest.raises(ValueError, match="lr = 1e-46 rounds to 0 in torch.float32"):
        lp.steepest_descent(torch.tensor([1.0, -2.0]), 3.0, 1e-46)
    assert (
        lp.steepest_descent(torch.tensor([1.0, -2.0], dtype=torch.float64), 3.0, 1e-46) != 0
    ).all()
