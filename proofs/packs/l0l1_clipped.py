"""The hybrid clipped step under non-Euclidean (L0, L1)-smoothness (Pethick, Xie et al. 2025,
"Generalized gradient norm clipping & non-Euclidean (L0, L1)-smoothness", arXiv 2506.01913): descent
in two regimes and its rate.

Assumption ((L0, L1)-smoothness in a norm ||.||, dual ||.||_*): for all x, y with ||y - x|| <= 1/L1,

    ||grad f(y) - grad f(x)||_* <= (L0 + L1 ||grad f(x)||_*) ||y - x||;      f >= f*.

The step, with G = ||grad f(x)||_* and the unit-radius oracle lmo (lmo.py, <g, lmo(g)> = -G,
||lmo(g)|| = 1):

    x+ = x + t lmo(grad f(x)),      t = G/(L0 + L1 G)

is steepest descent (t ~ G/L0, the step -grad f/L0 in l2) while L1 G << L0 and a
conditional-gradient step of length ~ 1/L1 (normalized: gradient clipping) while L1 G >> L0; t is
within a factor 2 of min(G/L0, 1/L1), the clipping form the paper's code uses (lr * min(1, <d,
lmo(d)>/rho) with lr = 1/(2 L1), rho = L0/L1).

Theorem (checked here, step by step).
  descent inequality   f(y) <= f(x) + <grad f(x), y - x> + (L0 + L1 G)/2 ||y - x||^2
                       for ||y - x|| <= 1/L1
  descent              f(x+) <= f(x) - phi(G),  phi(G) = G^2/(2 (L0 + L1 G))
                                                        >= min(G^2/(4 L0), G/(4 L1))
  rate                 min_{t<T} ||grad f(x_t)||_* <= sqrt(2 L0 Delta/T) + 2 L1 Delta/T
                       for every T >= 1, O(T^-1/2) with L1 only in the 1/T term (the template's
                       chain on phi, min <= mean, phi increasing)

The definition is stated as in the issue that asked for this pack (the paper's own text was not at
hand: a referee should compare it with the paper's Definition). The stochastic O(n^-1/4) rate with
momentum is not proved here; its key step, the one-step inequality with the estimator's error
(l0l1.descent_momentum), is. A reference clipped step is run on f(x) = sum_i cosh(x_i), which is
(L0, L1)-smooth with L0 = cosh(1) (l2) or d cosh(1) (l-inf) and L1 = e (|sinh(x + h) - sinh(x)| <=
|h| cosh(|x| + |h|) <= |h| (cosh 1 + e |sinh x|) for |h| <= 1)."""

import math

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall, sympy_equal, sympy_limit, sympy_nonneg

from .. import descent_template as DT
from . import _smooth as S
from . import lmo as LMO

L0, L1 = sp.symbols("L0 L1", positive=True)
G, E = (
    sp.Symbol("G", nonnegative=True),
    sp.Symbol("E", nonnegative=True),
)  # ||grad f(x)||_*, ||grad f(x) - m||_*
t = sp.Symbol("t", positive=True)
F0, F1 = sp.symbols("f_x f_next", real=True)
P, H2 = (
    sp.Symbol("P", real=True),
    sp.Symbol("H2", nonnegative=True),
)  # <grad f(x), lmo(.)>, ||x+ - x||^2
c = sp.Symbol("c", positive=True)  # Delta/T


def curvature(g_dual):
    """L0 + L1 ||grad f(x)||_*: the local smoothness constant within the radius 1/L1."""
    return L0 + L1 * g_dual


def step_length(g_dual):
    """t = G/(L0 + L1 G)."""
    return g_dual / curvature(g_dual)


def decrease(g_dual):
    """phi(G) = G^2/(2 (L0 + L1 G)): the guaranteed decrease of one step."""
    return g_dual**2 / (2 * curvature(g_dual))


def one_step_bound(f, step, g_dual, error, sq):
    """The descent inequality at x+ = x + step lmo(m): f - step G + 2 step E + (L0 + L1 G)/2 ||x+ -
    x||^2."""
    return f - step * g_dual + 2 * step * error + curvature(g_dual) / 2 * sq


# --- from the assumption to the descent inequality ------------------------------------------------


@obligation(
    "l0l1.radius_segment",
    "for ||y - x|| = H <= 1/L1, every point x + s (y - x), s in [0, 1], is within 1/L1 "
    "of x (s H <= 1/L1), so the assumption applies along the whole segment",
    uses=("(L0,L1)-smooth",),
)
def radius_segment():
    s, H = sp.Symbol("s", nonnegative=True), sp.Symbol("H", nonnegative=True)
    return DT.both_engines([sp.Le(s, 1), sp.Le(H, 1 / L1)], sp.Le(s * H, 1 / L1), [H, 1])


