"""lpcheck.grads: the one flattener (parameters, gradients, optimizer state as one vector)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lpcheck import grads
from lpcheck.optim import LPSGDM

shapes = st.lists(
    st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=5
)


@given(shapes)
def test_flatten_unflatten_round_trip(shape_list):
    ts = [torch.randn(s, dtype=torch.float64) for s in shape_list]
    flat = grads.flatten(ts)
    assert flat.ndim == 1 and flat.numel() == sum(t.numel() for t in ts)
    back = grads.unflatten(flat, ts)
    assert all(torch.equal(a, b) and a.shape == b.shape for a, b in zip(back, ts))
    start = 0  # blocks in order, each row-major
    for t in ts:
        assert torch.equal(flat[start : start + t.numel()], t.reshape(-1))
        start += t.numel()


def _net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    net[0].bias.requires_grad_(False)
    return net


def test_parameters_in_model_order_trainable_only_shared_once():
    net = _net()
    shared = torch.nn.ModuleList([net, net[2]])  # net[2] reachable twice
    ps = grads.parameters(shared)
    assert [id(p) for p in ps] == [id(p) for p in net.parameters() if p.requires_grad]
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(2))
    assert [id(p) for p in grads.parameters([a, b, a])] == [
        id(a),
        id(b),
    ]  # a list may repeat a tensor


def test_flat_grad_matches_backward_and_leaves_grad_untouched():
    net = _net()
    ps = grads.parameters(net)
    x = torch.randn(5, 3)
    loss = net(x).square().sum()
    g = grads.flat_grad(loss, ps)
    assert all(p.grad is None for p in ps)  # autograd.grad, not backward
    net(x).square().sum().backward()
    assert torch.equal(g, grads.flatten(p.grad for p in ps))


def test_unused_parameter_gets_a_zero_block():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    g = grads.flat_grad((a * 2).sum(), [a, b])
    assert torch.equal(g, torch.tensor([2.0, 2.0, 0.0, 0.0, 0.0]))


def test_flat_state_and_set_flat_params():
    net = _net()
    ps = grads.parameters(net)
    opt = LPSGDM(ps, lr=0.1, p=4.0, momentum=0.9)
    assert torch.equal(
        grads.flat_state(opt, ps, "momentum_buffer"), torch.zeros(sum(p.numel() for p in ps))
    )
    net(torch.randn(5, 3)).square().sum().backward()
    opt.step()
    m = grads.flat_state(opt, ps, "momentum_buffer")
    assert torch.equal(m, grads.flatten(opt.state[p]["momentum_buffer"] for p in ps))
    assert torch.equal(m, 0.1 * grads.flatten(p.grad for p in ps))  # m_0 = (1 - beta) g_0
    theta = grads.flat_params(ps)
    grads.set_flat_params(ps, theta + 1)
    assert torch.equal(grads.flat_params(ps), theta + 1)


def test_bad_input():
    with pytest.raises(ValueError, match="no parameter that requires a gradient"):
        grads.parameters(torch.nn.ReLU())
    with pytest.raises(ValueError, match="at least one tensor"):
        grads.flatten([])
    with pytest.raises(ValueError, match="flat must be 1-D with 5 entries"):
        grads.unflatten(torch.zeros(4), [torch.zeros(2), torch.zeros(3)])


def test_one_tensor_is_a_list_of_one():
    w = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(grads.flatten(w), torch.arange(6.0))
    (v,) = grads.unflatten(torch.arange(6.0), w)  # not its two rows
    assert v.shape == (2, 3)


def test_flat_state_refuses_state_not_shaped_like_the_parameter():
    # Adam's 'step' is one number per parameter: flattened it misaligned every later coordinate
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))]
    opt = torch.optim.Adam(params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    with pytest.raises(ValueError, match="key 'step' must name per-coordinate state"):
        grads.flat_state(opt, params, "step")
    assert grads.flat_state(opt, params, "exp_avg").shape == (5,)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: grads.flatten([torch.ones(2), torch.ones(2, device="meta")]),
            "tensors must all be on one device",
        ),
        (lambda: grads.unflatten(np.zeros(3), [torch.ones(3)]), "flat must be a 1-D torch tensor"),
        (
            lambda: grads.flat_grad(torch.ones(3, requires_grad=True) * 2, [torch.ones(1)]),
            "loss must be a one-element",
        ),
        (
            lambda: grads.flat_grad(torch.tensor(1.0), [torch.ones(1)]),
            "loss does not require a gradient",
        ),
        (lambda: grads.flatten([1.0]), "tensors must hold tensors"),
    ],
)
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
