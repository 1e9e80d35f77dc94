"""Conformance over what users run: every optimizer path, param groups, state_dict resume, eq. 10's
limits, the method layer.

`conformance.py` ties lp/schedule/optim's foreach and per-tensor paths to formulas.py at 30 digits
on one param group. Users also run the fused CPU step (lpcheck/fused.py), the Triton kernel
(lpcheck/fused_triton.py), several param groups with their own hyperparameters, a run resumed from a
state dict, p = 2 and p = inf, and the method layer (lpcheck/methods) that the estimators and the
rates runner read. Each is checked here against a reference written by hand from the paper
(Algorithms 1-2: eq. 19, 21-25; eq. 10), in numpy float64, which shares no code with lpcheck. Inputs
are fixed by a seed (mixed signs, exact zeros, magnitudes from 1e-6 to 1e3), so the gate is
reproducible and fast (the fused CPU step compiles once per dtype and shape list)."""

import copy
import inspect
import math
import os

import numpy as np
import torch  # imported once here, not in every forked worker

# Without CUDA the Triton kernel runs in Triton's interpreter, which triton reads when it is
# imported and when a kernel is defined (as tests/conftest.py does; torch's CPU compiler ignores
# it).
if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
from hypothesis import strategies as st

from lpcheck.verify import control, obligation
from lpcheck.verify.engines import numeric_forall, skipped

# what these checks exercise (see conformance.CODE_CHECKED; read by experiments/mutation.py)
CODE_CHECKED = {
    "lpcheck/optim.py": [
        "_LpOptimizer._complete",
        "_LpOptimizer._path",
        "_CheckedOptimizer.load_state_dict",
        "_CheckedOptimizer.add_param_group",
    ],
    "lpcheck/fused.py": [
        "pow_neg_f32",
        "_horner",
        "_estrin",
        "_factor",
        "_step",
        "Bucket",
        "_at_least_1d",
        "EXP2_COEFS",
        "LOG2_COEFS",
    ],
    "lpcheck/fused_triton.py": [
        "_load",
        "_store",
        "_round",
        "_poly",
        "_pow_neg",
        "_pointer",
        "_step_block",
        "_step_kernel",
        "_tables",
        "_Tables",
        "Bucket",
    ],
    "lpcheck/lp.py": ["rho", "dual_exponent", "lp_norm", "rescale", "steepest_descent"],
    "lpcheck/methods/base.py": ["ema", "Method.update", "Method.init"],
    "lpcheck/methods/lpsgd.py": ["rescale", "LPSGD"],
    "lpcheck/methods/lpsgdm.py": ["LPSGDM"],
    "lpcheck/methods/sgd.py": ["SGD"],
    "lpcheck/methods/sgdm.py": ["SGDM"],
    "lpcheck/methods/sign.py": ["Sign"],
    "lpcheck/methods/steepest.py": ["Steepest"],
    "lpcheck/methods/adam.py": ["Adam._update"],
    "lpcheck/methods/lion.py": ["Lion"],
    "lpcheck/methods/rmsprop.py": ["RMSProp"],
    "lpcheck/methods/heavyball.py": ["HeavyBall"],
    "lpcheck/methods/optimizer.py": [
        "MethodOptimizer.step",
        "MethodOptimizer._directions",
        "MethodOptimizer._apply",
        "MethodOptimizer._state_of",
        "MethodOptimizer._check_state_dict",
        "as_optimizer",
    ],
    "lpcheck/methods/norms.py": ["Lp.sharp"],
}
S, PER_EPOCH = 3, 2  # 3 epochs of 2 steps: p changes twice mid-run (eq. 19)
STEPS = S * PER_EPOCH
SHAPES = [(5,), (2, 3)]  # one group = these two tensors
FUSED_SHAPES = [(2, 3)]  # the Triton interpreter's cost grows with the tensors: one per group
GROUPS = [  # group 0 scheduled, group 1 with its own lr, p (fixed), eps, momentum, weight decay
    dict(lr=0.1, p_max=6.0, eps=1e-8, momentum=0.9, weight_decay=0.01),
    dict(
        lr=0.03, p=2.5, eps=1e-3, momentum=0.3, weight_decay=0.5
    ),  # rho = 1/3, beta < 1/2: the other branches
]
INF_GROUP = dict(lr=0.02, p=math.inf, eps=1e-6, momentum=0.6, weight_decay=0.0)  # eq. 21 at rho = 1


# --- the hand-written reference (numpy float64)
# -----------------------------------------------------------


def eq19(s, p_max):
    """p_s = 2 + (p_max - 2)(1 + cos(pi (s - 1)/(S - 1)))/2, epochs counted from 1."""
    return 2 + (p_max - 2) * (1 + math.cos(math.pi * (s - 1) / (S - 1))) / 2


def rho_of(p):
    return 1.0 if p == math.inf else (p - 2) / (p - 1)


