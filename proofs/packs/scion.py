"""uSCG / Scion (Pethick et al. 2025, "Training deep learning models with norm-constrained LMOs"):
the LMO descent lemma, with and without momentum, and its rate through the public template's chain.

The method (unconstrained, radius rho, step gamma, momentum alpha in (0, 1]; Scion picks the norm
per layer):

    m_t = (1 - alpha) m_{t-1} + alpha g_t,        x_{t+1} = x_t + gamma lmo(m_t)    (lmo: lmo.py)

Assumption (L-smoothness in the chosen norm): ||grad f(x) - grad f(y)||_* <= L ||x - y||; f >= f*.

Theorem (checked here, step by step). With G_t = ||grad f(x_t)||_* and E_t = ||grad f(x_t) -
m_t||_*:

    f(x_{t+1}) <= f(x_t) - gamma rho G_t + 2 gamma rho E_t + L gamma^2 rho^2/2    (descent lemma)
    (1/T) sum_t E G_t <= Delta/(gamma rho T) + L gamma rho/2 + (2/T) sum_t E E_t
                                                                    (the chain, for every T)

and with exact gradients (m_t = grad f(x_t), E_t = 0) and gamma = sqrt(2 Delta/(L rho^2 T)) the
bound is sqrt(2 Delta L/T): O(T^-1/2). The stochastic rate needs a bound on the momentum error sum
(2/T) sum E E_t, which this pack does not prove. A reference uSCG step built on lmo.lmo is run on
quadratics with known L in the l2, l-inf and spectral geometries and must satisfy the descent lemma.
"""

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall, sympy_limit

from .. import descent_template as DT
from . import _smooth as S
from . import lmo as LMO

gamma, rho, L = sp.symbols("gamma rho L", positive=True)
G, E = (
    sp.Symbol("G", nonnegative=True),
    sp.Symbol("E", nonnegative=True),
)  # ||grad f||_*, ||grad f - m||_*
F0, F1 = sp.symbols("f_t f_next", real=True)
P = sp.Symbol("P", real=True)  # <grad f(x_t), lmo(m_t)>
N, H, H2 = (
    sp.Symbol("N", nonnegative=True),
    sp.Symbol("H", nonnegative=True),
    sp.Symbol("H2", nonnegative=True),
)


def descent_rhs(f, step, radius, g_dual, error, lip):
    """The descent lemma's right side f - gamma rho G + 2 gamma rho E + L gamma^2 rho^2/2."""
    return f - step * radius * g_dual + 2 * step * radius * error + lip * step**2 * radius**2 / 2


def smooth_rhs(f, inner, sq, lip):
    """L-smoothness's upper bound at y: f(x) + <grad f(x), y - x> + L/2 ||y - x||^2."""
    return f + inner + lip / 2 * sq


@obligation(
    "scion.smooth_descent",
    "L-smoothness in ||.|| gives f(y) <= f(x) + <grad f(x), y - x> + L/2 ||y - x||^2: <grad f(x + "
    "s h) - grad f(x), h> <= L s ||h||^2 on the segment (dual norm, then the assumption), int_0^1 "
    "L s ||h||^2 ds = L ||h||^2/2, and monotonicity of the integral",
    uses=("L-smooth",),
)
def smooth_descent():
    return S.descent_inequality(L)


@obligation(
    "scion.step_norm",
    "||x_{t+1} - x_t|| = gamma ||lmo(m_t)|| <= gamma rho, so ||x_{t+1} - x_t||^2 <= gamma^2 "
    "rho^2 (homogeneity of the norm and ||lmo(m)|| <= rho)",
)
def step_norm():
    hyps = [sp.Le(N, rho), sp.Eq(H, gamma * N)]
    return DT.both_engines(
        hyps, sp.Le(H**2, gamma**2 * rho**2), [gamma**2 * (rho + N), gamma * N + H]
    )


@obligation(
    "scion.descent",
    "exact gradients (m_t = grad f(x_t)): f(x_{t+1}) <= f(x_t) - gamma rho ||grad f(x_t)||_* + L "
    "gamma^2 rho^2/2, from smoothness at y = x_{t+1} (<grad f, y - x> = gamma <grad f, lmo(grad "
    "f)>), the pairing <g, lmo(g)> = -rho ||g||_* and the step norm",
    uses=("L-smooth",),
)
def descent():
    hyps = [
        sp.Le(F1, smooth_rhs(F0, gamma * P, H2, L)),
        sp.Eq(P, -rho * G),
        sp.Le(H2, gamma**2 * rho**2),
    ]
    return DT.both_engines(hyps, sp.Le(F1, descent_rhs(F0, gamma, rho, G, 0, L)), [1, gamma, L / 2])


