"""lpcheck.fused: the fused step on CPU (torch.compile), against the foreach path it replaces.

The compiled step is built once per signature (kind of step, dtype, shapes), so these tests share a
few compilations (fused_common.SHAPES); the first test to need one pays its compile time.
"""

import io
import math

import numpy as np
import pytest
import torch

from fused_common import (
    REL_TOL,
    SHAPES,
    assert_matches_foreach,
    assert_non_finite_step_changes_nothing,
    grads_at,
    make_opt,
    params_for,
    rel_err,
    train,
)
from lpcheck import fused
from lpcheck.optim import LPSGD, LPSGDM
from lpcheck.schedule import cosine_p

# --- the float32 power ----------------------------------------------------------------------------


def test_polynomials_are_accurate_on_their_intervals():
    u = np.linspace(math.sqrt(0.5) - 1, math.sqrt(2) - 1, 100_001)
    log2 = u * np.polyval(fused.LOG2_COEFS[::-1], u)
    assert np.max(np.abs(log2 - np.log2(1 + u)) / np.maximum(np.abs(np.log2(1 + u)), 1e-300)) < 2e-7
    r = np.linspace(-0.5, 0.5, 100_001)
    assert np.max(np.abs(np.polyval(fused.EXP2_COEFS[::-1], r) / np.exp2(r) - 1)) < 2e-8


@pytest.mark.parametrize("rho", [0.0, 0.25, 0.8, 1.0])
def test_pow_neg_f32_is_float32_accurate_from_tiny_to_huge(rho):
    # every binade of normal float32, many mantissas each, and the ends of the range
    x = torch.cat(
        [
            torch.logspace(-126, 127.99, 200_001, base=2.0, dtype=torch.float64),
            torch.tensor([2.0**-126, 1.0, 3.4028234663852886e38], dtype=torch.float64),
        ]
    )
    x32 = x.float()
    neg_rho = torch.tensor(
        -rho
    )  # as the optimizer passes it: float32, so exact is taken at that rho
    got = fused.pow_neg_f32(x32, neg_rho).double()
    exact = x32.double() ** neg_rho.double()
    if rho == 0:
        assert torch.equal(got, torch.ones_like(got))
        return
    # a few float32 ulps at every |y| = rho |log2 x| <= 128 (y is never rounded as a whole); results
    # below 2^-126 are subnormal: then within a subnormal step
    assert ((got - exact).abs() <= 4 * 2.0**-24 * exact + 2.0**-149).all()
    assert rho < 1 or (exact < 2.0**-126).sum() > 1000  # at rho = 1 subnormal results were checked
    # the foreach path's float32 exp(-rho log x) is ~|y| ulps off where |y| is large: fused is
    # closer
    foreach = torch.exp(neg_rho * torch.log(x32)).double()
    assert (got / exact - 1).abs().max() < (foreach / exact - 1).abs().max() / 5


@pytest.mark.parametrize("scheme, bound", [("horner", 3.0), ("estrin", 3.5)])
def test_pow_neg_f32_compiled_as_the_fused_step_compiles_it_is_within_its_bound(scheme, bound):
    # through inductor with the fused step's options (multiply-adds contracted into FMAs), over
    # every binade of normal float32, in units of u = 2^-24: measured 1.97 u with Horner's rule,
    # 3.26 u with Estrin's scheme (which fails Horner's bound); subnormal results within a subnormal
    # step
    x = torch.logspace(-126, 127.99, 400_001, base=2.0, dtype=torch.float64).float()
    compiled = torch.compile(
        lambda x, r: fused.pow_neg_f32(x, r, scheme),
        backend=fused._counting_backend,
        fullgraph=True,
        dynamic=False,
    )
    for rho in (0.25, 0.5, 0.8, 0.99):
        neg_rho = torch.tensor(-rho)
        exact = x.double() ** neg_rho.double()
        got = compiled(x, neg_rho).double()
        assert ((got - exact).abs() <= bound * 2.0**-24 * exact + 2.0**-149).all(), rho


def test_the_default_polynomial_scheme_follows_the_vector_isa(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert fused.poly_scheme() == "horner"
    for isa in ("AVX2", "DEFAULT", "VSX"):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda isa=isa: isa)
        assert fused.poly_scheme() == "estrin"
    monkeypatch.undo()
    assert fused.DEFAULT_SCHEME == fused.poly_scheme()
    x = torch.tensor([1e-8, 0.3, 7.0])
    assert torch.equal(fused.pow_neg_f32(x, -0.5), fused.pow_neg_f32(x, -0.5, fused.DEFAULT_SCHEME))