@obligation(
    "l0l1.descent_inequality",
    "f(y) <= f(x) + <grad f(x), y - x> + (L0 + L1 ||grad f(x)||_*)/2 ||y - x||^2 for ||y - x|| <= "
    "1/L1: pointwise on the segment (dual norm, then the assumption), the integral of s, "
    "monotonicity",
    uses=("(L0,L1)-smooth",),
)
def descent_inequality():
    return S.descent_inequality(curvature(G))


# --- the step -------------------------------------------------------------------------------------


@obligation(
    "l0l1.step_radius",
    "the step length t = G/(L0 + L1 G) is at most 1/L1 (so x+ = x + t lmo(g), ||x+ - x|| = "
    "t, stays where the descent inequality holds)",
)
def step_radius():
    return DT.both_engines([], sp.Le(step_length(G), 1 / L1), [], residual=L0 / (L1 * curvature(G)))


@obligation(
    "l0l1.step_regimes",
    "t = G/(L0 + L1 G) lies in [min(G/L0, 1/L1)/2, min(G/L0, 1/L1)]: t <= G/L0 and t <= 1/L1 "
    "always; t >= G/(2 L0) while L1 G <= L0 (steepest descent), t >= 1/(2 L1) while L1 G >= L0 "
    "(clipped)",
)
def step_regimes():
    t_ = step_length(G)
    K = curvature(G)
    return [
        *DT.both_engines([], sp.Le(t_, G / L0), [], residual=L1 * G**2 / (L0 * K)),
        *DT.both_engines(
            [sp.Le(L1 * G, L0)], sp.Ge(t_, G / (2 * L0)), [G / (2 * L0 * K)], where="L1 G <= L0"
        ),
        *DT.both_engines(
            [sp.Ge(L1 * G, L0)], sp.Ge(t_, 1 / (2 * L1)), [1 / (2 * L1 * K)], where="L1 G >= L0"
        ),
    ]


@obligation(
    "l0l1.descent",
    "f(x+) <= f(x) - G^2/(2 (L0 + L1 G)): the descent inequality at y = x+ (within the "
    "radius), <g, lmo(g)> = -G and ||x+ - x||^2 <= t^2 with t = G/(L0 + L1 G)",
    uses=("(L0,L1)-smooth",),
)
def descent():
    t_ = step_length(G)
    hyps = [sp.Le(F1, F0 + t_ * P + curvature(G) / 2 * H2), sp.Eq(P, -G), sp.Le(H2, t_**2)]
    return DT.both_engines(hyps, sp.Le(F1, F0 - decrease(G)), [1, t_, curvature(G) / 2])


@obligation(
    "l0l1.regimes",
    "the decrease phi(G) = G^2/(2 (L0 + L1 G)) is at least G^2/(4 L0) while L1 G <= L0 (the "
    "steepest-descent regime) and at least G/(4 L1) while L1 G >= L0 (the clipping regime)",
)
def regimes():
    K = curvature(G)
    return [
        *DT.both_engines(
            [sp.Le(L1 * G, L0)],
            sp.Ge(decrease(G), G**2 / (4 * L0)),
            [G**2 / (4 * L0 * K)],
            where="L1 G <= L0",
        ),
        *DT.both_engines(
            [sp.Ge(L1 * G, L0)],
            sp.Ge(decrease(G), G / (4 * L1)),
            [G / (4 * L1 * K)],
            where="L1 G >= L0",
        ),
    ]


@obligation(
    "l0l1.clipped_form",
    "the clipping form t = min(G/L0, 1/L1)/2 (the paper's code: lr min(1, G/rho) with lr = 1/(2 "
    "L1), rho = L0/L1) is at most G/(L0 + L1 G), and any such t gives f(x+) <= f(x) - t G/2 = "
    "f(x) - min(G^2/L0, G/L1)/4",
    uses=("(L0,L1)-smooth",),
)
def clipped_form():
    K = curvature(G)
    clip = sp.Min(G / L0, 1 / L1) / 2
    hyps = [sp.Le(F1, F0 + t * P + K / 2 * H2), sp.Eq(P, -G), sp.Le(H2, t**2), sp.Le(K * t, G)]
    return [
        *DT.both_engines(
            [sp.Le(G / L0, 1 / L1)],
            sp.Le(clip, step_length(G)),
            [G * L1 / (2 * K)],
            where="G/L0 <= 1/L1",
        ),
        *DT.both_engines(
            [sp.Ge(G / L0, 1 / L1)],
            sp.Le(clip, step_length(G)),
            [L0 / (2 * K)],
            where="G/L0 >= 1/L1",
        ),
        *DT.both_engines(
            hyps,
            sp.Le(F1, F0 - t * G / 2),
            [1, t, K / 2, t / 2],
            where="any t with (L0 + L1 G) t <= G",
        ),
    ]


