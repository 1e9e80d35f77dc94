"""The engines that discharge obligations: sympy, z3 and numeric (hypothesis).

Each engine function returns a `Check` holding the exact statement it checked, as text, so a
referee can audit what "proved" means, and `decided_by`, what actually settled it:

- sympy: identities (the difference simplifies to 0, directly or after expanding logarithms of
  positive expressions), sign facts (an expression is >= 0 by sympy's assumption system, after the
  caller has written constrained variables through free non-negative ones), and limits. When sympy
  cannot prove a claim, random points satisfying the symbols' assumptions are tried at 40 digits; a
  point where the claim fails is a counterexample (refuted), otherwise the check failed. Two sides
  that are one expression before any simplification, or a bare number, are `trivial`. (sympy itself
  refuses contradictory assumptions on one symbol, so its checks cannot be vacuous.)
- z3: nonlinear real arithmetic. `z3_implies(hyps, goal)` first shows the hypotheses (with the
  symbols' sign assumptions) satisfiable: unsatisfiable is `vacuous`, undecided is `failed`. A goal
  that is one of the hypotheses, or True before the solver runs (sympy evaluated it, or z3's
  simplifier reduces it), is `trivial`. Otherwise it proves "for all reals, hyps imply goal" by
  showing hyps and not-goal unsatisfiable; a model is a counterexample, re-checked exactly in sympy
  before it is reported.
- numeric: a property over hypothesis-generated float64 inputs, with a stated tolerance;
  derandomized, so the gate is reproducible. Its pass status is "held", not "proved"; no input
  generated is `vacuous`.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import random

import sympy as sp

from lpcheck.verify.core import Check

__all__ = [
    "sympy_equal",
    "sympy_nonneg",
    "sympy_bounded_below",
    "sympy_limit",
    "z3_implies",
    "numeric_forall",
    "assumptions_text",
]

_DIGITS = 40


# ---------------------------------------------------------------------------------------------
# shared: assumptions, sampling, text


def assumptions_text(exprs) -> str:
    syms = sorted(set().union(*[sp.sympify(e).free_symbols for e in exprs]), key=str)
    parts = []
    for s in syms:
        a = [
            k
            for k in ("integer", "positive", "nonnegative", "negative", "real")
            if s.assumptions0.get(k)
        ]
        if "positive" in a:
            a = [x for x in a if x not in ("nonnegative", "real")]
        if "integer" in a or "nonnegative" in a:
            a = [x for x in a if x != "real"]
        parts.append(f"{s} ({', '.join(a) or 'complex'})")
    return "for all " + ", ".join(parts) if parts else "closed statement"


def _sample(sym, rng):
    a = sym.assumptions0
    if a.get("integer"):
        lo = 1 if a.get("positive") else 0 if a.get("nonnegative") else -20
        return sp.Integer(rng.randint(lo, 40))
    mag = sp.Rational(
        rng.choice([1, 2, 3, 5, 7, 11, 13]), rng.choice([1, 2, 3, 4, 10, 100])
    ) * sp.Integer(10) ** rng.choice([0, 0, 0, 1, -1, 2])
    if a.get("positive"):
        return mag
    if a.get("nonnegative"):
        return sp.Integer(0) if rng.random() < 0.2 else mag
    return mag if rng.random() < 0.5 else -mag


def _points(exprs, n=300, seed=0):
    syms = sorted(set().union(*[sp.sympify(e).free_symbols for e in exprs]), key=str)
    rng = random.Random(seed)
    for _ in range(n):
        yield {s: _sample(s, rng) for s in syms}


def _value(expr, point):
    v = sp.N(sp.sympify(expr).subs(point), _DIGITS)
    if not v.is_real or v.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    return v


def _cex(point) -> dict:
    return {str(k): (str(v) if not v.is_Integer else int(v)) for k, v in point.items()}


def _equal_by_logs(lhs, rhs):
    """log(lhs) - log(rhs) with logs of products and powers expanded: 0 proves lhs = rhs when both
    are positive (sympy expands only where its assumptions make that valid)."""
    if not (sp.sympify(lhs).is_positive and sp.sympify(rhs).is_positive):
        return None
    return sp.simplify(sp.expand_log(sp.log(lhs)) - sp.expand_log(sp.log(rhs)))


# ---------------------------------------------------------------------------------------------
# sympy


def _tidy_exponents(e):
    return e.replace(
        lambda x: x.is_Pow and not x.exp.is_Number, lambda x: sp.Pow(x.base, sp.simplify(x.exp))
    )


def _proof_of_equality(lhs, rhs):
    """How sympy shows lhs = rhs (a short description), or None."""
    if sp.simplify(lhs - rhs) == 0:
        return "simplify(lhs - rhs) = 0"
    if lhs != 0 and rhs != 0 and _tidy_exponents(sp.simplify(lhs / rhs)) == 1:
        return "simplify(lhs / rhs) = 1"
    if _equal_by_logs(lhs, rhs) == 0:
        return "expand_log(log lhs - log rhs) = 0 (both sides positive)"
    return None


def sympy_equal(lhs, rhs, *, where: str = "") -> Check:
    """Prove lhs = rhs for all values of the symbols allowed by their assumptions."""
    lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
    text = (
        f"{assumptions_text([lhs, rhs])}{(' with ' + where) if where else ''}: "
        f"{sp.sstr(lhs)} = {sp.sstr(rhs)}"
    )
    if lhs == rhs or (lhs - rhs) == 0:  # sympy's automatic evaluation alone made them equal
        return Check(
            "sympy",
            "proved",
            text,
            detail="equal as built: the two sides are one expression before any simplification",
            decided_by="sympy: equal as built (automatic evaluation)",
            trivial=(
                "the two sides are one expression as built (sympy's automatic evaluation settled "
                "it when they were constructed; no simplification ran)"
            ),
        )
    how = _proof_of_equality(lhs, rhs)
    if how:
        return Check(
            "sympy", "proved", text, detail=how, decided_by=f"sympy {how.split('(')[0].strip()}"
        )
    for point in _points([lhs, rhs]):
        a, b = _value(lhs, point), _value(rhs, point)
        if (
            a is not None
            and b is not None
            and abs(a - b) > sp.Float(10) ** (-25) * (1 + abs(a) + abs(b))
        ):
            return Check(
                "sympy",
                "refuted",
                text,
                _cex(point) | {"lhs": str(sp.N(a, 15)), "rhs": str(sp.N(b, 15))},
                decided_by="sympy: a sampled point, 40 digits",
            )
    return Check(
        "sympy",
        "failed",
        text,
        detail="not simplified to an identity; no counterexample found",
        decided_by="none (sympy undecided)",
    )


def sympy_nonneg(expr, *, strict=False, where: str = "", certificate=None) -> Check:
    """Prove expr >= 0 (> 0 if strict) from the symbols' assumptions alone.

    With a `certificate` (e.g. a sum of squares and products of non-negative symbols), prove
    expr = certificate by simplification and the certificate's sign from the assumptions.
    """
    expr = sp.sympify(expr)
    rel = ">" if strict else ">="
    cert = f" = {sp.sstr(certificate)}" if certificate is not None else ""
    text = (
        f"{assumptions_text([expr])}{(' with ' + where) if where else ''}: "
        f"{sp.sstr(expr)}{cert} {rel} 0"
    )
    if expr.is_Number and (expr > 0 if strict else expr >= 0):
        return Check(
            "sympy",
            "proved",
            text,
            detail=f"the expression is the number {sp.sstr(expr)} as built",
            decided_by="sympy: a number before any work",
            trivial=f"the expression is the number {sp.sstr(expr)}",
        )
    if certificate is not None:
        certificate = sp.sympify(certificate)
        if sp.simplify(sp.expand(expr - certificate)) == 0 and (
            certificate.is_positive if strict else certificate.is_nonnegative
        ):
            return Check(
                "sympy",
                "proved",
                text,
                decided_by="sympy certificate",
                detail="identity with a certificate whose sign the assumptions decide",
            )
    for form in (expr, sp.factor(sp.simplify(expr)), sp.factor(sp.together(sp.expand(expr)))):
        decided = form.is_positive if strict else form.is_nonnegative
        if decided:
            return Check(
                "sympy",
                "proved",
                text,
                detail=f"sign from assumptions of {sp.sstr(form)}",
                decided_by="sympy assumptions",
            )
    for point in _points([expr]):
        v = _value(expr, point)
        if v is not None and (v <= 0 if strict else v < -(sp.Float(10) ** (-30))):
            return Check(
                "sympy",
                "refuted",
                text,
                _cex(point) | {"value": str(sp.N(v, 15))},
                decided_by="sympy: a sampled point, 40 digits",
            )
    return Check(
        "sympy",
        "failed",
        text,
        detail="sign not decided by sympy's assumptions; no counterexample found",
        decided_by="none (sympy undecided)",
    )


def sympy_bounded_below(expr, var, interval, lower=0) -> Check:
    """Prove expr >= lower for every var in the interval, from sympy's exact minimum over it."""
    from sympy.calculus.util import minimum

    expr, lower = sp.sympify(expr), sp.sympify(lower)
    text = (
        f"{assumptions_text([expr])}: for all {var} in {interval}: "
        f"{sp.sstr(expr)} >= {sp.sstr(lower)}"
    )
    if not expr.has(var) and (expr - lower).is_nonnegative:
        return Check(
            "sympy",
            "proved",
            text,
            detail=f"{sp.sstr(expr)} does not depend on {var}",
            decided_by="sympy assumptions",
            trivial=f"the expression does not depend on {var}",
        )
    low = minimum(expr, var, interval)
    if (low - lower).is_nonnegative:
        return Check(
            "sympy",
            "proved",
            text,
            detail=f"exact minimum over the interval: {sp.sstr(low)}",
            decided_by="sympy minimum",
        )
    if (low - lower).is_negative:
        return Check(
            "sympy", "refuted", text, {"minimum": sp.sstr(low)}, decided_by="sympy minimum"
        )
    return Check(
        "sympy",
        "failed",
        text,
        detail=f"minimum {sp.sstr(low)} not comparable with {sp.sstr(lower)}",
        decided_by="none (sympy undecided)",
    )


