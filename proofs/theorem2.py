"""Theorem 2 (eq. 41-48): the momentum method (eq. 41-42, no weight decay) under Assumption 6, on
its own
objects: the momentum recursion from m_{-1} = 0 (closed form, weights), v_t = eq. 24 of m_t, what
the filtration F_t holds (m_{t-1} yes, g_t no: why eq. 43-44 condition on F_t), then the proof's
steps (eq. 49-53, 46) with Theorem 2's formulas, eta_0 and eq. 47-48; eq. 52-53 and 46 are the
public template's chain (`descent_template`) applied to eq. 51. Lemma 2 and eq. 25 (weight decay)
are in lemma2.py."""

import sympy as sp

from lpcheck import formulas as F
from lpcheck.verify import control, obligation
from lpcheck.verify.engines import sympy_equal, sympy_nonneg, z3_implies

from . import _descent as D
from . import descent_template as DT

c = D.constants(tilde=True)
FORMS = D.Forms(
    alignment=lambda *a: F.eq43_alignment(*a),
    second_moment=lambda *a: F.eq44_second_moment(*a),
    descent=lambda *a: F.eq45_rhs(*a),
    cap=lambda *a: F.thm2_eta0(*a),
    bound=lambda *a: F.eq46_rhs(*a),
    step=lambda c1, c2, c3, L, delta, T: F.eq47_step(F.thm2_eta0(c1, L, c3), c2, L, delta, T),
    rate=lambda *a: F.eq48_rate(*a),
    given="F_t",
)
STEP = D.one_step(
    FORMS, c
)  # eq. 51 as the template's one-step inequality: eq. 52-53 and 46 are its chain

beta = sp.Symbol("beta", nonnegative=True)
t, k = sp.symbols("t k", integer=True, nonnegative=True)
g = sp.IndexedBase("g")


class _Ones:
    """g_k = 1 for every k: the closed form of eq. 41 then sums its own weights."""

    def __getitem__(self, k):
        return sp.Integer(1)


def _weight_sum(n):
    return F.eq41_m_closed_form(_Ones(), beta, n, k)


@obligation(
    "thm2.momentum_closed_form",
    "eq. 41 from m_{-1} = 0 is m_t = sum_{k<=t} (1 - beta) beta^(t-k) g_k for every t "
    "(induction: t = 0, and eq. 23 maps the closed form at t to the one at t + 1)",
    "23, 41",
)
def momentum_closed_form():
    def closed(n):
        return F.eq41_m_closed_form(g, beta, n, k)

    split = sp.Sum(closed(t + 1).function, (k, 0, t)) + sp.Sum(
        closed(t + 1).function, (k, t + 1, t + 1)
    )
    return [
        sympy_equal(F.eq23_m(0, g[0], beta), closed(0).doit()),
        sympy_equal(
            split, closed(t + 1)
        ),  # the sum over k <= t+1 is the sum over k <= t plus the last term
        sympy_equal(F.eq23_m(closed(t), g[t + 1], beta), split.doit()),
    ]


@obligation(
    "thm2.momentum_weights",
    "the closed form's weights sum to 1 - beta^(t+1) for every t, not 1: m_{-1} = 0 shrinks m_t "
    "towards 0 by that factor (at t = 0, m_0 = (1 - beta) g_0). Induction (eq. 23 on g = 1 maps "
    "W_t to beta W_t + 1 - beta) "
    "and sympy's sum with symbolic t",
    "41",
)
def momentum_weights():
    W, B = sp.Symbol("W_t", real=True), sp.Symbol("B", nonnegative=True)  # B = beta^t

    def with_b(e):
        return sp.expand_power_exp(sp.expand(e)).subs(beta**t, B)

    hyps, goal = (
        [sp.Eq(W, with_b(F.eq41_weight_sum(beta, t)))],
        sp.Eq(F.eq23_m(W, 1, beta), with_b(F.eq41_weight_sum(beta, t + 1))),
    )
    s = sp.Symbol(
        "s", positive=True
    )  # beta = 1/(1 + s) covers (0, 1); beta = 0 is the base case's alone
    return [
        sympy_equal(_weight_sum(0).doit(), F.eq41_weight_sum(beta, 0)),
        *D.both(hyps, goal, [beta]),
        sympy_equal(
            _weight_sum(t).doit().subs(beta, 1 / (1 + s)), F.eq41_weight_sum(1 / (1 + s), t)
        ),
    ]


