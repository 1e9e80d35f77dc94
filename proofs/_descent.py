"""The descent argument of Theorem 1 (eq. 34-40, 32-33) and Theorem 2 (eq. 49-53, 46-48), step by step.

The two proofs have the same shape; each theorem module passes its own formulas (`Forms`: eq. 27-33 for
Theorem 1, eq. 43-48 for Theorem 2, looked up in `lpcheck.formulas` when a check runs) and its own
constants and conditioning, and declares one obligation per displayed step. Symbols: eta, L, c1, c2, c3 > 0;
G = ||grad f||_2^2 >= 0; A = E[<grad f, u> | .], M = E[||u||_p^2 | .] >= 0; Delta = f(theta_0) - f* > 0; T > 0.

Every inequality step is checked by both engines on the same statement (`both`): z3 (nonlinear real
arithmetic) and sympy with a certificate (the goal's slack as a non-negative combination of the hypotheses'
slacks plus a non-negative residual, an identity sympy simplifies); each check carries the statement's
digest so a reader can match the two. Expectation steps are proved from the axioms of expectation
(`_expectation`), the telescoping sums by induction on the number of terms.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sympy as sp

from lpcheck import formulas as F
from lpcheck.verify.engines import sympy_equal, sympy_implies, sympy_limit, z3_implies

from . import _expectation as X

eta, L, T = sp.symbols("eta L T", positive=True)
G = sp.Symbol("G", nonnegative=True)
Delta = sp.Symbol("Delta", positive=True)
F0, F1 = sp.symbols("F0 F1", real=True)  # f(theta_t), E[f(theta_{t+1}) | .]
r = sp.Symbol("r", positive=True)  # the balanced step sqrt(2 Delta/(L c2 T)), by its defining equation
sp.simplify(sp.sqrt(r) - 1)  # simplify imports sympy.physics on first use (~1 s): once here, not in every forked worker


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


def both(hypotheses, goal, multipliers, residual=0, where=""):
    """The same implication for sympy (with the certificate) and z3; both checks name the statement's digest."""
    digest = hashlib.sha1(sp.srepr((tuple(hypotheses), goal)).encode()).hexdigest()[:10]
    checks = [sympy_implies(hypotheses, goal, multipliers=multipliers, residual=residual, where=where),
              z3_implies(hypotheses, goal)]
    for c in checks:
        c.detail = f"[statement {digest}] {c.detail}"
    return checks


# --- Lemmas 1-2 ----------------------------------------------------------------------------------

def lemma_substitution(descent_rhs, update, direction="u"):
    """eq. 29/45 from eq. 4 at x = theta_t, y = theta_{t+1} = update(theta_t, eta, d) (explicit vectors in R^3,
    any p > 1): the displacement is -eta d, so <grad f, y - x> = -eta <grad f, d>, and ||y - x||_p^2 =
    eta^2 ||d||_p^2 (2-homogeneity, proved here for lp_norm); then eq. 4 gives eq. 29 (both engines, with the
    inner product written out and the norm's homogeneity instance as a hypothesis)."""
    p = 1 + sp.Symbol("s", positive=True)
    gs = sp.symbols("g1:4", real=True)
    ds = sp.symbols(f"{direction}1:4", real=True)
    ths = sp.symbols("theta1:4", real=True)
    disp = [update(th, eta, d) - th for th, d in zip(ths, ds)]
    Nd, Nu = sp.Symbol("N_disp", nonnegative=True), sp.Symbol(f"N_{direction}", nonnegative=True)  # ||y-x||_p^2, ||d||_p^2
    inner = sp.Add(*[g * d for g, d in zip(gs, ds)])
    hyps = [sp.Le(F1, F.assumption1_rhs(F0, sp.Add(*[g * x for g, x in zip(gs, disp)]), Nd, L)), sp.Eq(Nd, eta**2 * Nu)]
    goal = sp.Le(F1, descent_rhs(F0, eta, inner, Nu, L))
    return [*[sympy_equal(x, -eta * d) for x, d in zip(disp[:1], ds)],
            sympy_equal(F.lp_norm(disp, p) ** 2, eta**2 * F.lp_norm(ds, p) ** 2),
            *both(hyps, goal, [1, L / 2], where="N_disp = ||theta_{t+1} - theta_t||_p^2 (its 2-homogeneity above)")]


def lemma_with_weight_decay(descent_rhs):
    """A control: eq. 45 with eq. 25's step (lambda > 0), at p = 2 where eq. 4 is explicit. The displacement is
    -eta (v + lambda theta), so eq. 4 does not give eq. 45: Lemma 2 (and Theorem 2) cover lambda = 0 only."""
    lam = sp.Symbol("lambda", positive=True)
    gs, vs, ths = (sp.symbols(f"{n}1:3", real=True) for n in ("g", "v", "theta"))
    disp = [F.eq25_theta(th, eta, lam, v) - th for th, v in zip(ths, vs)]
    hyp = sp.Le(F1, F.assumption1_rhs(F0, sp.Add(*[g * x for g, x in zip(gs, disp)]), sp.Add(*[x**2 for x in disp]), L))
    goal = sp.Le(F1, descent_rhs(F0, eta, sp.Add(*[g * v for g, v in zip(gs, vs)]), sp.Add(*[v**2 for v in vs]), L))
    return both([hyp], goal, [1])