def reference_group(theta0, grads, hp, momentum, start=0):
    """Algorithm 1 (momentum False) or 2 for one group from step `start` on: (theta, m, path length
    sum |step|)."""
    theta, m = [t.copy() for t in theta0], [np.zeros_like(t) for t in theta0]
    path = [np.abs(t) for t in theta0]
    for t, gs in enumerate(grads, start):
        p = eq19(t // PER_EPOCH + 1, hp["p_max"]) if "p_max" in hp else hp["p"]
        rho = rho_of(p)
        for i, g in enumerate(gs):
            if momentum:
                m[i] = hp["momentum"] * m[i] + (1 - hp["momentum"]) * g  # eq. 23
                d = m[i]
            else:
                d = g
            u = d / (np.abs(d) + hp["eps"]) ** rho  # eq. 21 / 24
            new = (1 - hp["lr"] * hp["weight_decay"] if momentum else 1.0) * theta[i] - hp[
                "lr"
            ] * u  # eq. 22 / 25
            path[i] = path[i] + np.abs(new - theta[i])
            theta[i] = new
    return theta, m, path


def data(seed, groups, shapes=SHAPES):
    """theta0 and STEPS gradients per group: mixed signs, exact zeros, magnitudes 1e-6 .. 1e3."""
    rng = np.random.default_rng(seed)

    def draw(shape):
        v = rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 3, shape)
        v[rng.random(shape) < 0.15] = 0.0
        return v

    theta0 = [[draw(s) for s in shapes] for _ in range(groups)]
    grads = [[[draw(s) for s in shapes] for _ in range(STEPS)] for _ in range(groups)]
    return theta0, grads


# --- lpcheck's optimizer, on a chosen path
# --------------------------------------------------------------

PATHS = {
    "foreach": dict(foreach=True, fused=False),
    "reference": dict(foreach=False, fused=False),
    "fused": dict(fused=True),
}


def make(cls, params, group_hps, path, momentum):
    groups = []
    for ps, hp in zip(params, group_hps):
        g = {k: v for k, v in hp.items() if momentum or k not in ("momentum", "weight_decay")}
        groups.append(dict(g, params=ps))
    base = dict(lr=0.1, p_max=6.0, total_epochs=S, **PATHS[path])
    return cls(groups, **base)


def run(
    cls,
    momentum,
    path,
    theta0,
    grads,
    group_hps,
    dtype=torch.float64,
    steps=range(STEPS),
    opt=None,
    params=None,
):
    """lpcheck's optimizer over `steps` (set_epoch at each epoch's first step): (params,
    optimizer)."""
    if params is None:
        params = [[torch.nn.Parameter(torch.tensor(t, dtype=dtype)) for t in th] for th in theta0]
    if opt is None:
        opt = make(cls, params, group_hps, path, momentum)
    for t in steps:
        if t % PER_EPOCH == 0:
            opt.set_epoch(t // PER_EPOCH + 1)
        for ps, gs in zip(params, grads):
            for p, g in zip(ps, gs[t]):
                p.grad = torch.tensor(g, dtype=dtype, device=p.device)
        opt.step()
    return params, opt


def agrees(params, theta0, grads, group_hps, momentum, rel):
    """Each coordinate within rel x its path length (|theta0| + sum of |steps|) of the reference."""
    for ps, th, gs, hp in zip(params, theta0, grads, group_hps):
        want, _, path = reference_group(th, gs, hp, momentum)
        for p, w, scale in zip(ps, want, path):
            got = p.detach().double().numpy()
            if not (np.isfinite(got).all() and (np.abs(got - w) <= rel * scale + 1e-300).all()):
                return False
    return True


def check_path(
    cls_name,
    path,
    dtype=torch.float64,
    rel=1e-12,
    groups=GROUPS,
    examples=3,
    runner=run,
    shapes=SHAPES,
):
    from lpcheck import optim

    cls, momentum = getattr(optim, cls_name), cls_name == "LPSGDM"

    def prop(seed):
        theta0, grads = data(seed, len(groups), shapes)
        params, _ = runner(cls, momentum, path, theta0, grads, groups, dtype)
        return agrees(params, theta0, grads, groups, momentum, rel)

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1)},
        statement=(
            f"{cls_name}(..., {path} path, {dtype}) with {len(groups)} param groups ({groups}) "
            f"over {S} epochs x {PER_EPOCH} steps = Algorithm {2 if momentum else 1} (eq. 19, "
            "21-25) by hand in numpy float64"
        ),
        tolerance=f"{rel:g} x each coordinate's path length",
        max_examples=examples,
    )


