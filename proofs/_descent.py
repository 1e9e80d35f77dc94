"""The descent argument shared by Theorem 1 (eq. 34-40) and Theorem 2 (eq. 49-53, 46), step by step.

Both proofs are the same algebra with different constants (c1..c3 vs c~1..c~3) and conditioning
(theta_t vs F_t); `lpcheck.proofs.theorem1` and `.theorem2` declare one obligation per displayed step
and call these functions with their own symbols. Symbols: eta, L, c1, c2, c3 > 0; G = ||grad f||_2^2 >= 0;
A = E[<grad f, u>], M = E[||u||_p^2] >= 0; Delta = f(theta_0) - f* >= 0 (> 0 for the rate); T >= 1.
Expectations are linear and monotone; z3 checks that on laws with three atoms (weights w_k >= 0,
sum 1), sympy checks the linear identity.
"""

import sympy as sp

from lpcheck import formulas as F
from lpcheck.verify.engines import sympy_equal, sympy_nonneg, z3_implies

eta, L, T = sp.symbols("eta L T", positive=True)
G = sp.Symbol("G", nonnegative=True)
Delta = sp.Symbol("Delta", nonnegative=True)
F0, F1 = sp.symbols("F0 F1", real=True)  # f(theta_t), E[f(theta_{t+1}) | .]


def constants(tilde=False):
    names = ("c~1", "c~2", "c~3") if tilde else ("c1", "c2", "c3")
    return tuple(sp.Symbol(n, positive=True) for n in names)


def lemma_substitution():
    """eq. 29/45 from eq. 4 with y - x = -eta u: <grad f, -eta u> = -eta <grad f, u> and
    ||-eta u||_p^2 = eta^2 ||u||_p^2 (explicit vectors in R^3, any p > 1), then the inequality."""
    r = sp.Symbol("r", positive=True)
    p = 1 + r
    gs = sp.symbols("g1:4", real=True)
    us = sp.symbols("u1:4", real=True)
    inner = sp.Add(*[g * u for g, u in zip(gs, us)])
    I, U, f_next, f_now = sp.Symbol("I", real=True), sp.Symbol("U", nonnegative=True), F1, F0
    return [
        sympy_equal(sp.Add(*[g * (-eta * u) for g, u in zip(gs, us)]), -eta * inner),
        sympy_equal(F.lp_norm([-eta * u for u in us], p) ** 2, eta**2 * F.lp_norm(us, p) ** 2),
        z3_implies([sp.Le(f_next, F.assumption1_rhs(f_now, -eta * I, eta**2 * U, L))],
                   sp.Le(f_next, F.eq29_rhs(f_now, eta, I, U, L))),
    ]


def _atoms(n=3):
    w = sp.symbols(f"w1:{n + 1}", nonnegative=True)
    return w, sp.Eq(sp.Add(*w), 1)


def conditional_expectation():
    """eq. 34/49: E[. | theta_t] of eq. 29 is eq. 29 with A = E<grad f, u>, M = E||u||^2 (linearity, monotonicity)."""
    w, total = _atoms()
    f1 = sp.symbols("F1_1:4", real=True)
    inner = sp.symbols("I1:4", real=True)
    sq = sp.symbols("U1:4", nonnegative=True)
    pointwise = [sp.Le(f1[k], F.eq29_rhs(F0, eta, inner[k], sq[k], L)) for k in range(3)]
    E = lambda xs: sp.Add(*[wk * x for wk, x in zip(w, xs)])  # noqa: E731
    goal = sp.Le(E(f1), F.eq29_rhs(F0, eta, E(inner), E(sq), L))
    w3 = 1 - w[0] - w[1]
    linear = E([F.eq29_rhs(F0, eta, i, u, L) for i, u in zip(inner, sq)]).subs(w[2], w3)
    return [z3_implies([total, *pointwise], goal),
            sympy_equal(linear, F.eq29_rhs(F0, eta, E(inner), E(sq), L).subs(w[2], w3))]


