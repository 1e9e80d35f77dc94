"""lpcheck.rates.optimizers: any method in a rate study, each seed as if alone (batched only where
rows are independent), its geometry, and its directions at a checkpoint."""

import dataclasses
import math

import pytest
import torch

from lpcheck import methods as M
from lpcheck.baselines import Lion
from lpcheck.optim import LPSGD, LPSGDM
from lpcheck.rates.optimizers import (
    geometry,
    initial_state,
    layer_method,
    rows_agree,
    sample_directions,
    torch_method,
)
from lpcheck.rates.problems import LogSum, Quadratic
from lpcheck.rates.simulation import resolve_method, simulate


class NormSGD(torch.optim.Optimizer):
    """A user's optimizer that is NOT elementwise: momentum on the gradient normalised by its global
    l2 norm."""

    def __init__(self, params, lr=0.1, momentum=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            norm = torch.sqrt(sum((p.grad * p.grad).sum() for p in params))
            for p in params:
                buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad / (norm + 1e-12))
                p.add_(buf, alpha=-group["lr"])


class ClaimsElementwise(NormSGD):
    elementwise = True  # wrongly: the probe must catch it


class ElementwiseSign(torch.optim.Optimizer):
    """A user's elementwise class that says so."""

    elementwise = True

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad.sign(), alpha=-group["lr"])


PROBLEM = Quadratic([4.0, 1.0, 0.25, 2.0], [1.0, -1.0, 0.5, 0.0], [0.0, 0.0, 2.0, -1.0], sigma=0.7)

KNOWN = [
    (torch.optim.SGD, {}),
    (torch.optim.SGD, dict(momentum=0.9, nesterov=True, weight_decay=0.01)),
    (torch.optim.Adam, {}),
    (torch.optim.Adam, dict(amsgrad=True, weight_decay=0.1)),
    (torch.optim.AdamW, {}),
    (torch.optim.RMSprop, dict(momentum=0.5, centered=True)),
    (torch.optim.Adagrad, {}),
    (torch.optim.Adamax, {}),
    (torch.optim.NAdam, {}),
    (torch.optim.RAdam, {}),
    (torch.optim.Rprop, {}),
    (torch.optim.ASGD, {}),
    (torch.optim.Adadelta, {}),
    (LPSGD, dict(p=4.0)),
    (LPSGDM, dict(p_max=6.0, total_epochs=3)),
    (Lion, {}),
]


@pytest.mark.parametrize("cls,kwargs", KNOWN, ids=lambda v: getattr(v, "__name__", str(v)))
def test_known_elementwise_classes_are_batched_and_equal_per_seed_copies_bit_for_bit(cls, kwargs):
    method = torch_method(cls, kwargs, f"{cls.__module__}:{cls.__name__}")
    assert method.batched and method.how.startswith("batched")
    assert rows_agree(lambda params: cls(params, lr=1e-3, **kwargs))
    runs = [
        simulate(PROBLEM, m, 23, 0.01, 4, epochs=3, seed=1)
        for m in (method, dataclasses.replace(method, batched=False))
    ]
    assert torch.equal(runs[0].grad_sq_mean, runs[1].grad_sq_mean) and torch.equal(
        runs[0].f_final, runs[1].f_final
    )
    assert bool(runs[0].finite.all())


def _hand_loop(problem, build, T, eta, seeds, seed):
    """One optimizer per seed, written out without lpcheck.rates: the reference for 'per seed'."""
    gen = torch.Generator().manual_seed(seed)
    params = [problem.x0.clone() for _ in range(seeds)]
    opts = [build([p], eta) for p in params]
    acc = torch.zeros(seeds, dtype=torch.float64)
    for _ in range(T):
        theta = torch.stack(params)
        g_full = problem.grad(theta)
        acc += (g_full**2).sum(1)
        g = problem.stoch_grad(theta, gen, g_full)
        for i in range(seeds):
            params[i].grad = g[i].clone()
            opts[i].step()
    return acc / T, problem.f(torch.stack(params))


def test_a_non_elementwise_user_class_runs_per_seed_and_gives_the_per_seed_result():
    method = torch_method(NormSGD, dict(momentum=0.5), "test:NormSGD:momentum=0.5")
    assert not method.batched and method.how.startswith("per seed")
    assert not rows_agree(lambda params: NormSGD(params, lr=1e-3, momentum=0.5))
    run = simulate(PROBLEM, method, 31, 0.05, 5, seed=4)
    want_sq, want_f = _hand_loop(
        PROBLEM, lambda ps, lr: NormSGD(ps, lr=lr, momentum=0.5), 31, 0.05, 5, 4
    )
    assert torch.equal(run.grad_sq_mean, want_sq) and torch.equal(run.f_final, want_f)
    batched = simulate(PROBLEM, dataclasses.replace(method, batched=True), 31, 0.05, 5, seed=4)
    assert not torch.allclose(
        batched.f_final, want_f, rtol=1e-6
    )  # batching it would have been wrong


