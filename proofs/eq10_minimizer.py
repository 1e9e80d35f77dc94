"""eq. 10 is the unique minimiser of eq. 9, with value -eta^2 ||g||_q^2 / 2 and ||d||_p = eta
||g||_q.

Setting: 1 < p < inf is written p = 1 + r with r > 0, q = p/(p-1) its dual exponent, eta > 0. For a
coordinate with g_i != 0 we write a = |g_i| > 0, S = sum_j |g_j|^q > 0 and N = S^(1/q) = ||g||_q.
The argument, one obligation per step:
  1. conjugate exponents and the exponent identities rho = 2 - q, 1 - rho = q - 1;
  2. the paper's eq. 10 equals d_i = -eta N^(2-q) sign(g_i) |g_i|^(q-1);
  3. ||d||_p = eta N (the inner sum collapses to S because (q-1) p = q);
  4. stationarity: the gradient of 1/2 ||d||_p^2 is ||d||_p^(2-p) sign(d_i)|d_i|^(p-1), and at d it
     cancels eta g_i (also at g_i = 0, where d_i = 0);
  5. strict convexity of 1/2 ||d||_p^2 (Hessian entries, Cauchy-Schwarz, a positivity step), so the
     stationary point is the unique minimiser; a numeric minimiser agrees;
  6. the optimal value, the limits p = 2 (gradient step) and p -> inf (sign step, ||g||_1 factor).
"""

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from lpcheck import formulas as F
from lpcheck.verify import control, obligation
from lpcheck.verify.engines import (
    numeric_forall,
    sympy_equal,
    sympy_limit,
    sympy_nonneg,
    z3_implies,
)

r = sp.Symbol("r", positive=True)  # p = 1 + r
p = 1 + r
q = F.dual_exponent(p)
rho = F.eq20_rho(p)
eta = sp.Symbol("eta", positive=True)
a = sp.Symbol("a", positive=True)  # |g_i|
S = sp.Symbol("S", positive=True)  # sum_j |g_j|^q
N = S ** (1 / q)  # ||g||_q
d_mag = eta * N ** (2 - q) * a ** (q - 1)  # |d_i| of the closed form


@obligation(
    "eq10.conjugate", "q = p/(p-1) is the dual exponent: 1/p + 1/q = 1, and p q = p + q", "10"
)
def conjugate():
    return [sympy_equal(1 / p + 1 / q, 1), sympy_equal(p * q, p + q)]


@obligation(
    "eq10.exponents",
    "rho = (p-2)/(p-1) = 2 - q and 1 - rho = q - 1, i.e. |g|^(1-rho) = |g|^(q-1)",
    "10, 20",
)
def exponents():
    return [sympy_equal(rho, 2 - q), sympy_equal(1 - rho, q - 1)]


@obligation(
    "eq10.closed_form",
    "the paper's eq. 10, -eta ||g||_q^rho g_i/|g_i|^rho, is -eta ||g||_q^(2-q) "
    "sign(g_i)|g_i|^(q-1) (both signs of g_i)",
    "10",
)
def closed_form():
    return [
        sympy_equal(F.eq10_step(a, N, p, eta), -d_mag),
        sympy_equal(F.eq10_step(-a, N, p, eta), d_mag),
    ]


@obligation(
    "eq10.sum_exponent",
    "|d_i|^p = eta^p N^((2-q)p) |g_i|^q, since (q-1) p = q: sum_i |d_i|^p = eta^p N^((2-q)p) S",
    "10",
)
def sum_exponent():
    return [sympy_equal((q - 1) * p, q), sympy_equal(d_mag**p, eta**p * N ** ((2 - q) * p) * a**q)]


@obligation(
    "eq10.norm", "||d||_p = eta ||g||_q: (eta^p N^((2-q)p) S)^(1/p) = eta N with N = S^(1/q)", "10"
)
def norm():
    return sympy_equal((eta**p * N ** ((2 - q) * p) * S) ** (1 / p), eta * N)


@obligation(
    "eq10.norm_gradient",
    "d/dx_i 1/2 ||x||_p^2 = ||x||_p^(2-p) x_i^(p-1) for x > 0 (checked on R^3, any p > 1)",
    "9",
)
def norm_gradient():
    xs = sp.symbols("x1:4", positive=True)
    n = sp.Add(*[x**p for x in xs])
    half_sq = n ** (2 / p) / 2
    return sympy_equal(sp.diff(half_sq, xs[0]), n ** ((2 - p) / p) * xs[0] ** (p - 1))


@obligation(
    "eq10.stationarity",
    "at d, eta g_i + ||d||_p^(2-p) sign(d_i)|d_i|^(p-1) = 0 for g_i > 0 (and by symmetry g_i < 0)",
    "9, 10",
)
def stationarity():
    return sympy_equal(eta * a - (eta * N) ** (2 - p) * d_mag ** (p - 1), 0)


