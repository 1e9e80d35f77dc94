"""The Probe on any method (issue 15, item 2): one table of optimizer cases that every test runs.

Each case is a torch optimizer: lpcheck's LPSGD/LPSGDM, torch's SGD/Adam/AdamW/RMSprop, both Lions,
`as_optimizer` built-ins, an optimizer class defined here (the black box) and one the layer cannot
take (maximize=True: the black box as a fallback). The tests hold the probe to independent
references:
- the direction it uses is the optimizer's own step (opt.step() on a deep copy, same gradient);
- its statistics equal a numpy computation in the stated norm (a linear model: gradients in closed
  form);
- it leaves model, optimizer and RNG as they were; the norm override and the fit do what they say.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from lpcheck import grads
from lpcheck import methods as M
from lpcheck.baselines import Lion
from lpcheck.estimate import core, directions, fit
from lpcheck.estimate.probe import Probe
from lpcheck.optim import LPSGD, LPSGDM

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

N, B = 48, 8  # 6 blocks
ROOT = Path(__file__).resolve().parents[1]


class Toy(torch.optim.Optimizer):
    """A class lpcheck has never seen: a stateful, non-elementwise step (per-tensor normalised,
    1/sqrt(n) decay)."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                st["n"] = st.get("n", 0) + 1
                p.add_(p.grad / (p.grad.norm() + 1e-3) * st["n"] ** -0.5, alpha=-group["lr"])


def _lion_pytorch(params, **kw):
    lion_pytorch = pytest.importorskip("lion_pytorch", reason="lion-pytorch is a test dependency")
    return lion_pytorch.Lion(params, **kw)


@dataclass
class Case:
    id: str
    build: Callable  # params -> optimizer
    method: str  # the plan's method name
    norm: str  # the start of its norm's name
    source: str = "layer"
    bounded: bool = False


CASES = [
    Case("LPSGD p=6", lambda ps: LPSGD(ps, lr=0.05, p=6.0), "lpsgd", "lp:6"),
    Case(
        "LPSGDM p=4 wd", lambda ps: LPSGDM(ps, lr=0.05, p=4.0, weight_decay=0.1), "lpsgdm", "lp:4"
    ),
    Case("SGD", lambda ps: torch.optim.SGD(ps, lr=0.1), "sgd", "l2"),
    Case(
        "SGD momentum dampening",
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.8, dampening=0.3),
        "heavyball",
        "l2",
    ),
    Case(
        "SGD nesterov coupled wd",
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
        "heavyball",
        "l2",
    ),
    Case(
        "Adam coupled wd",
        lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.05),
        "adam",
        "ellipsoidal",
    ),
    Case(
        "AdamW", lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1), "adam", "ellipsoidal"
    ),
    Case(
        "Adam amsgrad",
        lambda ps: torch.optim.Adam(ps, lr=0.01, amsgrad=True, betas=(0.8, 0.9)),
        "adam",
        "ellipsoidal",
    ),
    Case(
        "RMSprop centered momentum wd",
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True, weight_decay=0.01),
        "rmsprop",
        "ellipsoidal",
    ),
    Case(
        "lpcheck Lion", lambda ps: Lion(ps, lr=1e-3, weight_decay=0.5), "lion", "linf", bounded=True
    ),
    Case(
        "lion_pytorch Lion",
        lambda ps: _lion_pytorch(ps, lr=1e-3, weight_decay=0.5),
        "lion",
        "linf",
        bounded=True,
    ),
    Case(
        "as_optimizer sgdm",
        lambda ps: M.as_optimizer("sgdm:momentum=0.7", ps, lr=0.05),
        "sgdm",
        "l2",
    ),
    Case(
        "as_optimizer signum",
        lambda ps: M.as_optimizer("sign:momentum=0.9", ps, lr=1e-3),
        "sign",
        "linf",
        bounded=True,
    ),
    Case(
        "as_optimizer steepest p=4",
        lambda ps: M.as_optimizer("steepest:p=4", ps, lr=0.05),
        "steepest",
        "lp:4",
    ),
    Case(
        "as_optimizer scion svd",
        lambda ps: M.as_optimizer("scion:solver=svd", ps, lr=0.01, weight_decay=0.1),
        "scion",
        "layerwise",
        bounded=True,
    ),
    Case(
        "as_optimizer clipped",
        lambda ps: M.as_optimizer("clipped:solver=svd,rho=0.3", ps, lr=0.01),
        "clipped",
        "layerwise",
        bounded=True,
    ),
    Case(
        "as_optimizer clipped constrained",
        lambda ps: M.as_optimizer("clipped:solver=svd,constrained=True", ps, lr=0.01),
        "clipped",
        "layerwise",
    ),
    Case(
        "a user's class (black box)",
        lambda ps: Toy(ps, lr=0.05),
        "blackbox",
        "l2",
        source="blackbox",
    ),
    Case(
        "Adam maximize (black box fallback)",
        lambda ps: torch.optim.Adam(ps, lr=0.01, maximize=True),
        "blackbox",
        "l2",
        source="blackbox",
    ),
]
IDS = [c.id for c in CASES]