def apply_assumption(c):
    """eq. 35/50: with A >= c1 G (eq. 27) and M <= c2 + c3 G (eq. 28), and the regrouping of its right side."""
    c1, c2, c3 = c
    A, M = sp.Symbol("A", real=True), sp.Symbol("M", nonnegative=True)
    rhs = F0 - eta * c1 * G + L * eta**2 / 2 * (c2 + c3 * G)
    return [z3_implies([F.eq27_alignment(A, G, c1), F.eq28_second_moment(M, G, c2, c3), sp.Le(F1, F.eq29_rhs(F0, eta, A, M, L))],
                       sp.Le(F1, rhs)),
            sympy_equal(rhs, F0 - (eta * c1 - L * eta**2 * c3 / 2) * G + L * eta**2 * c2 / 2)]


def step_condition(c, factor=1):
    """eq. 30 -> 'eta c1 - L eta^2 c3/2 >= eta c1/2' for 0 < eta <= factor * c1/(L c3) (the paper: factor 1)."""
    c1, _, c3 = c
    cap = factor * F.eq30_step_cap(c1, L, c3)
    s = sp.Symbol("s", nonnegative=True)  # eta = cap / (1 + s)
    gap = (eta * c1 - L * eta**2 * c3 / 2 - eta * c1 / 2).subs(eta, cap / (1 + s))
    return [sympy_nonneg(gap, where=f"eta = {sp.sstr(cap)}/(1 + s), s >= 0"),
            z3_implies([sp.Le(eta, cap)], sp.Ge(eta * c1 - L * eta**2 * c3 / 2, eta * c1 / 2))]


def halve_descent(c):
    """eq. 36/51: under eq. 30 and G >= 0, eq. 35 gives E f(theta_{t+1}) <= f(theta_t) - eta c1/2 G + L eta^2 c2/2."""
    c1, c2, c3 = c
    return z3_implies([sp.Le(eta, F.eq30_step_cap(c1, L, c3)), sp.Le(F1, F0 - (eta * c1 - L * eta**2 * c3 / 2) * G + L * eta**2 * c2 / 2)],
                      sp.Le(F1, F0 - eta * c1 / 2 * G + L * eta**2 * c2 / 2))


def total_expectation(c):
    """eq. 37/52: the full expectation of eq. 36 (tower property: linear and monotone, constants kept)."""
    c1, c2, _ = c
    w, total = _atoms()
    f0, f1, g = sp.symbols("F0_1:4", real=True), sp.symbols("F1_1:4", real=True), sp.symbols("G1:4", nonnegative=True)
    E = lambda xs: sp.Add(*[wk * x for wk, x in zip(w, xs)])  # noqa: E731
    pointwise = [sp.Le(f1[k], f0[k] - eta * c1 / 2 * g[k] + L * eta**2 * c2 / 2) for k in range(3)]
    return z3_implies([total, *pointwise], sp.Le(E(f1), E(f0) - eta * c1 / 2 * E(g) + L * eta**2 * c2 / 2))


def telescope(c):
    """eq. 38/53: summing eq. 37 over t = 0..T-1: the f terms telescope, the constant is counted T times."""
    c1, c2, _ = c
    t, n = sp.Symbol("t", integer=True, nonnegative=True), sp.Symbol("n", integer=True, positive=True)
    a, g = sp.IndexedBase("a"), sp.IndexedBase("G")
    k = L * eta**2 * c2 / 2
    e = sp.symbols("e0:4", real=True)  # E f(theta_0..3)
    gs = sp.symbols("g0:3", nonnegative=True)
    chain = [sp.Le(e[i + 1], e[i] - eta * c1 / 2 * gs[i] + k) for i in range(3)]
    return [sympy_equal(sp.summation(a[t + 1] - a[t], (t, 0, n - 1)), a[n] - a[0]),
            sympy_equal(sp.summation(k, (t, 0, n - 1)), n * k),
            sympy_equal(sp.summation(-eta * c1 / 2 * g[t], (t, 0, n - 1)), -eta * c1 / 2 * sp.Sum(g[t], (t, 0, n - 1))),
            z3_implies(chain, sp.Le(e[3], e[0] - eta * c1 / 2 * sp.Add(*gs) + 3 * k))]


