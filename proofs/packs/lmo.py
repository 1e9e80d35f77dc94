"""Linear minimization oracles: the norm facts every LMO method (Scion, uSCG, the clipped step)
rests on.

For a norm ||.|| with dual norm ||d||_* = max_{||s|| <= 1} <d, s>, the oracle over the ball of
radius rho is

    lmo(d) = argmin_{||s|| <= rho} <d, s>,
    so  <d, lmo(d)> = -rho ||d||_*  and  ||lmo(d)|| <= rho,

(Pethick et al. 2025, "Training deep learning models with norm-constrained LMOs", Table 1) with, in
closed form,

    l2 ball         lmo(d) = -rho d/||d||_2          dual norm ||.||_2
    l-inf ball      lmo(d) = -rho sign(d)            dual norm ||.||_1
    spectral ball   lmo(D) = -rho U V^T              dual norm ||.||_nuc,
                                                     D = U diag(sigma) V^T (reduced SVD)

Each closed form is proved to attain -rho ||d||_* within the ball, the optimality (no feasible s
does better) is proved for l2 (Cauchy-Schwarz, both engines) and l-inf (per coordinate, both
engines), and the reference implementation `lmo` below, and lpcheck.methods.norms' oracles (the
method layer's), are checked numerically against the definition for all three (the spectral
optimality, von Neumann's trace inequality, numerically only). The momentum inequality <g, lmo(m)>
<= -rho ||g||_* + 2 rho ||g - m||_* is what the stochastic analyses use."""

import math

import numpy as np
import sympy as sp
from hypothesis import strategies as st

from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall, sympy_equal

from .. import descent_template as DT

rho = sp.Symbol("rho", positive=True)
NORMS = ("l2", "linf", "spectral")


# --- the closed forms (symbolic), looked up when a check runs -------------------------------------


def lmo_l2(d, radius):
    """-rho d/||d||_2, coordinate by coordinate."""
    n = sp.sqrt(sp.Add(*[x**2 for x in d]))
    return [-radius * x / n for x in d]


def lmo_sign(d_i, radius):
    """-rho sign(d_i): one coordinate of the l-inf ball's oracle."""
    return -radius * sp.sign(d_i)


def lmo_spectral(U, V, radius):
    """-rho U V^T from the SVD D = U diag(sigma) V^T."""
    return -radius * U * V.T


# --- the reference implementation (numeric) -------------------------------------------------------


def lmo(d, norm, radius=1.0):
    """argmin_{||s|| <= radius} <d, s> for norm 'l2', 'linf' (vectors or arrays, entrywise) or
    'spectral' (2-D). At d = 0 every feasible s is a minimizer and 0 is returned (l2, linf)."""
    d = np.asarray(d, dtype=float)
    if norm == "l2":
        n = np.linalg.norm(d)
        return -radius * d / n if n > 0 else np.zeros_like(d)
    if norm == "linf":
        return -radius * np.sign(d)
    if norm == "spectral":
        if d.ndim != 2:
            raise ValueError(f"the spectral lmo needs a matrix, got shape {d.shape}")
        U, _, Vt = np.linalg.svd(d, full_matrices=False)
        return -radius * U @ Vt
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def primal_norm(x, norm):
    return {
        "l2": lambda: np.linalg.norm(x),
        "linf": lambda: np.max(np.abs(x), initial=0.0),
        "spectral": lambda: np.linalg.norm(x, 2),
    }[norm]()


def dual_norm(x, norm):
    return {
        "l2": lambda: np.linalg.norm(x),
        "linf": lambda: np.sum(np.abs(x)),
        "spectral": lambda: np.linalg.norm(x, "nuc"),
    }[norm]()


def _draw(rng, norm, shape, scale, zeros):
    d = rng.standard_normal(shape) * scale
    if zeros:
        d[rng.random(shape) < 0.3] = 0.0  # exact zeros: sign(0), rank deficiency
    return d


def _feasible(rng, norm, like, radius, k=12):
    """Points of the ball ||s|| <= radius: on its boundary and inside."""
    for j in range(k):
        w = rng.standard_normal(like.shape)
        if norm == "linf":
            w = np.sign(w) if j % 2 == 0 else np.clip(w, -1, 1)
            n = 1.0
        else:
            n = primal_norm(w, norm)
        yield radius * w / n * (1.0 if j % 3 else rng.random())