@obligation(
    "scion.descent_momentum",
    "any estimator m_t: f(x_{t+1}) <= f(x_t) - gamma rho G_t + 2 gamma rho E_t + L gamma^2 "
    "rho^2/2 with G_t = ||grad f(x_t)||_*, E_t = ||grad f(x_t) - m_t||_*, from smoothness, the "
    "momentum inequality <g, lmo(m)> <= -rho ||g||_* + 2 rho ||g - m||_* "
    "(lmo.momentum_inequality) and the step norm",
    uses=("L-smooth",),
)
def descent_momentum():
    hyps = [
        sp.Le(F1, smooth_rhs(F0, gamma * P, H2, L)),
        sp.Le(P, -rho * G + 2 * rho * E),
        sp.Le(H2, gamma**2 * rho**2),
    ]
    return DT.both_engines(hyps, sp.Le(F1, descent_rhs(F0, gamma, rho, G, E, L)), [1, gamma, L / 2])


# the descent lemma as the template's one-step inequality: M_t = G_t - 2 E_t, a = gamma rho, b = L
# gamma^2 rho^2/2. It holds for every outcome, so the expectation step conditions on everything
# through x_{t+1} (E[f(x_{t+1}) | .] is f(x_{t+1}) there); the measure can be negative.
STEP = DT.OneStep(
    progress=gamma * rho,
    error=L * gamma**2 * rho**2 / 2,
    symbol="M",
    measure="||grad f(x_t)||_* - 2 ||grad f(x_t) - m_t||_*",
    given="x_(t+1), m_t",
    nonnegative=False,
)
RULE = sp.sqrt(2 * DT.Delta / (L * rho**2 * DT.T))  # the step that balances the chain's two terms
globals().update(
    DT.descent_chain(
        "scion",
        STEP,
        step_size=gamma,
        rule=RULE,
        rate=sp.sqrt(2 * DT.Delta * L / DT.T),
        constant=sp.sqrt(2 * DT.Delta * L),
        uses=("f >= f*",),
    )
)


@obligation(
    "scion.average",
    "(1/T) sum_t E ||grad f(x_t)||_* <= Delta/(gamma rho T) + L gamma rho/2 + (2/T) sum_t E "
    "||grad f(x_t) - m_t||_* (the chain's bound on the mean of M_t, and linearity of the sums); "
    "with exact gradients the last term is 0 and scion.rate gives O(T^-1/2)",
)
def average():
    SumM = sp.Symbol("SumM", real=True)
    SumG, SumE = sp.symbols("SumG SumE", nonnegative=True)
    bound = DT.claimed_bound(STEP)
    hyps = [sp.Eq(SumM, SumG - 2 * SumE), sp.Le(SumM / DT.T, bound)]
    return DT.both_engines(hyps, sp.Le(SumG / DT.T, bound + 2 * SumE / DT.T), [-1 / DT.T, 1])


# --- the implementation ---------------------------------------------------------------------------


def uscg_step(x, m_prev, g, step, radius, alpha, norm):
    """One uSCG step: m = (1 - alpha) m_prev + alpha g, x + step * lmo(m) (radius `radius`); returns
    (x_next, m)."""
    m = (1 - alpha) * m_prev + alpha * g
    return x + step * LMO.lmo(m, norm, radius), m


def _quadratic(rng, norm):
    """f = 1/2 <x, A x> (vectors) or 1/2 ||B X||_F^2 (matrices), its gradient, and an L valid for
    the norm."""
    if norm == "spectral":
        rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        B = rng.standard_normal((int(rng.integers(1, 5)), rows))
        Q = (
            B.T @ B
        )  # grad f(X) = Q X; ||Q h||_nuc <= ||Q||_2 ||h||_nuc <= ||Q||_2 min(rows, cols) ||h||_2
        return (
            lambda X: 0.5 * float(np.sum(X * (Q @ X))),
            lambda X: Q @ X,
            np.linalg.norm(Q, 2) * min(rows, cols),
            (rows, cols),
        )
    n = int(rng.integers(1, 7))
    B = rng.standard_normal((n, n))
    A = B.T @ B
    lip = (
        np.linalg.eigvalsh(A)[-1] if norm == "l2" else np.sum(np.abs(A))
    )  # ||A h||_1 <= sum |A_ij| ||h||_inf
    return (lambda x: 0.5 * float(x @ A @ x)), (lambda x: A @ x), lip, (n,)