# --- the conditional step (eq. 34-36 / 49-51) -----------------------------------------------------------

def conditional_expectation(forms, drop=()):
    """eq. 34/49 from the axioms of conditional expectation (see _expectation), for every law."""
    return X.conditional_step(forms.descent, given=forms.given, drop=drop)


def apply_assumption(forms, c):
    """eq. 35/50: with A >= c1 G (eq. 27/43) and M <= c2 + c3 G (eq. 28/44) in eq. 34/49, then the regrouping."""
    c1, c2, c3 = c
    A, M = sp.Symbol("A", real=True), sp.Symbol("M", nonnegative=True)
    rhs = F0 - eta * c1 * G + L * eta**2 / 2 * (c2 + c3 * G)
    hyps = [forms.alignment(A, G, c1), forms.second_moment(M, G, c2, c3), sp.Le(F1, forms.descent(F0, eta, A, M, L))]
    return [*both(hyps, sp.Le(F1, rhs), [eta, L * eta**2 / 2, 1]),
            sympy_equal(rhs, F0 - (eta * c1 - L * eta**2 * c3 / 2) * G + L * eta**2 * c2 / 2)]


def step_condition(forms, c, factor=1):
    """eq. 30 (Theorem 2's eta_0): 0 < eta <= factor * cap implies eta c1 - L eta^2 c3/2 >= eta c1/2 (the paper: factor 1)."""
    c1, _, c3 = c
    cap = factor * forms.cap(c1, L, c3)
    return both([sp.Le(eta, cap)], sp.Ge(eta * c1 - L * eta**2 * c3 / 2, eta * c1 / 2), [eta * L * c3 / 2])


def halve_descent(forms, c):
    """eq. 36/51: under eq. 30 and G >= 0, eq. 35 gives E[f(theta_{t+1}) | .] <= f(theta_t) - eta c1/2 G + L eta^2 c2/2."""
    c1, c2, c3 = c
    hyps = [sp.Le(eta, forms.cap(c1, L, c3)), sp.Le(F1, F0 - (eta * c1 - L * eta**2 * c3 / 2) * G + L * eta**2 * c2 / 2)]
    return both(hyps, sp.Le(F1, F0 - eta * c1 / 2 * G + L * eta**2 * c2 / 2), [eta * L * c3 * G / 2, 1])


def total_expectation(forms, c, drop=()):
    """eq. 37/52 from eq. 36/51 by the tower rule, monotonicity and linearity of E, for every law."""
    c1, c2, _ = c
    return X.total_step(c1, c2, given=forms.given, drop=drop)


# --- the sums (eq. 38-40 / 53, 46) ----------------------------------------------------------------

def telescope(c, shift=0):
    """eq. 38/53 for every T, by induction on n: S(n) says E f(theta_n) <= f(theta_0) - eta c1/2 sum_{t<n} E G_t
    + n L eta^2 c2/2. Base S(0) (an empty sum); step S(n) and eq. 37 at t = n give S(n+1), with the sum's
    recursion sum_{t<n+1} = sum_{t<n} + G_n (checked for sympy's Sum). `shift` = 1 makes the control that
    sums t = 1..n instead (an index off by one)."""
    c1, c2, _ = c
    n = sp.Symbol("n", integer=True, nonnegative=True)
    t = sp.Symbol("t", integer=True, nonnegative=True)
    g = sp.IndexedBase("G")
    a, k = eta * c1 / 2, L * eta**2 * c2 / 2
    e0, en, en1 = sp.symbols("E_f0 E_fn E_fn1", real=True)
    Sn, Sn1 = sp.symbols("Sum_n Sum_n1", real=True)  # sum_{t<n} E G_t and sum_{t<n+1} E G_t
    Gn, Gn1 = sp.symbols("G_n G_n1", nonnegative=True)

    def claim_rhs(m):
        return e0 - a * sp.Sum(g[t], (t, shift, m - 1 + shift)) + m * k
    base = sympy_equal(claim_rhs(0).doit(), e0)
    recursion = sympy_equal(sp.Sum(g[t], (t, 0, n - 1)) + sp.Sum(g[t], (t, n, n)), sp.Sum(g[t], (t, 0, n)))
    new_term = Gn1 if shift else Gn  # with the shifted index the sum gains G_{n+1}, not G_n
    hyps = [sp.Le(en, e0 - a * Sn + n * k), sp.Le(en1, en - a * Gn + k), sp.Eq(Sn1, Sn + new_term)]
    goal = sp.Le(en1, e0 - a * Sn1 + (n + 1) * k)
    return [base, recursion, *both(hyps, goal, [1, 1, a])]


