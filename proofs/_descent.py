"""The LPSGD-specific part of Theorem 1 (eq. 34-36, 30, 32-33) and Theorem 2 (eq. 49-51, 47-48),
step by step.

The two proofs have the same shape; each theorem module passes its own formulas (`Forms`: eq. 27-33
for Theorem 1, eq. 43-48 for Theorem 2, looked up in `lpcheck.formulas` when a check runs) and its
own constants and conditioning, and declares one obligation per displayed step. Symbols: eta, L, c1,
c2, c3 > 0; G = ||grad f||_2^2 >= 0; A = E[<grad f, u> | .], M = E[||u||_p^2 | .] >= 0; Delta =
f(theta_0) - f* > 0; T > 0.

Here: Lemmas 1-2 from Assumption 1, the conditional step, Assumption 5/6 and the step condition,
down to the one-step inequality eq. 36/51 (`one_step`); and the rate at eq. 32/47's min(cap, square
root). From eq. 36/51 to eq. 40/46 the proofs are the public template's chain (`descent_template`:
expectation, telescoping for every T, lower bound, division), which other methods reuse.

Every inequality step is checked by both engines on the same statement (`both`): z3 (nonlinear real
arithmetic) and sympy with a certificate (the goal's slack as a non-negative combination of the
hypotheses' slacks plus a non-negative residual, an identity sympy simplifies); each check carries
the statement's digest so a reader can match the two. Expectation steps are proved from the axioms
of expectation (`_expectation`)."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from lpcheck import formulas as F
from lpcheck.verify.engines import sympy_equal, sympy_limit, z3_implies

from . import _expectation as X
from . import descent_template as DT

eta, L = sp.symbols("eta L", positive=True)
T, Delta = DT.T, DT.Delta
G = sp.Symbol("G", nonnegative=True)
F0, F1 = sp.symbols("F0 F1", real=True)  # f(theta_t), E[f(theta_{t+1}) | .]
r = sp.Symbol(
    "r", positive=True
)  # the balanced step sqrt(2 Delta/(L c2 T)), by its defining equation
sp.simplify(
    sp.sqrt(r) - 1
)  # simplify imports sympy.physics on first use (~1 s): once here, not in every forked worker


@dataclass
class Forms:
    """The formulas one theorem's proof uses (callables; each looks its formula up when called)."""

    alignment: object  # eq. 27 / 43
    second_moment: object  # eq. 28 / 44
    descent: object  # eq. 29 / 45
    cap: object  # eq. 30 / Theorem 2's eta_0
    bound: object  # eq. 31 / 46
    step: object  # (c1, c2, c3, L, Delta, T) -> eq. 32 / eq. 47 with eta_0
    rate: object  # eq. 33 / 48
    given: str  # the conditioning: theta_t (Theorem 1) or F_t (Theorem 2)


def constants(tilde=False):
    names = ("c~1", "c~2", "c~3") if tilde else ("c1", "c2", "c3")
    return tuple(sp.Symbol(n, positive=True) for n in names)


both = DT.both_engines  # sympy (certificate) and z3 on one statement


# --- Lemmas 1-2 ----------------------------------------------------------------------------------


def lemma_substitution(descent_rhs, update, direction="u"):
    """eq. 29/45 from eq. 4 at x = theta_t, y = theta_{t+1} = update(theta_t, eta, d) (explicit
    vectors in R^3, any p > 1): the displacement is -eta d, so <grad f, y - x> = -eta <grad f, d>,
    and ||y - x||_p^2 = eta^2 ||d||_p^2 (2-homogeneity, proved here for lp_norm); then eq. 4 gives
    eq. 29 (both engines, with the inner product written out and the norm's homogeneity instance as
    a hypothesis)."""
    p = 1 + sp.Symbol("s", positive=True)
    gs = sp.symbols("g1:4", real=True)
    ds = sp.symbols(f"{direction}1:4", real=True)
    ths = sp.symbols("theta1:4", real=True)
    disp = [update(th, eta, d) - th for th, d in zip(ths, ds)]
    Nd, Nu = (
        sp.Symbol("N_disp", nonnegative=True),
        sp.Symbol(f"N_{direction}", nonnegative=True),
    )  # ||y-x||_p^2, ||d||_p^2
    inner = sp.Add(*[g * d for g, d in zip(gs, ds)])
    hyps = [
        sp.Le(F1, F.assumption1_rhs(F0, sp.Add(*[g * x for g, x in zip(gs, disp)]), Nd, L)),
        sp.Eq(Nd, eta**2 * Nu),
    ]
    goal = sp.Le(F1, descent_rhs(F0, eta, inner, Nu, L))
    return [
        *[sympy_equal(x, -eta * d) for x, d in zip(disp[:1], ds)],
        sympy_equal(F.lp_norm(disp, p) ** 2, eta**2 * F.lp_norm(ds, p) ** 2),
        *both(
            hyps,
            goal,
            [1, L / 2],
            where="N_disp = ||theta_{t+1} - theta_t||_p^2 (its 2-homogeneity above)",
        ),
    ]


