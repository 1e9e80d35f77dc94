"""The descent-to-rate chain as a template: state a method's one-step descent inequality, get its
rate as obligations (the chain of Theorems 1-2 of Xu & Yang, eq. 37-40 and 52-53, 46, made
reusable).

Theorem (the chain). Let x_0, x_1, ... be random iterates adapted to a filtration F_t (deterministic
iterates are the special case of a one-point law), f >= f* with Delta = f(x_0) - f* > 0, and M_t a
random quantity (the stationarity measure: ||grad f(x_t)||^2, ||grad f(x_t)||_*, ...). If for every
t the one-step descent inequality

    E[f(x_{t+1}) | F_t] <= f(x_t) - a M_t + b             (a > 0 and b constants, not random)

holds, then for every T >= 1

    (1/T) sum_{t<T} E M_t <= Delta/(a T) + b/a,

and with a step rule eta(T) (a, b depending on the step size eta) the right side becomes a rate in
T. The steps, each an obligation checked by sympy (with a certificate) and z3 on the same statement:

  expectation   E f(x_{t+1}) <= E f(x_t) - a E M_t + b, for every law (tower rule, monotonicity and
                linearity of E, proved from those axioms: see _expectation.py);
                stochastic chains only
  telescope     E f(x_T) <= f(x_0) - a sum_{t<T} E M_t + T b, for every T by induction on T
  lower_bound   with E f(x_T) >= f*: a sum_t E M_t <= Delta + T b
  divide        dividing by a T > 0: (1/T) sum_t E M_t <= the claimed bound
                (Delta/(a T) + b/a, or any bound at least that large: the difference must be >= 0
                by the symbols' assumptions)
  rate          at eta = rule(T), the bound is at most the claimed rate for every T > 0 (r = rule(T)
                enters through its defining equation r^2 = rule(T)^2, so z3 sees polynomials), and
                T^order * rate -> constant: O(T^-order)

What the template does not prove is the method's own part: the one-step inequality from the method's
update and assumptions (Lemma 1 and eq. 35-36 for LPSGD; the LMO descent lemma for Scion). State it
as obligations of your own, then hand its constants to `descent_chain`:

    import sympy as sp
    from lpcheck.proofs import descent_template as DT

    gamma, rho, L = sp.symbols("gamma rho L", positive=True)
    step = DT.OneStep(progress=gamma * rho, error=L * gamma**2 * rho**2 / 2,
                      measure="||grad f(x_t)||_*", symbol="G", given="x_t", stochastic=False)
    globals().update(DT.descent_chain("mymethod", step, step_size=gamma,
                                      rule=sp.sqrt(2 * DT.Delta / (L * rho**2 * DT.T)),
                                      rate=sp.sqrt(2 * DT.Delta * L / DT.T),
                                      constant=sp.sqrt(2 * DT.Delta * L)))

`descent_chain` returns {python name: Obligation}; the gate collects obligations that are module
attributes, hence `globals().update`. The check builders below (`total_expectation`, `telescope`,
`lower_bound`, `divide`, `rate_at_step`, `both_engines`) return lists of Checks for obligations you
declare yourself, as theorem1.py and theorem2.py do (their ids and statements are the paper's)."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

import sympy as sp

from lpcheck.verify import control, obligation
from lpcheck.verify.engines import sympy_equal, sympy_implies, sympy_limit, z3_implies

from . import _expectation as X

__all__ = [
    "Delta",
    "OneStep",
    "T",
    "both_engines",
    "claimed_bound",
    "descent_chain",
    "divide",
    "lower_bound",
    "rate_at_step",
    "telescope",
    "total_expectation",
]

T = sp.Symbol("T", positive=True)  # the number of steps
Delta = sp.Symbol("Delta", positive=True)  # f(x_0) - f*
HALF = sp.Rational(1, 2)  # the usual order: O(T^-1/2)
sp.simplify(
    sp.sqrt(T) - 1
)  # simplify imports sympy.physics on first use (~1 s): once here, not in every forked worker


@dataclass(frozen=True)
class OneStep:
    """A method's one-step descent inequality E[f(x_{t+1}) | F_t] <= f(x_t) - progress * M_t +
    error.

    progress (a > 0) and error (b) are sympy expressions in the method's constants (polynomials or
    ratios of them, so z3 can read them); measure says in words what M_t is; symbol is M's name in
    the checked statements ("G" gives G_t, SumG, ...); nonnegative declares M_t >= 0 (needed by
    nothing in the chain, but it is part of the statement checked); given names what F_t holds;
    stochastic=False drops the expectation step."""

    progress: object
    error: object
    measure: str = "M_t"
    symbol: str = "M"
    given: str = "x_t"
    nonnegative: bool = True
    stochastic: bool = True

    def __post_init__(self):
        a, b = sp.sympify(self.progress), sp.sympify(self.error)
        if a.is_positive is not True:
            raise ValueError(
                f"progress must be positive by its symbols' assumptions, got {sp.sstr(a)}"
            )
        if not all(s.is_real for s in a.free_symbols | b.free_symbols):
            raise ValueError("progress and error must be expressions in real symbols")
        if not self.symbol.isidentifier():
            raise ValueError(f"symbol must be a name such as 'G', got {self.symbol!r}")
        object.__setattr__(self, "progress", a)
        object.__setattr__(self, "error", b)


def both_engines(hypotheses, goal, multipliers, residual=0, where=""):
    """The same implication for sympy (with the certificate: slack(goal) = sum multipliers *
    slack(hypotheses) + residual) and z3; both checks name the statement's digest, so a reader can
    match the two."""
    digest = hashlib.sha1(sp.srepr((tuple(hypotheses), goal)).encode()).hexdigest()[:10]
    checks = [
        sympy_implies(hypotheses, goal, multipliers=multipliers, residual=residual, where=where),
        z3_implies(hypotheses, goal),
    ]
    for c in checks:
        c.detail = f"[statement {digest}] {c.detail}"
    return checks


def _measure(step, name):
    return sp.Symbol(name, nonnegative=True) if step.nonnegative else sp.Symbol(name, real=True)


# --- the steps ------------------------------------------------------------------------------------


def total_expectation(step, drop=()):
    """E[f(x_{t+1}) | F_t] <= f(x_t) - a M_t + b a.s. gives E f(x_{t+1}) <= E f(x_t) - a E M_t + b,
    for every law (from the axioms of expectation; `drop` leaves some out, for a control)."""
    return X.total_step(step.progress, step.error, given=step.given, drop=drop, measure=step.symbol)


def telescope(step, shift=0):
    """For every T, by induction on n: S(n) says E f(x_n) <= f(x_0) - a sum_{t<n} E M_t + n b. Base
    S(0) (an empty sum); step S(n) and the one-step inequality at t = n give S(n+1), with the sum's
    recursion sum_{t<n+1} = sum_{t<n} + M_n (checked for sympy's Sum). `shift` = 1 makes the control
    that sums t = 1..n instead (an index off by one)."""
    m = step.symbol
    n = sp.Symbol("n", integer=True, nonnegative=True)
    t = sp.Symbol("t", integer=True, nonnegative=True)
    g = sp.IndexedBase(m)
    a, k = step.progress, step.error
    e0, en, en1 = sp.symbols("E_f0 E_fn E_fn1", real=True)
    Sn, Sn1 = sp.symbols("Sum_n Sum_n1", real=True)  # sum_{t<n} E M_t and sum_{t<n+1} E M_t
    Mn, Mn1 = _measure(step, f"{m}_n"), _measure(step, f"{m}_n1")

    def claim_rhs(j):
        return e0 - a * sp.Sum(g[t], (t, shift, j - 1 + shift)) + j * k

    base = sympy_equal(claim_rhs(0), e0)  # the empty sum: the engine's simplification evaluates it
    recursion = sympy_equal(
        sp.Sum(g[t], (t, 0, n - 1)) + sp.Sum(g[t], (t, n, n)), sp.Sum(g[t], (t, 0, n))
    )
    new_term = Mn1 if shift else Mn  # with the shifted index the sum gains M_{n+1}, not M_n
    hyps = [sp.Le(en, e0 - a * Sn + n * k), sp.Le(en1, en - a * Mn + k), sp.Eq(Sn1, Sn + new_term)]
    goal = sp.Le(en1, e0 - a * Sn1 + (n + 1) * k)
    return [base, recursion, *both_engines(hyps, goal, [1, 1, a])]


def lower_bound(step):
    """E f(x_T) >= f* turns the telescoped sum into a sum_t E M_t <= f(x_0) - f* + T b."""
    eT, f0, fstar, total = sp.symbols(f"E_fT f0 f_star Sum{step.symbol}", real=True)
    a, k = step.progress, step.error * T
    return both_engines(
        [sp.Ge(eT, fstar), sp.Le(eT, f0 - a * total + k)], sp.Le(a * total, f0 - fstar + k), [1, 1]
    )


def claimed_bound(step):
    """Delta/(a T) + b/a: the chain's bound on (1/T) sum_t E M_t."""
    return Delta / (step.progress * T) + step.error / step.progress


def divide(step, bound=None):
    """Dividing a sum_t E M_t <= Delta + T b by a T > 0: (1/T) sum_t E M_t <= `bound` (default
    Delta/(a T) + b/a). The certificate's residual is bound - (Delta/(a T) + b/a), which must be >=
    0 by the symbols' assumptions: a claimed bound below the chain's comes back refuted."""
    total = _measure(step, f"Sum{step.symbol}")
    claim = claimed_bound(step) if bound is None else sp.sympify(bound)
    residual = sp.simplify(claim - claimed_bound(step))
    return both_engines(
        [sp.Le(step.progress * total, Delta + step.error * T)],
        sp.Le(total / T, claim),
        [1 / (step.progress * T)],
        residual=residual,
    )


def _in_r(rule, r):
    """T as a function of r = rule(T) > 0 (the unique positive solution of r^2 = rule(T)^2)."""
    square = sp.simplify(sp.sympify(rule) ** 2)
    if any(not p.exp.is_Integer for p in square.atoms(sp.Pow)):
        raise ValueError(
            f"rule must be a rational expression or the square root of one, got {sp.sstr(rule)}"
        )
    solutions = [s for s in sp.solve(sp.Eq(r**2, square), T) if s.is_positive is not False]
    if len(solutions) != 1:
        raise ValueError(
            f"rule(T) = {sp.sstr(rule)} must be invertible for T > 0; solutions: {solutions}"
        )
    return square, solutions[0]


def rate_at_step(
    bound, step_size, rule, rate, *, constant, order=HALF, multiplier=None, residual=0
):
    """The bound (an expression in step_size and T) at step_size = rule(T) is at most `rate` for
    every T > 0, and T^order * rate -> constant (so the rate is O(T^-order)).

    r = rule(T) > 0 enters through its defining equation r^2 = rule(T)^2; the rate is written in r
    by solving that equation for T (checked: the r-form equals the rate at r = rule(T)). The sympy
    certificate multiplies the defining equation by `multiplier`; without one, the quotient of the
    two slacks is used when it is a finite where the equation holds (an exact balance), otherwise
    pass multiplier and residual."""
    r = sp.Symbol("r", positive=True)
    square, T_of_r = _in_r(rule, r)
    bound = sp.sympify(bound)
    rate_r = sp.simplify(sp.sympify(rate).subs(T, T_of_r))
    if rate_r.has(T) or any(not p.exp.is_Integer for p in rate_r.atoms(sp.Pow)):
        raise ValueError(
            f"the rate {sp.sstr(rate)} is not a rational expression in r = {sp.sstr(rule)}"
        )
    defining = sp.Eq(r**2, square)
    goal = sp.Le(
        bound.subs(step_size, r), rate_r, evaluate=False
    )  # kept as stated even when sympy could decide it
    if multiplier is None:
        g_slack = sp.together(rate_r - bound.subs(step_size, r) - residual)
        e_slack = sp.together(square - r**2)
        multiplier = sp.cancel(g_slack / e_slack)
        if sp.gcd(
            sp.denom(multiplier), sp.numer(e_slack)
        ).free_symbols:  # a pole wherever the equation holds
            raise ValueError(
                "no exact balance at the rule: pass multiplier and residual (the goal's slack "
                "minus the residual must be multiplier * (rule(T)^2 - r^2))"
            )
    checks = both_engines(
        [defining], goal, [multiplier], residual=residual, where=f"r = {sp.sstr(rule)}"
    )
    back = rate_r.subs(r, sp.sympify(rule))
    if back != sp.sympify(
        rate
    ):  # the r-form is the rate at r = rule(T) (unless sympy built them identical)
        checks.insert(0, sympy_equal(sp.sympify(rate), back))
    scaled = sp.Mul(
        T**order, sp.sympify(rate), evaluate=False
    )  # T^order * rate as stated, for the engine to reduce
    return [*checks, sympy_limit(scaled, T, sp.oo, constant)]


# --- the chain as obligations ---------------------------------------------------------------------


def _text(e):
    return sp.sstr(sp.sympify(e))


def descent_chain(
    prefix,
    step,
    *,
    bound=None,
    step_size=None,
    rule=None,
    rate=None,
    constant=None,
    order=HALF,
    equation=None,
    uses=(),
    controls=True,
    module=None,
):
    """The chain's obligations for one method: {python name: Obligation}, ids `prefix.expectation`
    (stochastic steps only), `prefix.telescope`, `prefix.lower_bound`, `prefix.divide`, and
    `prefix.rate` when a step rule is given (step_size, rule, rate, constant). With controls=True
    also two negative controls that must come back
    refuted: `control.prefix.telescope_shifted` (the sum's index off by one) and
    `control.prefix.divide_halved` (the bound with half its first term). `uses` names the
    assumptions the lower bound uses (f >= f*).

    Bind the result at module level: globals().update(descent_chain(...)). The obligations report
    `module` (by default the calling module's name) as theirs."""
    if not (
        isinstance(prefix, str) and prefix and all(p.isidentifier() for p in prefix.split("."))
    ):
        raise ValueError(f"prefix must be a dotted name such as 'scion', got {prefix!r}")
    if not isinstance(step, OneStep):
        # lpcheck's rule: bad input is a ValueError naming the argument
        raise ValueError(f"step must be a OneStep, got {type(step).__name__}")  # noqa: TRY004
    rated = [step_size, rule, rate, constant]
    if any(x is not None for x in rated) and not all(x is not None for x in rated):
        raise ValueError("a rate needs step_size, rule, rate and constant together")
    a, b, ms = _text(step.progress), _text(step.error), step.symbol
    M, what = f"{ms}_t", f" ({ms}_t = {step.measure})"
    bound_expr = claimed_bound(step) if bound is None else sp.sympify(bound)
    out = {}
    module = module or sys._getframe(1).f_globals.get("__name__", "")

    def add(name, ob):
        ob.module = module
        out[f"{prefix.replace('.', '_')}_{name}"] = ob

    sums = f"sum_(t<T) E[{M}]"
    said = {
        "expectation": (
            f"full expectation, for every law: E f(x_(t+1)) <= E f(x_t) - {a} E[{M}] + {b} (tower "
            f"rule, monotonicity, linearity){what}"
        ),
        "telescope": f"for every T, by induction on T: E f(x_T) <= f(x_0) - {a} {sums} + "
        f"T*({b}){what}",
        "lower_bound": f"with f(x_T) >= f*: {a} {sums} <= f(x_0) - f* + T*({b})",
        "divide": f"dividing by ({a}) T: (1/T) {sums} <= {_text(bound_expr)}",
        "rate": (
            f"at {step_size} = {_text(rule)} the bound is at most {_text(rate)} for every T > 0, "
            f"and T^{order} times it -> {_text(constant)}: O(T^-{order})"
        ),
    }
    if step.stochastic:
        add(
            "expectation",
            obligation(f"{prefix}.expectation", said["expectation"], equation)(
                lambda: total_expectation(step)
            ),
        )
    add(
        "telescope",
        obligation(f"{prefix}.telescope", said["telescope"], equation)(lambda: telescope(step)),
    )
    add(
        "lower_bound",
        obligation(f"{prefix}.lower_bound", said["lower_bound"], equation, uses=tuple(uses))(
            lambda: lower_bound(step)
        ),
    )
    add(
        "divide",
        obligation(f"{prefix}.divide", said["divide"], equation)(lambda: divide(step, bound)),
    )
    if rule is not None:
        add(
            "rate",
            obligation(f"{prefix}.rate", said["rate"], equation)(
                lambda: rate_at_step(
                    bound_expr, step_size, rule, rate, constant=constant, order=order
                )
            ),
        )
    if controls:
        add(
            "control_telescope_shifted",
            control(
                f"control.{prefix}.telescope_shifted",
                f"the induction step with the sum over t = 1..T (an index off by "
                f"one, {ms}_(n+1) in place of {ms}_n)",
                equation,
            )(lambda: telescope(step, shift=1)[2:]),
        )
        half = bound_expr - Delta / (2 * step.progress * T)
        add(
            "control_divide_halved",
            control(
                f"control.{prefix}.divide_halved",
                f"(1/T) {sums} <= {_text(half)} (the chain's first term Delta/(a T) halved)",
                equation,
            )(lambda: divide(step, half)),
        )
    return out