@obligation(
    "eq10.stationarity_zero",
    "at g_i = 0, d_i = 0 and |d_i|^(p-1) = 0 for p > 1: the coordinate is stationary too",
    "9, 10",
)
def stationarity_zero():
    # built unevaluated, so that sympy's simplification (not its constructor) decides 0^(p-1) = 0
    # from p > 1
    with sp.evaluate(False):
        powers = sp.Pow(sp.Integer(0), p - 1), sp.Pow(sp.Integer(0), q - 1)
    return [sympy_equal(powers[0], 0), sympy_equal(powers[1], 0)]


@obligation(
    "eq10.hessian",
    "Hessian of 1/2 ||x||_p^2 on x > 0: ||x||_p^(2-2p) [(p-1)||x||_p^p x_i^(p-2) delta_ij + (2-p) "
    "x_i^(p-1) x_j^(p-1)] (a diagonal and an off-diagonal entry on R^3; the rest by symmetry)",
    "9",
)
def hessian():
    xs = sp.symbols("x1:4", positive=True)
    n = sp.Add(*[x**p for x in xs])
    half_sq = n ** (2 / p) / 2

    def entry(i, j):
        return n ** ((2 - 2 * p) / p) * (
            (p - 1) * n * xs[i] ** (p - 2) * sp.Integer(i == j)
            + (2 - p) * xs[i] ** (p - 1) * xs[j] ** (p - 1)
        )

    return [
        sympy_equal(sp.expand(sp.diff(half_sq, xs[0], xs[0])), sp.expand(entry(0, 0))),
        sympy_equal(sp.expand(sp.diff(half_sq, xs[0], xs[1])), sp.expand(entry(0, 1))),
    ]


@obligation(
    "eq10.cauchy_schwarz",
    "(sum a_i b_i)^2 <= (sum a_i^2)(sum b_i^2), used with a_i = x_i^(p/2), b_i = x_i^((p-2)/2) "
    "h_i, so (sum x_i^(p-1) h_i)^2 <= ||x||_p^p sum x_i^(p-2) h_i^2 (R^3)",
    "9",
)
def cauchy_schwarz():
    A = sp.symbols("a1:4", real=True)
    B = sp.symbols("b1:4", real=True)
    lhs = sp.Add(*[x * y for x, y in zip(A, B)]) ** 2
    rhs = sp.Add(*[x**2 for x in A]) * sp.Add(*[y**2 for y in B])
    x, h = sp.Symbol("x", positive=True), sp.Symbol("h", real=True)
    ai, bi = x ** (p / 2), x ** ((p - 2) / 2) * h
    return [
        z3_implies([], sp.Le(lhs, rhs)),
        sympy_equal(ai * bi, x ** (p - 1) * h),
        sympy_equal(ai**2, x**p),
        sympy_equal(bi**2, x ** (p - 2) * h**2),
    ]


@obligation(
    "eq10.strict_convexity",
    "h^T H h = ||x||^(2-2p)[(p-1)A - (p-2)B] > 0 for h != 0, where A = ||x||_p^p sum x_i^(p-2) "
    "h_i^2 > 0 and 0 <= B = (sum x_i^(p-1) h_i)^2 <= A (Cauchy-Schwarz): 1/2||d||_p^2 is strictly "
    "convex, so the stationary point is the unique minimiser of eq. 9 (segments inside a "
    "coordinate hyperplane reduce to fewer coordinates)",
    "9, 10",
)
def strict_convexity():
    A, B, pp = (
        sp.Symbol("A", positive=True),
        sp.Symbol("B", nonnegative=True),
        sp.Symbol("p", positive=True),
    )
    w = sp.Symbol(
        "w", nonnegative=True
    )  # B = A / (1 + w), i.e. 0 < B <= A (B = 0 is the limit w -> oo)
    return [
        z3_implies([sp.Gt(pp, 1), sp.Le(B, A)], sp.Gt((pp - 1) * A - (pp - 2) * B, 0)),
        sympy_nonneg(
            (p - 1) * A - (p - 2) * A / (1 + w), strict=True, where="B = A/(1 + w), w >= 0"
        ),
        sympy_nonneg((p - 1) * A, strict=True, where="B = 0"),
    ]


def _eq10_closed(g, pp, lr):
    """eq. 10 from formulas.py, evaluated in float64 (the numeric minimiser is the independent
    side)."""
    qq = float(F.dual_exponent(sp.Float(pp)))
    nq = float(np.sum(np.abs(g) ** qq) ** (1 / qq))
    step = sp.lambdify(
        (sp.Symbol("g"), sp.Symbol("n")),
        F.eq10_step(sp.Symbol("g"), sp.Symbol("n"), sp.Float(pp), sp.Float(lr)),
    )
    return np.array([float(step(x, nq)) if x != 0 else 0.0 for x in g])


_EQ9 = {}