def lower_bound(c):
    """eq. 39: E f(theta_T) >= f* (Assumption 4) turns eq. 38 into eta c1/2 sum E G_t <= f(theta_0) - f* + L eta^2 c2 T/2."""
    c1, c2, _ = c
    eT, f0, fstar, total_g = sp.symbols("E_fT f0 f_star SumG", real=True)
    k = L * eta**2 * c2 * T / 2
    return both([sp.Ge(eT, fstar), sp.Le(eT, f0 - eta * c1 / 2 * total_g + k)],
                sp.Le(eta * c1 / 2 * total_g, f0 - fstar + k), [1, 1])


def divide(forms, c, factor=2):
    """eq. 40/46: dividing eq. 39 by eta c1 T/2 > 0 gives (1/T) sum E G_t <= eq. 31/46. `factor` is the paper's 2 in
    the first term (a control drops it: then the claimed bound is not eq. 31/46 but factor Delta/(eta c1 T) + ...)."""
    c1, c2, _ = c
    total_g = sp.Symbol("SumG", nonnegative=True)
    claim = forms.bound(eta, c1, c2, L, Delta, T) + (factor - 2) * Delta / (eta * c1 * T)
    return both([sp.Le(eta * c1 / 2 * total_g, Delta + L * eta**2 * c2 * T / 2)], sp.Le(total_g / T, claim),
                [2 / (eta * c1 * T)])


# --- the rate (eq. 32-33 / 47-48) -----------------------------------------------------------------------

def _step_with_r(forms, c):
    """The step formula with its square-root branch written as r, r's defining equation r^2 = (that branch)^2,
    and the branch itself."""
    step = forms.step(*c, L, Delta, T)
    roots = [a for a in getattr(step, "args", ()) if any(x.exp in (sp.S.Half, -sp.S.Half) for x in a.atoms(sp.Pow))]
    if not isinstance(step, sp.Min) or len(roots) != 1:
        raise ValueError(f"expected min(cap, square root) as the step, got {sp.sstr(step)}")
    return step.subs(roots[0], r), sp.Eq(r**2, sp.simplify(roots[0] ** 2)), roots[0]


def _rate_with_r(forms, c):
    """The rate formula (eq. 33/48) written with r: (2/c1) L c2 r + 2 Delta L c3/(c1^2 T), and the identity that
    ties it to the formula at r = the step's square-root branch."""
    c1, c2, c3 = c
    _, _, root = _step_with_r(forms, c)
    rate_r = 2 / c1 * L * c2 * r + 2 * Delta * L * c3 / (c1**2 * T)
    return rate_r, sympy_equal(forms.rate(*c, L, Delta, T), rate_r.subs(r, root))


def rate_balanced(forms, c, factor=2):
    """eq. 31/46 at the step's second branch r = sqrt(2 Delta/(L c2 T)) equals (2/c1) sqrt(2 Delta L c2/T)."""
    c1, c2, _ = c
    _, _, root = _step_with_r(forms, c)
    return sympy_equal(forms.bound(root, c1, c2, L, Delta, T), factor / c1 * sp.sqrt(2 * Delta * L * c2 / T))


def rate_branches(forms, c):
    """eq. 33/48 for every T > 0 and both branches of the min in eq. 32/47: eq. 31/46 at the step is at most the
    rate formula. Per branch: both engines (the branch as a hypothesis); the whole min: z3. Then
    sqrt(T) * rate -> (2/c1) sqrt(2 Delta L c2): O(T^-1/2)."""
    c1, c2, c3 = c
    step, defining, _ = _step_with_r(forms, c)
    rate, tie = _rate_with_r(forms, c)
    cap = forms.cap(c1, L, c3)
    bound = forms.bound(step, c1, c2, L, Delta, T)
    goal = sp.Le(bound, rate)
    checks = [tie]
    # balanced branch (r <= cap): 2 Delta/(r c1 T) = L c2 r/c1 by r's equation; the c3 term is the residual
    checks += both([defining, sp.Le(r, cap)], goal, [-L * c2 / (r * c1), 0],
                   residual=2 * Delta * L * c3 / (c1**2 * T), where="branch r <= cap")
    # cap branch (cap <= r): eq. 31 at the cap is 2 Delta L c3/(c1^2 T) + c2/c3 and c2/c3 <= L c2 r/c1
    checks += both([defining, sp.Le(cap, r)], goal, [0, L * c2 / c1],
                   residual=L * c2 * r / c1, where="branch cap <= r")
    checks.append(z3_implies([defining], goal))
    checks.append(sympy_limit(sp.sqrt(T) * forms.rate(*c, L, Delta, T), T, sp.oo, 2 / c1 * sp.sqrt(2 * Delta * L * c2)))
    return checks
