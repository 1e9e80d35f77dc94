"""Smoothness to a descent inequality, by integrating along the segment (shared by the scion and
l0l1 packs).

For y = x + h, H = ||h||, g = grad f(x) and I_s = <grad f(x + s h) - g, h>, the fundamental theorem
of calculus along the segment gives f(y) = f(x) + <g, h> + int_0^1 I_s ds. If ||grad f(x + s h) -
g||_* <= K s H for s in [0, 1] (L-smoothness: K = L; (L0, L1)-smoothness within the radius 1/L1: K =
L0 + L1 ||g||_*), then:

  pointwise   I_s <= ||grad f(x + s h) - g||_* H <= K s H^2      (the dual-norm inequality, then
                                                                  the assumption)
  integral    int_0^1 K s H^2 ds = K H^2/2
  together    f(y) <= f(x) + <g, h> + K H^2/2                     (monotonicity of the integral)
"""

import sympy as sp

from lpcheck.verify.engines import sympy_equal

from .. import descent_template as DT

s = sp.Symbol("s", nonnegative=True)  # the point x + s h of the segment
H = sp.Symbol("H", nonnegative=True)  # ||y - x||
D = sp.Symbol("D_s", nonnegative=True)  # ||grad f(x + s h) - grad f(x)||_*
I_s = sp.Symbol("I_s", real=True)  # <grad f(x + s h) - grad f(x), h>
J = sp.Symbol("J", real=True)  # int_0^1 I_s ds
F0, F1, P = sp.symbols("f_x f_y P", real=True)  # f(x), f(y), <grad f(x), y - x>


def pointwise(K):
    """I_s <= D_s H (dual norm) and D_s <= K s H (the assumption at x + s h), s in [0, 1]: I_s <= K
    s H^2."""
    hyps = [sp.Le(I_s, D * H), sp.Le(D, K * s * H), sp.Le(s, 1)]
    return DT.both_engines(hyps, sp.Le(I_s, K * s * H**2), [1, H, 0])


def integral(K):
    """int_0^1 K s H^2 ds = K H^2/2."""
    return sympy_equal(sp.Integral(K * s * H**2, (s, 0, 1)), K * H**2 / 2)


def together(K):
    """f(y) = f(x) + <g, h> + J (along the segment) and J <= K H^2/2 (the integral of the pointwise
    bound)."""
    hyps = [sp.Eq(F1, F0 + P + J), sp.Le(J, K * H**2 / 2)]
    return DT.both_engines(hyps, sp.Le(F1, F0 + P + K * H**2 / 2), [1, 1])


def descent_inequality(K):
    return [*pointwise(K), integral(K), *together(K)]
