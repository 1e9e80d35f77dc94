"""Adaptive norms (Kohler, Adolphs & Lucchi, arXiv 1905.09201): Adam's and RMSProp's preconditioners
as ellipsoidal trust-region norms, and the conditions a trust-region method's convergence theory
asks of them.

An ellipsoidal trust region at step t is {s : ||s||_{A_t} <= Delta_t} with ||s||_A^2 = s^T A s.
RMSProp and Adam use

    A_t = diag(sqrt(v_t) + eps),   v_t = beta v_{t-1} + (1 - beta) g_t^2 (coordinatewise, v_0 = 0)

(Adam with v_t/(1 - beta^t) in place of v_t). Trust-region convergence with such norms needs them
uniformly equivalent to ||.||_2: constants 0 < mu <= nu, the same for every t, with mu ||s||_2 <=
||s||_{A_t} <= nu ||s||_2, and a step with a Cauchy decrease. Checked here, with |g_t,i| <= G_inf
for every t and i:

  v_t in [0, G_inf^2] for every t (induction), and Adam's v_t/(1 - beta^t) <= G_inf^2 too
  eps <= (A_t)_ii <= G_inf + eps, hence eps ||s||^2 <= ||s||_{A_t}^2 <= (G_inf + eps) ||s||^2 and
  ||g||^2/(G_inf + eps) <= ||g||_{A_t^-1}^2 <= ||g||^2/eps: mu = sqrt(eps), nu = sqrt(G_inf + eps)
  in s^ = A^(1/2) s the ellipsoidal subproblem is the spherical one with g^ = A^(-1/2) g,
  B^ = A^(-1/2) B A^(-1/2)
  the Cauchy point along -g^ decreases the model by at least ||g^||/2 min(Delta, ||g^||/||B^||)
  torch.optim.Adam's and RMSprop's own state gives such an A_t at every step

Without eps the lower bound fails (a coordinate whose gradients were all 0 has (A_t)_ii = 0: a
degenerate norm), and AdaGrad's sum v_t = v_{t-1} + g_t^2 has no uniform upper bound: both are
controls."""

import numpy as np
import sympy as sp
import torch  # imported once here, not in every forked worker
from hypothesis import strategies as st

from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall, sympy_equal

from .. import descent_template as DT

beta, w = sp.symbols("beta w", nonnegative=True)  # w = 1 - beta, both in [0, 1]
Ginf, eps = sp.symbols("G_inf epsilon", positive=True)
v, v1, g = (
    sp.Symbol("v_prev", nonnegative=True),
    sp.Symbol("v_t", real=True),
    sp.Symbol("g_t", real=True),
)


def ema(v_prev, grad, b, one_minus_b):
    """RMSProp's and Adam's second moment: beta v_{t-1} + (1 - beta) g_t^2."""
    return b * v_prev + one_minus_b * grad**2


def diagonal(v_t, e):
    """(A_t)_ii = sqrt(v_t) + eps."""
    return sp.sqrt(v_t) + e


@obligation(
    "adaptive.ema_bounded",
    "with |g_t| <= G_inf and v_0 = 0, v_t = beta v_{t-1} + (1 - beta) g_t^2 stays in [0, G_inf^2] "
    "for every t (induction; the step: a convex combination of two numbers in [0, G_inf^2], >= 0 "
    "by its form)",
)
def ema_bounded():
    hyps = [sp.Le(v, Ginf**2), sp.Le(g**2, Ginf**2), sp.Eq(beta + w, 1)]
    return DT.both_engines(hyps, sp.Le(ema(v, g, beta, w), Ginf**2), [beta, w, Ginf**2])


@obligation(
    "adaptive.bias_corrected",
    "Adam's bias-corrected v_t/(1 - beta^t) <= G_inf^2: by induction v_t <= (1 - beta^t) G_inf^2 "
    "(with B = beta^(t-1): beta v_{t-1} + (1 - beta) g_t^2 <= (1 - beta B) G_inf^2), then divide "
    "by q = 1 - beta^t > 0",
)
def bias_corrected():
    B, q = sp.Symbol("B", nonnegative=True), sp.Symbol("q", positive=True)
    hyps = [sp.Le(v, (1 - B) * Ginf**2), sp.Le(g**2, Ginf**2), sp.Eq(beta + w, 1)]
    step = DT.both_engines(
        hyps, sp.Le(ema(v, g, beta, w), (1 - beta * B) * Ginf**2), [beta, w, Ginf**2]
    )
    t = sp.Symbol("t", integer=True, positive=True)
    power = sympy_equal(
        beta * beta ** (t - 1), beta**t
    )  # B_{t+1} = beta B_t: the induction's exponent
    divide = DT.both_engines(
        [sp.Le(v1, q * Ginf**2)], sp.Le(v1 / q, Ginf**2), [1 / q], where="q = 1 - beta^t"
    )
    return [*step, power, *divide]