def check_lmo(impl, norm):
    """`impl(d, norm, radius)` against the definition: feasible, <d, lmo(d)> = -radius ||d||_*, and
    no feasible point has a smaller <d, s> (tolerance 1e-12 relative to radius ||d||_*)."""

    def prop(seed, rows, cols, scale, radius, zeros):
        rng = np.random.default_rng(seed)
        shape = (rows, cols) if norm == "spectral" else (rows * cols,)
        d = _draw(rng, norm, shape, scale, zeros)
        s = np.asarray(impl(d, norm, radius), dtype=float)
        if s.shape != d.shape or not np.all(np.isfinite(s)):
            return False
        value, target = float(np.sum(d * s)), -radius * dual_norm(d, norm)
        tol = 1e-12 * radius * dual_norm(d, norm) + 1e-300
        return (
            primal_norm(s, norm) <= radius * (1 + 1e-12)
            and abs(value - target) <= tol
            and all(float(np.sum(d * x)) >= value - tol for x in _feasible(rng, norm, d, radius))
        )

    return numeric_forall(
        prop,
        {
            "seed": st.integers(0, 2**31 - 1),
            "rows": st.integers(1, 5),
            "cols": st.integers(1, 5),
            "scale": st.sampled_from([1e-6, 1.0, 1e4]),
            "radius": st.sampled_from([0.1, 1.0, 50.0]),
            "zeros": st.booleans(),
        },
        statement=(
            f"the {norm} lmo is feasible (||lmo(d)|| <= radius), attains <d, lmo(d)> = -radius "
            "||d||_*, and no point of the ball (12 drawn, boundary and inside) does better"
        ),
        tolerance="1e-12 relative to radius ||d||_*",
        max_examples=60,
    )


# --- l2 -------------------------------------------------------------------------------------------

d3 = sp.symbols("d1:4", real=True)
s3 = sp.symbols("s1:4", real=True)


@obligation(
    "lmo.l2_pairing",
    "the l2 oracle -rho d/||d||_2 attains <d, lmo(d)> = -rho ||d||_2 and has ||lmo(d)||_2 = "
    "rho (d in R^3, d != 0)",
)
def l2_pairing():
    s = lmo_l2(d3, rho)
    norm = sp.sqrt(sp.Add(*[x**2 for x in d3]))
    return [
        sympy_equal(sp.Add(*[a * b for a, b in zip(d3, s)]), -rho * norm),
        sympy_equal(sp.Add(*[x**2 for x in s]), rho**2),
    ]


@obligation(
    "lmo.l2_optimal",
    "no s with ||s||_2 <= rho does better: <d, s> >= -rho ||d||_2 (Cauchy-Schwarz; d, s in "
    "R^3, N = ||d||_2 > 0 by its defining equation)",
)
def l2_optimal():
    N = sp.Symbol("N", positive=True)
    inner, ss, dd = (
        sp.Add(*[a * b for a, b in zip(d3, s3)]),
        sp.Add(*[x**2 for x in s3]),
        sp.Add(*[x**2 for x in d3]),
    )
    square = sp.Add(*[(N * s + rho * d) ** 2 for s, d in zip(s3, d3)])  # ||N s + rho d||^2 >= 0
    return DT.both_engines(
        [sp.Le(ss, rho**2), sp.Eq(N**2, dd)],
        sp.Ge(inner, -rho * N),
        [N / (2 * rho), -rho / (2 * N)],
        residual=square / (2 * N * rho),
    )


# --- l-inf ----------------------------------------------------------------------------------------


@obligation(
    "lmo.sign_pairing",
    "the l-inf oracle -rho sign(d) attains <d, lmo(d)> = -rho ||d||_1, and each coordinate "
    "has |lmo(d)_i| = rho where d_i != 0, 0 where d_i = 0 (so ||lmo(d)||_inf <= rho)",
)
def sign_pairing():
    a = sp.Symbol("a", positive=True)
    inner = sp.Add(*[x * lmo_sign(x, rho) for x in d3])
    with sp.evaluate(
        False
    ):  # |lmo(d)_i| at d_i = a > 0, -a, 0 as written, for the engine to evaluate
        cases = [
            sp.Abs(lmo_sign(a, rho)),
            sp.Abs(lmo_sign(-a, rho)),
            sp.Abs(lmo_sign(sp.Integer(0), rho)),
        ]
    return [
        sympy_equal(inner, -rho * sp.Add(*[sp.Abs(x) for x in d3])),
        *[sympy_equal(e, v) for e, v in zip(cases, (rho, rho, 0))],
    ]


