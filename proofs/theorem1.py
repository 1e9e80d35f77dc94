"""Theorem 1 (eq. 30-33): LPSGD with a constant step 0 < eta <= c1/(L c3) satisfies eq. 31, and the step
of eq. 32 gives O(T^-1/2) with an explicit constant. One obligation per displayed step (eq. 34-40),
then the rate (both branches of the min in eq. 32), then negative controls.
"""

import sympy as sp

from lpcheck.verify import control, obligation

from . import _descent as D

c = D.constants()


@obligation("thm1.eq34", "E[f(theta_{t+1}) | theta_t] <= f(theta_t) - eta E[<grad f, u_t> | theta_t] + L eta^2/2 E[||u_t||^2 | theta_t] "
            "(conditional expectation of eq. 29: linear and monotone)", "34", uses=("A1",))
def eq34():
    return D.conditional_expectation()


@obligation("thm1.eq35", "with Assumption 5: E[f(theta_{t+1}) | theta_t] <= f(theta_t) - (eta c1 - L eta^2 c3/2)||grad f||^2 + L eta^2 c2/2",
            "27, 28, 35", uses=("A5",))
def eq35():
    return D.apply_assumption(c)


@obligation("thm1.step_condition", "0 < eta <= c1/(L c3) (eq. 30) implies eta c1 - L eta^2 c3/2 >= eta c1/2", "30")
def step_condition():
    return D.step_condition(c)


@obligation("thm1.eq36", "hence E[f(theta_{t+1}) | theta_t] <= f(theta_t) - eta c1/2 ||grad f||^2 + L eta^2 c2/2", "36")
def eq36():
    return D.halve_descent(c)


@obligation("thm1.eq37", "full expectation: E f(theta_{t+1}) <= E f(theta_t) - eta c1/2 E||grad f||^2 + L eta^2 c2/2", "37")
def eq37():
    return D.total_expectation(c)


@obligation("thm1.eq38", "summing over t = 0..T-1: E f(theta_T) <= f(theta_0) - eta c1/2 sum_t E||grad f(theta_t)||^2 + L eta^2 c2 T/2",
            "38")
def eq38():
    return D.telescope(c)


@obligation("thm1.eq39", "with f(theta_T) >= f* (Assumption 4): eta c1/2 sum_t E||grad f||^2 <= f(theta_0) - f* + L eta^2 c2 T/2",
            "39", uses=("A4",))
def eq39():
    return D.lower_bound(c)


@obligation("thm1.eq40", "dividing by eta c1 T/2: (1/T) sum_t E||grad f(theta_t)||^2 <= 2(f(theta_0) - f*)/(eta c1 T) + L eta c2/c1 "
            "(eq. 31)", "31, 40")
def eq40():
    return D.divide(c)


@obligation("thm1.rate_balanced", "eq. 32's second branch eta = sqrt(2 Delta/(L c2 T)) makes eq. 31 equal (2/c1) sqrt(2 Delta L c2/T)", "32, 33")
def rate_balanced():
    return D.rate_balanced(c)


@obligation("thm1.rate_cap", "eq. 32's first branch eta = c1/(L c3) (when smaller): eq. 31 <= 2 Delta L c3/(c1^2 T) + (1/c1) sqrt(2 Delta L c2/T)",
            "32, 33")
def rate_cap():
    return D.rate_cap(c)


@obligation("thm1.rate", "for all T >= 1, eq. 31 at eq. 32's step <= (2/c1) sqrt(2 Delta L c2/T) + 2 Delta L c3/(c1^2 T) = O(T^-1/2) (eq. 33)",
            "32, 33")
def rate():
    return D.rate_explicit(c)


@control("control.thm1.step_cap_2x", "the step cap 2 c1/(L c3) in place of c1/(L c3) still gives eta c1 - L eta^2 c3/2 >= eta c1/2", "30")
def step_cap_doubled():
    return D.step_condition(c, factor=2)


@control("control.thm1.eq40_missing_2", "eq. 40 with (f(theta_0) - f*)/(eta c1 T) (the factor 2 dropped)", "40")
def eq40_missing_two():
    return D.divide(c, factor=1)[:1]


@control("control.thm1.rate_missing_2", "the balanced rate constant is (1/c1) sqrt(2 Delta L c2/T) (the factor 2 dropped)", "33")
def rate_missing_two():
    return D.rate_balanced(c, factor=1)


@control("control.thm1.alignment_reversed", "eq. 35 follows with the alignment condition reversed (A <= c1 G)", "27, 35")
def alignment_reversed():
    c1, c2, c3 = c
    A, M = sp.Symbol("A", real=True), sp.Symbol("M", nonnegative=True)
    from lpcheck import formulas as F
    from lpcheck.verify.engines import z3_implies
    return z3_implies([sp.Le(A, c1 * D.G), F.eq28_second_moment(M, D.G, c2, c3), sp.Le(D.F1, F.eq29_rhs(D.F0, D.eta, A, M, D.L))],
                      sp.Le(D.F1, D.F0 - D.eta * c1 * D.G + D.L * D.eta**2 / 2 * (c2 + c3 * D.G)))
