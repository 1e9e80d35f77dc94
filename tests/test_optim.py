"""lpcheck.optim: LPSGD (Algorithm 1) and LPSGDM (Algorithm 2)."""

import copy
import io
import math

import pytest
import torch

from lpcheck import lp
from lpcheck.optim import LPSGD, LPSGDM, NonFiniteGradientError
from lpcheck.schedule import cosine_p

SHAPES = [(), (7,), (3, 5), (4, 3, 3, 3), (1,), (2, 1, 6)]


def make_params(seed=0, dtype=torch.float64, shapes=SHAPES):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]


def grads_for(params, step, scale=1.0):
    g = torch.Generator().manual_seed(1000 + step)
    # mixed magnitudes, signs and exact zeros
    out = []
    for p in params:
        v = torch.randn(p.shape, generator=g, dtype=torch.float64) * scale
        v = v * torch.exp(2 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        v[torch.rand(p.shape, generator=g) < 0.1] = 0
        out.append(v.to(p.dtype))
    return out


def run(opt_factory, steps=40, epochs=5, seed=0, dtype=torch.float64, drop=None, shapes=SHAPES):
    """Train params under opt with synthetic gradients; set_epoch each epoch. Returns params."""
    params = make_params(seed, dtype, shapes)
    opt = opt_factory(params)
    per_epoch = steps // epochs
    for t in range(steps):
        if t % per_epoch == 0:
            opt.set_epoch(t // per_epoch + 1)
        for i, (p, g) in enumerate(zip(params, grads_for(params, t))):
            p.grad = None if (drop and drop(t, i)) else g
        opt.step()
    return params, opt


def two_groups(params, cls, foreach, **extra):
    return cls(
        [
            {"params": params[:3]},
            {"params": params[3:], "lr": 0.03, "p_max": 9.0, "eps": 1e-6, **extra},
        ],
        lr=0.1,
        p_max=6.0,
        total_epochs=5,
        foreach=foreach,
        **({"momentum": 0.9, "weight_decay": 0.01} if cls is LPSGDM else {}),
    )


# --- foreach against the per-tensor reference ---------------------------------------------------


@pytest.mark.parametrize("cls", [LPSGD, LPSGDM])
@pytest.mark.parametrize("foreach", [True, False])
def test_each_param_group_steps_with_its_own_hyperparameters(cls, foreach):
    # two groups in one optimizer = each group alone in its own optimizer (nothing leaks between
    # groups)
    extra = {"momentum": 0.3, "weight_decay": 0.2} if cls is LPSGDM else {}
    both, _ = run(lambda ps: two_groups(ps, cls, foreach, **extra), steps=10)
    base = dict(
        total_epochs=5,
        foreach=foreach,
        **({"momentum": 0.9, "weight_decay": 0.01} if cls is LPSGDM else {}),
    )
    first, _ = run(lambda ps: cls(ps[:3], lr=0.1, p_max=6.0, **base), steps=10)
    second, _ = run(
        lambda ps: cls(ps[3:], lr=0.03, p_max=9.0, eps=1e-6, **dict(base, **extra)), steps=10
    )
    for x, y in zip(both, first[:3] + second[3:]):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


@pytest.mark.parametrize("cls", [LPSGD, LPSGDM])
def test_foreach_matches_reference_over_many_steps(cls):
    extra = {"momentum": 0.5, "weight_decay": 0.1} if cls is LPSGDM else {}
    drop = lambda t, i: (t + i) % 7 == 0  # noqa: E731  (some gradients missing at some steps)
    a, _ = run(lambda ps: two_groups(ps, cls, True, **extra), steps=60, drop=drop)
    b, _ = run(lambda ps: two_groups(ps, cls, False, **extra), steps=60, drop=drop)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    assert any(not torch.equal(x, y0) for x, y0 in zip(a, make_params()))  # it moved


def test_foreach_matches_reference_at_fixed_p_including_inf():
    for p in (2.0, 3.0, 50.0, math.inf):
        # B023 does not apply: run calls the lambdas at once
        a, _ = run(lambda ps: LPSGDM(ps, lr=0.05, p=p, foreach=True), steps=20)  # noqa: B023
        b, _ = run(lambda ps: LPSGDM(ps, lr=0.05, p=p, foreach=False), steps=20)  # noqa: B023
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_uses_float32_math(dtype):
    a, _ = run(lambda ps: LPSGDM(ps, lr=0.05, p_max=6, total_epochs=5), steps=10, dtype=dtype)
    b, _ = run(
        lambda ps: LPSGDM(ps, lr=0.05, p_max=6, total_epochs=5, foreach=False),
        steps=10,
        dtype=dtype,
    )
    for x, y in zip(a, b):
        assert x.dtype == dtype
        tol = 1e-5 if dtype == torch.float32 else 1e-2
        torch.testing.assert_close(x.float(), y.float(), rtol=tol, atol=tol)


def test_workspace_is_reused_not_reallocated():
    params = make_params()
    opt = LPSGD(params, lr=0.1, p=4.0)
    for t in range(3):
        for p, g in zip(params, grads_for(params, t)):
            p.grad = g
        opt.step()
        if t == 0:
            buffers = {k: v.data_ptr() for k, v in opt._workspace.items()}
    assert buffers == {k: v.data_ptr() for k, v in opt._workspace.items()}
    assert "_workspace" not in str(opt.state_dict())


# --- the special cases of the paper ------------------------------------------------------------


def test_lpsgd_p2_equals_torch_sgd_step_for_step():
    for foreach in (True, False):
        for kwargs in ({"p": 2.0}, {"p_max": 2.0, "total_epochs": 5}):
            # B023 does not apply: run calls the lambdas at once
            a, _ = run(lambda ps: LPSGD(ps, lr=0.1, foreach=foreach, **kwargs))  # noqa: B023
            b, _ = run(lambda ps: _SGDWithEpoch(ps, lr=0.1, foreach=foreach))  # noqa: B023
            for x, y in zip(a, b):
                assert torch.equal(x, y)


class _SGDWithEpoch(torch.optim.SGD):
    def set_epoch(self, s):
        pass


class _EmaSGD:
    """EMA-momentum SGD with decoupled decay, by hand: m = b m + (1-b) g; x = (1 - lr wd) x - lr
    m."""

    def __init__(self, params, lr, momentum, weight_decay):
        self.params, self.lr, self.b, self.wd = params, lr, momentum, weight_decay
        self.m = [torch.zeros_like(p) for p in params]

    def set_epoch(self, s):
        pass

    @torch.no_grad()
    def step(self):
        for p, m in zip(self.params, self.m):
            if p.grad is None:
                continue
            m.mul_(self.b).add_(p.grad, alpha=1 - self.b)
            p.mul_(1 - self.lr * self.wd).sub_(self.lr * m)


@pytest.mark.parametrize("foreach", [True, False])
def test_lpsgdm_p2_equals_ema_momentum_sgd_with_decoupled_decay(foreach):
    a, _ = run(
        lambda ps: LPSGDM(
            ps, lr=0.1, p_max=2.0, total_epochs=5, momentum=0.8, weight_decay=0.05, foreach=foreach
        )
    )
    b, _ = run(lambda ps: _EmaSGD(ps, lr=0.1, momentum=0.8, weight_decay=0.05))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-14, atol=1e-14)


def test_first_lpsgdm_step_uses_1_minus_beta_times_g():
    # m_{-1} = 0 (Algorithm 2, line 1): the first direction is rescale((1 - beta) g)
    w = torch.nn.Parameter(torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64))
    g = torch.tensor([0.4, -1.0, 1e-3], dtype=torch.float64)
    w0 = w.detach().clone()
    opt = LPSGDM([w], lr=0.1, p=5.0, momentum=0.9, eps=1e-8)
    w.grad = g
    opt.step()
    torch.testing.assert_close(
        w.detach(), w0 - 0.1 * lp.rescale(0.1 * g, 5.0, 1e-8), rtol=1e-15, atol=0
    )