@obligation(
    "lmo.sign_optimal",
    "no s with ||s||_inf <= rho does better: per coordinate, for both signs of d_i = +-a "
    "(a >= 0), -rho <= s_i <= rho gives d_i s_i >= -rho |d_i|; summed, <d, s> >= -rho ||d||_1",
)
def sign_optimal():
    a, s = sp.Symbol("a", nonnegative=True), sp.Symbol("s_i", real=True)
    hyps = [sp.Ge(s, -rho), sp.Le(s, rho)]
    return [
        *DT.both_engines(hyps, sp.Ge(a * s, -rho * a), [a, 0], where="d_i = a >= 0"),
        *DT.both_engines(hyps, sp.Ge(-a * s, -rho * a), [0, a], where="d_i = -a <= 0"),
    ]


# --- spectral -------------------------------------------------------------------------------------


def _rotation(angle):
    return sp.Matrix([[sp.cos(angle), -sp.sin(angle)], [sp.sin(angle), sp.cos(angle)]])


@obligation(
    "lmo.spectral_pairing",
    "the spectral oracle -rho U V^T of D = U diag(sigma1, sigma2) V^T attains <D, lmo(D)> = -rho "
    "(sigma1 + sigma2) = -rho ||D||_nuc and (U V^T)^T (U V^T) = I, so ||lmo(D)||_2 = rho (every "
    "real 2x2 D: U a rotation, V a rotation or a reflection, sigma >= 0)",
)
def spectral_pairing():
    th, ph = sp.symbols("theta phi", real=True)
    s1, s2 = sp.symbols("sigma1 sigma2", nonnegative=True)
    checks = []
    for flip in (1, -1):
        U, V = _rotation(th), _rotation(ph) * sp.diag(1, flip)
        D, S = U * sp.diag(s1, s2) * V.T, lmo_spectral(U, V, rho)
        checks.append(
            sympy_equal(
                sp.Add(*[D[i, j] * S[i, j] for i in range(2) for j in range(2)]), -rho * (s1 + s2)
            )
        )
        checks += [sympy_equal(e, t) for e, t in zip(S.T * S, rho**2 * sp.eye(2))][
            :2
        ]  # (the other two by symmetry)
    return checks


# --- the reference implementation -----------------------------------------------------------------


@obligation(
    "lmo.conformance_l2",
    "the reference lmo(d, 'l2', rho) is the l2 oracle: feasible, attains -rho ||d||_2, "
    "and no drawn point of the ball does better",
    kind="conformance",
)
def conformance_l2():
    return check_lmo(lambda *a: lmo(*a), "l2")


@obligation(
    "lmo.conformance_sign",
    "the reference lmo(d, 'linf', rho) is the l-inf oracle: feasible, attains -rho "
    "||d||_1, and no drawn point of the ball does better (exact zeros included)",
    kind="conformance",
)
def conformance_sign():
    return check_lmo(lambda *a: lmo(*a), "linf")


@obligation(
    "lmo.conformance_spectral",
    "the reference lmo(D, 'spectral', rho) (SVD) is the spectral oracle on 1x1 to 5x5 matrices: "
    "feasible, attains -rho ||D||_nuc, and no drawn matrix of the ball does better (von Neumann's "
    "trace inequality, numerically; rank-deficient D included)",
    kind="conformance",
)
def conformance_spectral():
    return check_lmo(lambda *a: lmo(*a), "spectral")


def methods_lmo(d, norm, radius=1.0):
    """lpcheck.methods.norms' oracle (the method layer's, which Scion and the clipped step use) for
    `norm`: Lp(2), Lp(inf), or Layerwise's spectral block (SVD) with the given radius."""
    import torch

    from lpcheck.methods.norms import Layerwise, Lp

    t = torch.from_numpy(np.asarray(d, dtype=float))
    if norm == "spectral":
        return Layerwise(vector="l2", radius=radius, solver="svd").lmo([t])[0].numpy()
    return radius * Lp({"l2": 2.0, "linf": math.inf}[norm]).lmo([t])[0].numpy()


@obligation(
    "lmo.conformance_methods",
    "lpcheck.methods.norms' oracles (Lp(2), Lp(inf), Layerwise's spectral block by SVD) are the "
    "l2, l-inf and spectral oracles: feasible, attain -radius ||d||_*, and no drawn point of the "
    "ball does better",
    kind="conformance",
)
def conformance_methods():
    return [check_lmo(lambda *a: methods_lmo(*a), norm) for norm in NORMS]


