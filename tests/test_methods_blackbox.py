"""lpcheck.methods.BlackBox: any torch.optim.Optimizer as a method, read from its own step on a
copy.

The table of tests/test_methods.py already holds BlackBox(torch SGD/Adam/AdamW/RMSprop,
lion-pytorch's Lion, lpcheck's LPSGD/LPSGDM) to the built-in methods step for step; here: the
contract's other parts.
"""

import copy
import math

import pytest
import torch

from lpcheck import methods as M
from lpcheck.baselines import Lion
from lpcheck.optim import LPSGDM


def _params(seed=0, shapes=((3, 4), (5,)), dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter((torch.randn(s, generator=g, dtype=torch.float64) * scale).to(dtype))
        for s in shapes
    ]


def _grads(params, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype) for p in params]


def _step(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()


def _snapshot(opt, params):
    return (
        copy.deepcopy(opt.state_dict()),
        [p.detach().clone() for p in params],
        [None if p.grad is None else p.grad.clone() for p in params],
        torch.random.get_rng_state(),
    )


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(_equal(x, y) for x, y in zip(a, b))
        )
    return a == b


class ToyNormalized(torch.optim.Optimizer):
    """An optimizer lpcheck has never seen: momentum on the normalised gradient, an extra tensor
    and a Python int in its state, a list of its parameters as an attribute, and decoupled decay it
    declares itself:
        m = beta m + g / ||g||_2;  s = s + |g|;  theta <- (1 - lr wd) theta - lr m / sqrt(1 + s)."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=0.1, beta=0.5, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, beta=beta, weight_decay=weight_decay))
        self.all_params = [p for g in self.param_groups for p in g["params"]]

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["m"], st["s"], st["calls"] = torch.zeros_like(p), torch.zeros_like(p), 0
                st["m"].mul_(group["beta"]).add_(p.grad / p.grad.norm())
                st["s"].add_(p.grad.abs())
                st["calls"] += 1
                p.mul_(1 - group["lr"] * group["weight_decay"]).add_(
                    st["m"] / (1 + st["s"]).sqrt(), alpha=-group["lr"]
                )


def _toy_direction(grads, m, s, beta):
    m = [beta * mi + g / g.norm() for mi, g in zip(m, grads)]
    s = [si + g.abs() for si, g in zip(s, grads)]
    return [mi / (1 + si).sqrt() for mi, si in zip(m, s)], m, s


def test_a_class_lpcheck_has_never_seen_works_step_for_step():
    params = _params()
    opt = ToyNormalized(params, lr=0.05, beta=0.7, weight_decay=0.3)
    box = M.from_optimizer(opt)
    m = [torch.zeros_like(p) for p in params]
    s = [torch.zeros_like(p) for p in params]
    for t in range(5):
        grads = _grads(params, seed=t)
        d, new_state = box.update(grads)
        want, m, s = _toy_direction(grads, m, s, 0.7)
        for a, b in zip(d, want):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        assert new_state["state"][0]["calls"] == t + 1  # its own state format, Python int included
        _step(opt, params, grads)


def test_the_optimizer_its_parameters_grads_state_and_the_rng_are_never_changed():
    params = _params()
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)  # wraps opt.step
    _step(opt, params, _grads(params))
    sched.step()
    for p, g in zip(params, _grads(params, 5)):
        p.grad = g
    before = _snapshot(opt, params)
    called = getattr(opt, "_opt_called", None)
    box = M.BlackBox(opt)
    box.update(_grads(params, 9))
    box.update(_grads(params, 9), box.init(), params=[torch.zeros_like(p) for p in params])
    assert _equal(_snapshot(opt, params), before)
    assert getattr(opt, "_opt_called", None) == called and sched.last_epoch == 1


def test_new_state_chains_and_a_given_state_and_point_are_used():
    params = _params()
    opt = torch.optim.Adam(params, lr=1e-3)
    box = M.BlackBox(opt)
    adam = M.make("adam")
    state = adam.init(params)
    bb_state = box.init()
    theta = [p.detach().clone() for p in params]
    for t in range(3):
        grads = _grads(params, t)
        d, bb_state = box.update(grads, bb_state, params=theta)
        want, state = adam.update(grads, state)
        for a, b in zip(
            d, want
        ):  # (theta - theta') / lr at lr = 1e-3 keeps ~13 of float64's digits
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert not opt.state  # the optimizer itself never stepped


def test_coupled_weight_decay_is_part_of_the_direction_at_the_point_given():
    params = _params()
    opt = torch.optim.SGD(
        params, lr=0.1, weight_decay=0.2
    )  # torch's SGD: the L2 term g + lambda theta
    grads = _grads(params)
    theta = [torch.full_like(p, 3.0) for p in params]
    d, _ = M.BlackBox(opt).update(grads, params=theta)
    for a, g, th in zip(d, grads, theta):
        torch.testing.assert_close(a, g + 0.2 * th, rtol=1e-13, atol=1e-14)


def test_per_group_lr_and_decoupled_decay():
    params = _params()
    opt = torch.optim.AdamW(
        [
            {"params": [params[0]], "lr": 1e-3, "weight_decay": 0.5},
            {"params": [params[1]], "lr": 0.2, "weight_decay": 0.0},
        ],
        eps=1e-6,
    )
    grads = _grads(params)
    d, _ = M.BlackBox(opt).update(grads)
    want, _ = M.make("adam", eps=1e-6).update(grads, M.make("adam").init(params))
    for a, b in zip(d, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_decoupled_weight_decay_rules():
    p = _params()
    assert M.decoupled_weight_decay(torch.optim.AdamW(p), torch.optim.AdamW(p).param_groups[0])
    adam = torch.optim.Adam(p, weight_decay=0.1)
    assert not M.decoupled_weight_decay(adam, adam.param_groups[0])
    adam_d = torch.optim.Adam(p, weight_decay=0.1, decoupled_weight_decay=True)
    assert M.decoupled_weight_decay(adam_d, adam_d.param_groups[0])
    for opt in (LPSGDM(p, lr=0.1, p=4.0), Lion(p), ToyNormalized(p), M.as_optimizer("sgd", p)):
        assert M.decoupled_weight_decay(opt, opt.param_groups[0]), type(opt).__name__
    sgd = torch.optim.SGD(p, lr=0.1, weight_decay=0.1)
    assert not M.decoupled_weight_decay(sgd, sgd.param_groups[0])


def test_float32_parameters_are_replayed_in_float64_so_no_digits_are_lost():
    """theta ~ 100 and lr = 1e-4: in float32 (theta' - theta) / lr keeps ~2 digits of the
    direction."""
    params = _params(dtype=torch.float32, scale=100.0)
    opt = torch.optim.SGD(params, lr=1e-4)
    grads = _grads(params)
    d, _ = M.BlackBox(opt).update(grads)
    assert all(torch.equal(a, g) for a, g in zip(d, grads)) and d[0].dtype == torch.float32
    d32, _ = M.BlackBox(opt, dtype=None).update(grads)
    assert (
        max(float((a - g).abs().max()) for a, g in zip(d32, grads)) > 1e-3
    )  # why float64 is the default


def test_none_gradient_gives_no_direction_and_leaves_the_parameter():
    params = _params()
    d, _ = M.BlackBox(torch.optim.SGD(params, lr=0.1)).update([_grads(params)[0], None])
    assert d[1] is None and d[0] is not None


def test_black_box_of_an_as_optimizer_method_that_needs_theta():
    """Algorithm 4 of the clipped step depends on theta: the black box reads it at the optimizer's
    own point."""
    params = _params()
    hp = dict(constrained=True, rho=5.0, solver="svd", momentum=0.5)
    opt = M.as_optimizer("clipped", params, lr=0.1, **hp)
    _step(opt, params, _grads(params, 3))
    grads = _grads(params, 4)
    d, _ = M.BlackBox(opt).update(grads)
    method = M.make("clipped", **hp)
    want, _ = method.update(grads, opt.method_state(), params=[p.detach() for p in params])
    for a, b in zip(d, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_norm_is_the_optimizers_own_where_known():
    p = _params()
    assert repr(M.BlackBox(LPSGDM(p, lr=0.1, p=4.0)).norm()) == "lp:4"
    assert repr(M.BlackBox(Lion(p)).norm()) == "linf"
    assert repr(M.BlackBox(torch.optim.SGD(p, lr=0.1)).norm()) == "l2"
    assert repr(M.BlackBox(torch.optim.SGD(p, lr=0.1), norm="lp:3").norm()) == "lp:3"
    opt = M.as_optimizer("adam", p, lr=0.1)
    _step(opt, p, _grads(p))
    g = _grads(p, 8)
    want = M.make("adam").norm(opt.method_state())
    assert float(M.BlackBox(opt).norm().dual(g)) == pytest.approx(float(want.dual(g)), rel=1e-14)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda p: M.BlackBox(torch.optim.SGD),
            r"optimizer must be a torch.optim.Optimizer instance.*a class",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.1), dtype=torch.int32),
            r"dtype must be None or a floating",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.0)).update(_grads(p)),
            r"param group 0: lr must be > 0",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.1)).update(_grads(p)[:1]),
            r"grads must hold one tensor",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.1)).update(
                [torch.zeros(2), torch.zeros(5)]
            ),
            r"grads\[0\] must be",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.1)).update(_grads(p), batched=True),
            r"batched=True is not possible",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.1)).update(_grads(p), hp={"lr": 1}),
            r"hyperparameters are its",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.1)).update(_grads(p), state={}),
            r"state must be a state_dict",
        ),
        (
            lambda p: M.BlackBox(torch.optim.SGD(p, lr=0.1)).update(
                _grads(p), params=[torch.zeros(2)]
            ),
            r"params must have the optimizer's parameter shapes",
        ),
        (
            lambda p: M.BlackBox(torch.optim.LBFGS(p)).update(_grads(p)),
            r"LBFGS.step\(\) failed without a closure",
        ),
    ],
)
def test_bad_input_is_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call(_params())


def test_lr_must_be_positive_even_as_a_tensor():
    p = _params()
    opt = torch.optim.SGD(p, lr=torch.tensor(0.0))
    with pytest.raises(ValueError, match="lr must be > 0"):
        M.BlackBox(opt).update(_grads(p))
    assert math.isfinite(
        float(M.BlackBox(torch.optim.SGD(p, lr=torch.tensor(0.5))).update(_grads(p))[0][0].sum())
    )


class NoisySGD(torch.optim.SGD):
    """SGD plus noise from the global RNG (Langevin-like): the replay must not move the caller's
    RNG."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(torch.randn_like(p), alpha=1e-3)
        return super().step(closure)


def test_the_global_rng_is_left_as_it_was():
    params = _params()
    state = torch.random.get_rng_state()
    d, _ = M.BlackBox(NoisySGD(params, lr=0.1)).update(_grads(params))
    assert torch.equal(torch.random.get_rng_state(), state)