def sympy_limit(expr, var, point, expected, direction="+") -> Check:
    """Prove lim_{var -> point} expr = expected."""
    expr, expected = sp.sympify(expr), sp.sympify(expected)
    text = (
        f"{assumptions_text([expr, expected])}: lim_({var} -> "
        f"{point}{direction if point not in (sp.oo, -sp.oo) else ''}) "
        f"{sp.sstr(expr)} = {sp.sstr(expected)}"
    )
    if not expr.has(var) and (expr - expected) == 0:
        return Check(
            "sympy",
            "proved",
            text,
            detail=f"{sp.sstr(expr)} does not depend on {var}",
            decided_by="sympy: no limit taken",
            trivial=f"the expression does not depend on {var}",
        )
    got = (
        sp.limit(expr, var, point, direction)
        if point not in (sp.oo, -sp.oo)
        else sp.limit(expr, var, point)
    )
    if sp.simplify(got - expected) == 0:
        return Check(
            "sympy",
            "proved",
            text,
            detail=f"limit computed: {sp.sstr(got)}",
            decided_by="sympy limit",
        )
    if isinstance(got, sp.Limit):
        return Check(
            "sympy",
            "failed",
            text,
            detail="sympy could not compute the limit",
            decided_by="none (sympy undecided)",
        )
    return Check(
        "sympy",
        "refuted",
        text,
        {"limit": sp.sstr(got)},
        detail=f"the limit is {sp.sstr(got)}",
        decided_by="sympy limit",
    )