def _bn_setup(case, dtype=torch.float32, steps=3, seed=0):
    """A small BatchNorm net, its data and the case's optimizer after `steps` training steps (a real
    state)."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    ).to(dtype)
    gen = torch.Generator().manual_seed(100 + seed)
    x, y = torch.randn(N, 6, generator=gen, dtype=dtype), torch.randint(0, 3, (N,), generator=gen)
    opt = case.build(net.parameters())
    for t in range(steps):
        idx = torch.arange(t * 8 % N, t * 8 % N + 8)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
    return net, (x, y), opt


def _twin(net, opt, build):
    """A copy of the model and a new optimizer of the same kind on it, loaded with the original's
    state_dict (not copy.deepcopy: an as_optimizer optimizer loses its method there,
    torch.optim.Optimizer.__getstate__)."""
    net2 = copy.deepcopy(net)
    opt2 = build(net2.parameters())
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    return net2, opt2


def _actual_step(net, opt, flat_grad, build):
    """theta' of the optimizer's own step on a twin of (model, optimizer), .grad = flat_grad."""
    net2, opt2 = _twin(net, opt, build)
    ps = grads.parameters(net2)
    for p, g in zip(ps, grads.unflatten(flat_grad.to(ps[0].dtype), ps)):
        p.grad = g.clone()
    opt2.step()
    return grads.flat_params(ps)


# ---------------------------------------------------------------------------------------------
# the direction is the optimizer's own step


@pytest.mark.parametrize("steps", [0, 3], ids=["fresh state", "after 3 steps"])
@pytest.mark.parametrize(
    "dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_direction_is_the_optimizers_own_step(case, dtype, tol, steps):
    net, _, opt = _bn_setup(case, dtype, steps=steps)
    params = grads.parameters(net)
    plan = directions.plan(opt, params)
    assert (plan.name, plan.source, plan.bounded) == (case.method, case.source, case.bounded)
    assert repr(plan.norm).startswith(case.norm)
    theta = grads.flat_params(params)
    g = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(5), dtype=dtype)
    d = plan.direction(g, theta)
    actual = _actual_step(net, opt, g, case.build)
    # the step the probe takes with d, theta (1 - lr lambda) - lr d, is the optimizer's own step ...
    torch.testing.assert_close(plan.step(theta, d), actual, rtol=tol, atol=tol)
    # ... and d is -(theta' - (1 - lr lambda) theta) / lr with each group's decoupled lambda
    for group in plan.groups:
        for start, end in group["runs"]:
            lr, lam = group["lr"], group["weight_decay"]
            want = -(actual[start:end].double() - (1 - lr * lam) * theta[start:end].double()) / lr
            scale = (
                1.0 if dtype == torch.float64 else float(theta.abs().max()) / lr
            )  # float32 theta' rounds there
            torch.testing.assert_close(d[start:end].double(), want, rtol=tol, atol=tol * scale)
    assert torch.equal(grads.flat_params(params), theta)  # nothing moved


def test_per_group_hyperparameters_each_step_as_the_optimizer():
    """Groups that differ in lr, betas, coupled and decoupled decay: each group's direction and step
    as torch's."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    ).double()
    ps = list(net.parameters())

    def build(params):
        params = list(params)
        return torch.optim.AdamW(
            [
                {"params": params[:2], "weight_decay": 0.2, "betas": (0.5, 0.9)},
                {"params": params[2:], "lr": 0.003, "weight_decay": 0.0},
            ],
            lr=0.01,
        )

    opt = build(ps)
    x = torch.randn(8, 6, dtype=torch.float64)
    for _ in range(2):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    plan = directions.plan(opt, ps)
    assert len(plan.calls) == 2 and plan.name == "adam" and isinstance(plan.norm, M.Ellipsoidal)
    theta = grads.flat_params(ps)
    g = torch.randn(theta.numel(), dtype=torch.float64)
    torch.testing.assert_close(
        plan.step(theta, plan.direction(g, theta)),
        _actual_step(net, opt, g, build),
        rtol=1e-12,
        atol=1e-12,
    )


# ---------------------------------------------------------------------------------------------
# probing changes nothing; the step pair is the optimizer's step with sample 0's gradient