# --- fused equals foreach -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [LPSGDM, LPSGD])
def test_fused_matches_foreach_over_many_steps_and_a_changing_p(cls):
    errors = assert_matches_foreach(cls, torch.float32, REL_TOL, groups=2)
    assert (
        max(errors) > 0 or cls is LPSGD
    )  # a different computation: equal to rounding, not bitwise


def test_fused_bfloat16_matches_foreach():
    # same rounding points as the foreach path (m stored, decayed theta rounded): any difference
    # comes from the float32 power (~1e-6) flipping a bfloat16 rounding, one ulp (2^-8 relative) at
    # a time
    assert_matches_foreach(LPSGDM, torch.bfloat16, 2.0**-7)


def test_fused_bfloat16_rounds_where_foreach_does():
    # One step from theta = 0: only that step's rounding points count. The fused step must read m as
    # stored (rounded to bfloat16), as the foreach path does; reading the float32 m it has just
    # computed flips about a tenth of the roundings of theta (the 2^-7 tolerance above cannot see
    # one ulp).
    fused, fused_m, _ = train(LPSGDM, torch.bfloat16, steps=1, epochs=1, fused=True)
    ref, ref_m, _ = train(LPSGDM, torch.bfloat16, steps=1, epochs=1, foreach=True)
    a = torch.cat([x.detach().ravel() for x in fused + fused_m])
    b = torch.cat([x.detach().ravel() for x in ref + ref_m])
    differ = a != b
    assert (~differ | (torch.nextafter(a, b) == b)).all()  # one ulp at most
    assert differ.float().mean() <= 0.01, float(differ.float().mean())


def test_fused_float64_matches_reference():
    fused_p, fused_m, _ = train(LPSGDM, torch.float64, steps=30, fused=True, check_finite=False)
    ref_p, ref_m, path = train(LPSGDM, torch.float64, steps=30, foreach=False)
    assert max(rel_err(a, b, s) for a, b, s in zip(fused_p, ref_p, path)) <= 1e-13
    assert max(rel_err(a, b) for a, b in zip(fused_m, ref_m)) <= 1e-13


@pytest.mark.parametrize("p", [2.0, 3.0, 9.0, math.inf])
def test_fused_matches_foreach_at_fixed_p(p):
    kw = dict(steps=12, p=p, p_max=None, total_epochs=None)
    a, am, _ = train(LPSGDM, torch.float32, fused=True, **kw)
    b, bm, path = train(LPSGDM, torch.float32, foreach=True, **kw)
    assert max(rel_err(x, y, s) for x, y, s in zip(a, b, path)) <= REL_TOL
    assert max(rel_err(x, y) for x, y in zip(am, bm)) <= REL_TOL


# --- compilation ----------------------------------------------------------------------------------


