"""Obligations for a variant of LPSGD: keep eq. 10's global factor ||g||_q^rho (eq. 10 instead of
eq. 11).

This is what a user's --proofs module looks like:

    lpcheck verify --proofs examples/proofs            # the paper's claims and these
    lpcheck verify --proofs examples/proofs --no-builtin --only 'variant.*'

The variant's step is d = -eta ||g||_q^rho g/(|g| + eps)^rho. We check that at eps = 0 it is exactly
the lp steepest-descent step of eq. 10, that it then decreases any L-smooth f (in ||.||_p) by at
least eta ||g||_q^2 / 2 for eta <= 1/L, that an implementation built from lpcheck.lp computes it,
and that a wrong exponent is caught."""

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from lpcheck import formulas as F
from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall, sympy_equal, sympy_nonneg, z3_implies

r = sp.Symbol("r", positive=True)  # p = 1 + r
p = 1 + r
q = F.dual_exponent(p)
rho = F.eq20_rho(p)
eta, a, N, eps = sp.symbols("eta a N epsilon", positive=True)  # a = |g_i|, N = ||g||_q


def variant_step(g_i, norm_q, pp, lr, e):
    """The variant, one coordinate: -lr ||g||_q^rho g_i / (|g_i| + eps)^rho."""
    return -lr * norm_q ** F.eq20_rho(pp) * g_i / (sp.Abs(g_i) + e) ** F.eq20_rho(pp)


@obligation(
    "variant.is_eq10",
    "at eps = 0 the variant is eq. 10, the lp steepest-descent step (both signs of g_i)",
    "10",
    trivial_ok="by substitution: at eps = 0 the variant's formula is eq. 10 as formulas.py "
    "writes it",
)
def is_eq10():
    return [
        sympy_equal(variant_step(a, N, p, eta, 0), F.eq10_step(a, N, p, eta)),
        sympy_equal(variant_step(-a, N, p, eta, 0), F.eq10_step(-a, N, p, eta)),
    ]


@obligation(
    "variant.descent",
    "with <g, d> = -eta ||g||_q^2 and ||d||_p = eta ||g||_q (eq. 10), Assumption 1 gives f(theta "
    "+ d) <= f(theta) - eta (1 - L eta/2) ||g||_q^2 <= f(theta) - eta ||g||_q^2/2 for eta <= 1/L",
    "4, 10",
    uses=("A1",),
)
def descent():
    L, G = sp.Symbol("L", positive=True), sp.Symbol("G", nonnegative=True)  # G = ||g||_q^2
    f0, f1 = sp.symbols("f0 f1", real=True)
    s = sp.Symbol("s", nonnegative=True)  # eta = 1/(L (1 + s))
    one_step = f0 - eta * G + L / 2 * eta**2 * G  # eq. 4 with <g, d> = -eta G, ||d||^2 = eta^2 G
    return [
        z3_implies([sp.Le(f1, one_step), sp.Le(eta, 1 / L)], sp.Le(f1, f0 - eta * G / 2)),
        sympy_nonneg(
            (eta * G - L / 2 * eta**2 * G - eta * G / 2).subs(eta, 1 / (L * (1 + s))),
            where="eta = 1/(L (1 + s))",
        ),
    ]


def variant_numeric(g, p, lr, eps):
    """An implementation from lpcheck.lp: rescale (eq. 21) times the global factor ||g||_q^rho."""
    from lpcheck import lp

    return -lr * float(lp.lp_norm(g, lp.dual_exponent(p))) ** lp.rho(p) * lp.rescale(g, p, eps)


def check_variant(impl):
    import mpmath

    mpmath.mp.dps = 30
    gs, ns, ps, ls, es = sp.symbols("g n p l e")
    ref = sp.lambdify((gs, ns, ps, ls, es), variant_step(gs, ns, ps, ls, es), "mpmath")

    def prop(g, pp, lr):
        g = np.array(g)
        qq = mpmath.mpf(pp) / (mpmath.mpf(pp) - 1)
        nq = mpmath.fsum(abs(mpmath.mpf(x)) ** qq for x in g) ** (1 / qq)
        want = [ref(mpmath.mpf(x), nq, mpmath.mpf(pp), mpmath.mpf(lr), mpmath.mpf(1e-8)) for x in g]
        got = impl(g, pp, lr, 1e-8)
        return all(
            abs(float(x) - float(y)) <= 1e-12 * abs(float(y)) + 1e-300 for x, y in zip(got, want)
        )

    vec = st.lists(st.floats(-100, 100), min_size=1, max_size=5).filter(
        lambda v: any(x != 0 for x in v)
    )
    return numeric_forall(
        prop,
        {"g": vec, "pp": st.floats(2.0, 20.0), "lr": st.floats(1e-3, 1.0)},
        statement="the implementation equals the variant's formula",
        tolerance="1e-12 relative",
        max_examples=40,
    )


@obligation(
    "variant.conformance",
    "variant_numeric (built from lpcheck.lp) computes the variant's step",
    "10, 21",
    kind="conformance",
)
def conformance():
    return check_variant(variant_numeric)


@control(
    "control.variant.inverted_exponent",
    "an implementation with the global factor's exponent inverted conforms",
    "10",
)
def inverted():
    from lpcheck import lp

    def wrong(g, pp, lr, e):
        return (
            -lr * float(lp.lp_norm(g, lp.dual_exponent(pp))) ** (-lp.rho(pp)) * lp.rescale(g, pp, e)
        )

    return check_variant(wrong)
