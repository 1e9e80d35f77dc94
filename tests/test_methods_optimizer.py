"""lpcheck.methods.as_optimizer: any method as a torch.optim.Optimizer (groups, schedulers, state
dicts, checks).

The table of tests/test_methods.py holds every method's optimizer to the layer's own step, across a
state_dict round trip; here: param groups, schedulers, refusals, precision and Lion's old
checkpoints.
"""

import copy
import io

import pytest
import torch

from lpcheck import methods as M
from lpcheck.baselines import Lion


def _params(seed=0, shapes=((3, 4), (5,)), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(s, generator=g, dtype=torch.float64).to(dtype))
        for s in shapes
    ]


def _grads(params, seed=1):
    g = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
    return [p.grad.clone() for p in params]


def test_groups_with_the_same_hyperparameters_share_one_update_so_a_global_norm_spans_them():
    """eq. 10's ||g||_q is over all parameters: two groups (different lr) still see one norm."""
    params = _params()
    theta = [p.detach().clone() for p in params]
    opt = M.as_optimizer(
        "steepest:p=3", [{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 0.01}]
    )
    grads = _grads(params)
    opt.step()
    d, _ = M.make("steepest", p=3.0).update(grads, {})
    torch.testing.assert_close(params[0].detach(), theta[0] - 0.1 * d[0], rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(params[1].detach(), theta[1] - 0.01 * d[1], rtol=1e-14, atol=1e-15)


def test_groups_with_other_hyperparameters_are_methods_of_their_own():
    params = _params()
    theta = [p.detach().clone() for p in params]
    opt = M.as_optimizer(
        "adam", [{"params": [params[0]], "betas": (0.5, 0.6)}, {"params": [params[1]]}], lr=0.1
    )
    grads = _grads(params)
    opt.step()
    d0, _ = M.make("adam", betas=(0.5, 0.6)).update(grads[:1], M.make("adam").init(theta[:1]))
    d1, _ = M.make("adam").update(grads[1:], M.make("adam").init(theta[1:]))
    torch.testing.assert_close(params[0].detach(), theta[0] - 0.1 * d0[0])
    torch.testing.assert_close(params[1].detach(), theta[1] - 0.1 * d1[0])
    assert opt.param_groups[0]["betas"] == (0.5, 0.6) and opt.param_groups[1]["betas"] == (
        0.9,
        0.999,
    )


def test_an_lr_scheduler_and_a_tensor_lr_drive_the_step():
    def train(lr):
        params = _params()
        opt = M.as_optimizer("lion", params, lr=lr, weight_decay=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        for t in range(4):
            _grads(params, t)
            opt.step()
            sched.step()
        return params, opt

    a, opt = train(torch.tensor(0.01, dtype=torch.float64))
    b, _ = train(0.01)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(0.01 / 16)


def test_a_hand_written_schedule_of_p_through_the_group():
    """LPSGD's eq. 19 schedule is the caller's: set group['p'] per epoch, as an LR scheduler sets
    lr."""
    params = _params()
    ref = [torch.nn.Parameter(p.detach().clone()) for p in params]
    from lpcheck.optim import LPSGD

    ours = M.as_optimizer("lpsgd:p=6", params, lr=0.01)
    theirs = LPSGD(ref, lr=0.01, p_max=6.0, total_epochs=3, foreach=False)
    for epoch in (1, 2, 3):
        theirs.set_epoch(epoch)
        ours.param_groups[0]["p"] = theirs.param_groups[0]["p"]
        for t in range(2):
            g = _grads(params, 10 * epoch + t)
            for r, gi in zip(ref, g):
                r.grad = gi.clone()
            ours.step()
            theirs.step()
    assert all(torch.equal(x, y) for x, y in zip(params, ref))


def test_state_dict_holds_the_methods_state_and_saves_with_weights_only():
    params = _params()
    opt = M.as_optimizer("adam:amsgrad=True", params, lr=0.01)
    _grads(params)
    opt.step()
    sd = opt.state_dict()
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][0]["step"].shape == () and float(sd["state"][0]["step"]) == 1
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    torch.load(buf, weights_only=True)


@pytest.mark.parametrize(
    "edit,match",
    [
        (
            lambda sd: sd["state"][0].update(step=torch.tensor(-1.0)),
            r"\['step'\] must be a one-element tensor",
        ),
        (
            lambda sd: sd["state"][0].update(step=torch.tensor(1.5)),
            r"\['step'\] must be a one-element tensor",
        ),
        (
            lambda sd: sd["state"][0].update(
                exp_avg=torch.full((3, 4), float("nan"), dtype=torch.float64)
            ),
            r"exp_avg.*finite",
        ),
        (lambda sd: sd["state"][0].update(exp_avg=torch.zeros(2)), r"exp_avg.*shape"),
        (lambda sd: sd["param_groups"][0].update(betas=(1.0, 0.9)), r"betas\[0\] must be"),
        (lambda sd: sd["param_groups"][0].pop("eps"), r"has no \['eps'\]"),
    ],
)
def test_load_state_dict_refuses_before_anything_changes(edit, match):
    params = _params()
    opt = M.as_optimizer("adam", params, lr=0.01)
    _grads(params)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    before = copy.deepcopy(opt.state_dict())
    edit(sd)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    after = opt.state_dict()
    assert all(torch.equal(after["state"][0][k], before["state"][0][k]) for k in before["state"][0])


def test_a_bad_edit_is_refused_at_the_step_with_nothing_changed():
    params = _params()
    opt = M.as_optimizer("rmsprop", params, lr=0.01)
    _grads(params)
    opt.step()
    theta = [p.detach().clone() for p in params]
    state = copy.deepcopy(opt.state_dict()["state"])
    opt.param_groups[0]["alpha"] = 1.5
    with pytest.raises(ValueError, match=r"alpha must be .*\(param group 0\)"):
        opt.step()
    assert all(torch.equal(p, t) for p, t in zip(params, theta))
    assert all(
        torch.equal(opt.state_dict()["state"][k]["square_avg"], state[k]["square_avg"])
        for k in state
    )


def test_add_param_group_checks_the_methods_hyperparameters():
    params = _params()
    opt = M.as_optimizer("lpsgdm:p=4", params[:1], lr=0.01)
    with pytest.raises(ValueError, match=r"momentum must be .*\(param group 1\)"):
        opt.add_param_group({"params": params[1:], "momentum": 1.0})
    with pytest.raises(ValueError, match=r"lpsgdm has no hyperparameter nesterov"):
        M.as_optimizer("lpsgdm:p=4", params, nesterov=True)
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_parameters_step_in_float32_math(dtype):
    params = _params(dtype=dtype)
    opt = M.as_optimizer("lpsgdm:p=6,eps=1e-8", params, lr=0.01)
    _grads(params)
    before = [p.detach().float().clone() for p in params]
    opt.step()
    assert opt.state[params[0]]["momentum_buffer"].dtype == torch.float32
    assert all(torch.isfinite(p.float()).all() for p in params)
    assert any(not torch.equal(p.float(), b) for p, b in zip(params, before))


def test_closure_and_sparse_gradients():
    params = _params()
    opt = M.as_optimizer("sgd", params, lr=0.1)
    assert opt.step(lambda: torch.tensor(3.0)) == torch.tensor(3.0)
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt2 = M.as_optimizer("sgd", [w], lr=0.1)
    w.grad = torch.sparse_coo_tensor([[0]], [1.0], (4,), dtype=torch.float64, check_invariants=True)
    with pytest.raises(ValueError, match="sparse gradients"):
        opt2.step()


def test_as_optimizer_refuses_what_is_not_a_method():
    p = _params()
    with pytest.raises(ValueError, match="method must be a method of the layer"):
        M.as_optimizer(torch.optim.SGD(p, lr=0.1), p)
    with pytest.raises(ValueError, match="method must be a method of the layer"):
        M.as_optimizer("torch.optim:SGD", p)
    with pytest.raises(ValueError, match="unknown method 'adamx'"):
        M.as_optimizer("adamx", p)


def test_lion_loads_a_checkpoint_of_the_lion_before_the_layer():
    """The pre-layer lpcheck.baselines.Lion saved groups {lr, betas, weight_decay} and state
    {exp_avg}."""
    params = _params()
    old = {
        "state": {0: {"exp_avg": torch.ones(3, 4, dtype=torch.float64)}},
        "param_groups": [{"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.1, "params": [0, 1]}],
    }
    opt = Lion(params, lr=0.5)
    opt.load_state_dict(old)
    assert opt.param_groups[0]["lr"] == 0.01
    assert torch.equal(opt.state[params[0]]["exp_avg"], torch.ones(3, 4, dtype=torch.float64))
    assert isinstance(opt, M.MethodOptimizer) and opt.method == M.make("lion")


def test_the_readme_method_layer_example_runs():
    from pathlib import Path

    readme = (
        Path(__file__).resolve().parents[1] / "docs" / "methods.md"
    ).read_text()  # moved from the README
    section = readme[readme.index("# Any optimizer: the method layer") :]
    start = section.index("```python") + len("```python")
    code = section[start : section.index("```", start)]
    model = torch.nn.Linear(3, 2)
    params = [p.detach().clone() for p in model.parameters()]
    grads = [torch.randn_like(p) for p in params]
    env = {"torch": torch, "model": model, "params": params, "grads": grads}
    exec(compile(code, "README.md", "exec"), env)
    assert isinstance(env["opt"], M.MethodOptimizer) and len(env["d"]) == len(params)


@pytest.mark.parametrize(
    "spec,cls,kw",
    [
        ("adam", torch.optim.Adam, {}),
        ("heavyball:nesterov=True", torch.optim.SGD, dict(momentum=0.9, nesterov=True)),
    ],
)
def test_a_parameter_without_a_gradient_keeps_its_own_step_count_as_in_torch(spec, cls, kw):
    params, ref = _params(), _params()
    ours, theirs = M.as_optimizer(spec, params, lr=0.01), cls(ref, lr=0.01, **kw)
    for t in range(4):
        grads = _grads(params, t)
        if t == 1:
            params[1].grad = None
        for r, p, g in zip(ref, params, grads):
            r.grad = None if p.grad is None else g.clone()
        ours.step()
        theirs.step()
    for p, r in zip(params, ref):
        torch.testing.assert_close(p, r, rtol=1e-13, atol=1e-15)
    assert float(ours.state[params[0]]["step"]) == 4 and float(ours.state[params[1]]["step"]) == 3