def test_new_lr_and_new_p_do_not_recompile():
    params = params_for(torch.float32)
    opt = make_opt(LPSGDM, params, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12)
    twin_params = params_for(torch.float32)
    twin = make_opt(LPSGDM, twin_params, foreach=True)
    twin_sched = torch.optim.lr_scheduler.CosineAnnealingLR(twin, T_max=12)
    for t in range(12):
        if t % 2 == 0:
            opt.set_epoch(t // 2 + 1)
            twin.set_epoch(t // 2 + 1)
        for p, q, g in zip(params, twin_params, grads_at(t, params)):
            p.grad, q.grad = g, g.clone()
        opt.step()
        twin.step()
        sched.step()
        twin_sched.step()
        if t == 0:
            compiles = fused.compile_count()
    assert fused.compile_count() == compiles  # 11 more steps, 5 more p, 11 more lr: no new graph
    assert opt.param_groups[0]["p"] == cosine_p(6, 6, 8.0) == 2.0
    assert (
        max(rel_err(a, b) for a, b in zip(params, twin_params)) <= 1e-5
    )  # and the schedule was applied


def test_fused_none_on_cpu_is_the_foreach_path():
    assert make_opt(LPSGDM, params_for(torch.float32)).param_groups[0]["fused"] is None
    compiles = fused.compile_count()
    a, am, _ = train(LPSGDM, torch.float32, steps=6)
    assert fused.compile_count() == compiles
    b, bm, _ = train(LPSGDM, torch.float32, steps=6, fused=False)
    assert all(torch.equal(x, y) for x, y in zip(a + am, b + bm))  # bitwise: the very same path


def test_eps_below_float32_normal_range_falls_back_to_foreach():
    kw = dict(eps=1e-40)
    a, am, _ = train(LPSGDM, torch.float32, steps=6, fused=True, **kw)
    b, bm, _ = train(LPSGDM, torch.float32, steps=6, foreach=True, **kw)
    assert all(torch.equal(x, y) for x, y in zip(a + am, b + bm))
    assert not fused.supports(torch.device("cpu"), torch.float32, 1e-40)
    assert fused.supports(torch.device("cpu"), torch.float64, 1e-40)


# --- the optimizer's contract, on the fused path --------------------------------------------------


def test_state_dict_resume_is_bit_for_bit():
    steps, per = 24, 4
    full, full_m, _ = train(LPSGDM, torch.float32, steps=steps, fused=True)
    params = params_for(torch.float32)
    opt = make_opt(LPSGDM, params, fused=True)
    for t in range(steps):
        if t % per == 0:
            opt.set_epoch(t // per + 1)
        if t == 10:
            buffer = io.BytesIO()
            torch.save(
                {"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buffer
            )
            buffer.seek(0)
            ckpt = torch.load(buffer)
            params = [torch.nn.Parameter(p) for p in ckpt["params"]]
            opt = make_opt(LPSGDM, params, fused=True)
            opt.load_state_dict(ckpt["opt"])
            assert opt.param_groups[0]["fused"] is True and opt.param_groups[0]["epoch"] == 3
        for p, g in zip(params, grads_at(t, params)):
            p.grad = g
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(full, params))


def test_checkpoint_without_fused_key_loads():
    params = params_for(torch.float32)
    opt = make_opt(LPSGDM, params, fused=True)
    state = opt.state_dict()
    for group in state["param_groups"]:
        del group["fused"]  # as written before the fused path existed
    opt.load_state_dict(state)
    assert opt.param_groups[0]["fused"] is False


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_gradient_raises_before_any_change(bad):
    assert_non_finite_step_changes_nothing(bad, index=2, element=5)


def test_check_finite_false_lets_nan_through():
    params = params_for(torch.float32)
    opt = make_opt(LPSGDM, params, fused=True, check_finite=False)
    for p, g in zip(params, grads_at(0, params)):
        p.grad = g
    params[2].grad[0] = math.nan
    opt.step()
    assert torch.isnan(params[2][0]) and torch.isfinite(params[2][1:]).all()


def test_closure_and_amp_grad_scaler():
    params = params_for(torch.float32)
    twin = params_for(torch.float32)
    x = [torch.randn(s) for s in SHAPES]

    def loss_of(ps):
        return sum(((p - xi) ** 2 * (i + 1)).sum() for i, (p, xi) in enumerate(zip(ps, x)))

    opt, opt_twin = make_opt(LPSGDM, params, fused=True), make_opt(LPSGDM, twin, fused=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    for _ in range(4):
        opt.zero_grad()
        scaler.scale(loss_of(params)).backward()
        scaler.step(opt)
        scaler.update()

        def closure():
            opt_twin.zero_grad()
            loss = loss_of(twin)
            loss.backward()
            return loss

        assert opt_twin.step(closure).item() > 0
    assert (
        max(rel_err(a, b) for a, b in zip(params, twin)) <= REL_TOL
    )  # power-of-two scale: same steps
    before = [p.detach().clone() for p in params]
    opt.zero_grad()
    scaler.scale(loss_of(params) * math.inf).backward()
    scale = scaler.get_scale()
    scaler.step(opt)  # inf gradients: GradScaler skips the step and backs off
    scaler.update()
    assert scaler.get_scale() == scale / 2 and all(
        torch.equal(a, b) for a, b in zip(before, params)
    )


def test_fused_on_an_unsupported_device_raises():
    # a meta tensor, the one non-CPU/CUDA device every machine has, is refused before fused is asked
    with pytest.raises(ValueError, match="meta device"):
        LPSGDM([torch.nn.Parameter(torch.zeros(3, device="meta"))], lr=0.1, p=4.0, fused=True)
    # so the fused path's own device check is called with a stand-in for an MPS/XPU tensor
    from types import SimpleNamespace

    from lpcheck.optim import _check_fused_devices

    with pytest.raises(
        ValueError, match="fused=True supports CPU and CUDA tensors, got one on mps"
    ):
        _check_fused_devices([torch.zeros(1), SimpleNamespace(device=SimpleNamespace(type="mps"))])


def test_finite_check_survives_sum_overflow():
    # float32 gradients whose sum overflows are still finite: the step must go through
    params = params_for(torch.float32)
    opt = make_opt(LPSGD, params, fused=True)
    for p in params:
        p.grad = torch.full_like(p, 3e38)
    assert not torch.isfinite(
        torch.stack([p.grad.sum() for p in params])
    ).all()  # the fast check cannot tell ...
    opt.step()  # ... the exact one can
    assert all(torch.isfinite(p).all() and (p < 0).all() for p in params)