def _eq9(n):
    """eq. 9's objective from formulas.py on R^n, as a float64 function of (g, d, p, eta)."""
    key = (n, F.eq9_objective)  # keyed on the formula too: a patched formula is what gets checked
    if key not in _EQ9:
        gs, ds = sp.symbols(f"g1:{n + 1}", real=True), sp.symbols(f"d1:{n + 1}", real=True)
        pp, lr = sp.symbols("p eta", positive=True)
        _EQ9[key] = sp.lambdify((*gs, *ds, pp, lr), F.eq9_objective(gs, ds, pp, lr), "numpy")
    return _EQ9[key]


@obligation(
    "eq10.minimizer_numeric",
    "an independent numeric minimiser of eq. 9 (formulas.eq9_objective; scipy BFGS from -eta g) "
    "finds no lower value than eq. 10 and lands on it",
    "9, 10",
)
def minimizer_numeric():
    import scipy.optimize

    def prop(g, pp, lr):
        eq9 = _eq9(len(g))
        g = np.asarray(g)

        def objective(d):  # eq. 9 from formulas.py
            return float(eq9(*g, *d, pp, lr))

        d = _eq10_closed(g, pp, lr)
        res = scipy.optimize.minimize(
            objective, -lr * g, method="BFGS", options={"gtol": 1e-11, "maxiter": 500}
        )
        scale = lr * float(np.sum(np.abs(g) ** (pp / (pp - 1))) ** ((pp - 1) / pp))
        return objective(d) <= res.fun + 1e-9 * (1 + abs(res.fun)) and np.allclose(
            res.x, d, atol=2e-3 * scale
        )

    vec = st.lists(st.floats(-5, 5).filter(lambda v: abs(v) > 1e-2), min_size=2, max_size=4)
    return numeric_forall(
        prop,
        {"g": vec, "pp": st.floats(1.5, 8.0), "lr": st.floats(0.01, 3.0)},
        statement="objective(eq. 10) <= BFGS minimum and |d_BFGS - d| <= 2e-3 eta ||g||_q",
        tolerance="1e-9 relative on the value",
        max_examples=25,
    )


@obligation(
    "eq10.value",
    "the minimum of eq. 9 is -eta^2 ||g||_q^2 / 2: eta <g, d> + 1/2 ||d||_p^2 = -eta^2 N^2 + "
    "eta^2 N^2 / 2",
    "9, 10",
)
def value():
    inner = -eta * N ** (2 - q) * S  # <g, d> = -eta N^(2-q) sum_j |g_j|^q
    return sympy_equal(eta * inner + (eta * N) ** 2 / 2, -(eta**2) * N**2 / 2)


@obligation("eq10.p2", "at p = 2 (rho = 0, q = 2), eq. 10 is the gradient step d = -eta g", "10")
def p_two():
    g, n = sp.Symbol("g", nonzero=True, real=True), sp.Symbol("N", positive=True)
    with sp.evaluate(False):  # the engine, not the constructor, does the substitution's algebra
        step, q2 = F.eq10_step(g, n, sp.Integer(2), eta), F.dual_exponent(sp.Integer(2))
    return [sympy_equal(step, -eta * g), sympy_equal(q2, 2)]


@obligation(
    "eq10.p_infinity",
    "as p -> inf, |d_i| -> eta ||g||_1 for every g_i != 0 (here g = (x, y)): eq. 10 tends to "
    "the sign step scaled by ||g||_1",
    "10",
)
def p_infinity():
    pp = sp.Symbol("p", positive=True)
    x, y = sp.symbols("x y", positive=True)
    qq = F.dual_exponent(pp)
    nq = (x**qq + y**qq) ** (1 / qq)
    return [
        sympy_limit(F.eq10_step_magnitude(x, nq, pp, 1), pp, sp.oo, x + y),
        sympy_limit(F.eq20_rho(pp), pp, sp.oo, 1),
    ]


@control(
    "control.eq10.inverted_exponent",
    "with the exponent (p-1)/(p-2) in place of rho = (p-2)/(p-1), eq. 10 is stationary",
    "10",
)
def inverted_exponent():
    wrong = (p - 1) / (p - 2)
    d_wrong = eta * N**wrong * a ** (1 - wrong)
    return sympy_equal(eta * a - (eta * N) ** (2 - p) * d_wrong ** (p - 1), 0)


@control(
    "control.eq10.value_missing_half",
    "the minimum of eq. 9 is -eta^2 ||g||_q^2 (the factor 1/2 dropped)",
    "9, 10",
)
def value_missing_half():
    inner = -eta * N ** (2 - q) * S
    return sympy_equal(eta * inner + (eta * N) ** 2 / 2, -(eta**2) * N**2)


@control(
    "control.eq10.primal_norm",
    "||d||_p = eta ||g||_p (the primal norm instead of the dual): checked on g = (x, y)",
    "10",
)
def primal_norm():
    x, y = sp.symbols("x y", positive=True)
    nq = (x**q + y**q) ** (1 / q)
    d = [eta * nq ** (2 - q) * v ** (q - 1) for v in (x, y)]
    return sympy_equal(F.lp_norm(d, p), eta * F.lp_norm([x, y], p))