def test_large_p_small_eps_approaches_sign_descent():
    w = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    g = torch.tensor([3.0, -2e-3, 5e2, -1.0, 7e-2, -40.0], dtype=torch.float64)
    for p, eps, tol in [(1e2, 1e-6, 0.15), (1e4, 1e-12, 5e-3), (math.inf, 1e-14, 1e-10)]:
        w.data.zero_()
        w.grad = g.clone()
        LPSGD([w], lr=1.0, p=p, eps=eps).step()
        torch.testing.assert_close(w.detach(), -torch.sign(g), rtol=0, atol=tol)


# --- it optimises ------------------------------------------------------------------------------


def _descend(fn, x0, opt_factory, steps, epochs):
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = opt_factory([x])
    f0 = fn(x).item()
    for t in range(steps):
        if t % (steps // epochs) == 0:
            opt.set_epoch(t // (steps // epochs) + 1)
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        opt.step()
    return f0, fn(x).item()


def quadratic(x):  # eq. 17: strongly anisotropic
    return 100.0 * (x[0] - 1) ** 2 + 0.025 * (x[1] - 4) ** 2


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize(
    "name,factory",
    [
        ("lpsgd", lambda ps: LPSGD(ps, lr=2e-3, p_max=6.0, total_epochs=10)),
        ("lpsgdm", lambda ps: LPSGDM(ps, lr=5e-3, p_max=6.0, total_epochs=10)),
    ],
)
def test_loss_decreases_on_quadratic_and_rosenbrock(name, factory):
    f0, f1 = _descend(quadratic, [-1.0, -2.0], factory, 3000, 10)
    assert f1 < 1e-2 * f0, (name, f0, f1)
    f0, f1 = _descend(rosenbrock, [-1.5, 2.0], factory, 3000, 10)
    assert f1 < 1e-1 * f0, (name, f0, f1)


def test_closure_returns_loss_and_is_used():
    x = torch.nn.Parameter(torch.tensor([3.0, -1.0], dtype=torch.float64))
    opt = LPSGD([x], lr=0.1, p=2.0)

    def closure():
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 10.0
    torch.testing.assert_close(
        x.detach(), torch.tensor([3.0 - 0.6, -1.0 + 0.2], dtype=torch.float64)
    )
    opt.zero_grad()
    assert x.grad is None


# --- state ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [LPSGD, LPSGDM])
def test_state_dict_resume_is_bit_for_bit(cls):
    steps, epochs = 60, 5
    per = steps // epochs
    full, _ = run(lambda ps: two_groups(ps, cls, True), steps=steps, epochs=epochs)

    params = make_params()
    opt = two_groups(params, cls, True)
    buffer = io.BytesIO()
    for t in range(steps):
        if t % per == 0:
            opt.set_epoch(t // per + 1)
        if t == 27:  # save mid-epoch, restore into fresh objects, continue
            torch.save(
                {"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buffer
            )
            buffer.seek(0)
            ckpt = torch.load(buffer)
            params = [torch.nn.Parameter(p) for p in ckpt["params"]]
            opt = two_groups(params, cls, True)
            assert opt.param_groups[0]["epoch"] == 1  # a fresh optimizer starts at epoch 1 ...
            opt.load_state_dict(ckpt["opt"])
            assert opt.param_groups[0]["epoch"] == 3  # ... and the checkpoint restores it and p
            assert opt.param_groups[1]["p"] == cosine_p(3, 5, 9.0)
        for p, g in zip(params, grads_for(params, t)):
            p.grad = g
        opt.step()
    for x, y in zip(full, params):
        assert torch.equal(x, y)


def test_set_epoch_applies_eq19_per_group_and_fixed_p_stays():
    params = make_params()
    opt = LPSGDM(
        [
            {"params": params[:2]},
            {"params": params[2:4], "p_max": 9.0},
            {"params": params[4:], "p": 3.0},
        ],
        lr=0.1,
        p_max=6.0,
        total_epochs=7,
    )
    assert [g["p"] for g in opt.param_groups] == [6.0, 9.0, 3.0]
    for s in range(1, 8):
        opt.set_epoch(s)
        assert [g["p"] for g in opt.param_groups] == [cosine_p(s, 7, 6.0), cosine_p(s, 7, 9.0), 3.0]
        assert all(g["epoch"] == s for g in opt.param_groups)
    assert opt.param_groups[0]["p"] == 2.0


def test_param_group_added_later_joins_the_current_epoch():
    params = make_params()
    opt = LPSGD(params[:2], lr=0.1, p_max=6.0, total_epochs=5)
    opt.set_epoch(3)
    opt.add_param_group({"params": params[2:]})
    assert opt.param_groups[1]["epoch"] == 3 and opt.param_groups[1]["p"] == cosine_p(3, 5, 6.0)


# --- torch integration -------------------------------------------------------------------------


def test_warmup_cosine_lr_scheduler():
    params = make_params()
    opt = LPSGDM(params, lr=0.1, p_max=6.0, total_epochs=10)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=15)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[5])
    lrs = []
    for t in range(20):
        for p, g in zip(params, grads_for(params, t)):
            p.grad = g
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.1 * (0.1 + 0.9 / 5))
    assert lrs[4] == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert max(lrs) == pytest.approx(0.1)


def test_amp_grad_scaler_skips_inf_steps_and_matches_unscaled_steps():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    twin = copy.deepcopy(model)
    x, y = torch.randn(16, 4), torch.randn(16, 3)
    opt = LPSGDM(model.parameters(), lr=0.05, p=6.0)
    opt_twin = LPSGDM(twin.parameters(), lr=0.05, p=6.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    for _ in range(5):
        opt.zero_grad()
        scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
        scaler.step(opt)
        scaler.update()
        opt_twin.zero_grad()
        torch.nn.functional.mse_loss(twin(x), y).backward()
        opt_twin.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # power-of-two scaling: same steps
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    scaler.scale(torch.nn.functional.mse_loss(model(x), y) * float("inf")).backward()
    scale = scaler.get_scale()
    scaler.step(opt)  # inf gradients: GradScaler skips the step ...
    scaler.update()
    assert scaler.get_scale() == scale / 2  # ... and backs off
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-0.1, p_max=6, total_epochs=3), r"lr must be a finite real number >= 0, got -0.1"),
        (dict(lr=math.nan, p_max=6, total_epochs=3), r"lr must be .*real number.*, got nan"),
        (dict(lr=0.1, p_max=6, total_epochs=3, eps=0.0), r"eps must be a finite real number > 0"),
        (dict(lr=0.1, p_max=6, total_epochs=3, eps=-1e-8), r"eps must be a finite real number > 0"),
        (dict(lr=0.1, p_max=1.5, total_epochs=3), r"p_max must be .*>= 2"),
        (dict(lr=0.1, p_max=math.inf, total_epochs=3), r"p_max must be a finite"),
        (dict(lr=0.1, p_max=6, total_epochs=0), r"total_epochs must be an integer >= 1"),
        (dict(lr=0.1, p_max=6, total_epochs=2.5), r"total_epochs must be an integer"),
        (dict(lr=0.1, p_max=6), r"total_epochs is required"),
        (dict(lr=0.1, p=1.9), r"p must be a real number in \[2, inf\], got 1.9"),
        (dict(lr=0.1, p=math.nan), r"p must be"),
        (dict(lr=0.1), r"exactly one of p_max .* or p"),
        (dict(lr=0.1, p=3, p_max=6, total_epochs=3), r"exactly one of p_max .* or p"),
        (dict(lr=0.1, p=3, momentum=1.0), r"momentum must be a finite real number in \[0, 1\)"),
        (dict(lr=0.1, p=3, momentum=-0.1), r"momentum must be a finite real number in \[0, 1\)"),
        (dict(lr=0.1, p=3, weight_decay=-1e-4), r"weight_decay must be a finite real number >= 0"),
        (dict(lr=0.1, p=3, foreach="yes"), r"foreach must be"),
        (dict(lr=0.1, p=3, fused="yes"), r"fused must be None, True or False"),
        (dict(lr=0.1, p=3, fused=True, foreach=True), r"foreach and fused cannot both be True"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LPSGDM(make_params(), **kwargs)


def test_bad_group_hyperparameter_raises():
    params = make_params()
    with pytest.raises(
        ValueError, match=r"lr must be a finite real number >= 0, got -1.0 \(param group 1\)"
    ):
        LPSGD([{"params": params[:2]}, {"params": params[2:], "lr": -1.0}], lr=0.1, p=3.0)
    with pytest.raises(ValueError, match="either p_max .* or p"):
        LPSGD([{"params": params, "p": 3.0, "p_max": 6.0}], lr=0.1, p_max=6.0, total_epochs=2)


@pytest.mark.parametrize("epoch", [0, 6, -1, 2.5, True])
def test_bad_epoch_raises_and_changes_nothing(epoch):
    opt = LPSGDM(make_params(), lr=0.1, p_max=6, total_epochs=5)
    opt.set_epoch(2)
    with pytest.raises(ValueError, match="epoch must be"):
        opt.set_epoch(epoch)
    assert opt.param_groups[0]["epoch"] == 2 and opt.param_groups[0]["p"] == cosine_p(2, 5, 6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("foreach", [True, False])
def test_non_finite_gradient_raises_before_any_change(bad, foreach):
    params = make_params()
    opt = two_groups(params, LPSGDM, foreach)
    for t in range(3):
        for p, g in zip(params, grads_for(params, t)):
            p.grad = g
        opt.step()
    before = copy.deepcopy([p.detach() for p in params]), copy.deepcopy(opt.state_dict())
    params[4].grad[0] = bad  # group 1: group 0 must not have stepped either
    with pytest.raises(
        NonFiniteGradientError, match=r"param group 1, parameter 1 \(shape \(1,\)\)"
    ):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before[0], params))
    state = opt.state_dict()["state"]
    assert all(
        torch.equal(state[k]["momentum_buffer"], v["momentum_buffer"])
        for k, v in before[1]["state"].items()
    )