@obligation(
    "adaptive.diagonal_bounds",
    "eps <= (A_t)_ii = sqrt(v_t) + eps <= G_inf + eps for v_t in [0, G_inf^2] (r = "
    "sqrt(v_t) >= 0 by its equation r^2 = v_t)",
)
def diagonal_bounds():
    r, vt = sp.Symbol("r", nonnegative=True), sp.Symbol("v", nonnegative=True)
    hyps = [sp.Le(vt, Ginf**2), sp.Eq(r**2, vt)]
    return DT.both_engines(
        hyps, sp.Le(diagonal(r**2, eps), Ginf + eps), [1 / (Ginf + r), 1 / (Ginf + r)]
    )


s3, g3, a3 = (
    sp.symbols("s1:4", real=True),
    sp.symbols("g1:4", real=True),
    sp.symbols("a1:4", positive=True),
)


@obligation(
    "adaptive.norm_equivalence",
    "with eps <= a_i <= G_inf + eps (A = diag(a), R^3): eps ||s||^2 <= s^T A s <= (G_inf + eps) "
    "||s||^2; 1/a_i in [1/(G_inf + eps), 1/eps] (each coordinate alike), so ||g||^2/(G_inf + eps) "
    "<= g^T A^-1 g <= ||g||^2/eps: the norms ||.||_{A_t} are uniformly equivalent to ||.||_2, "
    "with constants sqrt(eps) and sqrt(G_inf + eps) that do not depend on t",
)
def norm_equivalence():
    box = [h for a in a3 for h in (sp.Ge(a, eps), sp.Le(a, Ginf + eps))]
    quad, sq = sp.Add(*[a * s**2 for a, s in zip(a3, s3)]), sp.Add(*[s**2 for s in s3])
    a, inv = a3[0], sp.symbols("b1:4", positive=True)  # b_i = 1/a_i
    inv_box = [h for x in inv for h in (sp.Ge(x, 1 / (Ginf + eps)), sp.Le(x, 1 / eps))]
    dual, gsq = sp.Add(*[x * y**2 for x, y in zip(inv, g3)]), sp.Add(*[y**2 for y in g3])
    return [
        *DT.both_engines(box, sp.Ge(quad, eps * sq), [m for x in s3 for m in (x**2, 0)]),
        *DT.both_engines(box, sp.Le(quad, (Ginf + eps) * sq), [m for x in s3 for m in (0, x**2)]),
        *DT.both_engines(
            box[:2],
            sp.Ge(1 / a, 1 / (Ginf + eps)),
            [0, 1 / (a * (Ginf + eps))],
            where="b_1 = 1/a_1",
        ),
        *DT.both_engines(box[:2], sp.Le(1 / a, 1 / eps), [1 / (eps * a), 0], where="b_1 = 1/a_1"),
        *DT.both_engines(
            inv_box, sp.Ge(dual, gsq / (Ginf + eps)), [m for y in g3 for m in (y**2, 0)]
        ),
        *DT.both_engines(inv_box, sp.Le(dual, gsq / eps), [m for y in g3 for m in (0, y**2)]),
    ]


@obligation(
    "adaptive.change_of_variables",
    "in s^ = A^(1/2) s (A = diag(a1, a2) > 0, B symmetric) the ellipsoidal subproblem min g^T s + "
    "s^T B s/2, ||s||_A <= Delta, is the spherical one: g^T s = g^^T s^ and s^T B s = s^^T B^ s^ "
    "with g^ = A^(-1/2) g, B^ = A^(-1/2) B A^(-1/2) (||s||_A = ||s^||_2 by the definition of s^)",
)
def change_of_variables():
    a1, a2 = a3[:2]
    b11, b12, b22 = sp.symbols("b11 b12 b22", real=True)  # B
    s, gv, Bm = sp.symbols("s1:3", real=True), g3[:2], sp.Matrix([[b11, b12], [b12, b22]])
    root = [sp.sqrt(a1), sp.sqrt(a2)]
    with sp.evaluate(
        False
    ):  # s^ = A^(1/2) s, g^ = A^(-1/2) g, B^ = A^(-1/2) B A^(-1/2), entry by entry as written
        s_hat = [r * x for r, x in zip(root, s)]
        g_hat = [x / r for r, x in zip(root, gv)]
        B_hat = [[Bm[i, j] / (root[i] * root[j]) for j in range(2)] for i in range(2)]
        new = [
            sp.Add(*[x * y for x, y in zip(g_hat, s_hat)]),
            sp.Add(*[s_hat[i] * B_hat[i][j] * s_hat[j] for i in range(2) for j in range(2)]),
        ]
    old = [
        sp.Add(*[x * y for x, y in zip(gv, s)]),
        sp.Add(*[s[i] * Bm[i, j] * s[j] for i in range(2) for j in range(2)]),
    ]
    return [sympy_equal(o, n) for o, n in zip(old, new)]