def check_late_group(cls_name, path):
    """A scheduled group added with add_param_group at the start of epoch 2 joins the current epoch
    (eq. 19's p_2)."""
    from lpcheck import optim

    cls, momentum = getattr(optim, cls_name), cls_name == "LPSGDM"
    late = {k: v for k, v in GROUPS[1].items() if k != "p"} | {"p_max": 4.0}
    start = PER_EPOCH

    def prop(seed):
        theta0, grads = data(seed, 2)
        params = [[torch.nn.Parameter(torch.tensor(t)) for t in th] for th in theta0]
        opt = make(cls, params[:1], GROUPS[:1], path, momentum)
        for t in range(STEPS):
            if t % PER_EPOCH == 0:
                opt.set_epoch(t // PER_EPOCH + 1)
            if t == start:
                hp = {
                    k: v
                    for k, v in late.items()
                    if momentum or k not in ("momentum", "weight_decay")
                }
                opt.add_param_group(dict(hp, params=params[1]))
            for ps, gs in zip(params[: 1 + (t >= start)], grads):
                for p, g in zip(ps, gs[t]):
                    p.grad = torch.tensor(g)
            opt.step()
        want0 = reference_group(theta0[0], grads[0], GROUPS[0], momentum)[0]
        want1, _, path1 = reference_group(theta0[1], grads[1][start:], late, momentum, start)
        ok = all(
            np.allclose(p.detach().numpy(), w, rtol=1e-12, atol=0) for p, w in zip(params[0], want0)
        )
        return ok and all(
            (np.abs(p.detach().numpy() - w) <= 1e-12 * s).all()
            for p, w, s in zip(params[1], want1, path1)
        )

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1)},
        statement=f"{cls_name} ({path} path): a group with p_max = 4 added by add_param_group at "
        "epoch 2 steps with p_2 of eq. 19 from then on (Algorithm 1/2 by hand in numpy)",
        tolerance="1e-12 x path length",
        max_examples=2,
    )


# bfloat16 and float16: eps = 1e-3 (1e-8 is 0 in float16); group 1 as GROUPS[1] (a fixed p) with
# beta >= 1/2: for beta < 1/2 the foreach path's EMA is mul then add (two roundings of m), the fused
# step's a lerp (one)
LOW_GROUPS = [dict(GROUPS[0], eps=1e-3), dict(GROUPS[1], momentum=0.6)]
LOW_DTYPES = (torch.bfloat16, torch.float16)
LOW_SHAPES = [(64,), (16, 32)]  # enough coordinates for a share of 1 %


def same_bits(a, b, share=0.01):
    """Low-precision results that round the same: equal on all but `share` of the coordinates (a
    float32 result within one of its ulps of another can still round to the other side of a bfloat16
    midpoint), one ulp apart where not."""
    a, b = torch.cat([x.detach().ravel() for x in a]), torch.cat([x.detach().ravel() for x in b])
    differ = a != b
    return (
        bool((~differ | (torch.nextafter(a, b) == b)).all())
        and float(differ.float().mean()) <= share
    )


def check_low_precision_paths(cls_name, paths, steps=range(PER_EPOCH), zero=False, runner=run):
    """The two paths with bfloat16 and float16 parameters round at the same points: the step
    computed in float32 math (the rescale factor and the EMA included), rounded once into the
    parameter's dtype. Over the first epoch (p > 2; at p = 2 the foreach path skips the rescale, and
    the paths then differ by such flips on a few % of the coordinates, which a longer run
    accumulates). `zero`: one step from theta = 0, so that only the step's own rounding points count
    (the fused step's decayed theta and its float32 power flip a few % of the roundings of a nonzero
    theta)."""
    from lpcheck import optim

    cls, momentum = getattr(optim, cls_name), cls_name == "LPSGDM"

    def prop(seed):
        theta0, grads = data(seed, len(LOW_GROUPS), LOW_SHAPES)
        if zero:
            theta0 = [[np.zeros_like(t) for t in th] for th in theta0]
        for dtype in LOW_DTYPES:
            a, b = (
                runner(cls, momentum, path, theta0, grads, LOW_GROUPS, dtype, steps=steps)[0]
                for path in paths
            )
            if not same_bits([p for ps in a for p in ps], [p for ps in b for p in ps]):
                return False
        return True

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1)},
        statement=f"{cls_name}'s {paths[0]} and {paths[1]} paths with bfloat16 and float16 "
        "parameters, two groups "
        f"({LOW_GROUPS}), {len(steps)} step(s) from {'theta = 0' if zero else 'theta0'}: the same "
        "bits on >= 99 % of the coordinates and one ulp apart on the others (both compute in "
        "float32 and round once)",
        tolerance="1 ulp of the parameters' dtype on at most 1 % of the coordinates",
        max_examples=3,
    )


@obligation(
    "conf.optim.paths",
    "LPSGD and LPSGDM on the foreach and per-tensor paths, with two param groups of different lr, "
    "p (scheduled / fixed), eps, momentum, weight decay and a p = inf group, and a group added "
    "mid-run, run Algorithms 1-2 as a hand-written reference does; with bfloat16 and float16 "
    "parameters the two paths round alike (float32 math)",
    "19, 21-25",
    kind="conformance",
)
def conf_paths():
    return (
        [
            check_path(c, path, groups=groups)
            for c in ("LPSGD", "LPSGDM")
            for path in ("foreach", "reference")
            for groups in (GROUPS, [GROUPS[0], INF_GROUP])
        ]
        + [check_late_group(c, "foreach") for c in ("LPSGD", "LPSGDM")]
        + [check_low_precision_paths("LPSGD", ("foreach", "reference"))]
    )


def _graph_as_traced(gm, example_inputs):
    """A torch.compile backend that runs the graph dynamo captured, as traced (no inductor code
    generation)."""
    return gm.forward