# --- the momentum inequality ----------------------------------------------------------------------


@obligation(
    "lmo.momentum_inequality",
    "for any g, m: <g, lmo(m)> <= -rho ||g||_* + 2 rho ||g - m||_*. With s = lmo(m): <g, s> = <m, "
    "s> + <g - m, s> (linearity), <m, s> = -rho ||m||_* (the pairing), <g - m, s> <= ||g - m||_* "
    "||s|| <= rho ||g - m||_* (dual norm), ||g||_* <= ||m||_* + ||g - m||_* (triangle); "
    "numerically for l2, l-inf, spectral",
)
def momentum_inequality():
    P, Q = sp.symbols("P Q", real=True)  # <m, s>, <g - m, s>
    Ng, Nm, E = sp.symbols("Ng Nm E", nonnegative=True)  # ||g||_*, ||m||_*, ||g - m||_*
    gs, ms = sp.symbols("g1:4", real=True), sp.symbols("m1:4", real=True)
    split = sympy_equal(
        sp.Add(*[g * s for g, s in zip(gs, s3)]),
        sp.Add(*[m * s for m, s in zip(ms, s3)])
        + sp.Add(*[(g - m) * s for g, m, s in zip(gs, ms, s3)]),
    )
    hyps = [sp.Eq(P, -rho * Nm), sp.Le(Q, rho * E), sp.Le(Ng, Nm + E)]
    return [
        split,
        *DT.both_engines(hyps, sp.Le(P + Q, -rho * Ng + 2 * rho * E), [1, 1, rho]),
        check_momentum_inequality(lambda *a: lmo(*a)),
    ]


def check_momentum_inequality(impl, factor=2):
    def prop(seed, norm, scale):
        rng = np.random.default_rng(seed)
        shape = (3, 2) if norm == "spectral" else (5,)
        g, m = (
            rng.standard_normal(shape) * scale,
            rng.standard_normal(shape) * scale * rng.choice([0.1, 1.0, 10.0]),
        )
        lhs = float(np.sum(g * impl(m, norm, 1.0)))
        rhs = -dual_norm(g, norm) + factor * dual_norm(g - m, norm)
        return lhs <= rhs + 1e-12 * (abs(lhs) + abs(rhs))

    return numeric_forall(
        prop,
        {
            "seed": st.integers(0, 2**31 - 1),
            "norm": st.sampled_from(NORMS),
            "scale": st.sampled_from([1e-3, 1.0, 1e3]),
        },
        statement=(
            f"<g, lmo(m)> <= -||g||_* + {factor} ||g - m||_* (radius 1) for the l2, l-inf and "
            "spectral oracles"
        ),
        tolerance="1e-12 relative",
        max_examples=60,
    )


# --- negative controls ----------------------------------------------------------------------------


@control(
    "control.lmo.argmax",
    "the oracle without its minus sign (+rho d/||d||_2, the argmax) conforms to the l2 definition",
)
def argmax():
    return check_lmo(lambda d, norm, radius: -lmo(d, norm, radius), "l2")


@control(
    "control.lmo.spectral_frobenius",
    "the normalized gradient -rho D/||D||_F (the l2 oracle applied to a matrix) "
    "conforms to the spectral definition",
)
def spectral_frobenius():
    return check_lmo(lambda d, norm, radius: lmo(d, "l2", radius), "spectral")


@control("control.lmo.l2_for_linf", "the l2 oracle serves the l-inf ball (attains -rho ||d||_1)")
def l2_for_linf():
    return check_lmo(lambda d, norm, radius: lmo(d, "l2", radius), "linf")


@control(
    "control.lmo.momentum_factor_one",
    "<g, lmo(m)> <= -rho ||g||_* + rho ||g - m||_* (the factor 2 dropped)",
)
def momentum_factor_one():
    P, Q = sp.symbols("P Q", real=True)
    Ng, Nm, E = sp.symbols("Ng Nm E", nonnegative=True)
    hyps = [sp.Eq(P, -rho * Nm), sp.Le(Q, rho * E), sp.Le(Ng, Nm + E)]
    return [
        *DT.both_engines(hyps, sp.Le(P + Q, -rho * Ng + rho * E), [1, 1, rho]),
        check_momentum_inequality(lambda *a: lmo(*a), factor=1),
    ]