def test_a_declared_elementwise_class_is_held_to_it():
    assert torch_method(ElementwiseSign, {}, "t:ElementwiseSign").batched
    with pytest.raises(
        ValueError, match="declares elementwise = True, but one step over several rows differs"
    ):
        torch_method(ClaimsElementwise, {}, "t:ClaimsElementwise")


@pytest.mark.parametrize(
    "cls,kwargs,match",
    [
        (torch.optim.SGD, dict(lr=0.1), r"lr is set by the step rule"),
        (torch.optim.Adam, dict(betas=0.9), r"Adam\(params, lr=..., \*\*\{'betas': 0.9\}\) failed"),
        (torch.optim.SGD, dict(mommentum=0.9), r"unexpected keyword argument 'mommentum'"),
        (torch.optim.LBFGS, {}, r"step\(\) failed without a closure"),
        (torch.optim.Muon, {}, r"Muon"),
    ],
)
def test_a_torch_class_that_cannot_step_a_seed_is_refused_before_work(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        torch_method(cls, kwargs, "spec")


class GlobalNormMethod(M.Method):
    """A user's layer Method that ignores `batched` (its norm spans all rows): run per seed, not
    batched."""

    name = "globalnorm"
    defaults = {}
    elementwise = False

    def _update(self, grads, state, hp, *, batched, params):
        n = torch.sqrt(sum((g * g).sum() for g in grads))
        return [g / n for g in grads], {}

    def norm(self, state=None, hp=None):
        return M.Lp(2.0)


def test_a_user_method_that_couples_rows_runs_per_seed():
    lm = layer_method(GlobalNormMethod(), "t:GlobalNormMethod")
    assert not lm.batched
    run = simulate(PROBLEM, lm, 17, 0.05, 3, seed=2)
    gen = torch.Generator().manual_seed(2)
    theta = PROBLEM.x0.expand(3, 4).clone()
    for _ in range(17):
        g = PROBLEM.stoch_grad(theta, gen)
        theta = theta - 0.05 * g / g.norm(dim=1, keepdim=True)
    torch.testing.assert_close(run.f_final, PROBLEM.f(theta), rtol=1e-13, atol=0)
    assert layer_method(
        M.make("scion"), "scion"
    ).batched  # a built-in: batched by the layer's contract


@pytest.mark.parametrize(
    "spec,p,scale,native",
    [
        ("lion", math.inf, 1.0, True),
        ("heavyball", 2.0, 1.0, True),
        ("signsgd", math.inf, 1.0, True),
        ("scion:vector=rms,radius=2", 2.0, 2 * math.sqrt(4), True),
        ("clipped:vector=sign,radius=0.5", math.inf, 0.5, True),
        ("adam", 2.0, 1.0, False),
        ("torch.optim:Adam", 2.0, 1.0, False),
    ],
)
def test_geometry_is_the_methods_norm_as_a_scaled_lp_norm(spec, p, scale, native):
    geo = geometry(resolve_method(spec), 4)
    assert (geo.p, geo.scale, geo.native) == (p, pytest.approx(scale), native)
    assert geo.L(PROBLEM) == pytest.approx(PROBLEM.L(p) * scale**2)
    v = torch.tensor([[0.3, -2.0, 1.0, 0.5]], dtype=torch.float64)
    assert float(geo.norm.norm([v], batched=True)) == pytest.approx(
        float(torch.linalg.vector_norm(v, ord=p)) / scale
    )
    assert native or geo.why


def test_directions_at_a_checkpoint_are_the_step_the_method_would_take():
    """A torch Adam's replayed directions from a mid-run state equal the layer's adam from the same
    state, and the per-seed replay equals the batched one."""
    problem = LogSum([3.0, -0.5, 2.0, 0.1], sigma=1.0)
    torch_adam, layer_adam = resolve_method("torch.optim:Adam"), resolve_method("adam")
    rt = simulate(problem, torch_adam, 9, 0.01, 3, checkpoint_seeds=2, checkpoint_count=4, seed=0)
    rl = simulate(problem, layer_adam, 9, 0.01, 3, checkpoint_seeds=2, checkpoint_count=4, seed=0)
    g = problem.stoch_grad(rt.ck_theta[-1:].expand(6, 4), torch.Generator().manual_seed(1))
    theta = rt.ck_theta[-1]
    a = sample_directions(torch_adam, theta, rt.ck_state[-1], g, lr=0.01)
    b = sample_directions(
        dataclasses.replace(torch_adam, batched=False), theta, rt.ck_state[-1], g, lr=0.01
    )
    c = sample_directions(layer_adam, rl.ck_theta[-1], rl.ck_state[-1], g, lr=0.01)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a, c, rtol=1e-9, atol=1e-9)
    first = sample_directions(torch_adam, theta, initial_state(torch_adam, theta), g, lr=1.0)
    torch.testing.assert_close(
        first, g / (g.abs() + 1e-8), rtol=1e-6, atol=0
    )  # Adam's first step: g/(|g|+eps)