def _snapshot(net, opt):
    return copy.deepcopy(
        (
            [t.detach() for t in list(net.parameters()) + list(net.buffers())],
            [p.grad for p in net.parameters()],
            opt.state_dict(),
        )
    )


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_probe_leaves_model_optimizer_and_rng_untouched_and_steps_as_the_optimizer(
    case, monkeypatch
):
    net, data, opt = _bn_setup(case)
    probe = Probe(net, data, batch_size=B, samples=3, seed=3)
    gen_state = probe.generator.get_state()
    before = _snapshot(net, opt)
    torch.manual_seed(11)
    moved = []
    set_flat = grads.set_flat_params
    monkeypatch.setattr(
        grads, "set_flat_params", lambda ps, flat: (moved.append(flat.clone()), set_flat(ps, flat))
    )
    rec = probe.measure(opt, step=3)
    after_rng = torch.rand(2)
    torch.manual_seed(11)
    assert torch.equal(after_rng, torch.rand(2))  # the global RNG is where it was
    assert _same(
        before, _snapshot(net, opt)
    )  # bitwise: parameters, buffers, .grad, the optimizer's state_dict
    assert (rec["method"], rec["source"]) == (case.method, case.source) and rec["norm"].startswith(
        case.norm
    )
    # the step pair: the optimizer's own step from a copy, with sample 0's block gradient as .grad
    gen = torch.Generator()
    gen.set_state(gen_state)
    j = torch.randint(probe.n_blocks, (probe.samples,), generator=gen).tolist()[0]
    x, y = data
    net2, opt2 = _twin(net, opt, case.build)
    opt2.zero_grad()
    torch.nn.functional.cross_entropy(net2(x[probe.blocks[j]]), y[probe.blocks[j]]).backward()
    opt2.step()
    torch.testing.assert_close(
        moved[0], grads.flat_params(grads.parameters(net2)), rtol=1e-6, atol=1e-6
    )


def test_a_method_with_its_state_measures_as_its_optimizer():
    """A layer Method given with its state, lr and decay gives the record its as_optimizer optimizer
    gives."""
    case = Case(
        "adam",
        lambda ps: M.as_optimizer("adam:betas=(0.8,0.95)", ps, lr=0.01, weight_decay=0.1),
        "adam",
        "ellipsoidal",
    )
    net, data, opt = _bn_setup(case)
    params = grads.parameters(net)
    a = Probe(net, data, batch_size=B, samples=3, seed=2).measure(opt, step=3)
    b = Probe(net, data, batch_size=B, samples=3, seed=2).measure(
        opt.method, step=3, state=opt.method_state(params), lr=0.01, weight_decay=0.1
    )
    for k in (
        "loss",
        "grad_sq",
        "grad_norm_q",
        "samples",
        "pairs",
        "norm",
        "phi",
        "lr",
        "weight_decay",
    ):
        assert a[k] == b[k], k
    assert b["optimizer"] is None and a["optimizer"].endswith("MethodOptimizer")


# ---------------------------------------------------------------------------------------------
# the statistics in numpy, in the stated norm, on a linear model (gradients in closed form)


