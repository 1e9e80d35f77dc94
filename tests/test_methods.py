"""lpcheck.methods: one table of method cases that every test runs (torch.optim's test style).

Each case is (method spec, hyperparameters, lr, weight decay, reference): the reference is an
independent implementation (torch's own optimizers, lion-pytorch, lpcheck.optim, or the papers'
formulas written out here in numpy), stepped on the same gradients from the same start. Every test
below runs every case. `python tests/test_methods.py` prints the largest difference from each
reference (the numbers quoted in the report).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from lpcheck import lp, optim
from lpcheck import methods as M
from lpcheck.baselines import Lion

SHAPES = [(4, 3), (5,), (2, 3, 2)]  # a matrix, a vector, a conv-like tensor
STEPS = 12


def _start(seed=0, shapes=SHAPES):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]


def _grad_seq(seed=1, steps=STEPS, shapes=SHAPES):
    g = torch.Generator().manual_seed(seed)
    return [
        [torch.randn(s, generator=g, dtype=torch.float64) * (1 + t % 3) for s in shapes]
        for t in range(steps)
    ]


# ---------------------------------------------------------------------------------------------
# references


def torch_ref(cls, **kw):
    """A torch.optim-style optimizer class stepped on copies of the start: the trajectory of
    theta."""

    def run(theta0, grads, lr, wd):
        params = [torch.nn.Parameter(t.clone()) for t in theta0]
        opt = cls(params, lr=lr, **kw)
        out = []
        for gs in grads:
            for p, g in zip(params, gs):
                p.grad = g.clone()
            opt.step()
            out.append([p.detach().clone() for p in params])
        return out

    run.torch_class = (cls, kw)
    run.label = getattr(cls, "label", f"{'.'.join(cls.__module__.split('.')[:2])}.{cls.__name__}")
    return run


def numpy_ref(direction_fn, state_fn=None, label="numpy formula"):
    """theta <- (1 - lr wd) theta - lr d, with d = direction_fn(g, state, theta, t) written in numpy
    here."""

    def run(theta0, grads, lr, wd):
        theta = [t.numpy().copy() for t in theta0]
        state = state_fn(theta) if state_fn else {}
        out = []
        for t, gs in enumerate(grads):
            d = direction_fn([g.numpy() for g in gs], state, theta, t)
            theta = [(1 - lr * wd) * th - lr * di for th, di in zip(theta, d)]
            out.append([torch.from_numpy(th.copy()) for th in theta])
        return out

    run.label = label
    return run


def _zeros(theta):
    return {"m": [np.zeros_like(t) for t in theta]}


def ema_np(beta):
    def d(gs, st, theta, t):
        st["m"] = [beta * m + (1 - beta) * g for m, g in zip(st["m"], gs)]
        return [m.copy() for m in st["m"]]

    return numpy_ref(d, _zeros, "numpy: eq. 23")


def sign_np(beta):
    def d(gs, st, theta, t):
        if beta == 0:
            return [np.sign(g) for g in gs]
        st["m"] = [beta * m + (1 - beta) * g for m, g in zip(st["m"], gs)]
        return [np.sign(m) for m in st["m"]]

    return numpy_ref(d, _zeros, "numpy: sign / Signum")


def steepest_np(p):
    """eq. 10 on the concatenation, through lpcheck.lp.steepest_descent (the function the proof gate
    ties to eq. 10)."""

    def d(gs, st, theta, t):
        flat = np.concatenate([g.ravel() for g in gs])
        step = -lp.steepest_descent(flat, p, lr=1.0)
        out, at = [], 0
        for g in gs:
            out.append(step[at : at + g.size].reshape(g.shape))
            at += g.size
        return out

    return numpy_ref(d, label="lpcheck.lp.steepest_descent")


def _uv(g):
    """U V^T of g as a (shape[0], rest) matrix, numpy's SVD."""
    m = g.reshape(g.shape[0], -1) if g.ndim >= 2 else None
    U, _, Vt = np.linalg.svd(m, full_matrices=False)
    return (U @ Vt).reshape(g.shape)


