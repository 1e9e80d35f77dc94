"""eq. 11 against eq. 10: what dropping the global factor and adding eps changes.

With rho = (p-2)/(p-1) for p = 2 + k (k >= 0) and a = |g_i| > 0:
  1. at eps = 0, eq. 11 is eq. 10 divided by the global factor ||g||_q^rho;
  2. for eps > 0, eq. 11's coordinate is kappa_i times that direction, kappa_i = (a/(a+eps))^rho in
     (0, 1];
  3. so the angle between eq. 11 and the lp direction is bounded (Kantorovich): with kappa_i in [m,
     M], cos >= 2 sqrt(mM)/(m+M); it is 0 only when coordinates sit far below eps;
  4. eq. 10 is 1-homogeneous in g, eq. 11 (eps -> 0) is (1-rho)-homogeneous: the dropped factor is
     not a constant, so "absorbing it into the learning rate" changes the method (see the findings).
"""

import sympy as sp

from lpcheck import formulas as F
from lpcheck.verify import control, obligation
from lpcheck.verify.engines import sympy_equal, sympy_nonneg, z3_implies

from ._descent import both

k = sp.Symbol("k", nonnegative=True)  # p = 2 + k
p = 2 + k
rho = F.eq20_rho(p)
eta, eps, a, b = sp.symbols("eta epsilon a b", positive=True)
N = sp.Symbol("N", positive=True)  # ||g||_q
kappa = (a / (a + eps)) ** rho
direction = a ** (1 - rho)  # |eq. 10| / (eta ||g||_q^rho)


@obligation(
    "eq11.eps_zero",
    "at eps = 0, eq. 11 = eq. 10 / ||g||_q^rho: only the global factor is dropped (both signs)",
    "10, 11",
)
def eps_zero():
    with sp.evaluate(False):  # eps = 0 substituted unevaluated: the engine's simplification decides
        at_zero = F.eq11_step(a, p, sp.Integer(0), eta), F.eq11_step(-a, p, sp.Integer(0), eta)
    return [
        sympy_equal(at_zero[0], F.eq10_step(a, N, p, eta) / N**rho),
        sympy_equal(at_zero[1], F.eq10_step(-a, N, p, eta) / N**rho),
    ]


@obligation(
    "eq11.distortion",
    "for eps > 0, eq. 11 = kappa_i * (eq. 10 / ||g||_q^rho) with kappa_i = (|g_i|/(|g_i| + "
    "eps))^rho",
    "10, 11",
)
def distortion():
    return sympy_equal(F.eq11_step(a, p, eps, eta), kappa * F.eq10_step(a, N, p, eta) / N**rho)


@obligation(
    "eq11.distortion_range",
    "0 < kappa_i <= 1: log kappa_i = -rho log(1 + eps/|g_i|) <= 0 since rho >= 0 for p >= 2",
    "11, 20",
)
def distortion_range():
    t = sp.Symbol("t", positive=True)  # eps / a
    return [
        sympy_equal(sp.log(kappa.subs(eps, t * a)), -rho * sp.log(1 + t)),
        sympy_nonneg(rho * sp.log(1 + t)),
    ]


@obligation(
    "eq11.kantorovich_step",
    "with kappa_i in [m, M]: kappa_i^2 <= (m + M) kappa_i - m M, hence Z = sum kappa_i^2 y_i <= "
    "(m+M) X - m M Y for y_i = d_i^2 >= 0 (X = sum kappa_i y_i, Y = sum y_i; R^3)",
    "11",
)
def kantorovich_step():
    m, M, x = sp.symbols("m M kappa", positive=True)
    kap = sp.symbols("k1:4", positive=True)
    y = sp.symbols("y1:4", nonnegative=True)
    X = sp.Add(*[ki * yi for ki, yi in zip(kap, y)])
    Y = sp.Add(*y)
    Z = sp.Add(*[ki**2 * yi for ki, yi in zip(kap, y)])
    box = [c for ki in kap for c in (sp.Le(m, ki), sp.Le(ki, M))]
    u, v = sp.symbols("u v", nonnegative=True)  # kappa = m + u, M = kappa + v
    w = sp.Symbol("w", nonnegative=True)  # M = m + w
    t = sp.symbols("t1:4", nonnegative=True)  # kappa_i = m + w t_i/(1 + t_i), inside [m, M)
    inside = {ki: m + w * ti / (1 + ti) for ki, ti in zip(kap, t)}
    slack = ((m + M) * X - m * M * Y - Z).subs(inside).subs(M, m + w)
    certificate = sp.Add(*[yi * (w * ti / (1 + ti)) * (w / (1 + ti)) for yi, ti in zip(y, t)])
    return [
        z3_implies([sp.Le(m, x), sp.Le(x, M)], sp.Le(x**2, (m + M) * x - m * M)),
        sympy_nonneg(
            ((m + M) * x - m * M - x**2).subs(M, x + v).subs(x, m + u),
            certificate=u * v,
            where="kappa = m + u, M = kappa + v",
        ),
        z3_implies(box, sp.Le(Z, (m + M) * X - m * M * Y)),
        sympy_nonneg(
            slack, certificate=certificate, where="M = m + w, kappa_i = m + w t_i/(1 + t_i)"
        ),
    ]


@obligation(
    "eq11.angle_bound",
    "cos(eq. 11, eq. 10)^2 = X^2/(Z Y) >= 4 m M/(m + M)^2: the lp direction is kept up to an "
    "angle set by the spread [m, M] of kappa_i",
    "11",
)
def angle_bound():
    m, M = sp.symbols("m M", positive=True)
    X, Y, Z = sp.symbols("X Y Z", nonnegative=True)
    # (m+M)^2 X^2 - 4 m M Z Y = 4 m M Y [(m+M) X - m M Y - Z] + ((m+M) X - 2 m M Y)^2
    return both(
        [sp.Le(m, M), sp.Le(Z, (m + M) * X - m * M * Y)],
        sp.Le(4 * m * M * Z * Y, (m + M) ** 2 * X**2),
        [0, 4 * m * M * Y],
        residual=((m + M) * X - 2 * m * M * Y) ** 2,
    )


@obligation(
    "eq11.homogeneity",
    "eq. 10 is positively 1-homogeneous in g; eq. 11 at eps = 0 is (1 - rho) = 1/(p-1)-homogeneous",
    "10, 11",
)
def homogeneity():
    c = sp.Symbol("c", positive=True)
    return [
        sympy_equal(F.eq10_step(c * a, c * N, p, eta), c * F.eq10_step(a, N, p, eta)),
        sympy_equal(F.eq11_step(c * a, p, 0, eta), c ** (1 - rho) * F.eq11_step(a, p, 0, eta)),
        sympy_equal(1 - rho, 1 / (p - 1)),
    ]


@control(
    "control.eq11.same_direction",
    "for eps > 0 eq. 11 points exactly along eq. 10 (kappa_i the same for all coordinates)",
    "11",
)
def same_direction():
    return sympy_equal(kappa, kappa.subs(a, b))


@control(
    "control.eq11.kantorovich_without_4",
    "cos^2 >= m M/(m + M)^2 * 8 (the constant 4 doubled)",
    "11",
)
def kantorovich_doubled():
    m, M = sp.symbols("m M", positive=True)
    X, Y, Z = sp.symbols("X Y Z", nonnegative=True)
    return z3_implies(
        [sp.Le(m, M), sp.Le(Z, (m + M) * X - m * M * Y)],
        sp.Le(8 * m * M * Z * Y, (m + M) ** 2 * X**2),
    )
