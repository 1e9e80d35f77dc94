"""The fused LPSGD/LPSGDM step as a Triton multi-tensor kernel (CUDA), eq. 21-25 in one launch.

One launch covers every tensor of a bucket (a param group's tensors of one device and dtype): a
block table maps each program to (tensor, offset), a pointer table holds the tensors' addresses, so
the kernel reads theta, g, m and writes m, theta once, in float32 math for any parameter dtype.
Per-step values (1 - beta, 1 - lr lambda, -lr, -rho, eps) are runtime arguments: a new lr or p never
recompiles. The tables of a bucket are built once, on the first step that sees its addresses and
sizes, and kept (the last 64 such lists per process: gradients reallocated by
`zero_grad(set_to_none=True)` usually come back at the same addresses, or alternate among a few); a
step then costs one pass of `data_ptr` and `numel` over the tensors, no table rebuild.

Memory: the kernel is bound by memory (5 passes of the parameters' bytes, about 50 float32 flops per
element). Each program takes BLOCK_BYTES = 8 KiB of every tensor (2048 float32 or 4096 bfloat16
elements) with NUM_WARPS = 8 warps, so each thread holds two 16-byte vectors of each of theta, g and
m; all three are loaded before the first use, so six 16-byte requests per thread are in flight at
once (on an H200, ~4.8 TB/s x ~0.7 us latency / 132 SMs needs ~26 KB in flight per SM: about one
program's 24 KB, and several programs fit on an SM). Whole blocks load and store unmasked (and as
16-byte vectors when every address is 16-byte aligned); only a tensor's last block is masked.
`benchmarks/triton_block_sweep.py` times other block sizes and warp counts on the GPU.

The non-finite check (`nonfinite_`) counts bad gradient entries into a device counter that the
update kernel reads (nothing is written if it is nonzero). Its value is copied to pinned host memory
right after the checks, so reading it (the optimizer's one host sync per step, needed to raise
before any change) waits for the checks, not for the updates queued after them; with
check_finite=False there is no check and no sync.

(|d| + eps)^-rho is computed as on CPU (`lpcheck.fused.pow_neg_f32`): log2 and exp2 as polynomials
on the float's bits, -rho log2(.) never rounded as a whole, so the kernel is as accurate on every
GPU (no dependence on fast-math exp2/log2) and results below 2^-126 stay subnormal.

`TRITON_INTERPRET=1` (set before this module is imported) runs the same kernels on CPU
tensors in Triton's interpreter, which is how they are tested without a GPU. Without Triton,
`available()` is False and lpcheck's optimizers take the foreach path.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from lpcheck.fused import EXP2_COEFS, LOG2_COEFS
from lpcheck.fused import SQRT_HALF_BITS as _SQRT_HALF_BITS

try:
    import triton
    import triton.language as tl
except (
    ImportError
):  # an optional dependency: pip install "lpcheck[triton]" (CUDA builds of torch ship it)
    triton = None

__all__ = ["available", "Bucket", "Count", "new_flag", "block_elements", "BLOCK_BYTES", "NUM_WARPS"]

BLOCK_BYTES = 8192  # of each tensor per program (see the module docstring)
NUM_WARPS = 8


def block_elements(dtype: torch.dtype, block_bytes: int = BLOCK_BYTES) -> int:
    """Elements per program for a parameter dtype: 2048 float32, 4096 bfloat16/float16."""
    return block_bytes // torch.tensor([], dtype=dtype).element_size()


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
        """float32 -> DTYPE, to nearest even; by hand for bfloat16, which Triton's interpreter
        truncates."""
        if DTYPE == tl.bfloat16:
            bits = x.to(tl.uint32, bitcast=True)
            bits = bits + 0x7FFF + ((bits >> 16) & 1)
            rounded = (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
            return tl.where(x == x, rounded, x.to(tl.bfloat16))  # nan stays nan
        else:
            return x.to(DTYPE)

    @triton.jit
    def _poly(
        x,
        C0: tl.constexpr,
        C1: tl.constexpr,
        C2: tl.constexpr,
        C3: tl.constexpr,
        C4: tl.constexpr,
        C5: tl.constexpr,
        C6: tl.constexpr,
        C7: tl.constexpr,
        C8: tl.constexpr,
    ):
        """sum_i C_i x^i by Horner's rule (lpcheck.fused._horner; leading zeros pad shorter ones:
        0 x + 0 = 0, then 0 x + C = C exactly): the fewest instructions, and the kernel is bound
        by memory."""
        return (
            ((((((C8 * x + C7) * x + C6) * x + C5) * x + C4) * x + C3) * x + C2) * x + C1
        ) * x + C0

    @triton.jit
    def _pow_neg(x, neg_rho):
        """x^-rho for normal float32 x: lpcheck.fused.pow_neg_f32, the same steps and
        coefficients."""
        bits = x.to(tl.int32, bitcast=True)
        e = (bits - SQRT_HALF_BITS) >> 23
        u = (bits - (e << 23)).to(tl.float32, bitcast=True) - 1.0
        ef = e.to(tl.float32)
        head = tl.floor(neg_rho * 4096.0) * (1.0 / 4096.0)
        head_e = ef * head  # exact
        tail = (neg_rho - head) * ef + neg_rho * (
            u * _poly(u, _L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8)
        )
        k = tl.floor(head_e + tail + 0.5)
        p = _poly((head_e - k) + tail, _E0, _E1, _E2, _E3, _E4, _E5, _E6, 0.0, 0.0)
        k_int = k.to(tl.int32)
        k_half = k_int >> 1
        return (
            p
            * ((k_half + 127) << 23).to(tl.float32, bitcast=True)
            * ((k_int - k_half + 127) << 23).to(tl.float32, bitcast=True)
        )

    @triton.jit
    def _pointer(ptrs, index, DTYPE: tl.constexpr, ALIGNED: tl.constexpr):
        ptr = tl.load(ptrs + index).to(tl.pointer_type(DTYPE))
        if ALIGNED:  # every address is a multiple of 16 bytes: 16-byte vector loads are allowed
            ptr = tl.multiple_of(ptr, 16)
        return ptr

    @triton.jit
    def _step_block(
        theta_ptr,
        g_ptr,
        m_ptr,
        offs,
        n,
        w,
        decay,
        neg_lr,
        neg_rho,
        eps,
        DTYPE: tl.constexpr,
        MOMENTUM: tl.constexpr,
        MASKED: tl.constexpr,
    ):
        # every load first, so their memory requests are in flight together
        d = _load(g_ptr, offs, n, MASKED)
        theta = _load(theta_ptr, offs, n, MASKED)
        if MOMENTUM:
            m = _load(m_ptr, offs, n, MASKED)
            # eq. 23 as torch.lerp computes it (ATen's lerp_vec): one fused multiply-add, whose
            # formula switches at weight 1/2, so m is bitwise the foreach path's
            m = _round(tl.where(w < 0.5, tl.fma(w, d - m, m), tl.fma(w - 1.0, d - m, d)), DTYPE)
            _store(m_ptr, offs, n, m, MASKED)
            d = m.to(tl.float32)  # the stored (rounded) m, as the foreach path reads it
        factor = _pow_neg(tl.abs(d) + eps, neg_rho)  # eq. 21/24: (|d| + eps)^-rho
        theta = _round(theta * decay, DTYPE).to(tl.float32)  # eq. 25, as mul_
        _store(
            theta_ptr, offs, n, _round(theta + (neg_lr * d) * factor, DTYPE), MASKED
        )  # eq. 22/25

    @triton.jit
    def _step_kernel(
        ptrs,
        block_tensor,
        block_start,
        numels,
        n_tensors,
        w,
        decay,
        neg_lr,
        neg_rho,
        eps,
        flag,
        DTYPE: tl.constexpr,
        MOMENTUM: tl.constexpr,
        ALIGNED: tl.constexpr,
        GUARDED: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
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
            _step_block(
                theta_ptr,
                g_ptr,
                m_ptr,
                offs,
                n,
                w,
                decay,
                neg_lr,
                neg_rho,
                eps,
                DTYPE,
                MOMENTUM,
                False,
            )
        else:
            _step_block(
                theta_ptr,
                g_ptr,
                m_ptr,
                offs,
                n,
                w,
                decay,
                neg_lr,
                neg_rho,
                eps,
                DTYPE,
                MOMENTUM,
                True,
            )

    @triton.jit
    def _count_nonfinite(g_ptr, offs, n, MASKED: tl.constexpr):
        g = _load(g_ptr, offs, n, MASKED)
        return tl.sum(tl.where(tl.abs(g) < float("inf"), 0, 1), axis=0)  # nan < inf is False

    @triton.jit
    def _nonfinite_kernel(
        ptrs,
        block_tensor,
        block_start,
        numels,
        n_tensors,
        flag,
        DTYPE: tl.constexpr,
        ALIGNED: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        pid = tl.program_id(0)
        t = tl.load(block_tensor + pid)
        start = tl.multiple_of(tl.load(block_start + pid), BLOCK)
        n = tl.load(numels + t)
        offs = start + tl.arange(0, BLOCK)
        g_ptr = _pointer(ptrs, n_tensors + t, DTYPE, ALIGNED)
        if start + BLOCK <= n:
            bad = _count_nonfinite(g_ptr, offs, n, False)
        else:
            bad = _count_nonfinite(g_ptr, offs, n, True)
        if bad > 0:
            tl.atomic_add(flag, bad)

    _TL_DTYPE = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}


class _Tables:
    """A bucket's launch tables on its device: block -> tensor index, block -> start offset, the
    tensors' sizes, the pointer table (params, then grads, then bufs), and whether every address is
    16-byte aligned."""

    def __init__(self, device, addresses, numels, block):
        sizes = torch.tensor(numels, dtype=torch.int64)
        blocks = (sizes + block - 1) // block
        tensor = torch.repeat_interleave(torch.arange(len(numels), dtype=torch.int32), blocks)
        first = torch.cumsum(blocks, 0) - blocks
        start = (
            torch.arange(int(blocks.sum()), dtype=torch.int64)
            - torch.repeat_interleave(first, blocks)
        ) * block

        def put(t):  # from pinned memory, without a host sync; once per bucket
            return (
                t.pin_memory().to(device, non_blocking=True)
                if device.type == "cuda"
                else t.to(device)
            )

        self.block_tensor, self.block_start = put(tensor), put(start)
        self.numels, self.ptrs = put(sizes), put(torch.tensor(addresses, dtype=torch.int64))
        self.n_blocks = len(tensor)
        self.aligned = all(a % 16 == 0 for a in addresses)


_TABLES: OrderedDict = OrderedDict()
_TABLES_KEPT = 64  # buckets x address patterns kept; ResNet-50 tables are ~150 KB


def _tables(device, dtype, params, tensors, block) -> _Tables:
    """The bucket's tables, from the cache when its tensors' addresses and sizes were seen
    before."""
    addresses = tuple(map(torch.Tensor.data_ptr, tensors))
    key = (device, dtype, block, addresses, tuple(map(torch.Tensor.numel, params)))
    tables = _TABLES.get(key)
    if tables is None:
        tables = _TABLES[key] = _Tables(device, addresses, key[-1], block)
        while len(_TABLES) > _TABLES_KEPT:
            _TABLES.popitem(last=False)
    else:
        _TABLES.move_to_end(key)
    return tables


class Count:
    """A device counter of non-finite gradient entries (`tensor`, int32, 0-d), shared by the buckets
    of one device in a step. After each check its value is copied (non-blocking) to pinned host
    memory and an event recorded, so `int(count)`/`bool(count)` wait for the checks queued so far
    and not for the update kernels queued after them."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.tensor = torch.zeros((), dtype=torch.int32, device=self.device)
        self._host = self._event = None

    def checked(self) -> None:
        """Called after a check is queued: snapshot the counter for the host."""
        if self.device.type == "cuda":
            if self._host is None:
                self._host = torch.empty((), dtype=torch.int32, pin_memory=True)
                self._event = torch.cuda.Event()
            self._host.copy_(self.tensor, non_blocking=True)
            self._event.record()

    def __int__(self) -> int:
        if self._event is None:
            return int(self.tensor)
        self._event.synchronize()
        return int(self._host)

    __index__ = __int__

    def __bool__(self) -> bool:
        return int(self) != 0

    def __repr__(self) -> str:
        return f"Count({self.tensor!r})"