def test_finite_check_survives_sum_overflow():
    # float32 gradients whose sum (and 2-norm) overflows are still finite: the step must go through
    w = torch.nn.Parameter(torch.zeros(4))
    w.grad = torch.full((4,), 3e38)
    LPSGD([w], lr=1.0, p=4.0).step()
    assert torch.isfinite(w).all() and (w < 0).all()


def test_opposite_infinities_are_caught():
    # inf + (-inf) sums to nan: still flagged, and the exact check names the parameter
    w = torch.nn.Parameter(torch.zeros(2))
    w.grad = torch.tensor([math.inf, -math.inf])
    with pytest.raises(NonFiniteGradientError, match="parameter 0"):
        LPSGD([w], lr=1.0, p=4.0).step()
    assert torch.equal(w, torch.zeros(2))


def test_sparse_gradient_raises():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="does not support sparse gradients"):
        LPSGDM(emb.parameters(), lr=0.1, p=4.0).step()


def test_check_finite_can_be_turned_off():
    w = torch.nn.Parameter(torch.zeros(2))
    w.grad = torch.tensor([1.0, math.nan])
    LPSGD([w], lr=1.0, p=4.0, check_finite=False).step()
    assert torch.isnan(w[1])


@pytest.mark.gpu
@pytest.mark.parametrize("cls", [LPSGD, LPSGDM])
def test_cuda_foreach_matches_cpu_reference(cls):
    a, _ = run(lambda ps: two_groups(ps, cls, False), steps=20)
    params = [torch.nn.Parameter(p.detach().cuda()) for p in make_params()]
    opt = two_groups(params, cls, True)
    for t in range(20):
        if t % 4 == 0:
            opt.set_epoch(t // 4 + 1)
        for p, g in zip(params, grads_for(params, t)):
            p.grad = g.cuda()
        opt.step()
    for x, y in zip(a, params):
        torch.testing.assert_close(x, y.cpu(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("beta", [1e-13, 0.3, 0.5, 0.9, 0.999])
def test_ema_keeps_beta_exact_for_every_beta(beta):
    # m = beta m + (1 - beta) g with g = 0 must give exactly fl(beta * m): a lerp with weight 1 -
    # beta computes 1 - fl(1 - beta) instead, which for beta = 1e-13 is off by 0.08% (found by the
    # proof gate)
    w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = LPSGDM([w], lr=1e-3, p=2.0, momentum=beta)
    g = torch.tensor([458.3591773507412, -1.0, 3e-200], dtype=torch.float64)
    w.grad = g.clone()
    opt.step()
    m1 = opt.state[w]["momentum_buffer"].clone()
    torch.testing.assert_close(
        m1, (1 - beta) * g, rtol=4e-16, atol=0
    )  # eq. 23 from m_{-1} = 0, every branch
    w.grad = torch.zeros(3, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(opt.state[w]["momentum_buffer"], beta * m1, rtol=4e-16, atol=0)


def test_finite_check_sums_half_precision_in_float32(monkeypatch):
    # 4096 x 60 overflows a float16 sum (max 65504): accumulated in float32 the fast check decides
    # alone
    from lpcheck import optim as optim_module

    calls = []
    real = torch.isfinite
    monkeypatch.setattr(
        optim_module.torch, "isfinite", lambda t: calls.append(t.numel()) or real(t)
    )
    assert optim_module._all_finite([torch.full((4096,), 60.0, dtype=torch.float16)])
    assert calls == [1]  # only the stacked sums were looked at, never the 4096 entries


# --- numbers as torch takes them ------------------------------------------------------------------


@pytest.mark.parametrize("cls", [LPSGD, LPSGDM])
@pytest.mark.parametrize("kind", ["numpy", "0-d tensor", "1-element tensor", "0-d array"])
def test_numbers_torch_accepts_give_the_same_steps_as_floats(cls, kind):
    import numpy as np

    wrap = {
        "numpy": np.float64,
        "0-d tensor": lambda v: torch.tensor(v, dtype=torch.float64),
        "1-element tensor": lambda v: torch.tensor([v], dtype=torch.float64),
        "0-d array": np.array,
    }[kind]
    extra = dict(momentum=0.8, weight_decay=0.05) if cls is LPSGDM else {}
    plain = dict(lr=0.1, p_max=6.0, total_epochs=5, eps=1e-6, **extra)
    wrapped = {k: wrap(v) for k, v in plain.items()}
    wrapped["total_epochs"] = np.int64(5) if kind == "numpy" else wrap(5)
    a, _ = run(lambda ps: cls(ps, **plain), steps=10)
    b, opt = run(lambda ps: cls(ps, **wrapped), steps=10)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    group = opt.param_groups[0]
    assert all(
        type(group[k]) in (float, int) for k in plain if k != "lr"
    )  # stored as Python numbers ...
    assert isinstance(group["lr"], torch.Tensor) == (
        "tensor" in kind
    )  # ... except a tensor lr, as in torch


def test_set_epoch_takes_numpy_and_tensor_integers():
    import numpy as np

    opt = LPSGD(make_params(), lr=0.1, p_max=6.0, total_epochs=5)
    opt.set_epoch(np.int64(3))
    assert opt.param_groups[0]["epoch"] == 3 and type(opt.param_groups[0]["epoch"]) is int
    opt.set_epoch(torch.tensor(4))
    assert opt.param_groups[0]["p"] == cosine_p(4, 5, 6.0)


@pytest.mark.parametrize("foreach", [True, False])
def test_lr_scheduler_fills_a_tensor_lr_and_the_steps_follow_it(foreach):
    def train(lr):
        params = make_params()
        opt = LPSGDM(params, lr=lr, p=4.0, foreach=foreach)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        for t in range(6):
            for p, g in zip(params, grads_for(params, t)):
                p.grad = g
            opt.step()
            sched.step()
        return params, opt

    lr = torch.tensor(0.1, dtype=torch.float64)
    a, opt = train(lr)
    b, _ = train(0.1)
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(
        0.1 / 8
    )  # filled in place by StepLR
    assert all(torch.equal(x, y) for x, y in zip(a, b))


# --- hyperparameters in the parameters' dtype -----------------------------------------------------


def _zero_grad_step(opt_factory, dtype, **kw):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=dtype))
    opt = opt_factory([w], **kw)
    w.grad = torch.tensor(
        [0.0, 1.0, -1e-3], dtype=dtype
    )  # an exact zero: eq. 21's 0 / (0 + eps)^rho
    opt.step()
    return w


@pytest.mark.parametrize("cls", [LPSGD, LPSGDM])
@pytest.mark.parametrize("foreach", [True, False])
def test_eps_that_is_zero_in_the_dtype_is_refused_where_it_would_nan(cls, foreach):
    # eps = 1e-46 is 0 in float32: the zero-gradient entry became NaN. In float64 it is a fine eps.
    with pytest.raises(ValueError, match=r"eps = 1e-46 rounds to 0 in torch.float32"):
        _zero_grad_step(cls, torch.float32, lr=0.1, p=4.0, eps=1e-46, foreach=foreach)
    w = _zero_grad_step(cls, torch.float64, lr=0.1, p=4.0, eps=1e-46, foreach=foreach)
    assert torch.isfinite(w).all() and w[0] == 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_eps_whose_power_overflows_the_workspace_is_refused_only_there(dtype):
    # eps = 1e-40 survives float32 (a subnormal), but eps^-rho = 1e40 > 3.4e38 at p = inf: inf * 0 =
    # NaN
    w = _zero_grad_step(LPSGD, dtype, lr=0.1, p=4.0, eps=1e-40)  # rho = 2/3: 1e26.7, fine
    assert torch.isfinite(w).all()
    with pytest.raises(
        ValueError, match=r"eps = 1e-40 is too small for torch.float32: eps\^-1 overflows"
    ):
        _zero_grad_step(LPSGD, dtype, lr=0.1, p=math.inf, eps=1e-40)


def test_lr_that_is_zero_in_float32_is_refused_but_lr_zero_is_allowed():
    with pytest.raises(ValueError, match=r"lr = 1e-46 rounds to 0 in torch.float32"):
        _zero_grad_step(LPSGD, torch.float32, lr=1e-46, p=4.0)
    w = _zero_grad_step(
        LPSGD, torch.float32, lr=0.0, p=4.0
    )  # eta = 0 is in the paper's grid: no step
    assert torch.equal(w.detach(), torch.tensor([1.0, -2.0, 3.0]))


def test_lr_times_weight_decay_above_one_is_refused_one_is_allowed():
    with pytest.raises(ValueError, match=r"lr \* weight_decay must be <= 1"):
        LPSGDM(make_params(), lr=0.5, p=4.0, weight_decay=2.5)
    w = _zero_grad_step(
        LPSGDM, torch.float64, lr=0.5, p=4.0, weight_decay=2.0, momentum=0.0
    )  # theta <- 0 - lr u
    g = torch.tensor([0.0, 1.0, -1e-3], dtype=torch.float64)
    torch.testing.assert_close(w.detach(), -0.5 * lp.rescale(g, 4.0, 1e-8))


def test_a_scheduler_that_raises_lr_past_the_limit_is_refused_at_the_step():
    params = make_params()
    opt = LPSGDM(params, lr=0.1, p=4.0, weight_decay=0.5)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 100.0)  # lr = 10: lr * weight_decay = 5
    before = [p.detach().clone() for p in params]
    for p, g in zip(params, grads_for(params, 0)):
        p.grad = g
    with pytest.raises(ValueError, match=r"lr \* weight_decay .*\(param group 0\)"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, params)) and not opt.state