def run_fused_traced(
    cls, momentum, path, theta0, grads, group_hps, dtype, steps=range(STEPS), opt=None, params=None
):
    """The fused CPU path as users run it (Bucket.step_ -> torch.compile of fused._step, fullgraph),
    with the graph run as traced: inductor's C++ code generation costs ~30 s of CPU per cold
    compile, and its agreement with this graph is torch's, tested against the foreach path in
    tests/test_fused.py."""
    from lpcheck import fused

    old, fused._counting_backend = fused._counting_backend, _graph_as_traced
    try:
        return run(cls, momentum, path, theta0, grads, group_hps, dtype, steps, opt, params)
    finally:
        fused._counting_backend = old
        fused._COMPILED.clear()


def check_pow_neg(pow_neg):
    """The fused step's float32 power (|d| + eps)^-rho from log2/exp2 polynomials against numpy
    float64 (its stated
    accuracy: a few float32 ulps, ~3e-7 relative)."""

    def prop(seed, rho):
        rng = np.random.default_rng(seed)
        x = (10.0 ** rng.uniform(-30, 30, 64)).astype(np.float32)
        got = pow_neg(torch.from_numpy(x), torch.tensor(-rho, dtype=torch.float32)).double().numpy()
        want = x.astype(np.float64) ** -float(np.float32(rho))
        return bool(np.all(np.abs(got - want) <= 1e-6 * want))

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1), "rho": st.floats(0.0, 1.0, width=32)},
        statement="fused.pow_neg_f32(x, -rho) = x^-rho (numpy float64) for float32 x in [1e-30, "
        "1e30], rho in [0, 1]",
        tolerance="1e-6 relative",
        max_examples=30,
    )


@obligation(
    "conf.optim.fused_cpu",
    "the fused CPU step (lpcheck/fused.py: Bucket.step_, torch.compile's captured graph of "
    "fused._step run as traced) of LPSGDM (float32: the log2/exp2 power) and LPSGD (float64) runs "
    "Algorithms 1-2 with two param groups, LPSGDM resumes bit-equal from a state dict on it, its "
    "float32 power computes x^-rho, and with bfloat16 and float16 parameters it rounds where the "
    "foreach path does",
    "19, 21-25",
    kind="conformance",
)
def conf_fused_cpu():
    from lpcheck import fused

    return [
        check_path("LPSGDM", "fused", torch.float32, 1e-5, examples=2, runner=run_fused_traced),
        check_path("LPSGD", "fused", torch.float64, 1e-12, examples=2, runner=run_fused_traced),
        check_resume(paths=("fused",), classes=("LPSGDM",), examples=2, runner=run_fused_traced),
        check_pow_neg(lambda x, neg_rho: fused.pow_neg_f32(x, neg_rho)),
        check_low_precision_paths(
            "LPSGDM", ("fused", "foreach"), steps=range(1), zero=True, runner=run_fused_traced
        ),
    ]


def _triton_missing() -> str:
    """Why the Triton kernel cannot run here ('' when it can: CUDA, or the interpreter on CPU)."""
    try:
        import triton  # noqa: F401
    except ImportError as e:
        return (
            f"triton is not importable ({e}); pip install triton runs the kernel in its interpreter"
        )
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        return "triton was imported without TRITON_INTERPRET=1 and there is no CUDA device"
    return ""


def run_triton(cls, momentum, path, theta0, grads, group_hps, dtype):
    """The fused step on the Triton kernel: on CUDA, or on CPU tensors in Triton's interpreter."""
    from lpcheck import fused

    if torch.cuda.is_available():
        params = [
            [torch.nn.Parameter(torch.tensor(t, dtype=dtype, device="cuda")) for t in th]
            for th in theta0
        ]
        return run(cls, momentum, "fused", theta0, grads, group_hps, dtype, params=params)
    old = fused._use_triton
    fused._use_triton = lambda device: True
    try:
        return run(cls, momentum, "fused", theta0, grads, group_hps, dtype)
    finally:
        fused._use_triton = old


@obligation(
    "conf.optim.fused_triton",
    "the Triton kernel (lpcheck/fused_triton.py; in Triton's interpreter without CUDA) of LPSGD "
    "and LPSGDM, float32, two param groups, runs Algorithms 1-2; skipped, never passed, where "
    "triton is not importable",
    "19, 21-25",
    kind="conformance",
)
def conf_fused_triton():
    missing = _triton_missing()
    if missing:
        return skipped("the Triton kernel of LPSGD/LPSGDM = Algorithms 1-2", missing)
    # float32 math; Triton 3.6's interpreter rounds lerp's multiply-add twice
    # (tests/test_fused_triton.py)
    return [
        check_path(
            c, "fused", torch.float32, 1e-4, examples=2, runner=run_triton, shapes=FUSED_SHAPES
        )
        for c in ("LPSGD", "LPSGDM")
    ]


def _shared_hyper(cls, momentum, path, theta0, grads, group_hps, dtype):
    """A mutant LPSGDM that steps every param group with group 0's hyperparameters."""
    return run(cls, momentum, path, theta0, grads, [group_hps[0]] * len(group_hps), dtype)