def new_flag(device) -> Count:
    return Count(device)


def _flag_tensor(flag):
    return flag.tensor if isinstance(flag, Count) else flag


class Bucket:
    """One bucket's launch state (its tables, from `_tables`), shared by its two kernels.

    `block` and `num_warps` (default: BLOCK_BYTES of each tensor per program, NUM_WARPS) exist for
    benchmarks/triton_block_sweep.py."""

    def __init__(self, params, grads, bufs, *, block=None, num_warps=None):
        tensors = list(params) + list(grads) + list(bufs)
        if not all(map(torch.Tensor.is_contiguous, tensors)):
            raise ValueError(
                "the fused Triton step needs contiguous tensors (got a non-contiguous one); "
                "use foreach=True for such parameters"
            )
        self.device, self.n, self.momentum = params[0].device, len(params), bool(bufs)
        self.dtype = _TL_DTYPE[params[0].dtype]
        self.block = block or block_elements(params[0].dtype)
        self.num_warps = num_warps or NUM_WARPS
        self.tables = _tables(self.device, params[0].dtype, params, tensors, self.block)

    def nonfinite_(self, flag) -> None:
        """Add the number of inf/nan gradient entries to `flag` (a Count, or an int32 0-d tensor on
        the device)."""
        t = self.tables
        if t.n_blocks == 0:  # every tensor is empty
            if isinstance(flag, Count):
                flag.checked()
            return
        _nonfinite_kernel[(t.n_blocks,)](
            t.ptrs,
            t.block_tensor,
            t.block_start,
            t.numels,
            self.n,
            _flag_tensor(flag),
            DTYPE=self.dtype,
            ALIGNED=t.aligned,
            BLOCK=self.block,
            num_warps=self.num_warps,
        )
        if isinstance(flag, Count):
            flag.checked()

    def step_(self, *, w, decay, neg_lr, neg_rho, eps, flag=None) -> None:
        """m = lerp(m, g, w) (with momentum); theta = round(theta decay) + neg_lr
        d (|d| + eps)^neg_rho. With a flag (Count or tensor), nothing is written if it is nonzero
        when the kernel runs (no host sync)."""
        t = self.tables
        if t.n_blocks == 0:
            return
        _step_kernel[(t.n_blocks,)](
            t.ptrs,
            t.block_tensor,
            t.block_start,
            t.numels,
            self.n,
            float(w),
            float(decay),
            float(neg_lr),
            float(neg_rho),
            float(eps),
            _flag_tensor(flag) if flag is not None else t.numels,
            DTYPE=self.dtype,
            MOMENTUM=self.momentum,
            ALIGNED=t.aligned,
            GUARDED=flag is not None,
            BLOCK=self.block,
            num_warps=self.num_warps,
        )
