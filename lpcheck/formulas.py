"""The paper's equations as sympy expressions, named by equation number.

This is the symbolic twin of `lp.py`, `schedule.py`, `optim.py` and `bounds.py`; the two never
import each other, and the proof gate (`lpcheck verify`) is what ties them: obligations in
`proofs/` prove properties of these expressions and check that the numeric code agrees with them.

Each function takes sympy expressions (or numbers) for its arguments, so a proof can substitute
symbols carrying the assumptions it needs (e.g. p = 1 + r with r > 0). Scalar functions act on
one coordinate; vector quantities are written per coordinate together with the sums they need.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

# a sympy expression or a plain number: every formula is written once for both (sympy ships no
# types)
Term = Any

__all__ = [
    "eq9_objective",
    "eq10_step",
    "eq10_step_magnitude",
    "eq11_step",
    "eq16_alpha",
    "eq19_p",
    "eq20_rho",
    "eq21_u",
    "eq22_theta",
    "eq23_m",
    "eq24_v",
    "eq25_theta",
    "dual_exponent",
    "lp_norm",
    "eq27_alignment",
    "eq28_second_moment",
    "eq29_rhs",
    "eq30_step_cap",
    "eq31_rhs",
    "eq32_step",
    "eq33_rate",
    "eq41_m_closed_form",
    "eq41_weight_sum",
    "eq42_theta",
    "eq43_alignment",
    "eq44_second_moment",
    "eq45_rhs",
    "eq46_rhs",
    "thm2_eta0",
    "eq47_step",
    "eq48_rate",
    "assumption1_rhs",
    "SYMBOLS",
]


def dual_exponent(p: Term) -> Term:
    """q with 1/p + 1/q = 1 (Section 3, Notations)."""
    return p / (p - 1)


def lp_norm(xs: list[Term], p: Term) -> Term:
    """||x||_p of an explicit vector (a list of expressions)."""
    return sp.Add(*[sp.Abs(x) ** p for x in xs]) ** (1 / sp.sympify(p))


def eq9_objective(g: Term, d: Term, p: Term, eta: Term) -> Term:
    """eq. 9 as a function of the displacement d = theta - theta_t: <eta g, d> + 1/2 ||d||_p^2."""
    return eta * sp.Add(*[gi * di for gi, di in zip(g, d)]) + lp_norm(d, p) ** 2 / 2


def eq10_step(g_i: Term, norm_q: Term, p: Term, eta: Term) -> Term:
    """eq. 10, coordinate i of theta_{t+1} - theta_t: -eta ||g||_q^((p-2)/(p-1))
    g_i / |g_i|^((p-2)/(p-1))."""
    r = (p - 2) / (p - 1)
    return -eta * norm_q**r * g_i / sp.Abs(g_i) ** r


def eq10_step_magnitude(abs_g_i: Term, norm_q: Term, p: Term, eta: Term) -> Term:
    """|eq. 10| for a coordinate with |g_i| > 0: eta ||g||_q^rho |g_i|^(1 - rho)."""
    r = (p - 2) / (p - 1)
    return eta * norm_q**r * abs_g_i ** (1 - r)


def eq11_step(g_i: Term, p: Term, eps: Term, eta: Term) -> Term:
    """eq. 11, coordinate i of theta_{t+1} - theta_t: -eta g_i / (|g_i| + eps)^((p-2)/(p-1))."""
    return -eta * g_i / (sp.Abs(g_i) + eps) ** ((p - 2) / (p - 1))


def eq16_alpha(p: Term) -> Term:
    """eq. 16: the power law |d_i| ~ |grad_i f|^alpha with alpha = 1/(p-1)."""
    return 1 / (p - 1)


def eq19_p(s: Term, S: Term, p_max: Term) -> Term:
    """eq. 19: p_s = 2 + (p_max - 2) (1 + cos(pi (s-1)/(S-1))) / 2."""
    return 2 + (p_max - 2) * (1 + sp.cos(sp.pi * (s - 1) / (S - 1))) / 2


def eq20_rho(p: Term) -> Term:
    """eq. 20: rho = (p - 2)/(p - 1)."""
    return (p - 2) / (p - 1)


def eq21_u(g: Term, p: Term, eps: Term) -> Term:
    """eq. 21 (one coordinate): u = g / (|g| + eps)^rho."""
    return g / (sp.Abs(g) + eps) ** eq20_rho(p)


def eq22_theta(theta: Term, eta: Term, u: Term) -> Term:
    """eq. 22: theta_{t+1} = theta_t - eta u_t."""
    return theta - eta * u


def eq23_m(m_prev: Term, g: Term, beta: Term) -> Term:
    """eq. 23: m_t = beta m_{t-1} + (1 - beta) g_t."""
    return beta * m_prev + (1 - beta) * g


def eq24_v(m: Term, p: Term, eps: Term) -> Term:
    """eq. 24 (one coordinate): v_t = m_t / (|m_t| + eps)^rho."""
    return m / (sp.Abs(m) + eps) ** eq20_rho(p)


def eq25_theta(theta: Term, eta: Term, lam: Term, v: Term) -> Term:
    """eq. 25: theta_{t+1} = (1 - eta lambda) theta_t - eta v_t."""
    return (1 - eta * lam) * theta - eta * v


def assumption1_rhs(f_x: Term, inner: Term, norm_p_sq: Term, L: Term) -> Term:
    """eq. 4's right side with <grad f(x), y - x> = inner and ||y - x||_p^2 = norm_p_sq."""
    return f_x + inner + L / 2 * norm_p_sq


def eq27_alignment(A: Term, G: Term, c1: Term) -> Term:
    """eq. 27 with A = E[<grad f, u> | theta] and G = ||grad f||_2^2: A >= c1 G."""
    return sp.Ge(A, c1 * G)


