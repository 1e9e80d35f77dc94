"""lpcheck.fused_triton: the Triton kernels of the fused step, against the foreach path.

With CUDA they run on the GPU; without it they run on CPU tensors in Triton's interpreter
(TRITON_INTERPRET=1, which tests/conftest.py sets before triton can be imported), so the very code
the GPU runs is checked on every machine that has the `triton` package (pip install
"lpcheck[triton]").
"""

import math
import os

import pytest
import torch

import fused_common
from fused_common import (
    REL_TOL,
    assert_matches_foreach,
    assert_non_finite_step_changes_nothing,
    grads_at,
    make_opt,
    params_for,
    rel_err,
)
from lpcheck import fused, fused_triton
from lpcheck.optim import LPSGD, LPSGDM

pytest.importorskip(
    "triton", reason="the Triton kernels need the triton package (pip install triton)"
)
CUDA = torch.cuda.is_available()
if not CUDA and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip(
        "without CUDA the Triton kernels need TRITON_INTERPRET=1 (tests/conftest.py sets it)",
        allow_module_level=True,
    )

DEVICE = "cuda" if CUDA else "cpu"
# On a GPU every test here is a GPU test (experiments/gpu_evidence.py runs `pytest -m gpu`); without
# one they run in the interpreter like any other test.
pytestmark = [pytest.mark.gpu] if CUDA else []


def _interpreter_fma_is_exact() -> bool:
    """Whether Triton's interpreter rounds tl.fma once (3.9 does; 3.6 multiplies, then adds)."""
    import triton
    import triton.language as tl

    @triton.jit
    def probe(x_ptr, out_ptr):
        x = tl.load(x_ptr + tl.arange(0, 2))
        tl.store(out_ptr + tl.arange(0, 2), tl.fma(x, x, -1.0))

    x = torch.full((2,), 1 + 2.0**-12)
    out = torch.empty(2)
    probe[(1,)](x, out)
    return out[0].item() == 2.0**-11 + 2.0**-24  # rounding x * x first gives 2^-11


# The kernel's lerp (eq. 23) is one fused multiply-add, as ATen's: on the GPU and in an interpreter
# whose tl.fma rounds once, m is bitwise the foreach path's and theta differs only by the power (the
# issue's 1e-6). An interpreter that rounds the product first (Triton 3.6) moves m by an ulp of its
# operands, and where m nearly cancels, the step m |m|^-rho = |m|^(1-rho) turns that into up to
# 1.6e-5 of theta's path (measured on these inputs): a looser bound there, still far below any wrong
# formula's error.
EXACT_FMA = CUDA or _interpreter_fma_is_exact()
TOL = REL_TOL if EXACT_FMA else 5e-5


@pytest.fixture(autouse=True)
def triton_for_cpu_tensors(monkeypatch):
    """Without CUDA, send the CPU tensors of the fused path to the (interpreted) Triton kernel."""
    if not CUDA:
        monkeypatch.setattr(fused, "_use_triton", lambda device: True)


@pytest.mark.parametrize("cls", [LPSGDM, LPSGD])
def test_kernel_matches_foreach_over_many_steps_and_a_changing_p(cls):
    errors = assert_matches_foreach(cls, torch.float32, TOL, device=DEVICE, groups=2, steps=36)
    assert max(errors) > 0  # a different computation: equal to rounding, not bitwise


def test_kernel_bfloat16_matches_foreach():
    # float32 math, rounded to bfloat16 where the foreach path rounds (m stored, decayed theta)
    assert_matches_foreach(LPSGDM, torch.bfloat16, 2.0**-7, device=DEVICE, steps=36)


def test_kernel_at_p_2_is_ema_sgd():
    # rho = 0: the factor is exactly 1 (2^(0 * log2(.))), so the step is EMA-momentum SGD
    params = params_for(torch.float32, DEVICE)
    opt = make_opt(
        LPSGDM, params, fused=True, p=2.0, p_max=None, total_epochs=None, weight_decay=0.0
    )
    grads = grads_at(0, params, DEVICE)
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()
    for p, g in zip(params, grads):
        assert torch.equal(p.detach(), -0.1 * (g * (1 - 0.9)))  # theta = 0 - lr (1 - beta) g