@control(
    "control.conf.optim_groups_share_hyperparameters",
    "an LPSGDM whose second param group runs with the "
    "first group's lr, p, eps, momentum and weight decay conforms to Algorithm 2",
    "23-25",
)
def groups_shared():
    return check_path("LPSGDM", "foreach", runner=_shared_hyper)


# --- state_dict resume
# -------------------------------------------------------------------------------------


def resumed(
    cls, momentum, path, theta0, grads, group_hps, k, dtype=torch.float64, load=True, runner=run
):
    """k steps, state_dict, a fresh optimizer on fresh parameters (the saved values) that loads it,
    then the rest of the steps."""
    import copy
    import io

    params, opt = runner(cls, momentum, path, theta0, grads, group_hps, dtype, steps=range(k))
    buf = io.BytesIO()
    torch.save(
        {"params": [[p.detach().clone() for p in ps] for ps in params], "opt": opt.state_dict()},
        buf,
    )
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    fresh = [[torch.nn.Parameter(t) for t in ps] for ps in saved["params"]]
    other = make(cls, fresh, [copy.deepcopy(h) for h in group_hps], path, momentum)
    if load:
        other.load_state_dict(saved["opt"])
    return runner(
        cls,
        momentum,
        path,
        theta0,
        grads,
        group_hps,
        dtype,
        steps=range(k, STEPS),
        opt=other,
        params=fresh,
    )[0]


def check_resume(
    load=True,
    paths=("foreach", "reference"),
    classes=("LPSGD", "LPSGDM"),
    dtype=torch.float64,
    examples=4,
    shapes=SHAPES,
    runner=run,
):
    from lpcheck import optim

    def prop(seed, k):  # every class and path at every draw
        return all(one(seed, k, c, path) for c in classes for path in paths)

    def one(seed, k, cls_name, path):
        cls, momentum = getattr(optim, cls_name), cls_name == "LPSGDM"
        theta0, grads = data(seed, len(GROUPS), shapes)
        whole, _ = runner(cls, momentum, path, theta0, grads, GROUPS, dtype)
        again = resumed(
            cls, momentum, path, theta0, grads, GROUPS, k, dtype, load=load, runner=runner
        )
        return all(torch.equal(a, b) for xs, ys in zip(whole, again) for a, b in zip(xs, ys))

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1), "k": st.integers(1, STEPS - 1)},
        statement=(
            "k steps, state_dict, torch.save/load, a fresh optimizer that loads it, the other "
            f"{STEPS} - k steps (set_epoch at each epoch) = {STEPS} uninterrupted steps, bit for "
            f"bit, {'/'.join(classes)} on the {'/'.join(paths)} paths, {dtype}, two param groups"
        ),
        tolerance="bit-equal",
        max_examples=examples,
    )


@obligation(
    "conf.optim.resume",
    "LPSGD and LPSGDM resumed from a state dict (foreach and per-tensor paths; the fused path in "
    "conf.optim.fused_cpu; two param groups) continue bit-equal to an uninterrupted run",
    "23, 25",
    kind="conformance",
)
def conf_resume():
    return check_resume()


@control(
    "control.conf.resume_without_state",
    "a resume that builds the fresh optimizer but does not load the "
    "state dict (m and the epoch start over) is bit-equal to the uninterrupted run",
    "23",
)
def resume_without_state():
    return check_resume(load=False, paths=("foreach",))


# --- eq. 10 and eq. 21 at p = 2 and p = inf
# ---------------------------------------------------------------


def check_limits(lp):
    def prop(seed, lr, eps):
        rng = np.random.default_rng(seed)
        g = rng.standard_normal(7) * 10.0 ** rng.uniform(-4, 3, 7)
        g[rng.random(7) < 0.2] = 0.0
        if not g.any():
            g[0] = 1.0
        l1, linf = np.abs(g).sum(), np.abs(g).max()
        ok = np.allclose(
            lp.steepest_descent(g, 2.0, lr), -lr * g, rtol=1e-14, atol=0
        )  # eq. 10 at p = 2
        ok &= np.allclose(
            lp.steepest_descent(g, math.inf, lr), -lr * l1 * np.sign(g), rtol=1e-14, atol=0
        )  # sign
        ok &= np.array_equal(lp.rescale(g, 2.0, eps), g)  # eq. 21 at rho = 0
        ok &= np.allclose(
            lp.rescale(g, math.inf, eps), g / (np.abs(g) + eps), rtol=1e-14, atol=0
        )  # rho = 1
        ok &= math.isclose(lp.lp_norm(g, math.inf), linf, rel_tol=1e-15)
        ok &= math.isclose(lp.lp_norm(g, 1.0), l1, rel_tol=1e-14)
        ok &= lp.dual_exponent(math.inf) == 1.0 and lp.dual_exponent(2.0) == 2.0
        ok &= lp.rho(2.0) == 0.0 and lp.rho(math.inf) == 1.0
        return bool(ok)

    return numeric_forall(
        prop,
        {
            "seed": st.integers(0, 2**32 - 1),
            "lr": st.floats(1e-3, 10.0),
            "eps": st.sampled_from([1e-12, 1e-8, 1e-3, 1.0]),
        },
        statement="eq. 10 at p = 2 is -lr g and at p = inf is -lr ||g||_1 sign(g); eq. 21 at "
        "p = 2 is g and at p = inf g/(|g| + eps); ||g||_inf = max |g_i|; q(inf) = 1, "
        "q(2) = 2; rho(2) = 0, rho(inf) = 1",
        tolerance="1e-14 relative",
        max_examples=40,
    )