@obligation(
    "l0l1.descent_momentum",
    "the stochastic key step: with an estimator m (E = ||grad f(x) - m||_*) and any t <= 1/L1, x+ "
    "= x + t lmo(m) gives f(x+) <= f(x) - t G + 2 t E + (L0 + L1 G) t^2/2 (the descent inequality "
    "and the momentum inequality <g, lmo(m)> <= -G + 2E of lmo.momentum_inequality)",
    uses=("(L0,L1)-smooth",),
)
def descent_momentum():
    hyps = [
        sp.Le(F1, F0 + t * P + curvature(G) / 2 * H2),
        sp.Le(P, -G + 2 * E),
        sp.Le(H2, t**2),
        sp.Le(t, 1 / L1),
    ]
    return DT.both_engines(
        hyps, sp.Le(F1, one_step_bound(F0, t, G, E, t**2)), [1, t, curvature(G) / 2, 0]
    )


# --- the rate: the template's chain on phi(G_t), then min <= mean and the inverse of phi ----------

STEP = DT.OneStep(
    progress=sp.Integer(1),
    error=sp.Integer(0),
    symbol="phi",
    given="x_t",
    stochastic=False,
    measure="G_t^2/(2 (L0 + L1 G_t)), G_t = ||grad f(x_t)||_*",
)
globals().update(DT.descent_chain("l0l1", STEP, uses=("f >= f*",)))


@obligation(
    "l0l1.min_le_mean",
    "min_{t<T} phi_t <= (1/T) sum_{t<T} phi_t for every T (induction: sum_{t<n} phi_t >= n "
    "mu when every phi_t >= mu)",
)
def min_le_mean():
    n = sp.Symbol("n", integer=True, nonnegative=True)
    mu, ph = sp.Symbol("mu", nonnegative=True), sp.Symbol("phi_n", real=True)
    Sn, Sn1 = sp.symbols("Sum_n Sum_n1", real=True)
    hyps = [sp.Ge(Sn, n * mu), sp.Ge(ph, mu), sp.Eq(Sn1, Sn + ph)]
    step = DT.both_engines(hyps, sp.Ge(Sn1, (n + 1) * mu), [1, 1, -1])
    SumT = sp.Symbol("SumPhi", real=True)
    mean = DT.both_engines([sp.Ge(SumT, DT.T * mu)], sp.Ge(SumT / DT.T, mu), [1 / DT.T])
    return [*step, *mean]


@obligation(
    "l0l1.monotone",
    "phi(G) = G^2/(2 (L0 + L1 G)) is increasing on G >= 0 (phi' = G (2 L0 + L1 G)/(2 (L0 + L1 "
    "G)^2) >= 0), so min_t phi(G_t) = phi(min_t G_t)",
)
def monotone():
    derivative = sp.diff(decrease(G), G)
    return [
        sympy_equal(derivative, G * (2 * L0 + L1 * G) / (2 * curvature(G) ** 2)),
        sympy_nonneg(derivative),
    ]


@obligation(
    "l0l1.rate",
    "phi(G) <= c = Delta/T implies G <= 2 L1 c + sqrt(2 L0 c) (r = sqrt(2 L0 c) by its equation): "
    "min_{t<T} ||grad f(x_t)||_* <= sqrt(2 L0 Delta/T) + 2 L1 Delta/T, and sqrt(T) times it -> "
    "sqrt(2 L0 Delta): O(T^-1/2), L1 only in the 1/T term",
)
def rate():
    r = sp.Symbol("r", positive=True)
    hyps = [sp.Le(decrease(G), c), sp.Eq(r**2, 2 * L0 * c)]
    inverse = DT.both_engines(
        hyps,
        sp.Le(G, 2 * L1 * c + r),
        [2 * curvature(G) / (G + r), -1 / (G + r)],
        residual=2 * c * L1 * r / (G + r),
        where="r = sqrt(2 L0 c)",
    )
    bound = sp.sqrt(2 * L0 * DT.Delta / DT.T) + 2 * L1 * DT.Delta / DT.T
    return [*inverse, sympy_limit(sp.sqrt(DT.T) * bound, DT.T, sp.oo, sp.sqrt(2 * L0 * DT.Delta))]


# --- the implementation on a (L0, L1)-smooth function ---------------------------------------------