# --- add_param_group and load_state_dict change nothing when they refuse --------------------------


def test_a_refused_param_group_is_not_added_and_steps_go_on():
    params = make_params()
    opt = LPSGDM(params[:3], lr=0.1, p_max=6.0, total_epochs=5)
    with pytest.raises(ValueError, match=r"lr must be .* \(param group 1\)"):
        opt.add_param_group({"params": params[3:], "lr": -1.0})
    assert len(opt.param_groups) == 1
    for p, g in zip(params, grads_for(params, 0)):
        p.grad = g
    opt.step()  # before: the bad group stayed and every later step raised
    opt.add_param_group({"params": params[3:], "lr": 0.05})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["p"] == 6.0


@pytest.mark.parametrize("params", [lambda w: [w, w], lambda w: [{"params": [w]}, {"params": [w]}]])
def test_a_parameter_may_appear_once(params):
    w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(
        ValueError, match="params"
    ):  # once per group would have stepped it twice per step
        LPSGD(params(w), lr=0.1, p=4.0)


def test_lpsgd_refuses_lpsgdm_hyperparameters():
    with pytest.raises(ValueError, match="weight_decay"):
        LPSGD([{"params": make_params(), "weight_decay": 0.1}], lr=0.1, p=4.0)


def _trained(cls=LPSGDM, steps=3, **kw):
    params = make_params()
    opt = two_groups(params, cls, True, **kw)
    for t in range(steps):
        for p, g in zip(params, grads_for(params, t)):
            p.grad = g
        opt.step()
    return params, opt


