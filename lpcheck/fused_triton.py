"""The fused LPSGD/LPSGDM step as a Triton multi-tensor kernel (CUDA), eq. 21-25 in one launch.

One launch covers every tensor of a bucket (a param group's tensors of one device and dtype): a
block table maps each program to (tensor, offset), a pointer table holds the tensors' addresses,
so the kernel reads theta, g, m and writes m, theta once, in float32 math for any parameter dtype.
Per-step values (1 - beta, 1 - lr lambda, -lr, -rho, eps) are runtime arguments: a new lr or p
never recompiles. The block table is built once per list of sizes; the pointer table is rebuilt
(one small asynchronous host-to-device copy) only when an address changes, e.g. when gradients are
reallocated. (|d| + eps)^-rho is computed as on CPU (`lpcheck.fused.pow_neg_f32`): log2 and
exp2 as polynomials on the float's bits, -rho log2(.) never rounded as a whole, so the kernel is as
accurate on every GPU (no dependence on fast-math exp2/log2) and results below 2^-126 stay subnormal.

`TRITON_INTERPRET=1` (set before this module is imported) runs the same kernels on CPU tensors in
Triton's interpreter, which is how they are tested without a GPU. Without Triton, `available()` is
False and lpcheck's optimizers take the foreach path.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from lpcheck.fused import EXP2_COEFS, LOG2_COEFS
from lpcheck.fused import SQRT_HALF_BITS as _SQRT_HALF_BITS

try:
    import triton
    import triton.language as tl
except ImportError:  # an optional dependency: pip install "lpcheck[triton]" (CUDA builds of torch ship it)
    triton = None

__all__ = ["available", "Bucket", "new_flag", "BLOCK"]

BLOCK = 1024  # elements per program: a whole number of 16-byte vectors for every supported dtype
NUM_WARPS = 4


def available() -> bool:
    """Whether Triton can be imported (its kernels then run on CUDA, or interpreted on CPU)."""
    return triton is not None


if triton is not None:
    # the polynomials of lpcheck.fused, as compile-time constants of the kernels
    _L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8 = (tl.constexpr(c) for c in LOG2_COEFS)
    _E0, _E1, _E2, _E3, _E4, _E5, _E6 = (tl.constexpr(c) for c in EXP2_COEFS)
    SQRT_HALF_BITS = tl.constexpr(_SQRT_HALF_BITS)

    @triton.jit
    def _load(ptr, offs, n, MASKED: tl.constexpr):
        if MASKED:
            return tl.load(ptr + offs, mask=offs < n, other=0.0).to(tl.float32)
        return tl.load(ptr + offs).to(tl.float32)

    @triton.jit
    def _store(ptr, offs, n, value, MASKED: tl.constexpr):
        if MASKED:
            tl.store(ptr + offs, value, mask=offs < n)
        else:
            tl.store(ptr + offs, value)

    @triton.jit
    def _round(x, DTYPE: tl.constexpr):
        """float32 -> DTYPE, to nearest even; by hand for bfloat16, which Triton's interpreter truncates."""
        if DTYPE == tl.bfloat16:
            bits = x.to(tl.uint32, bitcast=True)
            bits = bits + 0x7FFF + ((bits >> 16) & 1)
            rounded = (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
            return tl.where(x == x, rounded, x.to(tl.bfloat16))  # nan stays nan
        else:
            return x.to(DTYPE)

    @triton.jit
    def _poly(x, C0: tl.constexpr, C1: tl.constexpr, C2: tl.constexpr, C3: tl.constexpr, C4: tl.constexpr,
              C5: tl.constexpr, C6: tl.constexpr, C7: tl.constexpr, C8: tl.constexpr):
        """sum_i C_i x^i by Estrin's scheme, the same steps as lpcheck.fused._poly (zeros pad shorter ones)."""
        x2 = x * x
        x4 = x2 * x2
        low = (C0 + C1 * x) + (C2 + C3 * x) * x2
        high = (C4 + C5 * x) + (C6 + C7 * x) * x2
        return (low + high * x4) + C8 * (x4 * x4)

    @triton.jit
    def _pow_neg(x, neg_rho):
        """x^-rho for normal float32 x: lpcheck.fused.pow_neg_f32, the same steps and coefficients."""
        bits = x.to(tl.int32, bitcast=True)
        e = (bits - SQRT_HALF_BITS) >> 23
        u = (bits - (e << 23)).to(tl.float32, bitcast=True) - 1.0
        ef = e.to(tl.float32)
        head = tl.floor(neg_rho * 4096.0) * (1.0 / 4096.0)
        head_e = ef * head  # exact
        tail = (neg_rho - head) * ef + neg_rho * (u * _poly(u, _L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8))
        k = tl.floor(head_e + tail + 0.5)
        p = _poly((head_e - k) + tail, _E0, _E1, _E2, _E3, _E4, _E5, _E6, 0.0, 0.0)
        k_int = k.to(tl.int32)
        k_half = k_int >> 1
        return (p * ((k_half + 127) << 23).to(tl.float32, bitcast=True)
                * ((k_int - k_half + 127) << 23).to(tl.float32, bitcast=True))

    @triton.jit
    def _pointer(ptrs, index, DTYPE: tl.constexpr, ALIGNED: tl.constexpr):
        ptr = tl.load(ptrs + index).to(tl.pointer_type(DTYPE))
        if ALIGNED:  # every address is a multiple of 16 bytes: 16-byte vector loads are allowed
            ptr = tl.multiple_of(ptr, 16)
        return ptr

    @triton.jit
    def _step_block(theta_ptr, g_ptr, m_ptr, offs, n, w, decay, neg_lr, neg_rho, eps,
                    DTYPE: tl.constexpr, MOMENTUM: tl.constexpr, MASKED: tl.constexpr):
        d = _load(g_ptr, offs, n, MASKED)
        if MOMENTUM:
            m = _load(m_ptr, offs, n, MASKED)
            # eq. 23 as torch.lerp computes it: the formula switches at weight 1/2
            m = _round(tl.where(w < 0.5, m + w * (d - m), d - (d - m) * (1.0 - w)), DTYPE)
            _store(m_ptr, offs, n, m, MASKED)
            d = m.to(tl.float32)  # the stored (rounded) m, as the foreach path reads it
        factor = _pow_neg(tl.abs(d) + eps, neg_rho)  # eq. 21/24: (|d| + eps)^-rho
        theta = _round(_load(theta_ptr, offs, n, MASKED) * decay, DTYPE).to(tl.float32)  # eq. 25, as mul_
        _store(theta_ptr, offs, n, _round(theta + (neg_lr * d) * factor, DTYPE), MASKED)  # eq. 22/25

    @triton.jit
    def _step_kernel(ptrs, block_tensor, block_start, numels, n_tensors, w, decay, neg_lr, neg_rho, eps, flag,
                     DTYPE: tl.constexpr, MOMENTUM: tl.constexpr, ALIGNED: tl.constexpr, GUARDED: tl.constexpr,
                     BLOCK: tl.constexpr):
        if GUARDED:  # a gradient of this step is not finite: leave every tensor as it is
            if tl.load(flag) != 0:
                return
        pid = tl.program_id(0)
        t = tl.load(block_tensor + pid)
        start = tl.multiple_of(tl.load(block_start + pid), BLOCK)
        n = tl.load(numels + t)
        offs = start + tl.arange(0, BLOCK)
        theta_ptr = _pointer(ptrs, t, DTYPE, ALIGNED)
        g_ptr = _pointer(ptrs, n_tensors + t, DTYPE, ALIGNED)
        m_ptr = g_ptr
        if MOMENTUM:
            m_ptr = _pointer(ptrs, 2 * n_tensors + t, DTYPE, ALIGNED)
        if start + BLOCK <= n:  # whole blocks unmasked, so loads can be vectorised
            _step_block(theta_ptr, g_ptr, m_ptr, offs, n, w, decay, neg_lr, neg_rho, eps, DTYPE, MOMENTUM, False)
        else:
            _step_block(theta_ptr, g_ptr, m_ptr, offs, n, w, decay, neg_lr, neg_rho, eps, DTYPE, MOMENTUM, True)

    @triton.jit
    def _nonfinite_kernel(ptrs, block_tensor, block_start, numels, n_tensors, flag,
                          DTYPE: tl.constexpr, ALIGNED: tl.constexpr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        t = tl.load(block_tensor + pid)
        offs = tl.load(block_start + pid) + tl.arange(0, BLOCK)
        g = tl.load(_pointer(ptrs, n_tensors + t, DTYPE, ALIGNED) + offs, mask=offs < tl.load(numels + t), other=0.0)
        bad = tl.sum(tl.where(tl.abs(g.to(tl.float32)) < float("inf"), 0, 1), axis=0)  # nan < inf is False
        if bad > 0:
            tl.atomic_add(flag, bad)

    _TL_DTYPE = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}


_BLOCK_TABLES: dict = {}
_POINTER_TABLES: OrderedDict = OrderedDict()
_POINTER_TABLES_KEPT = 16


def _block_table(device, numels):
    """(block -> tensor index, block -> start offset, numels) on device; built once per size list."""
    key = (device, numels)
    table = _BLOCK_TABLES.get(key)
    if table is None:
        sizes = torch.tensor(numels, dtype=torch.int64)
        blocks = (sizes + BLOCK - 1) // BLOCK
        tensor = torch.repeat_interleave(torch.arange(len(numels), dtype=torch.int32), blocks)
        first = torch.cumsum(blocks, 0) - blocks
        start = (torch.arange(int(blocks.sum()), dtype=torch.int64) - torch.repeat_interleave(first, blocks)) * BLOCK
        table = _BLOCK_TABLES[key] = (tensor.to(device), start.to(device), sizes.to(device))
    return table


def _pointer_table(device, tensors):
    """The tensors' addresses as an int64 tensor on device; an address change rebuilds it (no sync:
    pinned host memory and a non-blocking copy on the current stream)."""
    addresses = tuple(t.data_ptr() for t in tensors)
    key = (device, addresses)
    table = _POINTER_TABLES.get(key)
    if table is None:
        host = torch.tensor(addresses, dtype=torch.int64)
        table = host.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else host
        _POINTER_TABLES[key] = table
        while len(_POINTER_TABLES) > _POINTER_TABLES_KEPT:
            _POINTER_TABLES.popitem(last=False)
    else:
        _POINTER_TABLES.move_to_end(key)
    return table, all(a % 16 == 0 for a in addresses)


class Bucket:
    """One bucket's tables, built once per step and shared by its two kernels."""

    def __init__(self, params, grads, bufs):
        tensors = list(params) + list(grads) + list(bufs)
        for t in tensors:
            if not t.is_contiguous():
                raise ValueError("the fused Triton step needs contiguous tensors (got a non-contiguous one); "
                                 "use foreach=True for such parameters")
        self.device, self.n, self.momentum = params[0].device, len(params), bool(bufs)
        self.dtype = _TL_DTYPE[params[0].dtype]
        self.blocks, self.starts, self.numels = _block_table(self.device, tuple(p.numel() for p in params))
        self.ptrs, self.aligned = _pointer_table(self.device, tensors)

    def nonfinite_(self, flag) -> None:
        """Add the number of inf/nan gradient entries to `flag` (int32, 0-d, on the device)."""
        _nonfinite_kernel[(self.blocks.numel(),)](
            self.ptrs, self.blocks, self.starts, self.numels, self.n, flag,
            DTYPE=self.dtype, ALIGNED=self.aligned, BLOCK=BLOCK, num_warps=NUM_WARPS,
        )

    def step_(self, *, w, decay, neg_lr, neg_rho, eps, flag=None) -> None:
        """m = lerp(m, g, w) (with momentum); theta = round(theta decay) + neg_lr d (|d| + eps)^neg_rho.
        With a flag, nothing is written if it is nonzero when the kernel runs (no host sync)."""
        _step_kernel[(self.blocks.numel(),)](
            self.ptrs, self.blocks, self.starts, self.numels, self.n, float(w), float(decay), float(neg_lr),
            float(neg_rho), float(eps), flag if flag is not None else self.numels,
            DTYPE=self.dtype, MOMENTUM=self.momentum, ALIGNED=self.aligned, GUARDED=flag is not None,
            BLOCK=BLOCK, num_warps=NUM_WARPS,
        )


def new_flag(device):
    return torch.zeros((), dtype=torch.int32, device=device)
