"""The fused LPSGD/LPSGDM step: one pass over memory per param group (Algorithms 1-2, eq. 21-25).

The foreach path of `lpcheck.optim` makes ~10 passes over the parameters per step; this module makes
one: for every element it reads theta, g (and m), and writes m (eq. 23) and theta (eq. 22/25)

    m     <- lerp(m, g, 1 - beta)                                   eq. 23 (LPSGDM only)
    theta <- round(theta * (1 - lr lambda)) - lr * d * (|d| + eps)^-rho,   d = m (or g)   eq. 21-25

with the same rounding points as the foreach path (m is stored, then read back; the decayed theta is
rounded to the parameter dtype before the update, as `mul_` then `addcmul_` do), float32 math for
half/bfloat16 parameters, and (|d| + eps)^-rho = 2^(-rho log2(|d| + eps)), never `pow`.

Two back ends compute it:
- CPU (and any device torch.compile supports): `torch.compile` (inductor) of `_step` below, over the
  bucket's tensor list. The per-step values (1 - beta, 1 - lr lambda, -lr, -rho, eps) enter as one
  small tensor, so a new lr (LR schedulers) or p (`set_epoch`) reuses the compiled code. For float32
  the power is `pow_neg_f32`: log2 and exp2 as short polynomials on the float's bits, about twice as
  fast as `exp(-rho log(.))` through the vectorised library calls, to the same accuracy.
- CUDA: a Triton multi-tensor kernel (`lpcheck.fused_triton`), one launch per bucket; it also runs
  in Triton's interpreter (TRITON_INTERPRET=1) on CPU tensors, which is how it is tested here.

The non-finite gradient check is one read of g made for every bucket before any state changes: on
CPU the optimizer's own (eager per-tensor sums, faster here than a compiled reduction), on CUDA a
Triton counter that the update kernels honour, so reading it is one host sync per step.
"""

from __future__ import annotations

import itertools
import threading
import types

import torch

__all__ = [
    "pow_neg_f32",
    "poly_scheme",
    "Bucket",
    "applies",
    "supports",
    "compile_count",
    "LOG2_COEFS",
    "EXP2_COEFS",
]

# Near-minimax polynomials (weighted least squares on Chebyshev nodes in float64, rounded to
# float32): log2(1 + u) = u * P(u) for u in [sqrt(1/2) - 1, sqrt(2) - 1], relative error 1.1e-7; 2^r
# = Q(r) for r in [-1/2, 1/2], relative error 7e-9. tests/test_fused.py measures both.
LOG2_COEFS = (
    1.4426950216293335,
    -0.7213480472564697,
    0.48090898990631104,
    -0.36063888669013977,
    0.28791573643684387,
    -0.2404986321926117,
    0.2173912078142166,
    -0.19657546281814575,
    0.10742896795272827,
)
EXP2_COEFS = (
    1.0,
    0.6931471824645996,
    0.2402263730764389,
    0.055503472685813904,
    0.00961967371404171,
    0.0013393084518611431,
    0.00014990881027188152,
)
SQRT_HALF_BITS = (
    0x3F3504F3  # float32 bits of sqrt(1/2): mantissas are taken in [sqrt(1/2), sqrt(2))
)
FLOAT32_TINY = (
    2.0**-126
)  # smallest normal float32: pow_neg_f32 needs x >= this (eps >= it suffices)

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _horner(x, coefs):
    """sum_i coefs[i] x^i by Horner's rule: one multiply-add per coefficient, one dependency
    chain."""
    out = coefs[-1]
    for c in coefs[-2::-1]:
        out = out * x + c
    return out


def _estrin(x, coefs):
    """sum_i coefs[i] x^i by Estrin's scheme: pairs c_i + c_i+1 x, then pairs of those with x^2,
    x^4, ...: more operations than Horner's rule but shorter dependency chains."""
    terms, power = (
        [c0 + c1 * x for c0, c1 in zip(coefs[0::2], coefs[1::2])] + list(coefs[len(coefs) & ~1 :]),
        x * x,
    )
    while len(terms) > 1:
        terms = [a + b * power for a, b in zip(terms[0::2], terms[1::2])] + terms[len(terms) & ~1 :]
        power = power * power
    return terms[0]


POLY_SCHEMES = {"horner": _horner, "estrin": _estrin}


def poly_scheme() -> str:
    """The polynomial scheme pow_neg_f32 uses by default, chosen per vector ISA by measurement
    (benchmarks/pow_candidates.py: the whole fused step through inductor, CPU time at one thread,
    1M and 4M elements; experiments/results/bench_optim_step/pow_cpu_*.md). On AVX-512 the two
    took the same time within this shared machine's noise (Horner's rule 2-9 % ahead in four runs
    of seven, 1-7 % behind in three), and Horner's is the more accurate: compiled with
    multiply-adds fused, the power's worst error over normal float32 is 1.97 u against Estrin's
    3.26 u (u = 2^-24; tested). On AVX2 (the same CPU under ATEN_CPU_CAPABILITY=avx2) Estrin's
    scheme took 12-16 % less in five runs of five. Elsewhere (unmeasured) Estrin's, the earlier
    choice."""
    return "horner" if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else "estrin"