def test_missing_gradients_skip_their_parameters():
    params = params_for(torch.float32, DEVICE)
    opt = make_opt(LPSGDM, params, fused=True)
    for p, g in zip(params, grads_at(0, params, DEVICE)):
        p.grad = g
    params[1].grad = None
    opt.step()
    assert torch.equal(params[1], torch.zeros_like(params[1])) and params[1] not in opt.state
    assert all(p.abs().max() > 0 for i, p in enumerate(params) if i != 1 and p.grad.abs().max() > 0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_gradient_raises_before_any_change(bad):
    assert_non_finite_step_changes_nothing(
        bad, index=3, element=8191, device=DEVICE
    )  # the last element


def test_nonfinite_counts_bad_entries_and_a_nonzero_flag_stops_the_update():
    params = params_for(torch.float32, DEVICE)
    grads = [torch.zeros_like(p) for p in params]
    bucket = fused.Bucket(params, grads, [])
    assert int(bucket.nonfinite()) == 0 and not bucket.nonfinite()
    grads[0].fill_(math.nan)
    grads[2][4101] = math.inf  # in a ragged (masked) last block
    grads[3][0] = -math.inf  # in a whole (unmasked) block
    grads[3][2048] = 3e38  # huge but finite
    flag = bucket.nonfinite()
    assert int(flag) == 3 and bool(flag)
    assert int(bucket.nonfinite(flag)) == 6  # a shared counter: checks of further buckets add to it
    bucket.step_(
        lr=0.1, beta=0.0, weight_decay=0.0, rho=0.5, eps=1e-8, flag=flag
    )  # guarded: no write
    assert all(torch.equal(p, torch.zeros_like(p)) for p in params)
    bucket.step_(
        lr=0.1, beta=0.0, weight_decay=0.0, rho=0.5, eps=1e-8, flag=fused_triton.new_flag(DEVICE)
    )
    assert torch.isnan(params[0]) and params[3][2048] < 0


def test_test_shapes_cover_whole_and_ragged_blocks_of_every_dtype():
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        block = fused_triton.block_elements(dtype)
        sizes = [math.prod(s) for s in fused_common.SHAPES]
        assert any(n > block and n % block for n in sizes), (
            dtype,
            block,
        )  # several blocks, ragged tail
        assert any(n >= 2 * block and n % block == 0 for n in sizes), (
            dtype,
            block,
        )  # whole blocks only


def test_tables_are_built_once_and_rebuilt_only_for_new_addresses(monkeypatch):
    built = []
    real = fused_triton._Tables.__init__

    def counting(self, *a, **k):
        built.append(1)
        real(self, *a, **k)

    monkeypatch.setattr(fused_triton._Tables, "__init__", counting)
    monkeypatch.setattr(fused_triton, "_TABLES", type(fused_triton._TABLES)())
    params = params_for(torch.float32, DEVICE)
    opt = make_opt(LPSGDM, params, fused=True)
    grads = grads_at(0, params, DEVICE)
    for p, g in zip(params, grads):
        p.grad = g
    for _ in range(3):
        opt.step()
    assert len(built) == 1  # the same tensors: the tables of the first step
    for p in params:
        p.grad = p.grad.clone()  # new addresses, as zero_grad(set_to_none=True) may give
    opt.step()
    assert len(built) == 2


def test_pointer_table_follows_reallocated_gradients():
    # zero_grad(set_to_none=True) reallocates gradients: the kernel must read the new ones
    params = params_for(torch.float32, DEVICE)
    opt = make_opt(LPSGDM, params, fused=True, p=4.0, p_max=None, total_epochs=None, momentum=0.0)
    for t in range(2):
        opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads_at(t, params, DEVICE)):
            p.grad = g.clone()
        before = [p.detach().clone() for p in params]
        opt.step()
        for b, p, g in zip(before, params, grads_at(t, params, DEVICE)):  # beta = 0: d = g
            expected = b.double() * (1 - 0.1 * 0.01) - 0.1 * g.double() * (
                g.double().abs() + 1e-8
            ) ** -(2.0 / 3.0)
            assert rel_err(p, expected) <= 1e-6


def test_non_contiguous_parameters_take_the_foreach_path():
    w = torch.nn.Parameter(torch.randn(6, 4, device=DEVICE).t())  # a transposed view
    twin = torch.nn.Parameter(w.detach().clone())
    g = torch.randn(4, 6, device=DEVICE)
    for p, o in (
        (w, LPSGDM([w], lr=0.1, p=4.0, fused=True)),
        (twin, LPSGDM([twin], lr=0.1, p=4.0, foreach=True)),
    ):
        p.grad = g.clone()
        o.step()
    assert torch.equal(w, twin)


@pytest.mark.gpu
def test_cuda_fused_is_the_default_once_validated_and_matches_the_cpu_reference(monkeypatch):
    params = params_for(torch.float32, "cuda")
    opt = make_opt(LPSGDM, params)
    assert opt.param_groups[0]["fused"] is None
    key = (params[0].device, params[0].dtype)
    bufs = [torch.zeros_like(p) for p in params]
    from lpcheck import fused

    assert opt._path(opt.param_groups[0], key, params, bufs, []) == (
        "fused" if fused.AUTO_ON_CUDA else "foreach"
    )
    monkeypatch.setattr(fused, "AUTO_ON_CUDA", True)
    assert opt._path(opt.param_groups[0], key, params, bufs, []) == "fused"
    assert_matches_foreach(LPSGDM, torch.float32, REL_TOL, device="cuda", steps=60)
