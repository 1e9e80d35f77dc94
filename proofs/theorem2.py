"""Theorem 2 (eq. 46-48): the momentum method (eq. 42, no weight decay) under Assumption 6, with the
admissible eta_0 = c~1/(L c~3). The proof (eq. 49-53) repeats Theorem 1's algebra with c~1..c~3, v_t and
the filtration F_t; one obligation per displayed step.
"""

from lpcheck.verify import control, obligation

from . import _descent as D

c = D.constants(tilde=True)


@obligation("thm2.eq49", "E[f(theta_{t+1}) | F_t] <= f(theta_t) - eta E[<grad f, v_t> | F_t] + L eta^2/2 E[||v_t||^2 | F_t]", "49",
            uses=("A1",))
def eq49():
    return D.conditional_expectation()


@obligation("thm2.eq50", "with Assumption 6: E[f(theta_{t+1}) | F_t] <= f(theta_t) - (eta c~1 - L eta^2 c~3/2)||grad f||^2 + L eta^2 c~2/2",
            "43, 44, 50", uses=("A6",))
def eq50():
    return D.apply_assumption(c)


@obligation("thm2.eta0", "eta_0 = c~1/(L c~3) > 0 is admissible: every 0 < eta <= eta_0 gives eta c~1 - L eta^2 c~3/2 >= eta c~1/2 "
            "(so the eta_0 whose existence Theorem 2 asserts exists)", "47")
def eta0():
    return D.step_condition(c)


@obligation("thm2.eq51", "hence E[f(theta_{t+1}) | F_t] <= f(theta_t) - eta c~1/2 ||grad f||^2 + L eta^2 c~2/2", "51")
def eq51():
    return D.halve_descent(c)


@obligation("thm2.eq52", "full expectation: E f(theta_{t+1}) <= E f(theta_t) - eta c~1/2 E||grad f||^2 + L eta^2 c~2/2", "52")
def eq52():
    return D.total_expectation(c)


@obligation("thm2.eq53", "summing over t = 0..T-1 (telescoping)", "53")
def eq53():
    return D.telescope(c)


@obligation("thm2.lower_bound", "with f(theta_T) >= f* (Assumption 4): eta c~1/2 sum_t E||grad f||^2 <= f(theta_0) - f* + L eta^2 c~2 T/2",
            "53", uses=("A4",))
def lower_bound():
    return D.lower_bound(c)


@obligation("thm2.eq46", "dividing by eta c~1 T/2 gives eq. 46", "46")
def eq46():
    return D.divide(c)


@obligation("thm2.rate", "for all T >= 1, eq. 46 at eq. 47's step <= (2/c~1) sqrt(2 Delta L c~2/T) + 2 Delta L c~3/(c~1^2 T) = O(T^-1/2) "
            "(eq. 48; both branches of the min)", "47, 48")
def rate():
    return [*D.rate_explicit(c), D.rate_balanced(c), *D.rate_cap(c)]


@control("control.thm2.eta0_2x", "eta_0 = 2 c~1/(L c~3) is admissible", "47")
def eta0_doubled():
    return D.step_condition(c, factor=2)
