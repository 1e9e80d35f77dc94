"""Conformance: lpcheck's numeric code computes what formulas.py states.

Each checker evaluates the sympy formula at 30 digits (mpmath) on hypothesis-generated float64
inputs and compares with lpcheck's float64 result at a stated tolerance. Implementations are looked
up when the check runs (so a patched `lpcheck.lp.rescale` is what gets checked). Every checker is
also run on a plausible mutant (wrong exponent, eps in the wrong place, torch's momentum convention,
epochs counted from 0, the primal norm ...), which must come back refuted: the checks have teeth.
"""

import math

import mpmath
import numpy as np
import sympy as sp
import torch  # noqa: F401  (imported once here, not in every forked worker)
from hypothesis import strategies as st

from lpcheck import formulas as F
from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall

# The code these checks exercise, by file and function (a class stands for its methods): what the
# gate says it checks, which experiments/mutation.py reads to call a planted bug in scope. Input
# validation is the tests' job.
CODE_CHECKED = {
    "lpcheck/lp.py": [
        "rho",
        "dual_exponent",
        "lp_norm",
        "rescale",
        "steepest_descent",
        "_scaled",
        "_norm_of_ratios",
        "_magnitude",
        "_amax",
        "_sum",
        "_where",
        "_sign",
    ],
    "lpcheck/schedule.py": ["cosine_p"],
    "lpcheck/optim.py": [
        "_hyper",
        "_ema_",
        "_decay_",
        "_rescale_factor_into",
        "_apply_",
        "_reference_step",
        "_LpOptimizer.step",
        "_LpOptimizer._update",
        "_LpOptimizer.set_epoch",
        "_LpOptimizer._buffers",
        "_LpOptimizer._ws",
        "_LpOptimizer._buckets",
    ],
    "lpcheck/bounds.py": [
        "step_cap",
        "theorem1_rhs",
        "balanced_step",
        "theorem1_step",
        "theorem1_bound",
        "rate_constant",
    ],
    "lpcheck/estimate/core.py": [
        "alignment",
        "alignment_samples",
        "_align",
        "_full",
        "_grads",
        "_vector",
    ],
    # the z3 engine's translation of sympy terms (every z3 proof rests on it)
    "lpcheck/verify/engines.py": ["_to_z3", "_z3_atom", "_z3_pow", "_z3_compound"],
}
mpmath.mp.dps = 30
_g, _p, _eps, _s, _S, _pm = sp.symbols("g p epsilon s S p_max")

EQ21 = sp.lambdify((_g, _p, _eps), F.eq21_u(_g, _p, _eps), "mpmath")
EQ20 = sp.lambdify(_p, F.eq20_rho(_p), "mpmath")
DUAL = sp.lambdify(_p, F.dual_exponent(_p), "mpmath")
EQ19 = sp.lambdify((_s, _S, _pm), F.eq19_p(_s, _S, _pm), "mpmath")


def close(got, want, rel, abs_=0.0):
    got, want = float(got), float(want)
    return math.isfinite(got) and abs(got - want) <= rel * abs(want) + abs_


# input strategies: mixed magnitudes, signs and zeros
_mag = st.one_of(st.just(0.0), st.floats(1e-12, 1e6), st.floats(-1e6, -1e-12))
vectors = st.lists(_mag, min_size=1, max_size=6)
nonzero_vectors = st.lists(
    st.one_of(st.floats(1e-6, 1e3), st.floats(-1e3, -1e-6)), min_size=1, max_size=6
)
p_method = st.one_of(st.floats(2.0, 60.0), st.sampled_from([2.0, 3.0, 6.0, 9.0]))
eps_values = st.sampled_from([1e-12, 1e-8, 1e-3, 1.0])


# --- lpcheck.lp ------------------------------------------------------------------------------


def check_rho(impl):
    return numeric_forall(
        lambda p: close(impl(p), EQ20(mpmath.mpf(p)), 1e-15),
        {"p": st.floats(2.0, 1e6)},
        statement="lp.rho(p) = eq. 20 (p-2)/(p-1)",
        tolerance="1e-15 relative",
    )


