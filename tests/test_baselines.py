"""lpcheck.baselines: Lion, against the lion-pytorch package."""

import pytest
import torch

from lpcheck.baselines import Lion

lion_pytorch = pytest.importorskip("lion_pytorch", reason="lion-pytorch (the reference) is a test dependency")


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


def test_lion_steps_are_signs():
    w = torch.nn.Parameter(torch.zeros(4))
    w.grad = torch.tensor([3.0, -1e-9, 0.0, 2.0])
    Lion([w], lr=0.5).step()
    assert torch.equal(w.detach(), torch.tensor([-0.5, 0.5, 0.0, -0.5]))


@pytest.mark.parametrize("kwargs,match", [(dict(lr=-1), "lr must be"), (dict(betas=(0.9, 1.0)), "betas must be"),
                                          (dict(weight_decay=-0.1), "weight_decay must be"),
                                          (dict(weight_decay="0.1"), "weight_decay must be"),
                                          (dict(lr=float("nan")), "lr must be"), (dict(betas=("0.9", 0.99)), "betas must be")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Lion([torch.nn.Parameter(torch.zeros(1))], **kwargs)