@obligation(
    "thm2.algorithm",
    "eq. 42 is Algorithm 2 without weight decay: v_t = eq. 24 of m_t is eq. 21's map applied to "
    "m_t, and eq. 42's theta update is eq. 25 at lambda = 0",
    "24, 25, 42",
)
def algorithm():
    m, p, eps, th, v = (
        sp.Symbol("m", real=True),
        2 + sp.Symbol("k", nonnegative=True),
        sp.Symbol("epsilon", positive=True),
        sp.Symbol("theta", real=True),
        sp.Symbol("v", real=True),
    )
    with sp.evaluate(
        False
    ):  # lambda = 0 substituted unevaluated: the engine decides, not the constructor
        decayed = F.eq25_theta(th, D.eta, sp.Integer(0), v)
    return [
        sympy_equal(F.eq24_v(m, p, eps), F.eq21_u(m, p, eps)),
        sympy_equal(decayed, F.eq42_theta(th, D.eta, v)),
    ]


@obligation(
    "thm2.filtration",
    "F_t (the randomness before step t) holds theta_t and m_{t-1}, not g_t: m_t moves with g_t at "
    "rate 1 - beta > 0 and v_t = eq. 24 is strictly increasing in m_t, so v_t is not "
    "F_t-measurable and eq. 43-44 average over g_t given (theta_t, m_{t-1})",
    "23, 24, 43, 44",
)
def filtration():
    M, gt, x = (
        sp.Symbol("m_prev", real=True),
        sp.Symbol("g_t", real=True),
        sp.Symbol("x", positive=True),
    )
    kk, eps, b = (
        sp.Symbol("k", nonnegative=True),
        sp.Symbol("epsilon", positive=True),
        sp.Symbol("b", positive=True),
    )  # 1 - beta = b
    dv = sp.diff(
        F.eq24_v(x, 2 + kk, eps), x
    )  # at m_t = x > 0; m_t < 0 is the mirror image (v is odd)
    return [
        sympy_equal(sp.diff(F.eq23_m(M, gt, 1 - b), gt), b),
        sympy_nonneg(sp.factor(sp.simplify(dv)), strict=True, where="p = 2 + k, m_t = x > 0"),
        sympy_equal(F.eq24_v(-x, 2 + kk, eps), -F.eq24_v(x, 2 + kk, eps)),
    ]


@obligation(
    "thm2.eq49",
    "E[f(theta_{t+1}) | F_t] <= f(theta_t) - eta E[<grad f, v_t> | F_t] + L eta^2/2 E[||v_t||^2 | "
    "F_t], for every law (theta_t is F_t-measurable; linearity, pull-out, monotonicity)",
    "49",
    uses=("A1",),
)
def eq49():
    return D.conditional_expectation(FORMS)


@obligation(
    "thm2.eq50",
    "with Assumption 6: E[f(theta_{t+1}) | F_t] <= f(theta_t) - (eta c~1 - L eta^2 c~3/2)||grad "
    "f||^2 + L eta^2 c~2/2",
    "43, 44, 50",
    uses=("A6",),
)
def eq50():
    return D.apply_assumption(FORMS, c)


@obligation(
    "thm2.eta0",
    "eta_0 = c~1/(L c~3) > 0 is admissible: every 0 < eta <= eta_0 gives eta c~1 - L eta^2 c~3/2 "
    ">= eta c~1/2 (so the eta_0 whose existence Theorem 2 asserts exists)",
    "47",
)
def eta0():
    return D.step_condition(FORMS, c)


@obligation(
    "thm2.eq51",
    "hence E[f(theta_{t+1}) | F_t] <= f(theta_t) - eta c~1/2 ||grad f||^2 + L eta^2 c~2/2",
    "51",
)
def eq51():
    return D.halve_descent(FORMS, c)