# ---------------------------------------------------------------------------------------------
# z3


def _z3():
    try:
        import z3
    except ImportError as e:  # pragma: no cover - z3-solver is a dependency
        raise RuntimeError("the z3 engine needs the z3-solver package") from e
    return z3


_Z3_RELATIONS = {
    sp.StrictLessThan: operator.lt,
    sp.LessThan: operator.le,
    sp.StrictGreaterThan: operator.gt,
    sp.GreaterThan: operator.ge,
    sp.Equality: operator.eq,
    sp.Unequality: operator.ne,
}


def _to_z3(e, env, z3):
    """The z3 term of a sympy expression: symbols as z3 Reals (kept in `env`), rationals exact,
    integer powers as products; a TypeError for what nonlinear real arithmetic cannot say."""
    atom = _z3_atom(e, env, z3)
    if atom is not None:
        return atom
    if e.is_Pow:
        return _z3_pow(e, env, z3)
    return _z3_compound(e, [_to_z3(a, env, z3) for a in e.args], z3)


def _z3_atom(e, env, z3):
    """A symbol, a rational or a truth value as z3's; None for anything else."""
    if e.is_Symbol:
        if e not in env:
            env[e] = z3.Real(str(e))
        return env[e]
    if e.is_Integer or e.is_Rational:
        return z3.RealVal(str(e.p)) / z3.RealVal(str(e.q)) if e.q != 1 else z3.RealVal(str(e.p))
    if e is sp.true:
        return z3.BoolVal(True)
    if e is sp.false:
        return z3.BoolVal(False)
    return None