def _ns(g, steps=5):
    """Muon's quintic Newton-Schulz iteration, written here from its definition."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = g.reshape(g.shape[0], -1)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    X = X / (np.linalg.norm(X) + 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return (X.T if tall else X).reshape(g.shape)


def _unit_lmo_dir(g, solver, vector):
    """-lmo of the unit layer ball, per tensor: U V^T / NS for matrices; sign, g/||g||, sqrt(n)
    g/||g|| for vectors."""
    if g.ndim >= 2:
        return _uv(g) if solver == "svd" else _ns(g)
    if vector == "sign":
        return np.sign(g)
    n = np.linalg.norm(g)
    return g / n * (math.sqrt(g.size) if vector == "rms" else 1.0)


def scion_np(beta, radius=1.0, solver="svd", vector="sign"):
    """Scion's update rule (LIONS-EPFL/scion, Scion.step): buf = (1 - a) buf + a g with
    a = 1 - beta, update = radius * lmo(buf), theta -= lr update (and theta *= 1 - lr first when
    constrained: weight decay 1)."""

    def d(gs, st, theta, t):
        st["m"] = [m * (1 - (1 - beta)) + (1 - beta) * g for m, g in zip(st["m"], gs)]
        return [radius * _unit_lmo_dir(m, solver, vector) for m in st["m"]]

    return numpy_ref(
        d, _zeros, f"numpy {'SVD' if solver == 'svd' else 'Newton-Schulz'}, Scion's rule"
    )


def clipped_np(beta, rho, radius=1.0, solver="svd", vector="sign", constrained=False):
    """ClippedScion (arXiv 2506.01913, Algorithms 3 and 4-variant-2 as in the authors' code):
    u = radius lmo_dir(d), eta = min(1, sum <u, d> / rho) unconstrained; with s = -u:
    eta = min(1, sum <x - s, d> / rho), step eta (x - s)."""

    def d(gs, st, theta, t):
        st["m"] = [m * beta + (1 - beta) * g for m, g in zip(st["m"], gs)]
        u = [radius * _unit_lmo_dir(m, solver, vector) for m in st["m"]]
        if constrained:
            u = [th + ui for th, ui in zip(theta, u)]
        eta = min(1.0, sum(float((ui * m).sum()) for ui, m in zip(u, st["m"])) / rho)
        return [eta * ui for ui in u]

    return numpy_ref(
        d, _zeros, f"numpy {'SVD' if solver == 'svd' else 'Newton-Schulz'}, ClippedScion's rule"
    )


def _lion_pytorch(**kw):
    lion_pytorch = pytest.importorskip(
        "lion_pytorch", reason="lion-pytorch (the reference) is a test dependency"
    )
    return lion_pytorch.Lion


class _LazyLion:
    """lion_pytorch.Lion, imported when a test runs (a test dependency)."""

    __module__, __name__, label = "lion_pytorch", "Lion", "lion_pytorch.Lion"

    def __call__(self, params, **kw):
        return _lion_pytorch()(params, **kw)


# ---------------------------------------------------------------------------------------------
# the table


@dataclass
class Case:
    id: str
    spec: str
    hp: dict
    reference: Callable
    lr: float = 0.01
    wd: float = 0.0
    exact: bool = False  # the reference agrees to the last bit
    note: str = ""
    extra: dict = field(default_factory=dict)

    def method(self) -> M.Method:
        return M.make(self.spec, **self.hp)


CASES = [
    Case(
        "lpsgd p=4 (optim foreach)",
        "lpsgd",
        dict(p=4.0, eps=1e-3),
        torch_ref(optim.LPSGD, p=4.0, eps=1e-3, foreach=True),
    ),
    Case(
        "lpsgd p=4 (optim per-tensor)",
        "lpsgd",
        dict(p=4.0, eps=1e-3),
        torch_ref(optim.LPSGD, p=4.0, eps=1e-3, foreach=False),
    ),
    Case(
        "lpsgd p=inf",
        "lpsgd",
        dict(p=math.inf, eps=1e-2),
        torch_ref(optim.LPSGD, p=math.inf, eps=1e-2, foreach=False),
    ),
    Case(
        "lpsgd p=2", "lpsgd", dict(p=2.0), torch_ref(optim.LPSGD, p=2.0, foreach=False), exact=True
    ),
    Case(
        "lpsgdm beta=0.8 wd (optim foreach)",
        "lpsgdm",
        dict(p=5.0, eps=1e-3, momentum=0.8),
        torch_ref(optim.LPSGDM, p=5.0, eps=1e-3, momentum=0.8, weight_decay=0.5, foreach=True),
        wd=0.5,
    ),
    Case(
        "lpsgdm beta=0.3 wd (optim per-tensor)",
        "lpsgdm",
        dict(p=3.0, eps=1e-3, momentum=0.3),
        torch_ref(optim.LPSGDM, p=3.0, eps=1e-3, momentum=0.3, weight_decay=0.5, foreach=False),
        wd=0.5,
    ),
    Case("sgd (torch SGD)", "sgd", {}, torch_ref(torch.optim.SGD), exact=True),
    Case("sgdm EMA eq. 23 (numpy)", "sgdm", dict(momentum=0.9), ema_np(0.9)),
    Case(
        "heavyball (torch SGD momentum)",
        "heavyball",
        dict(momentum=0.9),
        torch_ref(torch.optim.SGD, momentum=0.9),
    ),
    Case(
        "heavyball dampening (torch SGD)",
        "heavyball",
        dict(momentum=0.8, dampening=0.5),
        torch_ref(torch.optim.SGD, momentum=0.8, dampening=0.5),
    ),
    Case(
        "heavyball nesterov (torch SGD)",
        "heavyball",
        dict(momentum=0.9, nesterov=True),
        torch_ref(torch.optim.SGD, momentum=0.9, nesterov=True),
    ),
    Case("sign (numpy)", "sign", {}, sign_np(0.0), exact=True),
    Case("signum (numpy)", "sign", dict(momentum=0.9), sign_np(0.9), wd=0.3),
    Case(
        "lion (lion-pytorch)",
        "lion",
        dict(betas=(0.9, 0.99)),
        torch_ref(_LazyLion(), betas=(0.9, 0.99), weight_decay=0.1),
        wd=0.1,
        exact=True,
    ),
    Case(
        "lion (lpcheck.baselines.Lion)",
        "lion",
        dict(betas=(0.8, 0.9)),
        torch_ref(Lion, betas=(0.8, 0.9), weight_decay=0.2),
        wd=0.2,
        exact=True,
    ),
    Case("steepest p=3 (lp.steepest_descent)", "steepest", dict(p=3.0), steepest_np(3.0)),
    Case(
        "steepest p=inf (lp.steepest_descent)", "steepest", dict(p=math.inf), steepest_np(math.inf)
    ),
    Case("steepest p=1.5 (lp.steepest_descent)", "steepest", dict(p=1.5), steepest_np(1.5)),
    Case("adam (torch Adam)", "adam", {}, torch_ref(torch.optim.Adam)),
    Case(
        "adam amsgrad (torch Adam)",
        "adam",
        dict(amsgrad=True, eps=1e-3, betas=(0.8, 0.9)),
        torch_ref(torch.optim.Adam, amsgrad=True, eps=1e-3, betas=(0.8, 0.9)),
    ),
    Case(
        "adamw (torch AdamW)",
        "adam",
        dict(eps=1e-6),
        torch_ref(torch.optim.AdamW, eps=1e-6, weight_decay=0.2),
        wd=0.2,
    ),
    Case("rmsprop (torch RMSprop)", "rmsprop", {}, torch_ref(torch.optim.RMSprop)),
    Case(
        "rmsprop centered momentum (torch RMSprop)",
        "rmsprop",
        dict(alpha=0.9, centered=True, momentum=0.5, eps=1e-4),
        torch_ref(torch.optim.RMSprop, alpha=0.9, centered=True, momentum=0.5, eps=1e-4),
    ),
    Case(
        "scion svd (numpy SVD, Scion's rule)",
        "scion",
        dict(solver="svd", radius=2.0, momentum=0.9),
        scion_np(0.9, 2.0, "svd"),
    ),
    Case(
        "scion newton-schulz constrained (Scion's rule)",
        "scion",
        dict(solver="newton_schulz", momentum=0.5),
        scion_np(0.5, 1.0, "newton_schulz"),
        wd=1.0,
        lr=0.05,
    ),
    Case(
        "scion l2 vectors (numpy)",
        "scion",
        dict(solver="svd", vector="l2", momentum=0.0),
        scion_np(0.0, 1.0, "svd", "l2"),
    ),
    Case(
        "scion rms vectors (numpy)",
        "scion",
        dict(solver="svd", vector="rms", momentum=0.2),
        scion_np(0.2, 1.0, "svd", "rms"),
    ),
    Case(
        "clipped alg. 3 (numpy)",
        "clipped",
        dict(solver="svd", rho=12.0, momentum=0.5),
        clipped_np(0.5, 12.0),
    ),
    Case(
        "clipped alg. 3 newton-schulz (numpy)",
        "clipped",
        dict(solver="newton_schulz", rho=30.0, momentum=0.0, radius=2.0),
        clipped_np(0.0, 30.0, 2.0, "newton_schulz"),
    ),
    Case(
        "clipped alg. 4 constrained (numpy)",
        "clipped",
        dict(solver="svd", rho=20.0, momentum=0.9, constrained=True, radius=3.0),
        clipped_np(0.9, 20.0, 3.0, constrained=True),
    ),
]
IDS = [c.id for c in CASES]


def run_layer(method, theta0, grads, lr, wd):
    """The layer's own loop: theta <- (1 - lr wd) theta - lr d, d from update (the state threaded
    through)."""
    theta = [t.clone() for t in theta0]
    state = method.init(theta)
    out = []
    for gs in grads:
        d, state = method.update(gs, state, params=theta)
        theta = [
            t.mul(1 - lr * wd).add_(di, alpha=-lr) if wd else t.add(di, alpha=-lr)
            for t, di in zip(theta, d)
        ]
        out.append([t.clone() for t in theta])
    return out


def max_difference(case, seed=0):
    """(max |theta_layer - theta_ref| over the run, the same in units of lr, the largest |theta|
    step)."""
    theta0, grads = _start(seed), _grad_seq(seed + 1)
    ours = run_layer(case.method(), theta0, grads, case.lr, case.wd)
    ref = case.reference(theta0, grads, case.lr, case.wd)
    diff = max(
        float((a - b.to(a.dtype)).abs().max()) for xs, ys in zip(ours, ref) for a, b in zip(xs, ys)
    )
    return diff, diff / case.lr, ours, ref


# ---------------------------------------------------------------------------------------------
# the tests every case runs


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_its_reference_step_for_step(case):
    diff, _, ours, ref = max_difference(case)
    moved = max(float((a - b).abs().max()) for a, b in zip(ours[-1], _start()))
    assert moved > 10 * case.lr * 0.1, "the run must move theta (else the comparison shows nothing)"
    if case.exact:
        assert diff == 0.0, f"{case.id}: differs from its reference by {diff:.3g}"
    else:
        assert diff <= 1e-12 * max(1.0, moved), (
            f"{case.id}: differs from its reference by {diff:.3g}"
        )


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_update_changes_no_input(case):
    method, theta = case.method(), _start()
    state = method.init(theta)
    for gs in _grad_seq(steps=2):  # a second step from a non-zero state
        before = (
            [g.clone() for g in gs],
            {k: [t.clone() for t in v] for k, v in state.items()},
            [t.clone() for t in theta],
        )
        _, new = method.update(gs, state, params=theta)
        assert _same(before[0], gs) and _same(before[2], theta)
        assert all(_same(before[1][k], state[k]) for k in state)
        assert all(not any(n is o for n in new[k] for o in state[k]) for k in state), (
            "the new state aliases the old"
        )
        state = new


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_batched_rows_are_independent_problems(case):
    """All seeds in one tensor (a leading seed axis) == a loop over seeds, to 1e-12 in float64."""
    method, seeds = case.method(), 3
    starts = [_start(s) for s in range(seeds)]
    seqs = [_grad_seq(10 + s, steps=5) for s in range(seeds)]
    per_seed = [run_layer(method, starts[s], seqs[s], case.lr, case.wd) for s in range(seeds)]
    theta = [torch.stack([starts[s][i] for s in range(seeds)]) for i in range(len(SHAPES))]
    state = method.init(theta)
    for t in range(5):
        gs = [torch.stack([seqs[s][t][i] for s in range(seeds)]) for i in range(len(SHAPES))]
        d, state = method.update(gs, state, params=theta, batched=True)
        theta = [
            x.mul(1 - case.lr * case.wd).add_(di, alpha=-case.lr)
            if case.wd
            else x.add(di, alpha=-case.lr)
            for x, di in zip(theta, d)
        ]
        for s in range(seeds):
            for i in range(len(SHAPES)):
                torch.testing.assert_close(theta[i][s], per_seed[s][t][i], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_saves_and_loads_with_weights_only(case):
    method, theta = case.method(), _start()
    state = method.init(theta)
    grads = _grad_seq(steps=4)
    for gs in grads[:2]:
        _, state = method.update(gs, state, params=theta)
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    a, b = state, loaded
    for gs in grads[2:]:
        da, a = method.update(gs, a, params=theta)
        db, b = method.update(gs, b, params=theta)
        assert _same(da, db)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_as_optimizer_takes_the_layers_step_and_round_trips_its_state_dict(case):
    method, theta0, grads = case.method(), _start(), _grad_seq(steps=6)
    params = [torch.nn.Parameter(t.clone()) for t in theta0]
    opt = M.as_optimizer(method, params, lr=case.lr, weight_decay=case.wd)
    want = run_layer(method, theta0, grads, case.lr, case.wd)
    for t, gs in enumerate(grads):
        if t == 3:  # a checkpoint: a fresh optimizer on the same parameters continues exactly
            buf = io.BytesIO()
            torch.save(opt.state_dict(), buf)
            buf.seek(0)
            opt = M.as_optimizer(method, params, lr=case.lr, weight_decay=case.wd)
            opt.load_state_dict(torch.load(buf, weights_only=True))
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
        assert _same([p.detach() for p in params], want[t]), f"step {t}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_spec_resolves_back_to_the_same_method(case):
    method = case.method()
    assert M.resolve(method.spec()) == method
    assert M.resolve(method.spec()).hp == method.hp


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_norm_and_dual_norm_are_dual_at_the_methods_state(case):
    """<g, x> <= dual(g) norm(x) for random x, with equality at x = -lmo(g), and ||lmo(g)|| = 1."""
    method, theta = case.method(), _start()
    state = method.init(theta)
    for gs in _grad_seq(steps=3):
        _, state = method.update(gs, state, params=theta)
    norm = method.norm(state)
    g = _grad_seq(seed=7, steps=1)[0]
    gen = torch.Generator().manual_seed(3)
    dual = float(norm.dual(g))
    for _ in range(20):
        x = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in g]
        assert sum(float((a * b).sum()) for a, b in zip(g, x)) <= dual * float(norm.norm(x)) * (
            1 + 1e-12
        )
    star = [-u for u in norm.lmo(g)]
    assert sum(float((a * b).sum()) for a, b in zip(g, star)) == pytest.approx(dual, rel=1e-12)
    assert float(norm.norm(star)) == pytest.approx(1.0, rel=1e-12)
    sharp = norm.sharp(g)
    assert float(norm.norm(sharp)) == pytest.approx(dual, rel=1e-12)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if hasattr(c.reference, "torch_class")],
    ids=[c.id for c in CASES if hasattr(c.reference, "torch_class")],
)
def test_black_box_of_the_reference_optimizer_gives_the_methods_directions(case):
    """BlackBox(the torch optimizer) reads the same direction as the built-in, step after step, with
    decoupled weight decay (AdamW, LPSGDM, Lion) separated from the direction."""
    cls, kw = case.reference.torch_class
    method, theta0, grads = case.method(), _start(), _grad_seq(steps=6)
    params = [torch.nn.Parameter(t.clone()) for t in theta0]
    opt = cls(params, lr=case.lr, **kw)
    box = M.from_optimizer(opt)
    state = method.init(theta0)
    for gs in grads:
        d_box, _ = box.update(gs)
        d, state = method.update(gs, state, params=[p.detach() for p in params])
        for a, b in zip(d_box, d):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(f"{'case':48s} {'reference':40s} {'max |dtheta|':>12s} {'/ lr':>10s}")
    for c in CASES:
        diff, per_lr, _, _ = max_difference(c)
        print(f"{c.id:48s} {c.reference.label:40s} {diff:12.3g} {per_lr:10.3g}")


@pytest.mark.gpu
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cuda_batched_run_matches_the_cpu(case):
    """Every method on CUDA tensors (float64, batched, step counts on the CPU), and its black box
    where the reference is a torch optimizer: the same numbers as on the CPU, to 1e-10."""
    method, seeds = case.method(), 3
    starts = [_start(s) for s in range(seeds)]
    theta = [torch.stack([starts[s][i] for s in range(seeds)]) for i in range(len(SHAPES))]
    out = {}
    for device in ("cpu", "cuda"):
        x = [t.to(device) for t in theta]
        state = method.init(x)
        for gs in _grad_seq(steps=4):
            g = [torch.stack([gi * (s + 1) for s in range(seeds)]).to(device) for gi in gs]
            d, state = method.update(g, state, params=x, batched=True)
            x = [xi.mul(1 - case.lr * case.wd).add_(di, alpha=-case.lr) for xi, di in zip(x, d)]
        out[device] = x
    for a, b in zip(out["cpu"], out["cuda"]):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-10, atol=1e-12)
    if hasattr(case.reference, "torch_class"):
        cls, kw = case.reference.torch_class
        params = [torch.nn.Parameter(t.clone().cuda()) for t in _start()]
        g = [t.cuda() for t in _grad_seq(steps=1)[0]]
        d, _ = M.from_optimizer(cls(params, lr=case.lr, **kw)).update(g)
        want, _ = method.update(g, method.init(params), params=[p.detach() for p in params])
        for a, b in zip(d, want):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    "name, hp",
    [
        ("lpsgdm", {"p": 4.0, "momentum": 0.7}),
        ("sgdm", {"momentum": 0.3}),
        ("sign", {"momentum": 0.5}),
        ("lion", {}),
    ],
)
def test_the_momentum_state_is_the_ema_of_eq23(name, hp):
    # the state, not only the direction: sign(m) cannot tell beta m + (1 - beta) g from beta m + g
    # (the same direction up to a positive factor), but the estimators condition on the buffer (eq.
    # 43-44)
    method = M.make(name, **hp)
    beta = method.hp.get("momentum", method.hp.get("betas", (None, None))[1])
    state, m = method.init(_start()), [torch.zeros(s, dtype=torch.float64) for s in SHAPES]
    for gs in _grad_seq(steps=4):
        _, state = method.update(gs, state)
        m = [beta * a + (1 - beta) * g for a, g in zip(m, gs)]
        for got, want in zip(
            state["momentum_buffer"] if "momentum_buffer" in state else state["exp_avg"], m
        ):
            torch.testing.assert_close(got, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adams_direction_is_the_sharp_of_its_momentum_in_its_own_norm(amsgrad):
    """Adam's step d = m^ / (sqrt(v^) + eps) is m^'s steepest-descent direction in the ellipsoid a =
    sqrt(v^) + eps that `norm(state)` returns (with amsgrad, v^ is the running max its step divides
    by): the estimators measure the direction in that norm. Gradients that shrink after the first
    step keep max v apart from v."""
    method = M.make("adam", betas=(0.8, 0.9), eps=1e-3, amsgrad=amsgrad)
    theta = _start()
    state = method.init(theta)
    for t, gs in enumerate(_grad_seq(steps=4)):
        gs = [g * (10.0 if t == 0 else 0.1) for g in gs]
        d, state = method.update(gs, state, params=theta)
        m_hat = [m / (1 - 0.8 ** (t + 1)) for m in state["exp_avg"]]
        for got, want in zip(d, method.norm(state).sharp(m_hat)):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