@obligation(
    "conf.lp.limits",
    "lpcheck.lp at p = 2 and p = inf: eq. 10 is gradient descent and sign descent "
    "(scaled by ||g||_1), eq. 21 the identity and g/(|g| + eps)",
    "10, 20, 21",
    kind="conformance",
)
def conf_limits():
    from lpcheck import lp

    return check_limits(lp)


class _NoL1:
    """A mutant of lpcheck.lp whose eq. 10 at p = inf is the plain sign (||g||_1 dropped)."""

    def __getattr__(self, name):
        from lpcheck import lp

        return getattr(lp, name)

    @staticmethod
    def steepest_descent(g, p, lr=1.0):
        from lpcheck import lp

        return -lr * np.sign(g) if p == math.inf else lp.steepest_descent(g, p, lr)


@control(
    "control.conf.limits_sign_without_l1",
    "eq. 10 at p = inf as -lr sign(g) (without ||g||_1) conforms",
    "10",
)
def limits_no_l1():
    return check_limits(_NoL1())


# --- the method layer
# -------------------------------------------------------------------------------------


def _adam(g, st_, hp):
    b1, b2 = hp["betas"]
    t = st_.get("t", 0) + 1
    m = b1 * st_.get("m", 0.0) + (1 - b1) * g
    v = b2 * st_.get("v", 0.0) + (1 - b2) * g * g
    d = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + hp["eps"])
    return d, {"t": t, "m": m, "v": v}


def _lion(g, st_, hp):
    """Lion (Chen et al. 2023, Program 1): d = sign(beta1 m + (1 - beta1) g), then m = beta2 m + (1
    - beta2) g."""
    b1, b2 = hp["betas"]
    m = st_.get("m", 0.0)
    return np.sign(b1 * m + (1 - b1) * g), {"m": b2 * m + (1 - b2) * g}


def _rmsprop(g, st_, hp):
    """torch.optim.RMSprop: v = alpha v + (1 - alpha) g^2; centered: minus the square of the EMA of
    g; d = g / (sqrt(.) + eps), or with momentum mu the buffer b = mu b + g / (sqrt(.) + eps)."""
    a, mu = hp["alpha"], hp["momentum"]
    new = {"v": a * st_.get("v", 0.0) + (1 - a) * g * g}
    second = new["v"]
    if hp["centered"]:
        new["gbar"] = a * st_.get("gbar", 0.0) + (1 - a) * g
        second = second - new["gbar"] ** 2
    d = g / (np.sqrt(second) + hp["eps"])
    if mu > 0:
        d = new["m"] = mu * st_.get("m", 0.0) + d
    return d, new


def _heavyball(g, st_, hp):
    """torch.optim.SGD's momentum: b = g at the first step, then b = mu b + (1 - dampening) g; d =
    b, or g + mu b (nesterov)."""
    mu = hp["momentum"]
    m = g if "m" not in st_ else mu * st_["m"] + (1 - hp["dampening"]) * g
    return (g + mu * m if hp["nesterov"] else m), {"m": m}


def _ema(g, st_, beta):
    return beta * st_.get("m", 0.0) + (1 - beta) * g


def _lp_dir(d, p, eps):
    return d / (np.abs(d) + eps) ** rho_of(p)


def _steepest(g, p):
    q = 1.0 if p == math.inf else p / (p - 1)
    nq = (np.abs(g) ** q).sum() ** (1 / q)
    r = rho_of(p)
    return nq**r * np.sign(g) * np.abs(g) ** (1 - r)  # eq. 10 with lr = 1, as a descent direction


# name, hp, reference: (g, state, hp) -> (direction, state), for the parameters as one flat vector
METHOD_CASES = [
    ("lpsgd", dict(p=5.0, eps=1e-6), lambda g, s, hp: (_lp_dir(g, hp["p"], hp["eps"]), s)),
    (
        "lpsgdm",
        dict(p=3.0, eps=1e-3, momentum=0.7),
        lambda g, s, hp: (lambda m: (_lp_dir(m, hp["p"], hp["eps"]), {"m": m}))(
            _ema(g, s, hp["momentum"])
        ),
    ),
    ("sgd", {}, lambda g, s, hp: (g, s)),
    (
        "sgdm",
        dict(momentum=0.3),
        lambda g, s, hp: (lambda m: (m, {"m": m}))(_ema(g, s, hp["momentum"])),
    ),
    (
        "sign",
        dict(momentum=0.5),
        lambda g, s, hp: (lambda m: (np.sign(m), {"m": m}))(_ema(g, s, hp["momentum"])),
    ),
    ("steepest", dict(p=4.0), lambda g, s, hp: (_steepest(g, hp["p"]), s)),
    ("adam", dict(betas=(0.8, 0.95), eps=1e-6), _adam),
    ("lion", dict(betas=(0.8, 0.95)), _lion),
    ("rmsprop", dict(alpha=0.95, eps=1e-6), _rmsprop),
    ("rmsprop", dict(alpha=0.9, eps=1e-6, momentum=0.5, centered=True), _rmsprop),
    ("heavyball", dict(momentum=0.7, dampening=0.2), _heavyball),
    ("heavyball", dict(momentum=0.6, nesterov=True), _heavyball),
]