def _z3_pow(e, env, z3):
    """base**n for an integer n, as n products (z3 has no real power)."""
    base, ex = e.args
    if not ex.is_Integer:
        raise TypeError(f"z3 (nonlinear real arithmetic) needs integer powers, got {sp.sstr(e)}")
    b = _to_z3(base, env, z3)
    n = int(ex)
    out = z3.RealVal(1)
    for _ in range(abs(n)):
        out = out * b
    return out if n >= 0 else 1 / out


def _z3_compound(e, args, z3):
    """A sum, product, relation, connective, Abs, Max or Min of the already translated `args`."""
    if e.is_Add:
        return z3.Sum(*args)
    if e.is_Mul:
        return functools.reduce(operator.mul, args)
    for cls, op in _Z3_RELATIONS.items():
        if isinstance(e, cls):
            return op(*args)
    for cls, make in ((sp.And, z3.And), (sp.Or, z3.Or), (sp.Not, z3.Not), (sp.Implies, z3.Implies)):
        if isinstance(e, cls):
            return make(*args)
    if isinstance(e, sp.Abs):
        return z3.If(args[0] >= 0, args[0], -args[0])
    if isinstance(e, (sp.Max, sp.Min)):
        out = args[0]
        for a in args[1:]:
            out = z3.If(a > out, a, out) if isinstance(e, sp.Max) else z3.If(a < out, a, out)
        return out
    raise TypeError(f"cannot translate {type(e).__name__} to z3: {sp.sstr(e)}")


def _symbol_facts(syms):
    facts = []
    for s in syms:
        if s.is_positive:
            facts.append(sp.StrictGreaterThan(s, 0, evaluate=False))
        elif s.is_nonnegative:
            facts.append(sp.GreaterThan(s, 0, evaluate=False))
        elif s.is_negative:
            facts.append(sp.StrictLessThan(s, 0, evaluate=False))
    return facts


def _model_value(z3, v):
    if z3.is_rational_value(v):
        return sp.Rational(v.numerator_as_long(), v.denominator_as_long())
    if z3.is_algebraic_value(v):
        return sp.Float(v.approx(_DIGITS).as_decimal(_DIGITS).rstrip("?"), _DIGITS)
    return sp.Float(str(v))


def _conjuncts(z3, e):
    return [c for a in e.children() for c in _conjuncts(z3, a)] if z3.is_and(e) else [e]


def _z3_trivial(z3, goal, z_goal, z_hyps, n_facts) -> tuple[str, str]:
    """(reason, decided_by) when the goal holds before any solving; ("", "") otherwise."""
    if goal is sp.true:
        return "sympy evaluated the goal to True before z3 saw it", "sympy: True before z3"
    hyps = [z3.simplify(h) for h in z_hyps]
    reasons = []
    for part in _conjuncts(z3, z3.simplify(z_goal)):
        if z3.is_true(part):
            reasons.append("reduces to True in z3's simplifier")
            continue
        k = next((k for k, h in enumerate(hyps) if z3.eq(part, h)), None)
        if k is None:
            return "", ""
        which = "a symbol's sign assumption" if k < n_facts else f"hypothesis {k - n_facts + 1}"
        reasons.append(f"is {which} ({_short_text(z_hyps[k])})")
    reasons = list(dict.fromkeys(reasons))
    text = (
        f"the goal {reasons[0]}"
        if len(reasons) == 1
        else "each part of the goal " + "; ".join(reasons)
    )
    return text, "syntactic (no solving)"


def _short_text(e) -> str:
    t = str(e).replace("\n", " ")
    return t if len(t) <= 80 else t[:79] + "…"