@pytest.mark.parametrize(
    "edit,match",
    [
        (
            lambda sd: sd["state"][0]["momentum_buffer"].view(-1).__setitem__(0, math.nan),
            "momentum_buffer.*finite",
        ),
        (
            lambda sd: sd["state"][0].__setitem__("momentum_buffer", torch.zeros(9)),
            "momentum_buffer.*shape",
        ),
        (
            lambda sd: sd["param_groups"][1].__setitem__("lr", -1.0),
            r"param_groups'\]\[1\]: lr must be",
        ),
        (lambda sd: sd["param_groups"][0].__setitem__("p", 3.0), "eq. 19"),
        (lambda sd: sd["param_groups"][0].__setitem__("epoch", 7), "epoch must be"),
        (lambda sd: sd["param_groups"][0].pop("eps"), r"has no \['eps'\]"),
    ],
)
def test_a_refused_state_dict_changes_nothing(edit, match):
    params, opt = _trained()
    twin_params, twin = _trained()
    sd = copy.deepcopy(opt.state_dict())
    edit(sd)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    for t in (3, 4):  # the refused load left the optimizer as it was: it steps exactly as its twin
        for ps in (params, twin_params):
            for p, g in zip(ps, grads_for(ps, t)):
                p.grad = g
        opt.step()
        twin.step()
    assert all(torch.equal(a, b) for a, b in zip(params, twin_params))