def eq28_second_moment(M: Term, G: Term, c2: Term, c3: Term) -> Term:
    """eq. 28 with M = E[||u||_p^2 | theta]: M <= c2 + c3 G."""
    return sp.Le(M, c2 + c3 * G)


def eq29_rhs(f_t: Term, eta: Term, inner: Term, norm_p_sq: Term, L: Term) -> Term:
    """eq. 29's right side: f(theta_t) - eta <grad f, u_t> + L eta^2 / 2 ||u_t||_p^2."""
    return f_t - eta * inner + L * eta**2 / 2 * norm_p_sq


def eq30_step_cap(c1: Term, L: Term, c3: Term) -> Term:
    """eq. 30: the step-size condition 0 < eta <= c1 / (L c3)."""
    return c1 / (L * c3)


def eq31_rhs(eta: Term, c1: Term, c2: Term, L: Term, delta: Term, T: Term) -> Term:
    """eq. 31 (= eq. 40): 2 (f(theta_0) - f*) / (eta c1 T) + L eta c2 / c1, with
    delta = f(theta_0) - f*."""
    return 2 * delta / (eta * c1 * T) + L * eta * c2 / c1


def eq32_step(c1: Term, c2: Term, c3: Term, L: Term, delta: Term, T: Term) -> Term:
    """eq. 32: eta = min{c1/(L c3), sqrt(2 (f(theta_0) - f*) / (L c2 T))}."""
    return sp.Min(eq30_step_cap(c1, L, c3), sp.sqrt(2 * delta / (L * c2 * T)))


def eq33_rate(c1: Term, c2: Term, c3: Term, L: Term, delta: Term, T: Term) -> Term:
    """eq. 33 made explicit: eq. 31 at eq. 32's step is at most
    (2/c1) sqrt(2 delta L c2 / T) + 2 delta L c3 / (c1^2 T) = O(T^-1/2)."""
    return 2 / c1 * sp.sqrt(2 * delta * L * c2 / T) + 2 * delta * L * c3 / (c1**2 * T)


def eq41_m_closed_form(g: Term, beta: Term, t: Term, k: Term) -> Term:
    """eq. 41 (= eq. 23) unrolled from m_{-1} = 0: m_t = sum_{k=0}^{t} (1 - beta) beta^(t-k) g_k,
    with g an IndexedBase (one coordinate) and k the summation index."""
    return sp.Sum((1 - beta) * beta ** (t - k) * g[k], (k, 0, t))


def eq41_weight_sum(beta: Term, t: Term) -> Term:
    """The weights of eq. 41's closed form sum to 1 - beta^(t+1) (< 1: m_{-1} = 0 biases m_t towards
    0)."""
    return 1 - beta ** (t + 1)


def eq42_theta(theta: Term, eta: Term, v: Term) -> Term:
    """eq. 42: theta_{t+1} = theta_t - eta v_t (Algorithm 2 without weight decay: eq. 25 at
    lambda = 0)."""
    return theta - eta * v


# Theorem 2 (Section 5.2) states Assumption 6 and Lemma 2 in Theorem 1's form with c~1..c~3, v_t and
# the filtration F_t: eq. 43-46 are eq. 27-29, 31 with c -> c~ and u -> v (the conditioning is the
# proofs').
eq43_alignment = eq27_alignment
eq44_second_moment = eq28_second_moment
eq45_rhs = eq29_rhs
eq46_rhs = eq31_rhs


def thm2_eta0(c1t: Term, L: Term, c3t: Term) -> Term:
    """Theorem 2's 'one admissible choice' eta_0 = c~1 / (L c~3) (eq. 30's cap with Assumption 6's
    constants)."""
    return c1t / (L * c3t)


def eq47_step(eta0: Term, c2t: Term, L: Term, delta: Term, T: Term) -> Term:
    """eq. 47: eta = min{eta_0, sqrt(2 (f(theta_0) - f*) / (L c~2 T))}."""
    return sp.Min(eta0, sp.sqrt(2 * delta / (L * c2t * T)))


def eq48_rate(c1t: Term, c2t: Term, c3t: Term, L: Term, delta: Term, T: Term) -> Term:
    """eq. 48 made explicit at eta_0 = c~1/(L c~3): eq. 46 at eq. 47's step is at most (2/c~1)
    sqrt(2 delta L c~2 / T) + 2 delta L c~3 / (c~1^2 T) = O(T^-1/2) (eq. 33 with c -> c~)."""
    return eq33_rate(c1t, c2t, c3t, L, delta, T)


def _symbols() -> dict[str, Any]:
    pos = dict(positive=True)
    return {
        "p": sp.Symbol("p", **pos),
        "eps": sp.Symbol("epsilon", **pos),
        "eta": sp.Symbol("eta", **pos),
        "beta": sp.Symbol("beta", nonnegative=True),
        "lam": sp.Symbol("lambda", nonnegative=True),
        "L": sp.Symbol("L", **pos),
        "c1": sp.Symbol("c1", **pos),
        "c2": sp.Symbol("c2", **pos),
        "c3": sp.Symbol("c3", **pos),
        "delta": sp.Symbol("Delta", nonnegative=True),
        "T": sp.Symbol("T", **pos),
        "G": sp.Symbol("G", nonnegative=True),
        "p_max": sp.Symbol("p_max", **pos),
        "s": sp.Symbol("s", **pos),
        "S": sp.Symbol("S", **pos),
    }


SYMBOLS = _symbols()
"""Canonical symbols with the paper's sign assumptions (eta, L, c1..c3 > 0; beta, lambda, Delta,
G >= 0)."""