def z3_implies(hypotheses, goal, *, timeout_ms=10_000) -> Check:
    """Prove: for all real values (with the symbols' sign assumptions), hypotheses imply goal.

    The hypotheses must be satisfiable (else the check is `vacuous`), and a goal that holds before
    solving (one of the hypotheses, or True as built) is marked `trivial`.
    """
    z3 = _z3()
    hypotheses = [sp.sympify(h) for h in hypotheses]
    goal = sp.sympify(goal)
    syms = sorted(set().union(goal.free_symbols, *[h.free_symbols for h in hypotheses]), key=str)
    hyps = _symbol_facts(syms) + hypotheses
    env = {}
    z_h = [_to_z3(h, env, z3) for h in hyps]
    z_g = _to_z3(goal, env, z3)
    formula = (
        z3.ForAll(list(env.values()), z3.Implies(z3.And(*z_h), z_g))
        if env
        else z3.Implies(z3.And(*z_h), z_g)
    )
    text = str(formula).replace("\n", " ")
    solver = z3.SolverFor("QF_NRA")
    solver.set("timeout", int(timeout_ms))
    solver.add(*z_h)
    satisfiable = solver.check()  # hypotheses that contradict each other imply anything
    if satisfiable == z3.unsat:
        return Check(
            "z3",
            "vacuous",
            text,
            decided_by="z3: hypotheses unsatisfiable",
            detail="the hypotheses (with the symbols' sign assumptions) are unsatisfiable: they "
            "contradict each other, so they imply any goal",
        )
    if satisfiable != z3.sat:
        reason = solver.reason_unknown()
        return Check(
            "z3",
            "timeout" if "timeout" in reason or "canceled" in reason else "failed",
            text,
            detail=f"could not show the hypotheses satisfiable (z3: unknown ({reason}))",
            decided_by="none (z3 undecided on the hypotheses)",
        )
    trivial, how = _z3_trivial(z3, goal, z_g, z_h, len(hyps) - len(hypotheses))
    if trivial:
        return Check("z3", "proved", text, detail=trivial, decided_by=how, trivial=trivial)
    # a fresh solver: z3 answers a second check on the same solver with its incremental engine,
    # which is weaker on nonlinear arithmetic (unknown/canceled where a fresh QF_NRA solver decides
    # at once)
    solver = z3.SolverFor("QF_NRA")
    solver.set("timeout", int(timeout_ms))
    solver.add(*z_h)
    solver.add(z3.Not(z_g))
    verdict = solver.check()
    if verdict == z3.unsat:
        return Check(
            "z3",
            "proved",
            text,
            detail="hypotheses satisfiable; with the negated goal unsatisfiable",
            decided_by="z3",
        )
    if verdict == z3.sat:
        model = solver.model()
        point = {s: _model_value(z3, model.eval(env[s], model_completion=True)) for s in syms}
        holds = [bool(sp.sympify(h.subs(point))) for h in hypotheses]
        fails = not bool(goal.subs(point))
        if all(holds) and fails:
            return Check(
                "z3",
                "refuted",
                text,
                _cex(point),
                detail="z3 model, re-checked exactly in sympy",
                decided_by="z3 (model re-checked in sympy)",
            )
        return Check(
            "z3",
            "failed",
            text,
            _cex(point),
            detail="z3 gave a model that sympy does not confirm",
            decided_by="none (z3 and sympy disagree)",
        )
    reason = solver.reason_unknown()
    return Check(
        "z3",
        "timeout" if "timeout" in reason or "canceled" in reason else "failed",
        text,
        detail=f"z3: unknown ({reason})",
        decided_by="none (z3 undecided)",
    )


# ---------------------------------------------------------------------------------------------
# numeric


def _plain(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def numeric_forall(
    prop, strategies: dict, *, statement: str, tolerance: str, max_examples: int = 100
) -> Check:
    """Check prop(**inputs) on hypothesis-generated inputs; prop returns True when the property
    holds.

    The first failing input is the counterexample. Derandomized: the gate is reproducible.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    failures, ran = [], [0]

    # no shrinking: the first failing input is already a verified counterexample, and shrinking an
    # expensive property (an optimizer run against a 30-digit reference) can take minutes
    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
    )
    @given(**strategies)
    def run(**kwargs):
        ran[0] += 1
        if not prop(**kwargs):
            failures.append({k: _plain(v) for k, v in kwargs.items()})
            raise AssertionError

    inputs = ", ".join(f"{k} ~ {s!r}" for k, s in strategies.items())
    text = (
        f"for all {inputs}: {statement} (float64, tolerance {tolerance}, "
        f"{max_examples} derandomized examples)"
    )
    try:
        run()
    except AssertionError:
        if failures:
            return Check(
                "numeric", "refuted", text, failures[-1], decided_by="hypothesis: a generated input"
            )
        raise
    if not ran[0]:
        return Check(
            "numeric",
            "vacuous",
            text,
            detail="no input was generated: the property was never evaluated",
            decided_by="none (no input)",
        )
    return Check("numeric", "held", text, decided_by=f"hypothesis ({ran[0]} inputs)")


def skipped(statement: str, reason: str) -> Check:
    """A numeric check that cannot run on this machine (an optional package is missing): status
    `skipped`, with the reason. It is never a pass; the gate lists it with the reason (see
    lpcheck.verify.core)."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a skipped check needs its reason (a non-empty string)")
    return Check(
        "numeric",
        "skipped",
        statement,
        detail=f"skipped: {reason.strip()}",
        decided_by="not run here",
    )