def check_dual(impl):
    return numeric_forall(
        lambda p: close(impl(p), DUAL(mpmath.mpf(p)), 1e-15),
        {"p": st.floats(1.0001, 1e6)},
        statement="lp.dual_exponent(p) = p/(p-1)",
        tolerance="1e-15 relative",
    )


def check_rescale(impl):
    def prop(g, p, eps):
        u = impl(np.array(g), p, eps)
        return all(
            close(ui, EQ21(mpmath.mpf(gi), mpmath.mpf(p), mpmath.mpf(eps)), 1e-14, 1e-300)
            for ui, gi in zip(u, g)
        )

    return numeric_forall(
        prop,
        {"g": vectors, "p": p_method, "eps": eps_values},
        statement="lp.rescale(g, p, eps) = eq. 21 g/(|g| + eps)^((p-2)/(p-1)), coordinate by "
        "coordinate",
        tolerance="1e-14 relative",
        max_examples=60,
    )


def _eq10_reference(g, p, lr):
    q = DUAL(mpmath.mpf(p))
    nq = mpmath.fsum(abs(mpmath.mpf(x)) ** q for x in g) ** (1 / q)
    return [
        EQ10(mpmath.mpf(x), nq, mpmath.mpf(p), mpmath.mpf(lr)) if x != 0 else mpmath.mpf(0)
        for x in g
    ]


def check_steepest_descent(impl):
    def prop(g, p, lr):
        d = impl(np.array(g), p, lr)
        return all(close(di, ri, 1e-12, 1e-300) for di, ri in zip(d, _eq10_reference(g, p, lr)))

    return numeric_forall(
        prop,
        {"g": nonzero_vectors, "p": st.floats(1.1, 50.0), "lr": st.floats(1e-3, 10.0)},
        statement="lp.steepest_descent(g, p, lr) = eq. 10 -lr ||g||_q^rho g_i/|g_i|^rho",
        tolerance="1e-12 relative",
        max_examples=40,
    )


def check_lp_norm(impl):
    def prop(x, p):
        want = mpmath.fsum(abs(mpmath.mpf(v)) ** p for v in x) ** (1 / mpmath.mpf(p))
        return close(impl(np.array(x), p), want, 1e-13, 1e-300)

    return numeric_forall(
        prop,
        {"x": vectors, "p": st.floats(1.0, 50.0)},
        statement="lp.lp_norm(x, p) = (sum |x_i|^p)^(1/p)",
        tolerance="1e-13 relative",
        max_examples=40,
    )


@obligation("conf.lp.rho", "lpcheck.lp.rho computes eq. 20", "20", kind="conformance")
def conf_rho():
    from lpcheck import lp

    return check_rho(lambda p: lp.rho(p))


@obligation(
    "conf.lp.dual_exponent",
    "lpcheck.lp.dual_exponent computes q = p/(p-1)",
    "Notation",
    kind="conformance",
)
def conf_dual():
    from lpcheck import lp

    return check_dual(lambda p: lp.dual_exponent(p))


@obligation(
    "conf.lp.lp_norm", "lpcheck.lp.lp_norm computes ||x||_p", "Notation", kind="conformance"
)
def conf_lp_norm():
    from lpcheck import lp

    return check_lp_norm(lambda x, p: lp.lp_norm(x, p))


@obligation("conf.lp.rescale", "lpcheck.lp.rescale computes eq. 21", "21", kind="conformance")
def conf_rescale():
    from lpcheck import lp

    return check_rescale(lambda g, p, eps: lp.rescale(g, p, eps))


@obligation(
    "conf.lp.steepest_descent",
    "lpcheck.lp.steepest_descent computes eq. 10",
    "10",
    kind="conformance",
)
def conf_steepest_descent():
    from lpcheck import lp

    return check_steepest_descent(lambda g, p, lr: lp.steepest_descent(g, p, lr))


@control(
    "control.conf.rescale_inverted_exponent",
    "a rescale with exponent (p-1)/(p-2) conforms to eq. 21",
    "21",
)
def rescale_inverted():
    return check_rescale(
        lambda g, p, eps: g / (np.abs(g) + eps) ** ((p - 1) / (p - 2)) if p != 2 else g
    )