def _lin_data():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(N, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(N, 3, generator=gen, dtype=torch.float64)
    return x, y


def _np_loss_grad(W, b, x, y):
    """mse_loss(x W^T + b, y) (mean over the b x 3 entries) and its gradient, in numpy."""
    r = x @ W.T + b - y
    n = r.size
    return float((r * r).sum() / n), 2 * r.T @ x / n, 2 * r.sum(0) / n


def _np_norms(kind, W_like, a=None):
    """(norm, dual) of (W, b) pairs in numpy: 'l2', 'linf', 'l1', 'lp:P', 'ellipsoidal' (a = (aW,
    ab)), 'layerwise-sign' (Scion's: max(||W||_2, ||b||_inf); dual ||W||_nuc + ||b||_1),
    'spectral' (b in l2)."""

    def cat(v):
        return np.concatenate([v[0].ravel(), v[1].ravel()])

    if kind.startswith("l") and kind not in ("layerwise-sign",):
        p = {"l2": 2.0, "linf": math.inf, "l1": 1.0}.get(kind) or float(kind[3:])
        q = math.inf if p == 1 else 1.0 if p == math.inf else p / (p - 1)
        return (lambda v: np.linalg.norm(cat(v), p)), (lambda v: np.linalg.norm(cat(v), q))
    if kind == "ellipsoidal":
        av = cat(a)
        return (lambda v: math.sqrt((av * cat(v) ** 2).sum())), (
            lambda v: math.sqrt((cat(v) ** 2 / av).sum())
        )
    vec = (
        (lambda u: np.abs(u).max(), lambda u: np.abs(u).sum())
        if kind == "layerwise-sign"
        else (np.linalg.norm, np.linalg.norm)
    )
    return (lambda v: max(np.linalg.norm(v[0], 2), vec[0](v[1]))), (
        lambda v: np.linalg.norm(v[0], "nuc") + vec[1](v[1])
    )


LINEAR = [  # (case, norm override, the numpy norm, phi)
    (Case("SGD", lambda ps: torch.optim.SGD(ps, lr=0.1), "sgd", "l2"), None, "l2", "dual"),
    (
        Case("SGD in linf", lambda ps: torch.optim.SGD(ps, lr=0.1), "sgd", "linf"),
        "linf",
        "linf",
        "dual",
    ),
    (
        Case(
            "SGD in spectral",
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
            "heavyball",
            "layerwise",
        ),
        "spectral",
        "spectral",
        "dual",
    ),
    (
        Case(
            "AdamW",
            lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
            "adam",
            "ellipsoidal",
        ),
        None,
        "ellipsoidal",
        "dual",
    ),
    (
        Case(
            "scion",
            lambda ps: M.as_optimizer("scion:solver=svd", ps, lr=0.01),
            "scion",
            "layerwise",
        ),
        None,
        "layerwise-sign",
        "dual",
    ),
    (
        Case("signum", lambda ps: M.as_optimizer("sign:momentum=0.5", ps, lr=0.01), "sign", "linf"),
        None,
        "linf",
        "dual",
    ),
    (
        Case(
            "LPSGDM (paper)",
            lambda ps: LPSGDM(ps, lr=0.05, p=4.0, weight_decay=0.01),
            "lpsgdm",
            "lp:4",
        ),
        None,
        "lp:4",
        "l2",
    ),
    (
        Case(
            "LPSGDM in l1", lambda ps: LPSGDM(ps, lr=0.05, p=4.0, weight_decay=0.01), "lpsgdm", "l1"
        ),
        "l1",
        "l1",
        "dual",
    ),
    (
        Case("toy in lp:3", lambda ps: Toy(ps, lr=0.05), "blackbox", "lp:3", "blackbox"),
        "lp:3",
        "lp:3",
        "dual",
    ),
]


@pytest.mark.parametrize("case,override,kind,phi", LINEAR, ids=[c[0].id for c in LINEAR])
def test_statistics_equal_numpy_in_the_stated_norm(case, override, kind, phi):
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3).double()
    x, y = _lin_data()
    opt = case.build(net.parameters())
    for t in range(3):  # a real state (momentum, Adam's v)
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x[t * 8 : t * 8 + 8]), y[t * 8 : t * 8 + 8]).backward()
        opt.step()
    probe = Probe(
        net,
        (x, y),
        batch_size=B,
        samples=4,
        seed=7,
        loss_fn=torch.nn.functional.mse_loss,
        norm=override,
    )
    gen = torch.Generator()
    gen.set_state(probe.generator.get_state())
    rec = probe.measure(opt, step=3)
    draws = torch.randint(probe.n_blocks, (probe.samples,), generator=gen).tolist()
    assert (rec["method"], rec["phi"]) == (case.method, phi) and rec["norm"].startswith(case.norm)
    # numpy: f, grad f, each block's gradient; directions from the optimizer's own step on a copy
    W, b = net.weight.detach().numpy().copy(), net.bias.detach().numpy().copy()
    X, Y, blocks = x.numpy(), y.numpy(), probe.blocks.numpy()
    per = [_np_loss_grad(W, b, X[blk], Y[blk]) for blk in blocks]
    f = np.mean([v for v, _, _ in per])
    gf = (np.mean([gW for _, gW, _ in per], 0), np.mean([gb for _, _, gb in per], 0))
    a = None
    if (
        kind == "ellipsoidal"
    ):  # Adam's a = sqrt(v / (1 - beta2^t)) + eps, from the state before the step
        beta2, eps = opt.param_groups[0]["betas"][1], opt.param_groups[0]["eps"]
        a = [
            np.sqrt(opt.state[p]["exp_avg_sq"].numpy() / (1 - beta2 ** float(opt.state[p]["step"])))
            + eps
            for p in (net.weight, net.bias)
        ]
    norm, dual = _np_norms(kind, W, a)
    measure = dual(gf) ** 2 if phi == "dual" else float((gf[0] ** 2).sum() + (gf[1] ** 2).sum())
    lr = opt.param_groups[0]["lr"]
    lam = opt.param_groups[0]["weight_decay"] if case.method in ("adam", "lpsgdm") else 0.0
    want = {k: [] for k in ("align", "moment", "noise", "noise_l2")}
    steps = []
    for j in draws:
        gj = (per[j][1], per[j][2])
        flat = torch.from_numpy(np.concatenate([gj[0].ravel(), gj[1].ravel()]))
        theta = grads.flat_params([net.weight, net.bias])
        moved = _actual_step(net, opt, flat, case.build)
        steps.append(moved)
        dflat = (-(moved - (1 - lr * lam) * theta) / lr).numpy()
        d = (dflat[:12].reshape(3, 4), dflat[12:])
        e = (gj[0] - gf[0], gj[1] - gf[1])
        want["align"].append(((gf[0] * d[0]).sum() + (gf[1] * d[1]).sum()) / measure)
        want["moment"].append(norm(d) ** 2)
        want["noise"].append(dual(e) ** 2)
        want["noise_l2"].append((e[0] ** 2).sum() + (e[1] ** 2).sum())
    if (
        case.method == "lpsgdm" and phi == "l2"
    ):  # the paper's forms: v under eq. 43-44, u = eq. 21's g under eq. 27-28
        want["align_m"], want["moment_m"] = want.pop("align"), want.pop("moment")
        p, eps = opt.param_groups[0]["p"], opt.param_groups[0]["eps"]
        rho = (p - 2) / (p - 1)
        u = [tuple(gr / (np.abs(gr) + eps) ** rho for gr in per[j][1:]) for j in draws]
        want["align"] = [((gf[0] * a).sum() + (gf[1] * c).sum()) / measure for a, c in u]
        want["moment"] = [norm(v) ** 2 for v in u]
    assert set(rec["samples"]) == set(want)
    for k, v in want.items():
        np.testing.assert_allclose(rec["samples"][k], v, rtol=1e-9, atol=1e-12, err_msg=k)
    assert rec["grad_norm_q"] == pytest.approx(dual(gf), rel=1e-12)
    # the step pair in the same norm, from theta to the optimizer's step with sample 0's gradient
    m = steps[0].numpy()
    W1, b1 = m[:12].reshape(3, 4), m[12:]
    per1 = [_np_loss_grad(W1, b1, X[blk], Y[blk]) for blk in blocks]
    f1 = np.mean([v for v, _, _ in per1])
    g1 = (np.mean([gW for _, gW, _ in per1], 0), np.mean([gb for _, _, gb in per1], 0))
    step = (W1 - W, b1 - b)
    dist = norm(step)
    pair = rec["pairs"][0]
    assert pair["dist_p"] == pytest.approx(dist, rel=1e-9)
    assert pair["grad_ratio"] == pytest.approx(
        dual((g1[0] - gf[0], g1[1] - gf[1])) / dist, rel=1e-9
    )
    inner = (gf[0] * step[0]).sum() + (gf[1] * step[1]).sum()
    assert pair["quad_xy"] == pytest.approx(2 * (f1 - f - inner) / dist**2, rel=1e-6, abs=1e-9)
    assert pair["grad_norm_q"] == pytest.approx(min(dual(gf), dual(g1)), rel=1e-9)