STATE_KEYS = {
    "momentum_buffer": "m",
    "exp_avg": "m",
    "exp_avg_sq": "v",
    "square_avg": "v",
    "grad_avg": "gbar",
}  # lpcheck's state -> the reference's


def check_methods(make, cases=METHOD_CASES):
    def prop(seed):  # every case at every seed: a drawn case index can miss one
        return all(one(seed, case) for case in cases)

    def one(seed, case):
        name, hp, ref = case
        rng = np.random.default_rng(seed)
        method = make(name, **hp)
        params = [torch.zeros(s, dtype=torch.float64) for s in SHAPES]
        state, mine = method.init(params), {}
        for _ in range(4):
            gs = [rng.standard_normal(s) * 10.0 ** rng.uniform(-3, 2) for s in SHAPES]
            d, state = method.update([torch.tensor(g) for g in gs], state)
            want, mine = ref(np.concatenate([g.ravel() for g in gs]), mine, method.hp)
            got = np.concatenate([x.numpy().ravel() for x in d])
            if not np.allclose(got, want, rtol=1e-12, atol=1e-300):
                return False
            for (
                key,
                mkey,
            ) in STATE_KEYS.items():  # the state too: the estimators condition on it (eq. 43-44)
                if key in state and not np.allclose(
                    np.concatenate([x.numpy().ravel() for x in state[key]]),
                    mine[mkey],
                    rtol=1e-12,
                    atol=1e-300,
                ):
                    return False
        return True

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1)},
        statement="4 steps of lpcheck.methods.make(name, **hp).update (direction and state) = the "
        f"method written by hand in numpy for {[c[0] for c in cases]} (eq. 21, 23-24, 10; "
        "Adam, Signum, SGDM, Lion, RMSProp, heavy ball)",
        tolerance="1e-12 relative",
        max_examples=5,
    )


def _torch_defaults(cls, *keys):
    """The defaults torch's optimizer declares in its signature: the reference, not a copy of it."""
    sig = inspect.signature(cls.__init__).parameters
    return {k: sig[k].default for k in keys}


def published_defaults() -> dict:
    """Each built-in's defaults as its reference publishes them: Adam and RMSProp torch's own
    (read from torch.optim's signatures), the heavy ball torch.optim.SGD's dampening and nesterov,
    and Lion Chen et al.'s Program 1 (beta1 = 0.9, beta2 = 0.99, as lion-pytorch)."""
    return {
        "adam": _torch_defaults(torch.optim.Adam, "betas", "eps", "amsgrad"),
        "rmsprop": _torch_defaults(torch.optim.RMSprop, "alpha", "eps", "momentum", "centered"),
        "heavyball": _torch_defaults(torch.optim.SGD, "dampening", "nesterov"),
        "lion": {"betas": (0.9, 0.99)},
    }


def check_method_defaults(make, published=None):
    """A built-in made without hyperparameters runs with its reference's defaults: the directions
    above are checked at given hyperparameters, so a wrong default (Lion's beta2 = 0.999, Adam's)
    would pass them."""
    published = published_defaults() if published is None else published

    def prop(name):
        hp = make(name).hp
        return all(
            tuple(hp[k]) == tuple(v) if isinstance(v, tuple) else hp[k] == v
            for k, v in published[name].items()
        )

    return numeric_forall(
        prop,
        {"name": st.sampled_from(sorted(published))},
        statement="lpcheck.methods.make(name).hp = the published defaults of "
        f"{sorted(published)} (torch.optim's signatures; Lion: Chen et al. 2023, Program 1)",
        tolerance="exact",
        max_examples=4 * len(published),  # sampled_from: every name is drawn
    )


# which parameters get a gradient at each of the 5 steps: parameter 1 skips two, so the two keep
# their own counts
OWN_STEPS = [(0, 1), (0,), (0, 1), (0,), (0, 1)]