def lower_bound(c):
    """eq. 39: E f(theta_T) >= f* (Assumption 4) turns eq. 38 into eta c1/2 sum E G_t <= f(theta_0) - f* + L eta^2 c2 T/2."""
    c1, c2, _ = c
    eT, f0, fstar, total_g = sp.symbols("E_fT f0 f_star SumG", real=True)
    return z3_implies([sp.Ge(eT, fstar), sp.Le(eT, f0 - eta * c1 / 2 * total_g + L * eta**2 * c2 * T / 2)],
                      sp.Le(eta * c1 / 2 * total_g, f0 - fstar + L * eta**2 * c2 * T / 2))


def divide(c, factor=2):
    """eq. 40/46: dividing eq. 39 by eta c1 T/2 > 0 gives (1/T) sum E G_t <= 2 Delta/(eta c1 T) + L eta c2/c1.
    `factor` is the paper's 2 in the first term (a control drops it)."""
    c1, c2, _ = c
    total_g = sp.Symbol("SumG", nonnegative=True)
    claim = factor * Delta / (eta * c1 * T) + L * eta * c2 / c1
    checks = [z3_implies([sp.Le(eta * c1 / 2 * total_g, Delta + L * eta**2 * c2 * T / 2)], sp.Le(total_g / T, claim))]
    if factor == 2:
        checks.append(sympy_equal((Delta + L * eta**2 * c2 * T / 2) / (eta * c1 * T / 2), F.eq31_rhs(eta, c1, c2, L, Delta, T)))
    return checks


def _balanced_r(c):
    """r = sqrt(2 Delta/(L c2 T)), the second branch of eq. 32, by its defining equation (z3 has no sqrt)."""
    _, c2, _ = c
    r = sp.Symbol("r", positive=True)
    return r, sp.Eq(r**2 * L * c2 * T, 2 * sp.Symbol("Delta", positive=True))


def rate_balanced(c, factor=2):
    """eq. 31 at eta = sqrt(2 Delta/(L c2 T)) equals (2/c1) sqrt(2 Delta L c2/T) = O(T^-1/2)."""
    c1, c2, _ = c
    D = sp.Symbol("Delta", positive=True)
    eta_b = sp.sqrt(2 * D / (L * c2 * T))
    return sympy_equal(F.eq31_rhs(eta_b, c1, c2, L, D, T), factor / c1 * sp.sqrt(2 * D * L * c2 / T))


def rate_cap(c):
    """eq. 31 at eta = c1/(L c3) when that is the smaller branch of eq. 32: at most
    2 Delta L c3/(c1^2 T) + (1/c1) sqrt(2 Delta L c2/T), with sqrt(2 Delta L c2/T) = L c2 r."""
    c1, c2, c3 = c
    D = sp.Symbol("Delta", positive=True)
    r, defining = _balanced_r(c)
    cap = F.eq30_step_cap(c1, L, c3)
    bound = 2 * D * L * c3 / (c1**2 * T) + L * c2 * r / c1
    s = sp.Symbol("s", nonnegative=True)  # r = cap (1 + s)
    gap = (bound - F.eq31_rhs(cap, c1, c2, L, D, T)).subs(r, cap * (1 + s))
    return [z3_implies([defining, sp.Le(cap, r)], sp.Le(F.eq31_rhs(cap, c1, c2, L, D, T), bound)),
            sympy_nonneg(gap, where="r = c1/(L c3) (1 + s), s >= 0"),
            sympy_equal((L * c2 * sp.sqrt(2 * D / (L * c2 * T))) ** 2, 2 * D * L * c2 / T)]


def rate_explicit(c):
    """eq. 33 (48) made explicit: for every T >= 1, eq. 31 at eq. 32's step (either branch) is at most
    (2/c1) sqrt(2 Delta L c2/T) + 2 Delta L c3/(c1^2 T), i.e. sqrt(T) times it is bounded: O(T^-1/2)."""
    c1, c2, c3 = c
    D = sp.Symbol("Delta", positive=True)
    r, defining = _balanced_r(c)
    step = sp.Min(F.eq30_step_cap(c1, L, c3), r)
    explicit = 2 / c1 * L * c2 * r + 2 * D * L * c3 / (c1**2 * T)
    return [z3_implies([defining, sp.Ge(T, 1)], sp.Le(F.eq31_rhs(step, c1, c2, L, D, T), explicit)),
            sympy_equal(explicit.subs(r, sp.sqrt(2 * D / (L * c2 * T))), F.eq33_rate(c1, c2, c3, L, D, T))]