# read once, outside any traced code (torch.compile cannot trace the query; ATen fixes its ISA at
# start)
DEFAULT_SCHEME = poly_scheme()


def pow_neg_f32(x, neg_rho, scheme=None):
    """x^(-rho) = 2^(-rho log2 x) for float32 x in [2^-126, 3.4e38] (normal, finite), -rho in [-1,
    0].

    log2 x = e + l with e an integer and l = log2(mantissa), mantissa in [sqrt(1/2), sqrt(2)) from
    the float's bits. y = -rho e - rho l is never rounded as a whole: -rho is split into a head of
    12 fractional bits (so head * e is exact) and a tail, and 2^y = 2^k 2^r with k = round(y) and
    r = (head e - k) + (tail e - rho l), one rounding of a number below 1. So the result is within a
    few float32 ulps (~3e-7 relative, tests/test_fused.py) at any |y| <= 128, where exp(-rho log
    x) in float32 carries ~|y| ulps (up to 4e-6 for eps = 1e-8). 2^k is built in two halves so that
    results below 2^-126 round to subnormals. rho = 0 gives exactly 1. Written in torch operations
    so that torch.compile vectorises it (`neg_rho` a 0-d tensor or a float). `scheme` evaluates the
    polynomials ('horner' or 'estrin'; default DEFAULT_SCHEME, `poly_scheme()` when lpcheck.fused
    was imported).
    """
    poly = POLY_SCHEMES[scheme or DEFAULT_SCHEME]
    bits = x.view(torch.int32)
    e = (bits - SQRT_HALF_BITS) >> 23
    u = (bits - (e << 23)).view(torch.float32) - 1.0
    log2_m = u * poly(u, LOG2_COEFS)
    e = e.to(torch.float32)
    head = torch.floor(torch.as_tensor(neg_rho, dtype=torch.float32) * 4096.0) * (1.0 / 4096.0)
    head_e = e * head  # exact: head has at most 13 significant bits, e at most 8
    tail = (neg_rho - head) * e + neg_rho * log2_m
    k = torch.round(head_e + tail)
    p = poly((head_e - k) + tail, EXP2_COEFS)  # head_e - k is exact (Sterbenz)
    k = k.to(torch.int32)
    k_half = k >> 1
    return (
        p
        * ((k_half + 127) << 23).view(torch.float32)
        * ((k - k_half + 127) << 23).view(torch.float32)
    )


def _factor(d, eps, neg_rho):
    """(|d| + eps)^-rho, eq. 21/24's denominator, in d's (float32 or float64) math."""
    x = d.abs() + eps
    if d.dtype == torch.float32:
        return pow_neg_f32(x, neg_rho)
    return torch.exp(neg_rho * torch.log(x))


def _step(params, grads, bufs, scalars):
    """One fused step over a bucket: scalars = [1 - beta, 1 - lr lambda, -lr, -rho, eps] in math
    dtype.

    `bufs` is empty for LPSGD (Algorithm 1). The loop unrolls at trace time into one compiled graph.
    """
    w, decay, neg_lr, neg_rho, eps = scalars.unbind(0)
    for i, (theta, g) in enumerate(zip(params, grads)):
        d = g.to(scalars.dtype)
        if bufs:
            m = bufs[i]
            m.copy_(torch.lerp(m.to(scalars.dtype), d, w))  # eq. 23, as _foreach_lerp_
            d = m.to(scalars.dtype)  # the stored (rounded) m, as the foreach path reads it
        decayed = (
            (theta.to(scalars.dtype) * decay).to(theta.dtype).to(scalars.dtype)
        )  # eq. 25, as mul_
        theta.copy_(decayed + (neg_lr * d) * _factor(d, eps, neg_rho))  # eq. 22/25, as addcmul_


# ---------------------------------------------------------------------------------------------
# compiled functions, one per bucket signature


_COMPILED: dict = {}
_LOCK = threading.Lock()
_COUNT = itertools.count()
_compiles = 0


def compile_count() -> int:
    """How many graphs torch.compile has built for the fused CPU path in this process (for
    tests)."""
    return _compiles


# Inductor options: keep the casts to bfloat16/float16 where _step writes them (the foreach path's
# rounding points), and let the C++ compiler contract a*b + c into FMAs (the polynomials, the
# update).
_INDUCTOR_OPTIONS = {
    "emulate_precision_casts": True,
    "cpp.enable_floating_point_contract_flag": "fast",
}


def _counting_backend(gm, example_inputs):
    global _compiles
    _compiles += 1
    from torch._inductor import config
    from torch._inductor.compile_fx import compile_fx

    with config.patch(_INDUCTOR_OPTIONS):
        return compile_fx(gm, example_inputs)


def _fresh(fn):
    """A copy of fn with its own code object: torch.compile caches (and limits recompiles) per code
    object, so each bucket signature gets its own cache instead of sharing one bounded cache."""
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{next(_COUNT)}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def _signature(kind, tensors):
    """What a compiled step is specialised to, from the first list (gradients and buffers have their
    parameters' shapes; a rare odd stride is left to torch.compile's own guards)."""
    return (kind, tensors[0].device, tensors[0].dtype) + tuple(
        (t.shape, t.stride()) for t in tensors
    )