def check_adam_own_steps(make):
    """Adam where parameters have taken different numbers of steps (a parameter without a gradient
    at a step, as torch.optim.Adam and `as_optimizer` skip it): each parameter's bias corrections
    use its own t."""

    def prop(seed):
        rng = np.random.default_rng(seed)
        method = make("adam", betas=(0.8, 0.95), eps=1e-3)
        params = [torch.zeros(s, dtype=torch.float64) for s in SHAPES]
        state, mine = method.init(params), [{}, {}]
        for members in OWN_STEPS:
            gs = {i: rng.standard_normal(SHAPES[i]) * 10.0 ** rng.uniform(-3, 1) for i in members}
            sub = {k: [v[i] for i in members] for k, v in state.items()}
            d, new = method.update([torch.tensor(gs[i]) for i in members], sub)
            for j, i in enumerate(members):
                for k in state:
                    state[k][i] = new[k][j]
                want, mine[i] = _adam(gs[i].ravel(), mine[i], method.hp)
                if not np.allclose(d[j].numpy().ravel(), want, rtol=1e-12, atol=1e-300):
                    return False
        return True

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1)},
        statement="lpcheck.methods.make('adam').update with parameters that skip steps (5 steps, "
        "parameter 1 "
        "without a gradient at 2 of them) = Adam by hand in numpy, each parameter with its own "
        "step count t",
        tolerance="1e-12 relative",
        max_examples=5,
    )


def check_as_optimizer(methods):
    """Any method as a torch optimizer (`as_optimizer`): theta <- (1 - lr lambda) theta - lr d
    (decoupled decay, as AdamW), and a run resumed from a state dict in a new optimizer equals the
    uninterrupted run bit for bit (Adam: its step count must survive, or the bias corrections
    restart)."""
    hp, lr, lam = dict(betas=(0.8, 0.95), eps=1e-6), 0.05, 0.3

    def prop(seed):
        rng = np.random.default_rng(seed)
        theta0 = [rng.standard_normal(s) for s in SHAPES]
        grads = [
            [rng.standard_normal(s) * 10.0 ** rng.uniform(-2, 1) for s in SHAPES] for _ in range(4)
        ]
        want, mine = np.concatenate([t.ravel() for t in theta0]), {}
        for gs in grads:
            d, mine = _adam(np.concatenate([g.ravel() for g in gs]), mine, hp)
            want = (1 - lr * lam) * want - lr * d

        def run(resume_at=None):
            ps = [torch.nn.Parameter(torch.tensor(t)) for t in theta0]
            opt = methods.as_optimizer("adam", ps, lr=lr, weight_decay=lam, **hp)
            for t, gs in enumerate(grads):
                if t == resume_at:
                    saved = copy.deepcopy(opt.state_dict())
                    ps = [torch.nn.Parameter(p.detach().clone()) for p in ps]
                    opt = methods.as_optimizer("adam", ps, lr=lr, weight_decay=lam, **hp)
                    opt.load_state_dict(saved)
                for p, g in zip(ps, gs):
                    p.grad = torch.tensor(g)
                opt.step()
            return np.concatenate([p.detach().numpy().ravel() for p in ps])

        got = run()
        return bool(np.allclose(got, want, rtol=1e-12, atol=1e-300) and np.array_equal(got, run(2)))

    return numeric_forall(
        prop,
        {"seed": st.integers(0, 2**32 - 1)},
        statement="lpcheck.methods.as_optimizer('adam', lr=0.05, weight_decay=0.3): 4 steps = "
        "theta <- (1 - lr "
        "lambda) theta - lr d_Adam by hand in numpy; resumed after 2 steps from a state dict in a "
        "new optimizer = the uninterrupted run, bit for bit",
        tolerance="1e-12 relative; the resumed run exactly",
        max_examples=3,
    )


@obligation(
    "conf.methods",
    "the method layer's built-ins (lpsgd, lpsgdm, sgd, sgdm, sign, steepest, adam, lion, rmsprop, "
    "heavyball) compute their published directions, state included, with their published "
    "defaults; Adam also where parameters took different numbers of steps; any of them as a torch "
    "optimizer (decoupled decay, state dict resume)",
    "10, 21, 23, 24",
    kind="conformance",
)
def conf_methods():
    from lpcheck import methods

    return [
        check_methods(methods.make),
        check_adam_own_steps(methods.make),
        check_as_optimizer(methods),
        check_method_defaults(methods.make),
    ]


@control(
    "control.conf.methods_lion_default_beta2",
    "Lion made without hyperparameters with Adam's beta2 = 0.999 has the published defaults",
)
def methods_lion_adam_beta2():
    from lpcheck import methods

    def make(name, **hp):
        m = methods.make(name, **hp)
        if name == "lion" and not hp:
            m.hp["betas"] = (m.hp["betas"][0], 0.999)
        return m

    return check_method_defaults(make)


@control(
    "control.conf.methods_lpsgdm_torch_momentum",
    "an lpsgdm method with torch's momentum m = beta m + g conforms to eq. 23-24",
    "23",
)
def methods_torch_momentum():
    from lpcheck import methods

    def make(name, **hp):
        m = methods.make(name, **hp)
        if name == "lpsgdm":
            upd = m.update

            def update(grads, state):
                b = m.hp["momentum"]
                grads = [
                    g / (1 - b) for g in grads
                ]  # then beta m + (1 - beta) g/(1 - beta) = beta m + g
                return upd(grads, state)

            m.update = update
        return m

    return check_methods(make, [METHOD_CASES[1]])  # the lpsgdm case alone
