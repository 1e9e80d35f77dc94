"""Shared by the fused-path tests: inputs with tiny, huge, zero and mixed-sign values, and the
fused-against-foreach comparison they all make (tests/test_fused.py, tests/test_fused_triton.py).

Every fused test uses parameter lists of the same shapes, so the CPU path compiles each kind of step
(momentum or not, per dtype) once for the whole test session.
"""

import copy

import pytest
import torch

from lpcheck.optim import LPSGDM, NonFiniteGradientError

# 0-d, 2-D, longer than a Triton block with a ragged tail (and a SIMD tail on CPU), a whole number
# of blocks: 4102 is two float32 blocks (2048) plus 6, one bfloat16 block (4096) plus 6; 8192 is
# four and two (tests/test_fused_triton.py checks this against lpcheck.fused_triton's block sizes).
# Few tensors: the CPU path's compile time grows with their number.
SHAPES = [(), (3, 5), (4102,), (8192,)]
# one magnitude per tensor, so a per-tensor relative error sees every range: ordinary, tiny, huge,
# small. Huge stops at 1e12: beyond, the foreach path's float32 log(|m| + eps) alone is off by more
# than 1e-6 (|log x| * 2^-24 relative); tests/test_fused.py checks larger values against float64
# instead.
SCALES = [1.0, 1e-30, 1e12, 1e-3]
REL_TOL = 1e-6  # float32: "equal to rounding", the bound


def params_for(dtype, device="cpu", groups=1):
    """theta = 0, so theta after T steps is made of the updates alone and its relative error is
    theirs."""
    return [
        torch.nn.Parameter(torch.zeros(s, dtype=dtype, device=device))
        for _ in range(groups)
        for s in SHAPES
    ]


def grads_at(step, params, device="cpu"):
    """Mixed signs, about two decades of spread within a tensor, exact zeros, the tensor's SCALE."""
    g = torch.Generator().manual_seed(2000 + step)
    out = []
    for i, p in enumerate(params):
        v = torch.randn(p.shape, generator=g, dtype=torch.float64) * torch.exp(
            torch.randn(p.shape, generator=g, dtype=torch.float64)
        )
        v = v * SCALES[i % len(SHAPES)]
        v[torch.rand(p.shape, generator=g) < 0.1] = 0
        out.append(v.to(p.dtype).to(device))
    return out


def make_opt(cls, params, groups=1, **kw):
    """A scheduled (p_max) optimizer; with groups=2 the second group has its own lr, p_max, eps,
    beta."""
    base = dict(
        lr=0.1,
        p_max=8.0,
        total_epochs=6,
        **({"momentum": 0.9, "weight_decay": 0.01} if cls is LPSGDM else {}),
    )
    base.update(kw)
    if groups == 1:
        return cls(params, **base)
    n = len(SHAPES)
    second = {
        "params": params[n:],
        "lr": 0.03,
        "p_max": 4.0,
        "eps": 1e-6,
        **({"momentum": 0.5} if cls is LPSGDM else {}),
    }
    return cls([{"params": params[:n]}, second], **base)


def train(cls, dtype, steps=60, epochs=6, device="cpu", groups=1, grads=grads_at, **kw):
    """theta, m after `steps` steps, with set_epoch every steps/epochs steps (p changes mid-run),
    and each theta's path length sum_t |theta_t+1 - theta_t| (float64)."""
    params = params_for(dtype, device, groups)
    opt = make_opt(cls, params, groups, **kw)
    path = [torch.zeros(p.shape, dtype=torch.float64) for p in params]
    per = steps // epochs
    for t in range(steps):
        if t % per == 0:
            opt.set_epoch(t // per + 1)
        for p, g in zip(params, grads(t, params, device)):
            p.grad = g
        before = [p.detach().double().cpu().clone() for p in params]  # clone: float64 would alias
        opt.step()
        for s, b, p in zip(path, before, params):
            s += (p.detach().double().cpu() - b).abs()
    bufs = [opt.state[p]["momentum_buffer"] for p in params] if cls is LPSGDM else []
    return params, bufs, path


def rel_err(a, b, scale=None) -> float:
    """max |a - b| / max |scale| over one tensor (float64; scale defaults to b), 0 when both are 0.

    For theta, scale is the reference's path length: theta_T = theta_0 + sum of T updates, so
    float32 rounding of each update adds up relative to the distance travelled, not to |theta_T|
    (which a random walk of updates keeps near sqrt(T) of it)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = (b if scale is None else scale.double().cpu()).abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / scale if scale > 0 else diff


def assert_matches_foreach(cls, dtype, tol, device="cpu", groups=1, steps=60, **kw):
    """The fused path against the foreach path: every theta within `tol` of its path length, every
    m within `tol` of its largest entry."""
    fused, fused_m, _ = train(
        cls, dtype, steps=steps, device=device, groups=groups, fused=True, **kw
    )
    ref, ref_m, path = train(
        cls, dtype, steps=steps, device="cpu", groups=groups, foreach=True, **kw
    )
    errors = [rel_err(a, b, s) for a, b, s in zip(fused, ref, path)] + [
        rel_err(a, b) for a, b in zip(fused_m, ref_m)
    ]
    assert max(errors) <= tol, errors
    assert all(p.abs().max() > 0 for p in ref)  # every tensor moved
    return errors


def assert_non_finite_step_changes_nothing(bad, index, element, device="cpu"):
    """A bad gradient in group 1 raises NonFiniteGradientError naming it, and no parameter or
    momentum buffer of either group changes (group 0 comes first, so it must not have stepped)."""
    params = params_for(torch.float32, device, groups=2)
    opt = make_opt(LPSGDM, params, groups=2, fused=True)
    for t in range(2):
        for p, g in zip(params, grads_at(t, params, device)):
            p.grad = g
        opt.step()
    before = copy.deepcopy([p.detach() for p in params]), copy.deepcopy(opt.state_dict())
    params[len(SHAPES) + index].grad.view(-1)[element] = bad
    shape = ", ".join(str(n) for n in SHAPES[index]) + ("," if len(SHAPES[index]) == 1 else "")
    with pytest.raises(
        NonFiniteGradientError, match=rf"param group 1, parameter {index} \(shape \({shape}\)\)"
    ):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before[0], params))
    state = opt.state_dict()["state"]
    assert all(
        torch.equal(state[k]["momentum_buffer"], v["momentum_buffer"])
        for k, v in before[1]["state"].items()
    )