# ---------------------------------------------------------------------------------------------
# added for proofs/: an implication proved by sympy with a certificate, and z3 on native formulas
# (uninterpreted sorts and functions, e.g. an expectation operator given by its axioms)


def _slack(rel):
    """(slack, kind) with slack >= 0 (> 0, = 0) exactly when rel holds; kind is 'le', 'lt' or
    'eq'."""
    if isinstance(rel, (sp.LessThan, sp.StrictLessThan)):
        return rel.rhs - rel.lhs, "lt" if isinstance(rel, sp.StrictLessThan) else "le"
    if isinstance(rel, (sp.GreaterThan, sp.StrictGreaterThan)):
        return rel.lhs - rel.rhs, "lt" if isinstance(rel, sp.StrictGreaterThan) else "le"
    if isinstance(rel, sp.Equality):
        return rel.rhs - rel.lhs, "eq"
    raise TypeError(f"sympy_implies needs relations (<=, <, >=, >, =), got {sp.sstr(rel)}")


def _resolve_min(expr, hyps):
    """In an expression, replace Min(x, y) by x where a hypothesis states x <= y (a case of a proof
    by cases)."""
    facts = [(_slack(h)[0], h) for h in hyps if _slack(h)[1] != "eq"]
    for m in sorted(expr.atoms(sp.Min, sp.Max), key=sp.default_sort_key):
        for x, y in itertools.permutations(m.args, 2):
            want = (y - x) if isinstance(m, sp.Min) else (x - y)
            if any(sp.expand(s - want) == 0 for s, _ in facts):
                expr = expr.subs(m, x)
                break
    return expr


def _eliminate(equations):
    """Solve equations for one symbol each (where the solution is unique): {symbol: expression}."""
    sub = {}
    for eq in equations:
        eq = eq.subs(sub)
        for s in sorted(eq.free_symbols, key=str, reverse=True):
            sol = sp.solve(eq, s, dict=False)
            if len(sol) == 1:
                sub = {k: v.subs(s, sol[0]) for k, v in sub.items()} | {s: sol[0]}
                break
    return sub


def _search(hyps, goal, *, want_cex, n=200, seed=0):
    """Random points (the symbols' assumptions, equations solved first), also with one inequality
    made tight (solved for one of its symbols), where wrong claims usually fail. Returns (a point
    where every hypothesis holds, a point where they hold and the goal fails), either None when
    none was drawn; stops at the first satisfying point unless want_cex. Evaluated at 40 digits
    (mpmath)."""
    import mpmath

    everything = sorted(set().union(*[e.free_symbols for e in [*hyps, goal]]), key=str)
    sat = None
    with mpmath.workdps(_DIGITS):
        for k, sub in enumerate(_plans(hyps)):
            free, solved, rels, goal_fn = _compile_plan(sub, hyps, goal, everything)
            for point in _points(free, n=n, seed=seed + k):
                full = _solved_point(point, free, solved)
                if full is None or not all(_holds(r, full, everything) for r in rels):
                    continue
                found = point | {s: sp.Float(str(full[s]), 15) for s, _ in solved}
                sat = sat or found
                if not want_cex:
                    return sat, None
                if _holds(goal_fn, full, everything) is False:
                    return sat, found
    return sat, None


def _plans(hyps):
    """Substitutions to draw points under: the equations solved, then each inequality also made
    tight (only where that solves for one more symbol)."""
    equations = [h for h in hyps if _slack(h)[1] == "eq"]
    first = _eliminate(equations)
    yield first
    for h in hyps:
        if _slack(h)[1] != "eq":
            tight = _eliminate([*equations, sp.Eq(_slack(h)[0], 0)])
            if len(tight) > len(first):
                yield tight


