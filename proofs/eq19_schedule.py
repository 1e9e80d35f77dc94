"""eq. 19-20: the cosine schedule of p and the exponent rho.

For S > 1 epochs, s in [1, S], t = (s-1)/(S-1) in [0, 1] and p_max = 2 + k (k >= 0): p_1 = p_max,
p_S = 2, 2 <= p_s <= p_max, p_s non-increasing; rho(p) in [0, 1), increasing, rho(2) = 0 (SGD) and
rho -> 1 as p -> inf. S = 1 is outside eq. 19's domain (0/0; see the findings)."""

import sympy as sp

from lpcheck import formulas as F
from lpcheck.verify import control, obligation
from lpcheck.verify.engines import (
    sympy_bounded_below,
    sympy_equal,
    sympy_limit,
    sympy_nonneg,
    z3_implies,
)

s_ = sp.Symbol("s", positive=True)
S_ = 1 + sp.Symbol("sigma", positive=True)  # S > 1 epochs (S = 1 is 0/0, a finding)
k = sp.Symbol("k", nonnegative=True)
p_max = 2 + k
t = sp.Symbol("t", real=True)
unit = sp.Interval(0, 1)


def p_of_t(tt):
    """eq. 19 with s = 1 + (S-1) t."""
    return F.eq19_p(1 + (S_ - 1) * tt, S_, p_max)


@obligation("eq19.endpoints", "p_1 = p_max and p_S = 2", "19")
def endpoints():
    with sp.evaluate(
        False
    ):  # s = 1 and s = S substituted unevaluated: the engine decides, not the constructor
        first, last = F.eq19_p(sp.Integer(1), S_, p_max), F.eq19_p(S_, S_, p_max)
    return [sympy_equal(first, p_max), sympy_equal(last, 2)]


@obligation(
    "eq19.range",
    "2 <= p_s <= p_max for s in [1, S]: p_s - 2 = (p_max-2)(1 + cos pi t)/2 and "
    "p_max - p_s = (p_max-2)(1 - cos pi t)/2, with cos pi t in [-1, 1]",
    "19",
)
def in_range():
    return [
        sympy_equal(p_of_t(t) - 2, k * (1 + sp.cos(sp.pi * t)) / 2),
        sympy_equal(p_max - p_of_t(t), k * (1 - sp.cos(sp.pi * t)) / 2),
        sympy_bounded_below(1 + sp.cos(sp.pi * t), t, unit),
        sympy_bounded_below(1 - sp.cos(sp.pi * t), t, unit),
    ]


@obligation(
    "eq19.monotone",
    "p_s is non-increasing in s: dp/ds = -(p_max-2) pi sin(pi t) / (2(S-1)) <= 0 on [1, S]",
    "19",
)
def monotone():
    deriv = sp.diff(F.eq19_p(s_, S_, p_max), s_).subs(s_, 1 + (S_ - 1) * t)
    return [
        sympy_equal(deriv, -k * sp.pi * sp.sin(sp.pi * t) / (2 * (S_ - 1))),
        sympy_bounded_below(sp.sin(sp.pi * t), t, unit),
    ]


@obligation("eq19.constant_at_2", "p_max = 2 gives p_s = 2 for every s: LPSGD is then SGD", "19")
def constant_at_2():
    with sp.evaluate(
        False
    ):  # p_max = 2 substituted unevaluated: the engine decides, not the constructor
        p_s = F.eq19_p(s_, S_, sp.Integer(2))
    return sympy_equal(p_s, 2)


@obligation("eq20.range", "rho = (p-2)/(p-1) lies in [0, 1) for p >= 2", "20")
def rho_range():
    r = sp.Symbol("r", nonnegative=True)
    pp = sp.Symbol("p", positive=True)
    rho = F.eq20_rho(2 + r)
    return [
        sympy_nonneg(rho, where="p = 2 + r"),
        sympy_nonneg(1 - rho, strict=True, where="p = 2 + r"),
        z3_implies([sp.Ge(pp, 2)], sp.And(sp.Ge(F.eq20_rho(pp), 0), sp.Lt(F.eq20_rho(pp), 1))),
    ]


@obligation("eq20.increasing", "rho is increasing in p: d rho/dp = 1/(p-1)^2 > 0", "20")
def rho_increasing():
    pp = sp.Symbol("p", positive=True)
    return [
        sympy_equal(sp.diff(F.eq20_rho(pp), pp), 1 / (pp - 1) ** 2),
        sympy_nonneg(1 / (1 + sp.Symbol("r", positive=True)) ** 2, strict=True, where="p = 2 + r"),
    ]


@obligation(
    "eq20.endpoints",
    "rho(2) = 0, so u = g (eq. 21 is SGD's step), and rho -> 1 as p -> inf",
    "20, 21",
)
def rho_endpoints():
    g, eps, pp = (
        sp.Symbol("g", real=True),
        sp.Symbol("epsilon", positive=True),
        sp.Symbol("p", positive=True),
    )
    return [
        sympy_equal(F.eq20_rho(2), 0),
        sympy_equal(F.eq21_u(g, 2, eps), g),
        sympy_limit(F.eq20_rho(pp), pp, sp.oo, 1),
    ]


@control("control.eq19.sine", "with sin in place of cos, eq. 19 still starts at p_max", "19")
def sine_start():
    wrong = 2 + (p_max - 2) * (1 + sp.sin(sp.pi * (s_ - 1) / (S_ - 1))) / 2
    return sympy_equal(wrong.subs(s_, 1), p_max)


@control(
    "control.eq19.epoch_from_0",
    "counting epochs from 0 (s in place of s - 1), eq. 19 still ends at 2",
    "19",
)
def epoch_from_zero():
    wrong = 2 + (p_max - 2) * (1 + sp.cos(sp.pi * s_ / (S_ - 1))) / 2
    return sympy_equal(wrong.subs(s_, S_), 2)