def lemma_with_weight_decay(descent_rhs):
    """A control: eq. 45 with eq. 25's step (lambda > 0), at p = 2 where eq. 4 is explicit. The
    displacement is -eta (v + lambda theta), so eq. 4 does not give eq. 45: Lemma 2 (and Theorem 2)
    cover lambda = 0 only."""
    lam = sp.Symbol("lambda", positive=True)
    gs, vs, ths = (sp.symbols(f"{n}1:3", real=True) for n in ("g", "v", "theta"))
    disp = [F.eq25_theta(th, eta, lam, v) - th for th, v in zip(ths, vs)]
    hyp = sp.Le(
        F1,
        F.assumption1_rhs(
            F0, sp.Add(*[g * x for g, x in zip(gs, disp)]), sp.Add(*[x**2 for x in disp]), L
        ),
    )
    goal = sp.Le(
        F1,
        descent_rhs(
            F0, eta, sp.Add(*[g * v for g, v in zip(gs, vs)]), sp.Add(*[v**2 for v in vs]), L
        ),
    )
    return both([hyp], goal, [1])


# --- the conditional step (eq. 34-36 / 49-51) -----------------------------------------------------


def conditional_expectation(forms, drop=()):
    """eq. 34/49 from the axioms of conditional expectation (see _expectation), for every law."""
    return X.conditional_step(forms.descent, given=forms.given, drop=drop)


def apply_assumption(forms, c):
    """eq. 35/50: with A >= c1 G (eq. 27/43) and M <= c2 + c3 G (eq. 28/44) in eq. 34/49, then the
    regrouping."""
    c1, c2, c3 = c
    A, M = sp.Symbol("A", real=True), sp.Symbol("M", nonnegative=True)
    rhs = F0 - eta * c1 * G + L * eta**2 / 2 * (c2 + c3 * G)
    hyps = [
        forms.alignment(A, G, c1),
        forms.second_moment(M, G, c2, c3),
        sp.Le(F1, forms.descent(F0, eta, A, M, L)),
    ]
    return [
        *both(hyps, sp.Le(F1, rhs), [eta, L * eta**2 / 2, 1]),
        sympy_equal(rhs, F0 - (eta * c1 - L * eta**2 * c3 / 2) * G + L * eta**2 * c2 / 2),
    ]


def step_condition(forms, c, factor=1):
    """eq. 30 (Theorem 2's eta_0): 0 < eta <= factor * cap implies
    eta c1 - L eta^2 c3/2 >= eta c1/2 (the paper: factor 1)."""
    c1, _, c3 = c
    cap = factor * forms.cap(c1, L, c3)
    return both(
        [sp.Le(eta, cap)], sp.Ge(eta * c1 - L * eta**2 * c3 / 2, eta * c1 / 2), [eta * L * c3 / 2]
    )


def halve_descent(forms, c):
    """eq. 36/51: under eq. 30 and G >= 0, eq. 35 gives
    E[f(theta_{t+1}) | .] <= f(theta_t) - eta c1/2 G + L eta^2 c2/2."""
    c1, c2, c3 = c
    hyps = [
        sp.Le(eta, forms.cap(c1, L, c3)),
        sp.Le(F1, F0 - (eta * c1 - L * eta**2 * c3 / 2) * G + L * eta**2 * c2 / 2),
    ]
    return both(
        hyps, sp.Le(F1, F0 - eta * c1 / 2 * G + L * eta**2 * c2 / 2), [eta * L * c3 * G / 2, 1]
    )