def check_descent(step_impl, momentum=True):
    """step_impl on random quadratics: f(x_{t+1}) <= the descent lemma's right side (float64, 1e-9
    relative)."""
    which = "random m_{t-1} and alpha" if momentum else "exact gradient"

    def prop(seed, norm, radius, step):
        rng = np.random.default_rng(seed)
        f, grad, lip, shape = _quadratic(rng, norm)
        x = rng.standard_normal(shape) * rng.choice([0.1, 1.0, 10.0])
        if momentum:
            m_prev, alpha = rng.standard_normal(shape), float(rng.uniform(0.05, 1.0))
        else:
            m_prev, alpha = np.zeros(shape), 1.0
        g = grad(x)
        x1, m = step_impl(x, m_prev, g, step, radius, alpha, norm)
        bound = float(
            descent_rhs(f(x), step, radius, LMO.dual_norm(g, norm), LMO.dual_norm(g - m, norm), lip)
        )
        return f(x1) <= bound + 1e-9 * (abs(bound) + abs(f(x)) + 1)

    return numeric_forall(
        prop,
        {
            "seed": st.integers(0, 2**31 - 1),
            "norm": st.sampled_from(LMO.NORMS),
            "radius": st.sampled_from([0.1, 1.0, 5.0]),
            "step": st.sampled_from([1e-3, 0.1, 1.0, 10.0]),
        },
        statement=f"one step of the reference uSCG (lmo.lmo, {which}) on a random quadratic with L "
        "valid for the norm satisfies f(x_{t+1}) <= f(x_t) - gamma rho G + 2 gamma rho E + "
        "L gamma^2 rho^2/2",
        tolerance="1e-9 relative",
        max_examples=60,
    )


@obligation(
    "scion.numeric_descent",
    "the reference uSCG step (uscg_step over lmo.lmo) satisfies the descent lemma on random "
    "quadratics in the l2, l-inf and spectral geometries, with exact gradients and with momentum",
    kind="conformance",
)
def numeric_descent():
    return [
        check_descent(lambda *a: uscg_step(*a), momentum=False),
        check_descent(lambda *a: uscg_step(*a)),
    ]


# --- negative controls ----------------------------------------------------------------------------


@control(
    "control.scion.momentum_error_dropped",
    "with an estimator m_t != grad f(x_t) the exact-gradient lemma still holds: f(x_{t+1}) <= "
    "f(x_t) - gamma rho G_t + L gamma^2 rho^2/2 (the 2 gamma rho E_t term dropped)",
)
def momentum_error_dropped():
    hyps = [
        sp.Le(F1, smooth_rhs(F0, gamma * P, H2, L)),
        sp.Le(P, -rho * G + 2 * rho * E),
        sp.Le(H2, gamma**2 * rho**2),
    ]
    return DT.both_engines(hyps, sp.Le(F1, descent_rhs(F0, gamma, rho, G, 0, L)), [1, gamma, L / 2])


@control(
    "control.scion.no_curvature_term",
    "f(x_{t+1}) <= f(x_t) - gamma rho ||grad f(x_t)||_* for every gamma > 0 "
    "(the L gamma^2 rho^2/2 term dropped)",
)
def no_curvature_term():
    hyps = [
        sp.Le(F1, smooth_rhs(F0, gamma * P, H2, L)),
        sp.Eq(P, -rho * G),
        sp.Le(H2, gamma**2 * rho**2),
    ]
    return DT.both_engines(hyps, sp.Le(F1, F0 - gamma * rho * G), [1, gamma, L / 2])


@control(
    "control.scion.constant_step_rate",
    "a constant step gamma (not shrinking with T) gives O(T^-1/2): sqrt(T) times the bound "
    "Delta/(gamma rho T) + L gamma rho/2 tends to the balanced step's sqrt(2 Delta L)",
)
def constant_step_rate():
    return sympy_limit(
        sp.sqrt(DT.T) * DT.claimed_bound(STEP), DT.T, sp.oo, sp.sqrt(2 * DT.Delta * L)
    )


@control(
    "control.scion.numeric_ascent",
    "the step x_t - gamma lmo(m_t) (the oracle's sign flipped) satisfies the "
    "descent lemma on the quadratics",
)
def numeric_ascent():
    def ascent(x, m_prev, g, step, radius, alpha, norm):
        x1, m = uscg_step(x, m_prev, g, step, radius, alpha, norm)
        return 2 * x - x1, m

    return check_descent(ascent, momentum=False)
