"""eq. 14-16: the power law of the lp rescale, and its limits.

Section 4.1 says: for 2 < p < inf, eq. 11 gives |d_i| ~ |grad_i f|^alpha with alpha = 1/(p-1) (eq.
16); alpha < 1 compresses the imbalance between coordinates; as p -> inf, alpha -> 0 and the update
approaches a sign step. With eps = 0 these hold exactly; with eps > 0 the local exponent is 1 - rho
|g|/(|g| + eps), which tends to 1 (linear, no compression) where |g| << eps (see the findings)."""

import sympy as sp

from lpcheck import formulas as F
from lpcheck.verify import control, obligation
from lpcheck.verify.engines import sympy_equal, sympy_limit, sympy_nonneg, z3_implies

r = sp.Symbol("r", positive=True)  # 2 < p = 2 + r
p = 2 + r
rho = F.eq20_rho(p)
alpha = F.eq16_alpha(p)
eta, eps = sp.symbols("eta epsilon", positive=True)
a, b = sp.symbols("a b", positive=True)  # |grad_i f|, |grad_j f|


@obligation(
    "eq16.alpha", "alpha = 1/(p-1) = 1 - rho: at eps = 0, |eq. 11| = eta |g_i|^alpha", "11, 16, 20"
)
def alpha_is_one_minus_rho():
    return [
        sympy_equal(alpha, 1 - rho),
        sympy_equal(sp.Abs(F.eq11_step(a, p, 0, eta)), eta * a**alpha),
    ]


@obligation(
    "eq16.ratio", "eq. 15 -> 16: |d_i|/|d_j| = (|grad_i f|/|grad_j f|)^alpha (at eps = 0)", "15, 16"
)
def ratio():
    return sympy_equal(F.eq11_step(a, p, 0, eta) / F.eq11_step(b, p, 0, eta), (a / b) ** alpha)


@obligation(
    "eq16.compression",
    "alpha < 1 exactly when p > 2, so the imbalance is compressed from linear to sublinear",
    "16",
)
def compression():
    pp = sp.Symbol("p", positive=True)
    return [
        sympy_nonneg(1 - alpha, strict=True, where="p = 2 + r"),
        z3_implies([sp.Gt(pp, 2)], sp.Lt(1 / (pp - 1), 1)),
        z3_implies([sp.Gt(pp, 1), sp.Lt(1 / (pp - 1), 1)], sp.Gt(pp, 2)),
    ]


@obligation(
    "eq16.sign_limit",
    "as p -> inf: alpha -> 0 and rho -> 1, so |eq. 11| -> eta |g|/(|g| + eps), a sign step as eps "
    "-> 0",
    "16, 20",
)
def sign_limit():
    pp = sp.Symbol("p", positive=True)
    return [
        sympy_limit(F.eq16_alpha(pp), pp, sp.oo, 0),
        sympy_limit(F.eq20_rho(pp), pp, sp.oo, 1),
        sympy_limit(F.eq11_step(a, pp, eps, eta), pp, sp.oo, -eta * a / (a + eps)),
        sympy_limit(-eta * a / (a + eps), eps, 0, -eta),
    ]


@obligation(
    "eq16.local_exponent",
    "with eps > 0 the local log-log slope of |u| in |g| is 1 - rho |g|/(|g| + eps): alpha only "
    "where |g| >> eps, 1 (linear) as |g|/eps -> 0",
    "16, 21",
)
def local_exponent():
    t = sp.Symbol("t", real=True)  # log |g|
    u = F.eq21_u(sp.exp(t), p, eps)
    slope = sp.diff(sp.log(u), t)
    return [
        sympy_equal(slope, 1 - rho * sp.exp(t) / (sp.exp(t) + eps)),
        sympy_limit(1 - rho * a / (a + eps), a, 0, 1),
        sympy_limit(1 - rho * a / (a + eps), a, sp.oo, alpha),
    ]


@control("control.eq16.alpha_is_rho", "the power law's exponent is rho = (p-2)/(p-1) itself", "16")
def alpha_is_rho():
    return sympy_equal(sp.Abs(F.eq11_step(a, p, 0, eta)), eta * a**rho)
