"""lpcheck.baselines: Lion, against the lion-pytorch package."""

import copy

import pytest
import torch

from lpcheck.baselines import Lion
from lpcheck.methods import as_optimizer

lion_pytorch = pytest.importorskip(
    "lion_pytorch", reason="lion-pytorch (the reference) is a test dependency"
)


def test_lion_matches_lion_pytorch_step_for_step():
    torch.manual_seed(0)
    shapes = [(3, 4), (5,), (2, 3, 3, 3)]
    a = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ours = Lion(a, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    ref = lion_pytorch.Lion(b, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    for _ in range(25):
        grads = [torch.randn(s) for s in shapes]
        for p, q, g in zip(a, b, grads):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q in zip(a, b):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, torch.randn(1)) for p in a)


@pytest.mark.parametrize("make", [Lion, lambda ps, lr: as_optimizer("lion", ps, lr=lr)])
def test_lion_defaults_are_lion_pytorchs(make):
    # Chen et al.'s Program 1 defaults (betas (0.9, 0.99), no decay), in lpcheck.baselines.Lion and
    # in the method `lion` (as_optimizer, `lpcheck rates --optimizer lion`): a user who passes only
    # lr gets the reference's trajectory and momentum, step for step (beta2 moves m, and m the later
    # signs)
    torch.manual_seed(1)
    shapes = [(3, 4), (5,)]
    a = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    ours, ref = make(a, lr=1e-2), lion_pytorch.Lion(b, lr=1e-2)
    for _ in range(20):
        grads = [torch.randn(s) for s in shapes]
        for p, q, g in zip(a, b, grads):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q in zip(a, b):
        assert torch.equal(p, q)
        assert torch.equal(ours.state[p]["exp_avg"], ref.state[q]["exp_avg"])


def test_lion_steps_are_signs():
    w = torch.nn.Parameter(torch.zeros(4))
    w.grad = torch.tensor([3.0, -1e-9, 0.0, 2.0])
    Lion([w], lr=0.5).step()
    assert torch.equal(w.detach(), torch.tensor([-0.5, 0.5, 0.0, -0.5]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-1), "lr must be"),
        (dict(betas=(0.9, 1.0)), r"betas\[1\] must be .* in \[0, 1\)"),
        (dict(weight_decay=-0.1), "weight_decay must be"),
        (dict(weight_decay="0.1"), "weight_decay must be"),
        (dict(lr=float("nan")), "lr must be"),
        (dict(betas=("0.9", 0.99)), r"betas\[0\] must be"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Lion([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def test_lion_takes_numbers_as_torch_does_and_a_tensor_lr_follows_its_scheduler():
    import numpy as np

    def train(lr, betas):
        torch.manual_seed(0)
        w = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
        opt = Lion([w], lr=lr, betas=betas, weight_decay=np.float64(0.1))
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        for _ in range(4):
            w.grad = torch.randn(5, dtype=torch.float64)
            opt.step()
            sched.step()
        return w, opt

    a, opt = train(torch.tensor(1e-2, dtype=torch.float64), np.array([0.9, 0.99]))
    b, _ = train(1e-2, (0.9, 0.99))
    assert torch.equal(a, b) and opt.param_groups[0]["betas"] == (0.9, 0.99)


def test_lion_refuses_before_any_change():
    w, v = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    opt = Lion([w], lr=0.1)
    with pytest.raises(ValueError, match=r"betas\[0\] must be"):
        opt.add_param_group({"params": [v], "betas": (1.5, 0.9)})
    assert len(opt.param_groups) == 1
    w.grad = torch.ones(3)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())  # (state_dict shares the state's dicts)
    sd["state"][0]["exp_avg"] = torch.full((3,), float("nan"))
    with pytest.raises(ValueError, match="exp_avg.*finite"):
        opt.load_state_dict(sd)
    assert torch.isfinite(opt.state[w]["exp_avg"]).all()
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"lr must be .*\(param group 0\)"):
        opt.step()
    assert torch.equal(w.detach(), torch.full((3,), -0.1))