@pytest.mark.parametrize("norm,phi", [("spectral", "dual"), ("linf", "dual"), ("lp:3", "l2")])
def test_core_statistics_equal_numpy(norm, phi):
    """core.statistics on a (W, b) pair flattened: the norm over the parameter shapes, the dual's or
    l2's phi."""
    gen = torch.Generator().manual_seed(9)
    f, G, D = (torch.randn(*s, 15, generator=gen, dtype=torch.float64) for s in ((), (3,), (3,)))
    out = core.statistics(f, G, D, norm, shapes=[(3, 4), (3,)], phi=phi)

    def split(v):
        return v[:12].numpy().reshape(3, 4), v[12:].numpy()

    nrm, dual = _np_norms(norm, None)
    measure = dual(split(f)) ** 2 if phi == "dual" else float(f @ f)
    np.testing.assert_allclose(out["align"], [float(d @ f) / measure for d in D], rtol=1e-12)
    np.testing.assert_allclose(out["moment"], [nrm(split(d)) ** 2 for d in D], rtol=1e-12)
    np.testing.assert_allclose(out["noise"], [dual(split(g - f)) ** 2 for g in G], rtol=1e-12)
    np.testing.assert_allclose(out["noise_l2"], [float((g - f) @ (g - f)) for g in G], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# the override, duality


def test_norm_override_changes_the_geometry_as_stated():
    case = CASES[1]  # LPSGDM p = 4
    net, data, opt = _bn_setup(case)
    own = Probe(net, data, batch_size=B, samples=4, seed=1).measure(opt, step=3)
    l2 = Probe(net, data, batch_size=B, samples=4, seed=1, norm="l2").measure(opt, step=3)
    linf = Probe(net, data, batch_size=B, samples=4, seed=1, norm="linf").measure(opt, step=3)
    assert (own["norm"], own["phi"], own["p"], own["norm_from"]) == ("lp:4", "l2", 4.0, "method")
    assert (l2["norm"], l2["phi"], l2["p"], l2["norm_from"]) == ("l2", "dual", 2.0, "override")
    assert (linf["norm"], linf["phi"], linf["q"]) == ("linf", "dual", 1.0)
    # the override measures LPSGDM's own direction v (eq. 42) in another norm: u's statistics are
    # LPSGD's, not kept
    assert "align_m" in own["samples"] and "align_m" not in l2["samples"]
    # in l2 the measure of the gradient is the paper's ||grad f||_2^2 and the alignment is eq. 43's
    np.testing.assert_allclose(l2["samples"]["align"], own["samples"]["align_m"], rtol=1e-5)
    assert l2["grad_norm_q"] ** 2 == pytest.approx(own["grad_sq"], rel=1e-9)
    # ||v||_2 >= ||v||_4 >= ||v||_inf, and the noise in the duals: ||.||_2 <= ||.||_{4/3} <= ||.||_1
    for a, b, c in zip(
        l2["samples"]["moment"], own["samples"]["moment_m"], linf["samples"]["moment"]
    ):
        assert a >= b * (1 - 1e-6) and b >= c * (1 - 1e-6)
    for a, b, c in zip(l2["samples"]["noise"], own["samples"]["noise"], linf["samples"]["noise"]):
        assert a <= b * (1 + 1e-6) and b <= c * (1 + 1e-6)
    np.testing.assert_allclose(l2["samples"]["noise"], own["samples"]["noise_l2"], rtol=1e-6)


@pytest.mark.parametrize(
    "build,refusal",
    [
        (
            lambda ps: LPSGDM(
                [{"params": ps[:2]}, {"params": ps[2:], "p": 3.0}],
                lr=0.05,
                p=6.0,
                weight_decay=0.01,
            ),
            r"param groups disagree on p",
        ),
        (
            lambda ps: M.as_optimizer(
                "steepest:p=4", [{"params": ps[:2]}, {"params": ps[2:], "p": 3.0}], lr=0.05
            ),
            r"the param groups give different norms",
        ),
    ],
    ids=["LPSGDM p per group", "steepest p per group"],
)
def test_groups_without_one_norm_are_measured_in_the_norm_given(build, refusal):
    """No one norm of its own (per-group p): refused with the reason, measured with norm=, each
    group stepping as the optimizer does."""
    case = Case("split", lambda params: build(list(params)), "", "")
    net, data, opt = _bn_setup(case)
    with pytest.raises(ValueError, match=refusal):
        Probe(net, data, batch_size=B, samples=2).measure(opt, step=3)
    rec = Probe(net, data, batch_size=B, samples=3, seed=1, norm="l2").measure(opt, step=3)
    assert rec["norm"] == "l2" and rec["phi"] == "dual" and len(rec["pairs"]) == 1
    params = grads.parameters(net)
    plan = directions.plan(opt, params)
    theta = grads.flat_params(params)
    g = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        plan.step(theta, plan.direction(g, theta)),
        _actual_step(net, opt, g, case.build),
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hoelder_holds_for_every_sample(case):
    """|<grad f, d>| <= ||grad f||_* ||d||: alignment and moment are read in one norm and its
    dual."""
    net, data, opt = _bn_setup(case)
    rec = Probe(net, data, batch_size=B, samples=4, seed=4).measure(opt, step=3)
    phi = rec["grad_sq"] if rec["phi"] == "l2" else rec["grad_norm_q"] ** 2
    for a, m in zip(rec["samples"]["align"], rec["samples"]["moment"]):
        assert abs(a) * phi <= rec["grad_norm_q"] * math.sqrt(m) * (1 + 1e-5)


@pytest.mark.parametrize(
    "spec,norm,align,moment",
    [
        ("sgd", "l2", "one", "phi"),
        ("steepest:p=3", "lp:3", "one", "phi"),
        ("steepest:p=inf", "linf", "one", "phi"),
        ("sign", "linf", "lmo", "one"),
        ("scion:solver=svd,momentum=0", "layerwise", "lmo", "one"),
    ],
)
def test_exact_gradients_give_the_duality_values(spec, norm, align, moment):
    """One block: every sample is grad f. Steepest descent (d = grad f^#) gives <grad f, d> = ||grad
    f||_*^2 = ||d||^2 (c1 = 1, c2 = 0, c3 = 1); an LMO step gives <grad f, d> = ||grad f||_*,
    ||d|| = 1; the noise is 0."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3).double()
    x, y = _lin_data()
    method = M.resolve(spec)
    rec = Probe(
        net, (x, y), batch_size=N, samples=1, step_pairs=0, loss_fn=torch.nn.functional.mse_loss
    ).measure(method, step=0, lr=0.1)
    assert rec["norm"].startswith(norm) and rec["blocks"] == 1
    dual = rec["grad_norm_q"]
    want_align = 1.0 if align == "one" else 1.0 / dual
    want_moment = dual**2 if moment == "phi" else 1.0
    np.testing.assert_allclose(rec["samples"]["align"], want_align, rtol=1e-9)
    np.testing.assert_allclose(rec["samples"]["moment"], want_moment, rtol=1e-9)
    np.testing.assert_allclose(rec["samples"]["noise"], 0.0, atol=1e-25)


# ---------------------------------------------------------------------------------------------
# the fit


def _records(case, n=3, **probe_kw):
    net, data, opt = _bn_setup(case, steps=1)
    probe = Probe(net, data, batch_size=B, samples=4, seed=2, **probe_kw)
    x, y = data
    for t in range(2 * n):
        if t % 2 == 0:
            probe.measure(opt, step=t)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            net(x[t * 8 % N : t * 8 % N + 8]), y[t * 8 % N : t * 8 % N + 8]
        ).backward()
        opt.step()
    return probe, opt


FIT = (
    "LPSGD p=6",
    "LPSGDM p=4 wd",
    "SGD",
    "AdamW",
    "lpcheck Lion",
    "as_optimizer scion svd",
    "as_optimizer clipped",
    "as_optimizer steepest p=4",
    "a user's class (black box)",
)


@pytest.mark.parametrize("case", [c for c in CASES if c.id in FIT], ids=lambda c: c.id)
def test_fit_reports_each_methods_constants_and_the_cap_only_where_theorem_1_gives_one(case):
    probe, opt = _records(case)
    out = probe.fit(T=6, resamples=200, lr_used=max(g["lr"] for g in opt.param_groups))
    a = out["assumption5"]
    paper = case.method in ("lpsgd", "lpsgdm")
    assert ("geometry" in out) == (not paper)
    if not paper:
        geo = out["geometry"]
        assert geo["method"] == case.method and geo["directions"] == (
            "bounded" if case.bounded else "scaled"
        )
        assert out["assumption6"] is None and "assumption6_reason" in out
        x = [r["grad_norm_q"] ** 2 for r in probe.records]
        assert [c["grad_dual_sq"] for c in out["checkpoints"]] == pytest.approx(x)
    if a["c2"] is None:  # no alignment: no pair, no cap, the reason says so
        assert a["c1"] <= 0 and a["step_cap"] is None and "c1 =" in a["pair_reason"]
    elif case.bounded:  # an LMO step: c3 = 0, c2 the largest moment (1 in its own norm), no cap
        assert a["c3"] == 0.0 and a["step_cap"] is None and "bounded norm" in a["step_cap_reason"]
        assert a["c2"] == pytest.approx(max(c["moment"]["hi"] for c in out["checkpoints"]))
        assert a["c2"] <= 1 + 1e-5 and a["lr_within_cap"] is None
    else:  # Theorem 1's cap c1 / (L c3), in this geometry
        assert a["step_cap"] == pytest.approx(
            a["c1"] / (out["smoothness"]["L"] * a["c3"]), rel=1e-12
        )
        assert isinstance(a["lr_within_cap"], bool)
    json.dumps(out)  # JSON-ready


def test_fit_refuses_records_of_different_geometries():
    a, _ = _records(CASES[2], n=1)  # SGD, l2
    b, _ = _records(CASES[2], n=1, norm="linf")
    with pytest.raises(ValueError, match="the records measure different methods or geometries"):
        fit.fit_run(a.records + b.records, T=4, resamples=200)


def test_paper_records_refit_to_mains_constants():
    """The committed CPU run (experiments/results/estimate-cpu) refits to the constants main's
    fit_run gave for its records (tests/golden/estimate_cpu_fit.json, written by main's code at
    8b95fdd; its intervals and the bounds built on them rewritten by the Student t + Hall
    intervals of issue 12 item 4, point estimates unchanged), with and without the keys that the
    probe now adds to LPSGDM records."""
    from lpcheck import report
    from lpcheck.estimate.trainer import lr_at

    d = json.loads((ROOT / "experiments/results/estimate-cpu/constants.json").read_text())
    golden = json.loads((ROOT / "tests/golden/estimate_cpu_fit.json").read_text())
    c, r = d["config"], d["run"]
    lrs = [lr_at(t, r["T"], r["warmup_steps"], c["lr"]) for t in range(r["T"])]
    tagged = [
        dict(
            rec,
            method="lpsgdm",
            optimizer="lpcheck.optim.LPSGDM",
            source="layer",
            norm=f"lp:{rec['p']:g}",
            norm_from="method",
            phi="l2",
            directions="scaled",
        )
        for rec in d["records"]
    ]
    for records in (
        d["records"],
        tagged,
        d["records"][:6] + tagged[6:],
    ):  # the last: a run resumed with this code
        out = fit.fit_run(
            records,
            r["T"],
            confidence=c["confidence"],
            resamples=c["resamples"],
            seed=c["seed"],
            lr_used=lrs,
        )
        assert json.loads(json.dumps(report.to_jsonable(out))) == golden


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda net, d, o: Probe(net, d, batch_size=B, samples=4, norm="lp:0.5"), r"norm 'lp:0.5'"),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4, norm=2),
            r"norm must be a Norm or one of",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                M.make("adam"), step=0
            ),
            r"lr is needed with a Method",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                M.make("sgd"), step=0, lr=-1.0
            ),
            r"\blr must be",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                M.make("adam"), step=0, lr=0.1, state={"exp_avg": []}
            ),
            r"state must hold",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(o, step=0, lr=0.1),
            r"state, lr and weight_decay are for",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                M.as_optimizer(
                    "steepest:p=4",
                    [
                        {"params": list(net.parameters())[:2]},
                        {"params": list(net.parameters())[2:], "p": 3.0},
                    ],
                    lr=0.1,
                ),
                step=0,
            ),
            r"the param groups give different norms \(lp:3, lp:4\)",
        ),
        (
            lambda net, d, o: Probe(net, d, batch_size=B, samples=4).measure(
                Toy(list(net.parameters()), lr=0.0), step=0
            ),
            r"param group 0: lr must be",
        ),
    ],
)
def test_bad_input(call, match):
    net, data, opt = _bn_setup(CASES[2], steps=0)
    with pytest.raises(ValueError, match=match):
        call(net, data, opt)


def test_the_readme_any_optimizer_example_runs():
    readme = (
        ROOT / "docs" / "estimate.md"
    ).read_text()  # the README's section, moved into the docs
    section = readme[readme.index("**Any optimizer.**") :]
    start = section.index("```python") + len("```python")
    code = section[start : section.index("```", start)]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    env = {
        "torch": torch,
        "Probe": Probe,
        "model": model,
        "x_train": torch.randn(2048, 5),  # 16 batches of 128: samples=16 draws from them
        "y_train": torch.randint(0, 3, (2048,)),
        "T": 2,
    }
    exec(compile(code, "README.md", "exec"), env)
    assert isinstance(env["opt"], torch.optim.AdamW) and env["probe"].records[0]["method"] == "adam"
    assert env["constants"]["geometry"]["norms"] == ["ellipsoidal"]


# ---------------------------------------------------------------------------------------------
# CUDA: the same records as on the CPU (float64), for a layer method per norm kind and the black box

GPU_CASES = [
    c
    for c in CASES
    if c.id
    in (
        "LPSGDM p=4 wd",
        "SGD nesterov coupled wd",
        "AdamW",
        "as_optimizer scion svd",
        "a user's class (black box)",
    )
]


def _records_on(device, case):
    """The case's model and optimizer state (trained on the CPU in float64) moved to `device`,
    probed there."""
    net, (x, y), opt = _bn_setup(case, torch.float64)
    net_d = copy.deepcopy(net).to(device)
    opt_d = case.build(net_d.parameters())
    opt_d.load_state_dict(
        copy.deepcopy(opt.state_dict())
    )  # torch moves the state to the parameters' device
    probe = Probe(net_d, (x.to(device), y.to(device)), batch_size=B, samples=3, seed=2)
    return probe.measure(opt_d, step=3)


def _assert_same_records(a, b, rtol):
    assert (a["method"], a["norm"], a["phi"]) == (b["method"], b["norm"], b["phi"])
    assert a["loss"] == pytest.approx(b["loss"], rel=rtol)
    assert a["grad_norm_q"] == pytest.approx(b["grad_norm_q"], rel=rtol)
    for name in b["samples"]:
        np.testing.assert_allclose(
            a["samples"][name], b["samples"][name], rtol=rtol, atol=1e-12, err_msg=name
        )
    for pa, pb in zip(a["pairs"], b["pairs"]):
        for k in ("dist_p", "grad_ratio", "grad_norm_q"):
            assert pa[k] == pytest.approx(pb[k], rel=rtol), k


@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: c.id)
def test_records_moved_to_a_device_are_the_same_records(case):
    """The helper of the CUDA test, on the CPU: the moved copy gives the original's record
    exactly."""
    net, data, opt = _bn_setup(case, torch.float64)
    want = Probe(net, data, batch_size=B, samples=3, seed=2).measure(opt, step=3)
    _assert_same_records(_records_on("cpu", case), want, rtol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("case", GPU_CASES, ids=lambda c: c.id)
def test_probe_on_cuda_equals_cpu_for_any_optimizer(case):
    _assert_same_records(_records_on("cuda", case), _records_on("cpu", case), rtol=1e-9)


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in CASES
        if c.id in ("AdamW", "SGD momentum dampening", "lpcheck Lion", "a user's class (black box)")
    ],
    ids=lambda c: c.id,
)
def test_bfloat16_models_get_float32_statistics_for_any_optimizer(case):
    """bfloat16 parameters and optimizer state: directions and statistics in float32, the model
    restored exactly."""
    net, (x, y), opt = _bn_setup(case, torch.bfloat16)
    before = _snapshot(net, opt)
    rec = Probe(net, (x, y), batch_size=B, samples=3, seed=1).measure(opt, step=3)
    assert all(math.isfinite(v) for vs in rec["samples"].values() for v in vs)
    assert rec["pairs"] and all(math.isfinite(v) for k, v in rec["pairs"][0].items() if k != "kind")
    assert _same(before, _snapshot(net, opt))