def clipped_step(x, g, l0, l1, norm):
    """x + t lmo(g) with t = ||g||_*/(L0 + L1 ||g||_*) and the unit-radius oracle."""
    G_ = LMO.dual_norm(g, norm)
    return x + G_ / (l0 + l1 * G_) * LMO.lmo(g, norm, 1.0)


def cosh_constants(norm, d):
    """(L0, L1) for f(x) = sum_i cosh(x_i) in the l2 or l-inf geometry (see the module
    docstring)."""
    return (math.cosh(1.0) * (d if norm == "linf" else 1), math.e)


def check_cosh(step_impl, claim="decrease"):
    """step_impl on f = sum cosh(x_i) from points with small and huge gradients: f(x+) <= f(x) -
    phi(G)."""

    def prop(seed, norm, d, spread):
        rng = np.random.default_rng(seed)
        x = rng.uniform(-spread, spread, d)
        g = np.sinh(x)
        l0, l1 = cosh_constants(norm, d)
        G_ = LMO.dual_norm(g, norm)
        with np.errstate(over="ignore"):  # an overflowing step is no decrease (inf)
            f0, f1 = (
                float(np.sum(np.cosh(x))),
                float(np.sum(np.cosh(step_impl(x, g, l0, l1, norm)))),
            )
        return f1 <= f0 - G_**2 / (2 * (l0 + l1 * G_)) + 1e-10 * f0

    return numeric_forall(
        prop,
        {
            "seed": st.integers(0, 2**31 - 1),
            "norm": st.sampled_from(["l2", "linf"]),
            "d": st.integers(1, 6),
            "spread": st.sampled_from([1e-3, 0.5, 3.0, 12.0]),
        },
        statement=(
            "one step from x on f = sum cosh(x_i) ((L0, L1) = (cosh 1, e) in l2, (d cosh 1, e) in "
            "l-inf) decreases f by at least G^2/(2 (L0 + L1 G))"
        ),
        tolerance="1e-10 relative to f(x)",
        max_examples=80,
    )


@obligation(
    "l0l1.numeric_descent",
    "the reference clipped step (clipped_step over lmo.lmo) decreases f = sum cosh(x_i), which is "
    "(L0, L1)-smooth but not L-smooth, by at least phi(G) in l2 and l-inf, from gradients of 1e-3 "
    "to 1e5",
    kind="conformance",
)
def numeric_descent():
    return check_cosh(lambda *a: clipped_step(*a))


# --- negative controls ----------------------------------------------------------------------------


@control(
    "control.l0l1.unclipped_radius",
    "the steepest-descent step t = G/L0 (no clipping) stays within the radius "
    "1/L1 where the descent inequality holds",
)
def unclipped_radius():
    return DT.both_engines([], sp.Le(G / L0, 1 / L1), [], residual=0)


@control(
    "control.l0l1.cg_step_small_gradient",
    "the conditional-gradient step t = 1/L1 at every G (always clipped) decreases f",
)
def cg_step_small_gradient():
    hyps = [sp.Le(F1, F0 + P / L1 + curvature(G) / 2 * H2), sp.Eq(P, -G), sp.Le(H2, 1 / L1**2)]
    return DT.both_engines(hyps, sp.Le(F1, F0), [1, 1 / L1, curvature(G) / 2])


@control("control.l0l1.decrease_doubled", "f(x+) <= f(x) - G^2/(L0 + L1 G) (the 1/2 dropped)")
def decrease_doubled():
    t_ = step_length(G)
    hyps = [sp.Le(F1, F0 + t_ * P + curvature(G) / 2 * H2), sp.Eq(P, -G), sp.Le(H2, t_**2)]
    return DT.both_engines(hyps, sp.Le(F1, F0 - 2 * decrease(G)), [1, t_, curvature(G) / 2])


@control(
    "control.l0l1.rate_without_l1",
    "phi(G) <= c implies G <= sqrt(2 L0 c) (the L1 term of the rate dropped)",
)
def rate_without_l1():
    r = sp.Symbol("r", positive=True)
    hyps = [sp.Le(decrease(G), c), sp.Eq(r**2, 2 * L0 * c)]
    return DT.both_engines(hyps, sp.Le(G, r), [2 * curvature(G) / (G + r), -1 / (G + r)])


@control(
    "control.l0l1.numeric_unclipped",
    "the unclipped step x - grad f(x)/L0 (l2; sign step of length G/L0 in "
    "l-inf) decreases sum cosh(x_i) by phi(G)",
)
def numeric_unclipped():
    def unclipped(x, g, l0, l1, norm):
        return x + LMO.dual_norm(g, norm) / l0 * LMO.lmo(g, norm, 1.0)

    return check_cosh(unclipped)