def _compile_plan(sub, hyps, goal, everything):
    """(free symbols, solved symbols' functions, hypotheses' and goal's (slack function, kind)) for
    one plan, every function evaluated by mpmath on the symbols `everything` (sorted by name)."""
    free = sorted(
        (set(everything) - set(sub)) | set().union(*[v.free_symbols for v in sub.values()]), key=str
    )
    solved = [(s, sp.lambdify(free, e, "mpmath")) for s, e in sub.items()]
    rels = [
        (sp.lambdify(everything, _slack(h)[0], "mpmath"), _slack(h)[1])
        for h in [*hyps, *_symbol_facts(sorted(sub, key=str))]
    ]
    goal_fn = (sp.lambdify(everything, _slack(goal)[0], "mpmath"), _slack(goal)[1])
    return free, solved, rels, goal_fn


def _solved_point(point, free, solved):
    """The drawn free values with the solved symbols computed from them; None where that fails."""
    import mpmath

    full = {s: mpmath.mpf(sp.Rational(v).p) / sp.Rational(v).q for s, v in point.items()}
    try:
        return full | {s: fn(*[full[x] for x in free]) for s, fn in solved}
    except (ZeroDivisionError, ValueError, TypeError):
        return None


def _holds(fn_kind, full, everything):
    """Whether a relation (slack function, kind) holds at `full`, up to 1e-30 relative; None where
    the slack is undefined or complex."""
    import mpmath

    try:
        v = fn_kind[0](*[full[s] for s in everything])
    except (ZeroDivisionError, ValueError, TypeError):
        return None
    if not isinstance(v, mpmath.mpf):
        return None if isinstance(v, mpmath.mpc) else bool(v >= 0)
    tol = mpmath.mpf(10) ** (-30) * (1 + abs(v))
    return abs(v) <= tol if fn_kind[1] == "eq" else (v > 0 if fn_kind[1] == "lt" else v >= -tol)


def sympy_implies(hypotheses, goal, *, multipliers, residual=0, where: str = "") -> Check:
    """Prove hypotheses => goal by a certificate that sympy checks (a Positivstellensatz of degree
    0):

        slack(goal) = sum_i multipliers[i] * slack(hypotheses[i]) + residual   (identically),

    where slack(a <= b) = b - a; each multiplier of an inequality and the residual must be >= 0 by
    the symbols' assumptions (multipliers of equations may have any sign). Min(x, y) is read as x
    where a hypothesis says x <= y (a case of a proof by cases). The hypotheses must be satisfiable:
    a point satisfying all of them is searched for, and without one the check fails (a vacuous proof
    proves nothing). Without a valid certificate, random points satisfying the hypotheses are tried:
    one where the goal fails is a counterexample (refuted)."""
    hyps = [sp.sympify(h) for h in hypotheses]
    goal = sp.sympify(goal)
    multipliers = [sp.sympify(m) for m in multipliers]
    residual = sp.sympify(residual)
    if len(multipliers) != len(hyps):
        raise ValueError(f"one multiplier per hypothesis: {len(multipliers)} for {len(hyps)}")
    text = (
        f"{assumptions_text([*hyps, goal])}{(' with ' + where) if where else ''}: "
        f"{' and '.join(sp.sstr(h) for h in hyps) or 'True'} => {sp.sstr(goal)}"
    )
    cert_text = " + ".join(
        f"({sp.sstr(m)})*[{sp.sstr(h)}]" for m, h in zip(multipliers, hyps) if m != 0
    )
    text += f"; certificate: slack(goal) = {cert_text or '0'} + {sp.sstr(residual)}"
    if any(
        sp.expand(_slack(h)[0] - _slack(goal)[0]) == 0 and _slack(h)[1] == _slack(goal)[1]
        for h in hyps
    ):
        return Check(
            "sympy",
            "failed",
            text,
            detail="the goal is one of the hypotheses (P => P proves nothing)",
            decided_by="syntactic (no solving)",
            trivial="the goal is one of the hypotheses",
        )
    g_slack, g_kind = _slack(goal)
    g_slack = _resolve_min(g_slack, hyps)
    combo = sp.Add(*[m * _resolve_min(_slack(h)[0], hyps) for m, h in zip(multipliers, hyps)])
    gap = g_slack - combo - residual
    identity = sp.expand(gap) == 0 or sp.cancel(sp.together(gap)) == 0 or sp.simplify(gap) == 0
    signs = all(m.is_nonnegative for m, h in zip(multipliers, hyps) if _slack(h)[1] != "eq")
    strict_ok = (
        g_kind != "lt"
        or residual.is_positive
        or any(m.is_positive and _slack(h)[1] == "lt" for m, h in zip(multipliers, hyps))
    )
    if identity and signs and residual.is_nonnegative and strict_ok:
        sat, _ = _search(hyps, goal, want_cex=False)
        if sat is None:
            return Check(
                "sympy",
                "failed",
                text,
                detail="certificate valid, but no point satisfying the hypotheses "
                "was found (possibly vacuous)",
                decided_by="none (hypotheses not shown satisfiable)",
            )
        return Check(
            "sympy",
            "proved",
            text,
            detail="certificate: the identity simplifies to 0 and the multipliers' "
            "and residual's signs follow from the assumptions; hypotheses "
            f"satisfiable (e.g. {_cex(sat)})",
            decided_by="sympy certificate",
        )
    _, cex = _search(hyps, goal, want_cex=True)
    if cex is not None:
        return Check(
            "sympy",
            "refuted",
            text,
            _cex(cex),
            detail="hypotheses hold and the goal fails at this point",
            decided_by="sympy: a sampled point, 40 digits",
        )
    why = (
        "identity does not simplify to 0"
        if not identity
        else "a multiplier's or the residual's sign is not decided"
    )
    return Check(
        "sympy",
        "failed",
        text,
        detail=f"certificate rejected ({why}); no counterexample found",
        decided_by="none (sympy undecided)",
    )