def _compiled(kind, fn, *lists):
    key = _signature(kind, lists[0])
    with _LOCK:
        compiled = _COMPILED.get(key)
        if compiled is None:
            compiled = _COMPILED[key] = torch.compile(
                _fresh(fn), backend=_counting_backend, fullgraph=True, dynamic=False
            )
    return compiled


# ---------------------------------------------------------------------------------------------
# the entry points used by lpcheck.optim


def _triton():
    from lpcheck import fused_triton

    return fused_triton


# fused=None selects the Triton kernel for CUDA tensors only once that kernel has been compiled and
# tested on a GPU (tests/test_fused_triton.py and tests/test_fused.py on CUDA; see the README, "The
# fused step"). Until then CUDA runs stay on the foreach path unless fused=True is asked for. The
# kernel has so far run only in Triton's interpreter on CPU.
AUTO_ON_CUDA = False


def applies(params, grads, bufs, eps: float) -> bool:
    """Whether the fused step applies to this bucket's tensors; elsewhere the optimizer takes the
    foreach path. Beyond `supports`, the Triton kernel needs contiguous tensors."""
    if not supports(params[0].device, params[0].dtype, eps):
        return False
    if not _use_triton(params[0].device):
        return True
    return (
        all(map(torch.Tensor.is_contiguous, params))
        and all(map(torch.Tensor.is_contiguous, grads))
        and all(map(torch.Tensor.is_contiguous, bufs))
    )


def supports(device: torch.device, dtype: torch.dtype, eps: float) -> bool:
    """Whether the fused step applies to a bucket; elsewhere the optimizer takes the foreach path.

    CPU: float64/32, bfloat16, float16 through torch.compile. CUDA: float32/bfloat16/float16 through
    Triton. Float32 math needs eps >= 2^-126 (a normal float32), so |d| + eps is never subnormal.
    """
    if (dtype in _LOW_PRECISION or dtype == torch.float32) and eps < FLOAT32_TINY:
        return False
    if _use_triton(device):
        return dtype != torch.float64 and _triton().available()
    return device.type == "cpu" and dtype in (
        torch.float64,
        torch.float32,
        torch.bfloat16,
        torch.float16,
    )


def _math_dtype(dtype):
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _use_triton(device: torch.device) -> bool:
    """CUDA tensors go to the Triton kernel (tests also send CPU tensors there, under
    TRITON_INTERPRET=1)."""
    return device.type == "cuda"


class Bucket:
    """A bucket (one param group's tensors of one device and dtype with gradients) on the fused
    path.

    `step_(...)` is the update, without a host sync. On the Triton kernel (`guarded`: CUDA),
    `nonfinite(flag)` counts non-finite gradient entries into a shared per-device counter `flag` and
    the update honours it: nothing is written if the counter is nonzero when the kernel runs, so the
    optimizer can launch every kernel first and read the counter once, after. On CPU the optimizer
    checks the gradients itself before `step_`.
    """

    def __init__(self, params, grads, bufs):
        self.params, self.grads, self.bufs = params, grads, bufs
        self.kernel = (
            _triton().Bucket(params, grads, bufs) if _use_triton(params[0].device) else None
        )
        self.guarded = self.kernel is not None

    @torch.no_grad()
    def nonfinite(self, flag=None):
        """The device counter `flag` (a new one if None) plus the number of non-finite gradient
        entries, without a host sync (Triton kernel only, see the class)."""
        if self.kernel is None:
            raise RuntimeError(
                "Bucket.nonfinite is the Triton kernel's check; on CPU the optimizer checks"
            )
        if flag is None:
            flag = _triton().new_flag(self.params[0].device)
        self.kernel.nonfinite_(flag)
        return flag

    @torch.no_grad()
    def step_(self, *, lr, beta, weight_decay, rho, eps, flag=None) -> None:
        """One step of Algorithm 2 (bufs given, beta in [0, 1)) or Algorithm 1 (no bufs), in place.

        lr, beta, weight_decay, rho, eps: Python floats, the group's values for this step (runtime
        values of the compiled code, never constants). flag: see the class (Triton only).
        """
        w = 1.0 - beta if self.bufs else 0.0
        decay = 1.0 - lr * weight_decay
        if self.kernel is not None:
            self.kernel.step_(w=w, decay=decay, neg_lr=-lr, neg_rho=-rho, eps=eps, flag=flag)
            return
        params, grads, bufs = (
            _at_least_1d(self.params),
            _at_least_1d(self.grads),
            _at_least_1d(self.bufs),
        )
        scalars = torch.tensor([w, decay, -lr, -rho, eps], dtype=_math_dtype(params[0].dtype))
        _compiled("momentum" if bufs else "plain", _step, params, grads, bufs)(
            params, grads, bufs, scalars
        )


def _at_least_1d(tensors):
    """0-d tensors as 1-element views: torch.compile (2.13) drops in-place writes to 0-d float64
    inputs."""
    return [t.view(1) if t.dim() == 0 else t for t in tensors]