n, Dl, b = (
    sp.Symbol("n", positive=True),
    sp.Symbol("Delta_t", positive=True),
    sp.Symbol("b", positive=True),
)
kappa = sp.Symbol("kappa", real=True)  # g^T B^ g^/||g^||^2, at most b = ||B^||_2


def model_decrease(tau):
    """m(0) - m(-tau g^/||g^||) = tau ||g^|| - tau^2 kappa/2 along the Cauchy direction."""
    return tau * n - tau**2 * kappa / 2


def cauchy_bound(radius):
    """||g^||/2 min(Delta, ||g^||/||B^||)."""
    return n / 2 * sp.Min(radius, n / b)


@obligation(
    "adaptive.cauchy_decrease",
    "the Cauchy point (tau = Delta if kappa Delta <= ||g^||, else tau = ||g^||/kappa) decreases "
    "the model by at least ||g^||/2 min(Delta, ||g^||/||B^||), kappa = g^T B^ g^/||g^||^2 <= "
    "||B^||: the model along the direction, then each case (kappa <= 0 included in the first)",
)
def cauchy_decrease():
    tau = sp.Symbol("tau", nonnegative=True)
    x1, x2 = sp.symbols("x1 x2", real=True)  # g^ in R^2, n = ||g^||
    b11, b12, b22 = sp.symbols("b11 b12 b22", real=True)
    gh, Bh = sp.Matrix([x1, x2]), sp.Matrix([[b11, b12], [b12, b22]])
    norm = sp.sqrt(x1**2 + x2**2)
    s = -tau * gh / norm
    model = (gh.T * s)[0] + (s.T * Bh * s)[0] / 2
    along = sympy_equal(-model, tau * norm - tau**2 / 2 * (gh.T * Bh * gh)[0] / norm**2)
    boundary = [sp.Le(kappa * Dl, n)]
    k_pos = sp.Symbol("kappa", positive=True)  # the interior case has kappa > 0
    interior = [sp.Gt(k_pos * Dl, n), sp.Le(k_pos, b)]
    return [
        along,
        *DT.both_engines(
            [*boundary, sp.Le(Dl, n / b)],
            sp.Ge(model_decrease(Dl), cauchy_bound(Dl)),
            [Dl / 2, 0],
            where="tau = Delta, Delta <= ||g^||/||B^||",
        ),
        *DT.both_engines(
            [*boundary, sp.Le(n / b, Dl)],
            sp.Ge(model_decrease(Dl), cauchy_bound(Dl)),
            [Dl / 2, n / 2],
            where="tau = Delta, ||g^||/||B^|| <= Delta",
        ),
        *DT.both_engines(
            interior,
            sp.Le(n / b, Dl),
            [1 / b, Dl / b],
            where="tau = ||g^||/kappa: then ||g^||/||B^|| < Delta",
        ),
        *DT.both_engines(
            [*interior, sp.Le(n / b, Dl)],
            sp.Ge(model_decrease(n / k_pos).subs(kappa, k_pos), cauchy_bound(Dl)),
            [0, n**2 / (2 * k_pos * b), 0],
            where="tau = ||g^||/kappa",
        ),
    ]


# --- torch's optimizers ---------------------------------------------------------------------------


def preconditioner(optimizer, p):
    """diag(A_t) from a torch.optim.Adam or RMSprop state: sqrt(v_t/(1 - beta2^t)) + eps, or
    sqrt(v_t) + eps."""
    state, group = optimizer.state[p], optimizer.param_groups[0]
    if isinstance(optimizer, torch.optim.Adam):
        step = float(state["step"])
        return (state["exp_avg_sq"] / (1 - group["betas"][1] ** step)).sqrt() + group["eps"]
    return state["square_avg"].sqrt() + group["eps"]