def z3_implies_native(hypotheses, goal, *, statement: str, timeout_ms=10_000) -> Check:
    """Prove that z3 formulas `hypotheses` imply `goal` (quantifier-free: uninterpreted sorts and
    functions, real arithmetic). `statement` is the readable claim. The hypotheses must be
    satisfiable (checked first: a vacuous proof fails) and the goal must not be one of them. A
    model of the hypotheses and the negated goal is a counterexample, re-checked by z3's own
    evaluator."""
    z3 = _z3()
    text = (
        statement
        + " | z3: "
        + " and ".join(str(h) for h in hypotheses).replace("\n", " ")
        + " => "
        + str(goal).replace("\n", " ")
    )
    if any(z3.eq(h, goal) for h in hypotheses):
        return Check(
            "z3",
            "failed",
            text,
            detail="the goal is one of the hypotheses (P => P proves nothing)",
            decided_by="syntactic (no solving)",
            trivial="the goal is one of the hypotheses",
        )
    solver = z3.Solver()
    solver.set("timeout", int(timeout_ms))
    solver.add(*hypotheses)
    satisfiable = solver.check()
    if satisfiable == z3.unsat:
        return Check(
            "z3",
            "vacuous",
            text,
            decided_by="z3: hypotheses unsatisfiable",
            detail=(
                "the hypotheses are unsatisfiable: they contradict each other, so they imply any "
                "goal"
            ),
        )
    if satisfiable != z3.sat:
        return Check(
            "z3",
            "failed",
            text,
            detail="the hypotheses are not shown satisfiable (possibly vacuous)",
            decided_by="none (z3 undecided on the hypotheses)",
        )
    solver.add(z3.Not(goal))
    verdict = solver.check()
    if verdict == z3.unsat:
        return Check(
            "z3",
            "proved",
            text,
            detail="hypotheses satisfiable; with the negated goal unsatisfiable",
            decided_by="z3",
        )
    if verdict == z3.sat:
        model = solver.model()
        holds = all(z3.is_true(model.eval(h, model_completion=True)) for h in hypotheses)
        fails = z3.is_false(model.eval(goal, model_completion=True))
        shown = {str(d): str(model[d]) for d in model.decls() if d.arity() == 0}
        if holds and fails:
            return Check(
                "z3",
                "refuted",
                text,
                shown,
                detail="z3 model, re-evaluated: hypotheses true, goal false",
                decided_by="z3 (model re-evaluated)",
            )
        return Check(
            "z3",
            "failed",
            text,
            shown,
            detail="z3 gave a model its evaluator does not confirm",
            decided_by="none (z3's model not confirmed)",
        )
    return Check(
        "z3",
        "timeout" if "timeout" in solver.reason_unknown() else "failed",
        text,
        detail=f"z3: unknown ({solver.reason_unknown()})",
        decided_by="none (z3 undecided)",
    )


def to_z3(expr, env):
    """A sympy expression as a z3 term; env maps sympy symbols to z3 terms (filled with Reals for
    the rest)."""
    return _to_z3(sp.sympify(expr), env, _z3())
