"""Theorem 1 (eq. 30-33): LPSGD with a constant step 0 < eta <= c1/(L c3) satisfies eq. 31, and the
step of eq. 32 gives O(T^-1/2) with an explicit constant. One obligation per displayed step (eq.
34-40), then the rate (both branches of the min in eq. 32), then negative controls. Expectations are
conditioned on sigma(theta_t) (Assumption 5's conditioning). Eq. 37-40 are the public template's
chain (`descent_template`) applied to eq. 36."""

from lpcheck import formulas as F
from lpcheck.verify import control, obligation

from . import _descent as D
from . import descent_template as DT

c = D.constants()
FORMS = D.Forms(
    alignment=lambda *a: F.eq27_alignment(*a),
    second_moment=lambda *a: F.eq28_second_moment(*a),
    descent=lambda *a: F.eq29_rhs(*a),
    cap=lambda *a: F.eq30_step_cap(*a),
    bound=lambda *a: F.eq31_rhs(*a),
    step=lambda *a: F.eq32_step(*a),
    rate=lambda *a: F.eq33_rate(*a),
    given="theta_t",
)
STEP = D.one_step(FORMS, c)  # eq. 36 as the template's one-step inequality: eq. 37-40 are its chain


@obligation(
    "thm1.eq34",
    "E[f(theta_{t+1}) | theta_t] <= f(theta_t) - eta E[<grad f, u_t> | theta_t] + L eta^2/2 "
    "E[||u_t||^2 | theta_t] for every law (from eq. 29 by linearity, pull-out and monotonicity of "
    "conditional expectation)",
    "34",
    uses=("A1",),
)
def eq34():
    return D.conditional_expectation(FORMS)


@obligation(
    "thm1.eq35",
    "with Assumption 5: E[f(theta_{t+1}) | theta_t] <= f(theta_t) - (eta c1 - L eta^2 c3/2)||grad "
    "f||^2 + L eta^2 c2/2",
    "27, 28, 35",
    uses=("A5",),
)
def eq35():
    return D.apply_assumption(FORMS, c)


@obligation(
    "thm1.step_condition",
    "0 < eta <= c1/(L c3) (eq. 30) implies eta c1 - L eta^2 c3/2 >= eta c1/2",
    "30",
)
def step_condition():
    return D.step_condition(FORMS, c)


@obligation(
    "thm1.eq36",
    "hence E[f(theta_{t+1}) | theta_t] <= f(theta_t) - eta c1/2 ||grad f||^2 + L eta^2 c2/2",
    "36",
)
def eq36():
    return D.halve_descent(FORMS, c)


@obligation(
    "thm1.eq37",
    "full expectation, for every law: E f(theta_{t+1}) <= E f(theta_t) - eta c1/2 E||grad f||^2 + "
    "L eta^2 c2/2 (tower rule, monotonicity, linearity)",
    "37",
)
def eq37():
    return DT.total_expectation(STEP)


@obligation(
    "thm1.eq38",
    "for every T, by induction on T: E f(theta_T) <= f(theta_0) - eta c1/2 sum_{t<T} E||grad "
    "f(theta_t)||^2 + L eta^2 c2 T/2",
    "38",
)
def eq38():
    return DT.telescope(STEP)


@obligation(
    "thm1.eq39",
    "with f(theta_T) >= f* (Assumption 4): eta c1/2 sum_t E||grad f||^2 <= f(theta_0) - f* + L "
    "eta^2 c2 T/2",
    "39",
    uses=("A4",),
)
def eq39():
    return DT.lower_bound(STEP)


@obligation(
    "thm1.eq40",
    "dividing by eta c1 T/2: (1/T) sum_t E||grad f(theta_t)||^2 <= 2(f(theta_0) - f*)/(eta c1 T) "
    "+ L eta c2/c1 (eq. 31)",
    "31, 40",
)
def eq40():
    return DT.divide(STEP, D.bound_claim(FORMS, c))


@obligation(
    "thm1.rate_balanced",
    "eq. 32's second branch eta = sqrt(2 Delta/(L c2 T)) makes eq. 31 equal (2/c1) sqrt(2 Delta L "
    "c2/T)",
    "32, 33",
)
def rate_balanced():
    return D.rate_balanced(FORMS, c)


@obligation(
    "thm1.rate",
    "for every T, eq. 31 at eq. 32's step (each branch of the min) <= eq. 33's (2/c1) sqrt(2 "
    "Delta L c2/T) + 2 Delta L c3/(c1^2 T), and sqrt(T) times it has a finite limit: O(T^-1/2)",
    "32, 33",
)
def rate():
    return D.rate_branches(FORMS, c)


@control(
    "control.thm1.step_cap_2x",
    "the step cap 2 c1/(L c3) in place of c1/(L c3) still gives eta c1 - L eta^2 c3/2 >= eta c1/2",
    "30",
)
def step_cap_doubled():
    return D.step_condition(FORMS, c, factor=2)


@control(
    "control.thm1.eq40_missing_2",
    "eq. 40 with (f(theta_0) - f*)/(eta c1 T) (the factor 2 dropped)",
    "40",
)
def eq40_missing_two():
    return DT.divide(STEP, D.bound_claim(FORMS, c, factor=1))


@control(
    "control.thm1.rate_missing_2",
    "the balanced rate constant is (1/c1) sqrt(2 Delta L c2/T) (the factor 2 dropped)",
    "33",
)
def rate_missing_two():
    return D.rate_balanced(FORMS, c, factor=1)


@control(
    "control.thm1.alignment_reversed",
    "eq. 35 follows with the alignment condition reversed (A <= c1 G)",
    "27, 35",
)
def alignment_reversed():
    reversed_forms = D.Forms(
        **{**vars(FORMS), "alignment": lambda A, G, c1: F.eq27_alignment(c1 * G, A / c1, c1)}
    )
    return D.apply_assumption(reversed_forms, c)[:2]


@control(
    "control.thm1.eq34_without_monotonicity",
    "eq. 34 follows from linearity and pull-out alone (monotonicity of E[. | theta_t] "
    "left out): z3 finds a model of the remaining axioms where it fails",
    "34",
)
def eq34_without_monotonicity():
    return D.conditional_expectation(FORMS, drop=("monotonicity",))[1]


@control(
    "control.thm1.eq38_index_shifted",
    "the induction step of eq. 38 with the sum over t = 1..T (an index off by one)",
    "38",
)
def telescope_shifted():
    return DT.telescope(STEP, shift=1)[2:]