def check_torch(kind, eps_value=None, floor=None, precond=None):
    """Adam/RMSprop from torch.optim on bounded random gradients (some coordinates always 0): at
    every step eps <= A_ii <= G_inf + eps (1e-12 relative; `floor` in place of eps below), and v_t
    is the EMA of g^2 (1e-12 relative)."""
    precond = precond or preconditioner
    name, moment = ("Adam", "v_t/(1 - beta2^t)") if kind == "adam" else ("RMSprop", "v_t")

    def prop(seed, beta2, eps_, scale, steps, d):
        e = eps_ if eps_value is None else eps_value
        rng = np.random.default_rng(seed)
        p = torch.zeros(d, dtype=torch.float64, requires_grad=True)
        opt = (
            torch.optim.Adam([p], lr=1e-3, betas=(0.9, beta2), eps=e)
            if kind == "adam"
            else torch.optim.RMSprop([p], lr=1e-3, alpha=beta2, eps=e)
        )
        dead = rng.random(d) < 0.3  # coordinates whose gradient is always 0
        v_ref, g_inf = np.zeros(d), 0.0
        for _ in range(steps):
            g = rng.uniform(-scale, scale, d) * ~dead
            g_inf = max(g_inf, float(np.max(np.abs(g))))
            p.grad = torch.from_numpy(g.copy())
            opt.step()
            v_ref = beta2 * v_ref + (1 - beta2) * g**2
            v = opt.state[p]["exp_avg_sq" if kind == "adam" else "square_avg"].numpy()
            a = precond(opt, p).numpy()
            low = e if floor is None else floor
            if not (
                np.allclose(v, v_ref, rtol=1e-12, atol=1e-300)
                and np.all(a >= low * (1 - 1e-12))
                and np.all(a <= (g_inf + e) * (1 + 1e-12))
            ):
                return False
        return True

    return numeric_forall(
        prop,
        {
            "seed": st.integers(0, 2**31 - 1),
            "beta2": st.sampled_from([0.5, 0.9, 0.999]),
            "eps_": st.sampled_from([1e-8, 1e-3, 0.1]),
            "scale": st.sampled_from([1e-4, 1.0, 1e3]),
            "steps": st.integers(1, 25),
            "d": st.integers(1, 6),
        },
        statement=f"torch.optim.{name} (float64): at every step its state's v_t is the EMA of g^2 "
        f"and A_t = diag(sqrt({moment}) + eps) satisfies eps <= A_ii <= G_inf + eps, G_inf "
        "= max |g| so far",
        tolerance="1e-12 relative",
        max_examples=30,
    )


@obligation(
    "adaptive.torch_adam",
    "torch.optim.Adam's own state gives A_t = diag(sqrt(v_t/(1 - beta2^t)) + eps) with "
    "eps <= A_ii <= G_inf + eps at every step, and v_t is the EMA of g^2",
    kind="conformance",
)
def torch_adam():
    return check_torch("adam")


@obligation(
    "adaptive.torch_rmsprop",
    "torch.optim.RMSprop's own state gives A_t = diag(sqrt(v_t) + eps) with eps <= "
    "A_ii <= G_inf + eps at every step, and v_t is the EMA of g^2",
    kind="conformance",
)
def torch_rmsprop():
    return check_torch("rmsprop")


# --- negative controls ----------------------------------------------------------------------------


@control(
    "control.adaptive.no_eps",
    "without eps, A_t = diag(sqrt(v_t)) has a uniform lower bound: some mu > 0 with "
    "sqrt(v_t) >= mu for every v_t in [0, G_inf^2]",
)
def no_eps():
    r, vt, mu = (
        sp.Symbol("r", nonnegative=True),
        sp.Symbol("v", nonnegative=True),
        sp.Symbol("mu", positive=True),
    )
    return DT.both_engines([sp.Le(vt, Ginf**2), sp.Eq(r**2, vt)], sp.Ge(r, mu), [0, 0])


@control(
    "control.adaptive.torch_rmsprop_no_eps",
    "torch.optim.RMSprop with eps = 0 still has a positive floor: A_ii >= 1e-12 at every step",
)
def torch_rmsprop_no_eps():
    return check_torch("rmsprop", eps_value=0.0, floor=1e-12)


@control(
    "control.adaptive.adagrad_sum",
    "AdaGrad's sum v_t = v_{t-1} + g_t^2 stays in [0, G_inf^2] when |g_t| <= "
    "G_inf (the EMA's weights 1 - beta, beta replaced by 1, 1)",
)
def adagrad_sum():
    return DT.both_engines(
        [sp.Le(v, Ginf**2), sp.Le(g**2, Ginf**2)], sp.Le(v + g**2, Ginf**2), [1, 1]
    )


@control(
    "control.adaptive.cauchy_without_min",
    "the Cauchy point decreases the model by ||g^|| Delta/2 for every "
    "Delta (the min with ||g^||/||B^|| dropped), in the interior case",
)
def cauchy_without_min():
    k_pos = sp.Symbol("kappa", positive=True)
    hyps = [sp.Gt(k_pos * Dl, n), sp.Le(k_pos, b)]
    return DT.both_engines(
        hyps, sp.Ge(model_decrease(n / k_pos).subs(kappa, k_pos), n * Dl / 2), [0, 0]
    )