def one_step(forms, c):
    """eq. 36/51 as the template's one-step inequality: E[f(theta_{t+1}) | .] <= f(theta_t) - a G +
    b with a = eta c1/2, b = L eta^2 c2/2 and G = ||grad f(theta_t)||_2^2; the template's chain
    takes it to eq. 40/46."""
    c1, c2, _ = c
    return DT.OneStep(
        progress=eta * c1 / 2,
        error=L * eta**2 * c2 / 2,
        measure="||grad f(theta_t)||_2^2",
        symbol="G",
        given=forms.given,
    )


def bound_claim(forms, c, factor=2):
    """eq. 31/46, the bound eq. 40/46 claims; `factor` is the paper's 2 in its first term (a control
    drops it)."""
    c1, c2, _ = c
    return forms.bound(eta, c1, c2, L, Delta, T) + (factor - 2) * Delta / (eta * c1 * T)


# --- the rate (eq. 32-33 / 47-48) -----------------------------------------------------------------


def _step_with_r(forms, c):
    """The step formula with its square-root branch written as r, r's defining equation r^2 = (that
    branch)^2, and the branch itself."""
    step = forms.step(*c, L, Delta, T)
    roots = [
        a
        for a in getattr(step, "args", ())
        if any(x.exp in (sp.S.Half, -sp.S.Half) for x in a.atoms(sp.Pow))
    ]
    if not isinstance(step, sp.Min) or len(roots) != 1:
        raise ValueError(f"expected min(cap, square root) as the step, got {sp.sstr(step)}")
    return step.subs(roots[0], r), sp.Eq(r**2, sp.simplify(roots[0] ** 2)), roots[0]


def _rate_with_r(forms, c):
    """The rate formula (eq. 33/48) written with r: (2/c1) L c2 r + 2 Delta L c3/(c1^2 T), and the
    identity that ties it to the formula at r = the step's square-root branch."""
    c1, c2, c3 = c
    _, _, root = _step_with_r(forms, c)
    rate_r = 2 / c1 * L * c2 * r + 2 * Delta * L * c3 / (c1**2 * T)
    return rate_r, sympy_equal(forms.rate(*c, L, Delta, T), rate_r.subs(r, root))


def rate_balanced(forms, c, factor=2):
    """eq. 31/46 at the step's second branch r = sqrt(2 Delta/(L c2 T)) equals (2/c1) sqrt(2 Delta L
    c2/T)."""
    c1, c2, _ = c
    _, _, root = _step_with_r(forms, c)
    with sp.evaluate(
        False
    ):  # eq. 31/46 at the root as written: the engine decides, not the constructor
        at_root = forms.bound(root, c1, c2, L, Delta, T)
    return sympy_equal(at_root, factor / c1 * sp.sqrt(2 * Delta * L * c2 / T))


def rate_branches(forms, c):
    """eq. 33/48 for every T > 0 and both branches of the min in eq. 32/47: eq. 31/46 at the step is
    at most the rate formula. Per branch: both engines (the branch as a hypothesis); the whole min:
    z3. Then sqrt(T) * rate -> (2/c1) sqrt(2 Delta L c2): O(T^-1/2)."""
    c1, c2, c3 = c
    step, defining, _ = _step_with_r(forms, c)
    rate, tie = _rate_with_r(forms, c)
    cap = forms.cap(c1, L, c3)
    bound = forms.bound(step, c1, c2, L, Delta, T)
    goal = sp.Le(bound, rate)
    checks = [tie]
    # balanced branch (r <= cap): 2 Delta/(r c1 T) = L c2 r/c1 by r's equation; the c3 term is the
    # residual
    checks += both(
        [defining, sp.Le(r, cap)],
        goal,
        [-L * c2 / (r * c1), 0],
        residual=2 * Delta * L * c3 / (c1**2 * T),
        where="branch r <= cap",
    )
    # cap branch (cap <= r): eq. 31 at the cap is 2 Delta L c3/(c1^2 T) + c2/c3 and c2/c3 <= L c2
    # r/c1
    checks += both(
        [defining, sp.Le(cap, r)],
        goal,
        [0, L * c2 / c1],
        residual=L * c2 * r / c1,
        where="branch cap <= r",
    )
    checks.append(z3_implies([defining], goal))
    checks.append(
        sympy_limit(
            sp.sqrt(T) * forms.rate(*c, L, Delta, T), T, sp.oo, 2 / c1 * sp.sqrt(2 * Delta * L * c2)
        )
    )
    return checks