@control("control.conf.rescale_eps_outside", "a rescale g/(|g|^rho + eps) conforms to eq. 21", "21")
def rescale_eps_outside():
    return check_rescale(lambda g, p, eps: g / (np.abs(g) ** ((p - 2) / (p - 1)) + eps))


@control(
    "control.conf.steepest_descent_primal_norm",
    "eq. 10 with ||g||_p in place of ||g||_q conforms",
    "10",
)
def steepest_descent_primal():
    def wrong(g, p, lr):
        rho = (p - 2) / (p - 1)
        return -lr * np.sum(np.abs(g) ** p) ** (rho / p) * np.sign(g) * np.abs(g) ** (1 - rho)

    return check_steepest_descent(wrong)


# --- lpcheck.schedule --------------------------------------------------------------------------


def check_cosine_p(impl):
    def prop(S, frac, p_max):
        s = 1 + round(frac * (S - 1))
        # S = 1 is eq. 19's 0/0 (finding F.eq19.single_epoch): lpcheck's stated convention is the
        # value every S > 1 gives at s = 1, p_max; S = 1 is drawn as often as S > 1, so a schedule
        # that breaks the convention cannot pass on the chance that hypothesis never tried it
        S_ref = 2 if S == 1 else S
        try:
            value = impl(s, S, p_max)
        except ZeroDivisionError:  # an implementation that divides by S - 1 fails at S = 1
            return False
        return close(value, EQ19(mpmath.mpf(s), mpmath.mpf(S_ref), mpmath.mpf(p_max)), 1e-14)

    return numeric_forall(
        prop,
        {
            "S": st.one_of(st.just(1), st.integers(2, 1000)),
            "frac": st.floats(0, 1),
            "p_max": st.floats(2.0, 100.0),
        },
        statement="schedule.cosine_p(s, S, p_max) = eq. 19 (S = 1: p_1 = p_max, eq. 19's limit)",
        tolerance="1e-14 relative",
    )


@obligation(
    "conf.schedule.cosine_p", "lpcheck.schedule.cosine_p computes eq. 19", "19", kind="conformance"
)
def conf_cosine_p():
    from lpcheck import schedule

    return check_cosine_p(lambda s, S, p_max: schedule.cosine_p(s, S, p_max))


@control(
    "control.conf.schedule_epoch_from_0",
    "eq. 19 with epochs counted from 0 (s in place of s - 1) conforms",
    "19",
)
def schedule_off_by_one():
    return check_cosine_p(
        lambda s, S, p_max: 2 + (p_max - 2) * (1 + math.cos(math.pi * min(s, S - 1) / (S - 1))) / 2
    )


# --- lpcheck.optim ----------------------------------------------------------------------------

_th, _eta, _lam, _v, _m, _b = sp.symbols("theta eta lambda v m beta")
EQ22 = sp.lambdify((_th, _eta, _v), F.eq22_theta(_th, _eta, _v), "mpmath")
EQ23 = sp.lambdify((_m, _g, _b), F.eq23_m(_m, _g, _b), "mpmath")
EQ25 = sp.lambdify((_th, _eta, _lam, _v), F.eq25_theta(_th, _eta, _lam, _v), "mpmath")
EQ10 = sp.lambdify(
    (_g, sp.Symbol("N"), _p, _eta), F.eq10_step(_g, sp.Symbol("N"), _p, _eta), "mpmath"
)