def test_a_refused_step_leaves_no_new_momentum_buffer():
    params = make_params()
    opt = LPSGDM([{"params": params[:3]}, {"params": params[3:]}], lr=0.1, p=4.0)
    for p, g in zip(params, grads_for(params, 0)):
        p.grad = g
    params[4].grad[0] = math.nan  # group 1; group 0's buffers would be made first
    with pytest.raises(NonFiniteGradientError):
        opt.step()
    assert not opt.state and opt.state_dict()["state"] == {}


def test_load_state_dict_checks_after_the_pre_hooks_which_run_once():
    # a pre-hook may bring an old checkpoint up to date (here: one without eps); torch runs it first
    params, opt = _trained()
    sd = copy.deepcopy(opt.state_dict())
    for group in sd["param_groups"]:
        del group["eps"]
    calls = []

    def add_eps(optimizer, state_dict):
        calls.append(1)
        for group in state_dict["param_groups"]:
            group.setdefault("eps", 1e-6)

    fresh = two_groups(make_params(), LPSGDM, True)
    fresh.register_load_state_dict_pre_hook(add_eps)
    fresh.load_state_dict(
        copy.deepcopy(sd)
    )  # (the hook edits the groups in place, as torch allows)
    assert calls == [1] and [g["eps"] for g in fresh.param_groups] == [1e-6, 1e-6]
    with pytest.raises(ValueError, match=r"has no \['eps'\]"):  # and without the hook, refused
        two_groups(make_params(), LPSGDM, True).load_state_dict(sd)