@obligation(
    "thm2.eq52",
    "full expectation, for every law: E f(theta_{t+1}) <= E f(theta_t) - eta c~1/2 E||grad f||^2 "
    "+ L eta^2 c~2/2 (tower rule over F_t)",
    "52",
)
def eq52():
    return DT.total_expectation(STEP)


@obligation("thm2.eq53", "summing over t = 0..T-1 for every T (induction on T)", "53")
def eq53():
    return DT.telescope(STEP)


@obligation(
    "thm2.lower_bound",
    "with f(theta_T) >= f* (Assumption 4): eta c~1/2 sum_t E||grad f||^2 <= f(theta_0) - f* + L "
    "eta^2 c~2 T/2",
    "53",
    uses=("A4",),
)
def lower_bound():
    return DT.lower_bound(STEP)


@obligation("thm2.eq46", "dividing by eta c~1 T/2 gives eq. 46", "46")
def eq46():
    return DT.divide(STEP, D.bound_claim(FORMS, c))


@obligation(
    "thm2.eq47",
    "eq. 47's step lies in (0, eta_0] for every eta_0 > 0 (so it is admissible), and with eta_0 = "
    "c~1/(L c~3) it is eq. 32 with Assumption 6's constants",
    "47",
)
def eq47():
    c1, c2, c3 = c
    e0 = sp.Symbol("eta_0", positive=True)
    step, defining, _ = D._step_with_r(
        D.Forms(**{**vars(FORMS), "step": lambda *a: F.eq47_step(e0, c2, D.L, D.Delta, D.T)}), c
    )
    goal = sp.And(sp.Gt(step, 0, evaluate=False), sp.Le(step, e0))
    return [
        z3_implies([defining], goal),
        *D.both([defining, sp.Le(D.r, e0)], sp.Le(step, e0), [0, 1], where="branch r <= eta_0"),
        *D.both(
            [defining, sp.Le(e0, D.r)],
            sp.Gt(step, 0, evaluate=False),
            [0, 0],
            residual=e0,
            where="branch eta_0 <= r (there eta = eta_0)",
        ),
        sympy_equal(
            F.eq47_step(F.thm2_eta0(c1, D.L, c3), c2, D.L, D.Delta, D.T),
            F.eq32_step(c1, c2, c3, D.L, D.Delta, D.T),
        ),
    ]


@obligation(
    "thm2.rate_balanced",
    "eq. 47's second branch makes eq. 46 equal (2/c~1) sqrt(2 Delta L c~2/T)",
    "46, 47",
)
def rate_balanced():
    return D.rate_balanced(FORMS, c)


@obligation(
    "thm2.eq48",
    "for every T, eq. 46 at eq. 47's step (eta_0 = c~1/(L c~3); each branch of the min) <= eq. "
    "48's (2/c~1) sqrt(2 Delta L c~2/T) + 2 Delta L c~3/(c~1^2 T), and sqrt(T) times it has a "
    "finite limit: O(T^-1/2)",
    "47, 48",
)
def eq48():
    return D.rate_branches(FORMS, c)


@control("control.thm2.eta0_2x", "eta_0 = 2 c~1/(L c~3) is admissible", "47")
def eta0_doubled():
    return D.step_condition(FORMS, c, factor=2)


@control(
    "control.thm2.weights_sum_to_one",
    "the momentum weights sum to 1 at every t (the zero start m_{-1} = 0 ignored): "
    "already false at t = 0",
    "41",
)
def weights_sum_to_one():
    return [sympy_equal(_weight_sum(0).doit(), 1), z3_implies([], sp.Eq(_weight_sum(0).doit(), 1))]


@control(
    "control.thm2.eq47_without_2",
    "eq. 47 with sqrt((f(theta_0) - f*)/(L c~2 T)) (the 2 dropped) keeps eq. 46 at "
    "(2/c~1) sqrt(2 Delta L c~2/T) and eq. 48's substitution",
    "47, 48",
)
def eq47_without_two():
    forms = D.Forms(
        **{
            **vars(FORMS),
            "step": lambda c1, c2, c3, L, delta, T: F.eq47_step(
                F.thm2_eta0(c1, L, c3), c2, L, delta / 2, T
            ),
        }
    )
    return [D.rate_balanced(forms, c), D._rate_with_r(forms, c)[1]]