def _reference_run(grads, lr, p_max, S, per_epoch, eps, beta=None, lam=0.0, theta0=None):
    """Algorithm 1 (beta None) or 2 from formulas.py, in mpmath: eq. 19, 21-22 or 19, 23-25."""
    m = [mpmath.mpf(0)] * len(theta0)
    theta = [mpmath.mpf(x) for x in theta0]
    eq22, eq23, eq25 = EQ22, EQ23, EQ25
    for t, g in enumerate(grads):
        p = EQ19(mpmath.mpf(t // per_epoch + 1), mpmath.mpf(S), mpmath.mpf(p_max))
        for i, gi in enumerate(g):
            gi = mpmath.mpf(gi)
            if beta is None:
                theta[i] = eq22(theta[i], mpmath.mpf(lr), EQ21(gi, p, mpmath.mpf(eps)))
            else:
                m[i] = eq23(m[i], gi, mpmath.mpf(beta))
                theta[i] = eq25(
                    theta[i], mpmath.mpf(lr), mpmath.mpf(lam), EQ21(m[i], p, mpmath.mpf(eps))
                )
    return theta


def check_optimizer(make, momentum):
    """Run `make(params, S)` for a few epochs on generated gradients; compare with the formulas step
    by step."""

    S, per_epoch, d = 3, 2, 4

    def prop(theta0, grads, lr, beta, lam):
        param = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
        opt = make([param], S, lr, beta, lam)
        for t, g in enumerate(grads):
            if t % per_epoch == 0:
                opt.set_epoch(t // per_epoch + 1)
            param.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
        ref = _reference_run(
            grads,
            lr,
            6.0,
            S,
            per_epoch,
            1e-8,
            beta if momentum else None,
            lam if momentum else 0.0,
            theta0,
        )
        return all(close(x, y, 1e-12, 1e-14) for x, y in zip(param.detach().tolist(), ref))

    vec = st.lists(st.floats(-10, 10), min_size=d, max_size=d)
    grads = st.lists(
        st.lists(st.one_of(st.just(0.0), st.floats(-1e3, 1e3)), min_size=d, max_size=d),
        min_size=S * per_epoch,
        max_size=S * per_epoch,
    )
    algo = "Algorithm 2 (eq. 19, 23-25)" if momentum else "Algorithm 1 (eq. 19, 21-22)"
    return numeric_forall(
        prop,
        {
            "theta0": vec,
            "grads": grads,
            "lr": st.floats(1e-4, 0.5),
            "beta": st.floats(0.0, 0.99),
            "lam": st.floats(0.0, 0.5),
        },
        statement=(
            f"{S} epochs x {per_epoch} steps of the optimizer with p_max = 6, eps = 1e-8 = {algo} "
            "in mpmath"
        ),
        tolerance="1e-12 relative",
        max_examples=20,
    )


@obligation(
    "conf.optim.lpsgd",
    "lpcheck.optim.LPSGD (foreach and per-tensor paths) runs Algorithm 1",
    "19, 21, 22",
    kind="conformance",
)
def conf_lpsgd():
    from lpcheck.optim import LPSGD

    return [
        check_optimizer(
            lambda ps, S, lr, b, lam, fe=fe: LPSGD(
                ps, lr=lr, p_max=6.0, total_epochs=S, eps=1e-8, foreach=fe
            ),
            False,
        )
        for fe in (True, False)
    ]


@obligation(
    "conf.optim.lpsgdm",
    "lpcheck.optim.LPSGDM (foreach and per-tensor paths) runs Algorithm 2",
    "19, 23, 24, 25",
    kind="conformance",
)
def conf_lpsgdm():
    from lpcheck.optim import LPSGDM

    return [
        check_optimizer(
            lambda ps, S, lr, b, lam, fe=fe: LPSGDM(
                ps,
                lr=lr,
                p_max=6.0,
                total_epochs=S,
                momentum=b,
                weight_decay=lam,
                eps=1e-8,
                foreach=fe,
            ),
            True,
        )
        for fe in (True, False)
    ]


class _TorchMomentum:
    """A mutant LPSGDM with torch's momentum convention m = beta m + g (no 1 - beta)."""

    def __init__(self, params, S, lr, beta, lam):
        from lpcheck import schedule

        self.params, self.S, self.lr, self.beta, self.lam, self.p = params, S, lr, beta, lam, 6.0
        self.m = [0.0 * p.detach() for p in params]
        self._schedule = schedule

    def set_epoch(self, s):
        self.p = self._schedule.cosine_p(s, self.S, 6.0)

    def step(self):

        from lpcheck import lp

        with torch.no_grad():
            for p, m in zip(self.params, self.m):
                m.mul_(self.beta).add_(p.grad)
                p.mul_(1 - self.lr * self.lam).sub_(self.lr * lp.rescale(m, self.p, 1e-8))


@control(
    "control.conf.lpsgdm_torch_momentum",
    "an LPSGDM with torch's momentum m = beta m + g conforms to Algorithm 2",
    "23",
)
def lpsgdm_torch_momentum():
    return check_optimizer(_TorchMomentum, True)


# --- lpcheck.bounds ---------------------------------------------------------------------------


def check_bounds(bounds):
    c1, c2, c3, L, D, T, eta = sp.symbols("c1 c2 c3 L Delta T eta", positive=True)
    f32 = sp.lambdify((c1, c2, c3, L, D, T), F.eq32_step(c1, c2, c3, L, D, T), "mpmath")
    f31 = sp.lambdify((eta, c1, c2, L, D, T), F.eq31_rhs(eta, c1, c2, L, D, T), "mpmath")
    f30 = sp.lambdify((c1, L, c3), F.eq30_step_cap(c1, L, c3), "mpmath")
    f33 = sp.lambdify(
        (c1, c2, c3, L, D, T),
        F.eq33_rate(c1, c2, c3, L, D, T) - 2 * D * L * c3 / (c1**2 * T),
        "mpmath",
    )
    pos = st.floats(1e-3, 1e3)

    def prop(c1, c2, c3, L, D, T):
        M = [mpmath.mpf(v) for v in (c1, c2, c3, L, D, T)]
        eta_ = bounds.theorem1_step(c1, c2, c3, L, D, T)
        return (
            close(bounds.step_cap(c1, L, c3), f30(M[0], M[3], M[2]), 1e-15)
            and close(eta_, f32(*M), 1e-14)
            and close(
                bounds.theorem1_rhs(eta_, c1, c2, L, D, T),
                f31(mpmath.mpf(eta_), M[0], M[1], M[3], M[4], M[5]),
                1e-14,
            )
            and close(bounds.rate_constant(c1, c2, L, D) / math.sqrt(T), f33(*M), 1e-13)
            and bounds.theorem2_bound(c1, c2, c3, L, D, T)
            == bounds.theorem1_bound(c1, c2, c3, L, D, T)
        )

    return numeric_forall(
        prop,
        {"c1": pos, "c2": pos, "c3": pos, "L": pos, "D": pos, "T": st.integers(1, 10**8)},
        statement=(
            "lpcheck.bounds: step_cap = eq. 30, theorem1_step = eq. 32, theorem1_rhs = eq. 31, "
            "rate_constant/sqrt(T) = eq. 33's first term, theorem2_* = theorem1_* (eq. 46-47)"
        ),
        tolerance="1e-13 relative",
    )


@obligation(
    "conf.bounds",
    "lpcheck.bounds computes eq. 30-33 and eq. 46-47",
    "30-33, 46-47",
    kind="conformance",
)
def conf_bounds():
    from lpcheck import bounds

    return check_bounds(bounds)


class _HalfCap:
    """A mutant of lpcheck.bounds whose step cap misses the c3 (c1/L)."""

    def __getattr__(self, name):
        from lpcheck import bounds

        return getattr(bounds, name)

    @staticmethod
    def step_cap(c1, L, c3):
        return c1 / L


@control(
    "control.conf.bounds_cap_without_c3", "a step cap c1/L (c3 dropped) conforms to eq. 30", "30"
)
def bounds_without_c3():
    return check_bounds(_HalfCap())


# --- lpcheck.estimate -------------------------------------------------------------------------


def check_alignment(impl):
    def prop(full, stoch, p, eps):
        K = len(stoch) // len(full)
        G = np.array(stoch[: K * len(full)]).reshape(K, len(full))
        f = np.array(full)
        want = (
            mpmath.fsum(
                mpmath.fsum(
                    mpmath.mpf(fi) * EQ21(mpmath.mpf(gi), mpmath.mpf(p), mpmath.mpf(eps))
                    for fi, gi in zip(f, row)
                )
                for row in G
            )
            / K
            / mpmath.fsum(mpmath.mpf(x) ** 2 for x in f)
        )
        return close(impl(f, G, p, eps), want, 1e-12, 1e-300)

    full = st.lists(st.floats(0.1, 10), min_size=2, max_size=4)
    stoch = st.lists(st.floats(-10, 10), min_size=8, max_size=16)
    return numeric_forall(
        prop,
        {"full": full, "stoch": stoch, "p": p_method, "eps": eps_values},
        statement="estimate.alignment = mean_k <grad f, eq. 21(g_k)>/||grad f||_2^2 (eq. 27's "
        "ratio)",
        tolerance="1e-12 relative",
        max_examples=30,
    )


@obligation(
    "conf.estimate.alignment",
    "lpcheck.estimate.alignment computes eq. 27's ratio with eq. 21",
    "21, 27",
    kind="conformance",
)
def conf_alignment():
    from lpcheck import estimate

    return check_alignment(lambda f, G, p, eps: estimate.alignment(f, G, p, eps))


@control(
    "control.conf.alignment_unsquared",
    "an alignment divided by ||grad f||_2 (not squared) conforms to eq. 27",
    "27",
)
def alignment_unsquared():
    from lpcheck import estimate

    return check_alignment(
        lambda f, G, p, eps: estimate.alignment(f, G, p, eps) * np.linalg.norm(f)
    )


# --- the z3 engine's translation
# --------------------------------------------------------------------------------

_a, _b = sp.symbols("a b", real=True)
# what proofs say to z3: |.|, max/min, integer powers of either sign, sums and products
Z3_TERMS = [
    sp.Abs(_a - _b),
    sp.Abs(_a) ** 3 - _b**2,
    1 / sp.Abs(_a),
    _a**-2 + _b**-1,
    _a**3 * _b - 2 * _a * _b**2,
    sp.Max(_a, _b, 1),
    sp.Min(_a, -_b),
    sp.Rational(3, 7) * _a - _b / 5,
]
RATIONALS = st.fractions(min_value=-20, max_value=20, max_denominator=60).filter(lambda x: x != 0)


def check_z3_translation(to_z3):
    """Each term of Z3_TERMS, translated to z3 and evaluated by z3 at rational a, b, equals sympy's
    exact value."""
    import fractions

    import z3

    def prop(a, b):
        point = {
            _a: sp.Rational(a.numerator, a.denominator),
            _b: sp.Rational(b.numerator, b.denominator),
        }
        for e in Z3_TERMS:
            env: dict = {}
            term = to_z3(e, env, z3)
            pairs = [
                (env[x], z3.RealVal(f"{v.numerator}/{v.denominator}"))
                for x, v in ((x, (a if x == _a else b)) for x in env)
            ]
            got = z3.simplify(z3.substitute(term, *pairs))
            if not z3.is_rational_value(got):
                return False
            if fractions.Fraction(got.as_fraction()) != fractions.Fraction(str(e.subs(point))):
                return False
        return True

    return numeric_forall(
        prop,
        {"a": RATIONALS, "b": RATIONALS},
        statement="the z3 engine's translation (lpcheck.verify.engines._to_z3) of |a - b|, |a|^3 - "
        "b^2, 1/|a|, "
        "a^-2 + b^-1, a^3 b - 2 a b^2, max(a, b, 1), min(a, -b), 3a/7 - b/5, evaluated by z3 at "
        "rational a, b != 0, = sympy's exact value",
        tolerance="exact (rationals)",
        max_examples=30,
    )


@obligation(
    "conf.engines.z3_translation",
    "the z3 engine translates |.|, max, min and integer powers of either sign as sympy means them "
    "(every z3 proof rests on this translation)",
    kind="conformance",
)
def conf_z3_translation():
    from lpcheck.verify import engines

    return check_z3_translation(engines._to_z3)


@control(
    "control.conf.z3_abs_as_identity",
    "a translation of |x| as x conforms",
)
def z3_abs_as_identity():
    from lpcheck.verify import engines

    def wrong(e, env, z3):
        if isinstance(e, sp.Abs):
            return wrong(e.args[0], env, z3)
        atom = engines._z3_atom(e, env, z3)
        if atom is not None:
            return atom
        if e.is_Pow and e.exp.is_Integer:
            base, n = wrong(e.base, env, z3), int(e.exp)
            out = z3.RealVal(1)
            for _ in range(abs(n)):
                out = out * base
            return out if n >= 0 else 1 / out
        return engines._z3_compound(e, [wrong(x, env, z3) for x in e.args], z3)

    return check_z3_translation(wrong)
