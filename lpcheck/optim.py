"""LPSGD (Algorithm 1) and LPSGDM (Algorithm 2) as torch.optim optimizers.

Both follow torch.optim: param groups with their own hyperparameters, `closure`, `zero_grad`,
`state_dict`/`load_state_dict` (the epoch and p live in each param group, so they are saved and
restored exactly), and torch's LR schedulers and `torch.amp.GradScaler` work unchanged.

Three code paths compute the same step:
- fused (`fused=True`): one pass over memory per bucket, `lpcheck.fused` (torch.compile on CPU, a
  Triton kernel on CUDA); the foreach path is its reference and its fallback where it does not apply
  (`lpcheck.fused.applies`). It becomes the default for CUDA tensors (as in torch) once the kernel has
  been validated on a GPU (`lpcheck.fused.AUTO_ON_CUDA`, off until then);
- foreach (the default elsewhere): multi-tensor ops over all parameters of a group, bucketed by
  device and dtype, with (|m| + eps)^-rho taken as exp(-rho * log(|m| + eps)) in a reused workspace;
- per-tensor (foreach=False): the reference, one parameter at a time through `lpcheck.lp.rescale`,
  which the proof gate ties to the paper's eq. 21. Tests hold the three paths together.

Passes over memory per foreach LPSGDM step (d = number of parameters): finite check 1 (a norm of
the gradients), EMA 1 (lerp), rescale factor 6 (copy, abs, +eps, log, *-rho, exp), apply 1
(addcmul), weight decay 1 if lambda > 0. Temporaries: none
after the first step (the workspace holds d values; float32 for half/bfloat16 parameters, so the
rescale is computed in float32 math). At rho = 0 (p = 2) the rescale is skipped.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from lpcheck import fused as _fused
from lpcheck import lp
from lpcheck.schedule import check_epoch, check_p_max, check_total_epochs, cosine_p

__all__ = ["LPSGD", "LPSGDM", "NonFiniteGradientError"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class NonFiniteGradientError(FloatingPointError):
    """A gradient holds inf or nan; the step was not taken and the optimizer state is unchanged."""


# ---------------------------------------------------------------------------------------------
# hyperparameter checks (ValueError naming the argument and its allowed range)


def _finite_at_least(name, value, low, *, strict=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if (value <= low) if strict else (value < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return float(value)


def _check_fixed_p(p):
    if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) or p < 2:
        raise ValueError(f"p must be a real number in [2, inf], got {p!r}")
    return float(p)


def _check_group(group: dict, with_momentum: bool) -> None:
    _finite_at_least("lr", group["lr"], 0.0)
    _finite_at_least("eps", group["eps"], 0.0, strict=True)
    if group["p_max"] is None:
        _check_fixed_p(group["p"])
        if group["total_epochs"] is not None:
            check_total_epochs(group["total_epochs"])
    else:
        check_p_max(group["p_max"])
        if group["total_epochs"] is None:
            raise ValueError("total_epochs is required with p_max (eq. 19 needs S); pass p=... for a fixed p")
        check_total_epochs(group["total_epochs"])
        _check_fixed_p(group["p"])
    if with_momentum:
        m = group["momentum"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not (0 <= m < 1):
            raise ValueError(f"momentum (beta) must be in [0, 1), got {m!r}")
        _finite_at_least("weight_decay", group["weight_decay"], 0.0)


# ---------------------------------------------------------------------------------------------
# gradient transforms, one short function each (foreach form)


def _ema_(bufs, grads, beta):
    """eq. 23: m_t = beta m_{t-1} + (1 - beta) g_t.

    For beta >= 1/2 as one lerp pass, m += (1 - beta)(g - m). For smaller beta, lerp's weight 1 - beta
    rounds and lerp then uses 1 - fl(1 - beta) in place of beta, which loses beta's digits when beta
    is tiny (the proof gate's conformance check found beta = 1e-13 off by 0.08%): two passes there.
    """
    if beta >= 0.5:
        torch._foreach_lerp_(bufs, grads, 1.0 - beta)
    else:
        torch._foreach_mul_(bufs, beta)
        torch._foreach_add_(bufs, grads, alpha=1.0 - beta)


def _decay_(params, lr, weight_decay):
    """eq. 25, decoupled: theta <- (1 - lr lambda) theta."""
    if weight_decay != 0:
        torch._foreach_mul_(params, 1.0 - lr * weight_decay)


def _rescale_factor_into(ws, direction, rho, eps):
    """eq. 21/24's denominator into the workspace: ws = (|direction| + eps)^-rho, as exp(-rho log(.))."""
    torch._foreach_copy_(ws, direction)
    torch._foreach_abs_(ws)
    torch._foreach_add_(ws, eps)
    torch._foreach_log_(ws)
    torch._foreach_mul_(ws, -rho)
    torch._foreach_exp_(ws)


def _apply_(params, update, lr, factor=None):
    """eq. 22/25: theta <- theta - lr * update (* factor, elementwise, when given)."""
    if factor is None:
        torch._foreach_add_(params, update, alpha=-lr)
    else:
        torch._foreach_addcmul_(params, update, factor, value=-lr)


def _all_finite(tensors) -> bool:
    """One summing pass (faster than a norm on CPU, and a sum of finite entries overflows later than
    a sum of squares); only when a sum is non-finite (an inf or nan entry, or an overflow) is each
    tensor checked exactly. Half-precision sums accumulate into float32, so that finite float16
    gradients (max 65504) do not overflow into the slow exact path."""
    sums = [t.sum(dtype=torch.float32) if t.dtype in _LOW_PRECISION else t.sum() for t in tensors]
    if bool(torch.isfinite(torch.stack(sums)).all()):
        return True
    return all(bool(torch.isfinite(t).all()) for t in tensors)


# ---------------------------------------------------------------------------------------------


class _LpOptimizer(torch.optim.Optimizer):
    _name = "LPSGD"
    _with_momentum = False

    def __init__(self, params, defaults: dict, foreach, fused):
        if foreach is not None and not isinstance(foreach, bool):
            raise ValueError(f"foreach must be None, True or False, got {foreach!r}")
        if fused is not None and not isinstance(fused, bool):
            raise ValueError(f"fused must be None, True or False, got {fused!r}")
        if fused and foreach:
            raise ValueError("foreach and fused cannot both be True")
        # fused=None picks the fused step for CUDA tensors, unless foreach was chosen explicitly (as torch)
        fused = None if fused is None and foreach is None else bool(fused)
        defaults = dict(defaults, foreach=True if foreach is None else foreach, fused=fused,
                        check_finite=defaults.get("check_finite", True))
        self._workspace: dict = {}
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._workspace = {}
        for group in self.param_groups:  # checkpoints from before the fused path
            group.setdefault("fused", False)

    # -- param groups -------------------------------------------------------------------------

    def add_param_group(self, param_group: dict) -> None:
        if "p" in param_group and "p_max" in param_group and param_group["p_max"] is not None and param_group["p"] is not None:
            raise ValueError("give either p_max (cosine schedule, eq. 19) or p (fixed p), not both")
        if param_group.get("p") is not None and "p_max" not in param_group:
            param_group = dict(param_group, p_max=None)  # a fixed-p group under scheduled defaults
        if param_group.get("p_max") is not None and "p" not in param_group:
            param_group = dict(param_group, p=None)  # a scheduled group under fixed-p defaults
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        group["epoch"] = self.param_groups[0]["epoch"] if len(self.param_groups) > 1 else 1
        if group["p_max"] is not None:
            if group["total_epochs"] is None:
                raise ValueError("total_epochs is required with p_max (eq. 19 needs S); pass p=... for a fixed p")
            group["p"] = cosine_p(group["epoch"], group["total_epochs"], group["p_max"])
        _check_group(group, self._with_momentum)
        if group["fused"]:
            for p in group["params"]:
                if p.device.type not in ("cpu", "cuda"):
                    raise ValueError(f"fused=True supports CPU and CUDA tensors, got one on {p.device}")
                if p.device.type == "cuda" and not _fused.supports(p.device, torch.float32, 1.0):
                    raise ValueError("fused=True on CUDA needs Triton (pip install triton); use fused=False")

    def set_epoch(self, epoch) -> None:
        """Enter epoch s (1-based, as in Algorithms 1-2): scheduled groups take p = p_s of eq. 19."""
        new = []
        for group in self.param_groups:  # validate all before changing any
            if group["p_max"] is not None:
                new.append(cosine_p(epoch, group["total_epochs"], group["p_max"]))
            else:
                check_epoch(epoch, group["total_epochs"])
                new.append(group["p"])
        for group, p in zip(self.param_groups, new):
            group["p"], group["epoch"] = p, int(epoch)

    # -- the step -----------------------------------------------------------------------------

    def _buckets(self, group: dict, group_index: int):
        """Parameters with a gradient, bucketed by (device, dtype): {key: (params, grads, bufs)}."""
        buckets = defaultdict(lambda: ([], [], []))
        for i, p in enumerate(group["params"]):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise ValueError(f"{self._name} does not support sparse gradients (param group {group_index}, parameter {i})")
            if p.is_complex():
                raise ValueError(f"{self._name} does not support complex parameters (param group {group_index}, parameter {i})")
            params, grads, bufs = buckets[(p.device, p.dtype)]
            params.append(p)
            grads.append(p.grad)
            if self._with_momentum:
                state = self.state[p]
                if "momentum_buffer" not in state:  # m_{-1} = 0 (Algorithm 2, line 1)
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                bufs.append(state["momentum_buffer"])
        return buckets

    def _check_finite(self, group, group_index, grads):
        if group["check_finite"] and not _all_finite(grads):
            self._raise_non_finite(group, group_index, grads)

    def _raise_non_finite(self, group, group_index, grads):
        bad = next((i for i, g in enumerate(grads) if not bool(torch.isfinite(g).all())), None)
        if bad is None:  # every entry is finite after all (a flag is never trusted without this look)
            return
        index = next(i for i, p in enumerate(group["params"]) if p.grad is grads[bad])
        raise NonFiniteGradientError(
            f"{self._name}: non-finite gradient (inf or nan) in param group {group_index}, parameter {index} "
            f"(shape {tuple(grads[bad].shape)}); the step was not taken and the optimizer state is unchanged. "
            "Under torch.amp, torch.amp.GradScaler skips such steps for you."
        )

    def _path(self, group, key, params, grads, bufs) -> str:
        """'fused', 'foreach' or 'reference' for one bucket (see the module docstring)."""
        wants_fused = group["fused"] or (group["fused"] is None and key[0].type == "cuda" and _fused.AUTO_ON_CUDA)
        if wants_fused and _fused.applies(params, grads, bufs, group["eps"]):
            return "fused"
        return "foreach" if group["foreach"] else "reference"

    def _ws(self, key, tensors):
        """Workspace views shaped like `tensors`, from one flat buffer reused across steps."""
        device, dtype = key
        ws_dtype = torch.float32 if dtype in _LOW_PRECISION else dtype
        numels = [t.numel() for t in tensors]
        total = sum(numels)
        flat = self._workspace.get(key)
        if flat is None or flat.numel() < total:
            flat = self._workspace[key] = torch.empty(total, device=device, dtype=ws_dtype)
        return [v.view_as(t) for v, t in zip(torch.split(flat[:total], numels), tensors)]

    @torch.no_grad()
    def step(self, closure=None):
        """One step of Algorithm 1/2 for every param group; returns the closure's loss, if any."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # Check every group before any state changes, so a bad gradient leaves all intact. Buckets on
        # the Triton kernel (CUDA) check on the device, into one counter per device that their update
        # kernels honour, so the counters are read once, after every guarded kernel is launched.
        work, flags, device_flags = [], [], {}
        for group_index, group in enumerate(self.param_groups):
            _check_group(group, self._with_momentum)
            for key, (params, grads, bufs) in self._buckets(group, group_index).items():
                path = self._path(group, key, params, grads, bufs)
                bucket = _fused.Bucket(params, grads, bufs) if path == "fused" else None
                if group["check_finite"]:
                    if bucket is None or not bucket.guarded:
                        self._check_finite(group, group_index, grads)
                    else:
                        device_flags[key[0]] = bucket.nonfinite(device_flags.get(key[0]))
                        flags.append((device_flags[key[0]], group, group_index, grads))
                work.append((group, key, path, bucket, params, grads, bufs))
        for group, key, path, bucket, params, grads, bufs in work:
            if bucket is not None and bucket.guarded:
                self._update(group, key, path, bucket, params, grads, bufs, device_flags.get(key[0]))
        for flag, group, group_index, grads in flags:
            if bool(flag):  # on CUDA: the step's one host sync
                self._raise_non_finite(group, group_index, grads)  # exact: raises if a gradient is bad
        for group, key, path, bucket, params, grads, bufs in work:
            if bucket is None or not bucket.guarded:
                self._update(group, key, path, bucket, params, grads, bufs)
        return loss

    def _update(self, group, key, path, bucket, params, grads, bufs, flag=None):
        """One bucket's step, on its path."""
        rho = lp.rho(group["p"])
        lr, eps = group["lr"], group["eps"]
        beta = group["momentum"] if self._with_momentum else None
        wd = group["weight_decay"] if self._with_momentum else 0.0
        if path == "fused":
            bucket.step_(lr=lr, beta=beta or 0.0, weight_decay=wd, rho=rho, eps=eps, flag=flag)
        elif path == "reference":
            _reference_step(params, grads, bufs if beta is not None else None, lr, beta, wd, group["p"], eps)
        else:
            direction = grads
            if beta is not None:
                _ema_(bufs, grads, beta)
                direction = bufs
            _decay_(params, lr, wd)
            if rho == 0:
                _apply_(params, direction, lr)
            else:
                ws = self._ws(key, params)
                _rescale_factor_into(ws, direction, rho, eps)
                _apply_(params, direction, lr, ws)


def _reference_step(params, grads, bufs, lr, beta, weight_decay, p, eps):
    """Algorithms 1-2 line by line, one tensor at a time: the path the foreach path is tested against."""
    for i, (param, g) in enumerate(zip(params, grads)):
        direction = g
        if bufs is not None:
            bufs[i].mul_(beta).add_(g, alpha=1.0 - beta)  # eq. 23
            direction = bufs[i]
        if direction.dtype in _LOW_PRECISION:
            direction = direction.float()
        u = lp.rescale(direction, p, eps)  # eq. 21 / 24
        if weight_decay != 0:
            param.mul_(1.0 - lr * weight_decay)  # eq. 25
        param.add_(u, alpha=-lr)


class LPSGD(_LpOptimizer):
    """Algorithm 1: theta <- theta - lr * g / (|g| + eps)^rho_s, with p_s from eq. 19 (or a fixed p).

    Args:
        params: parameters or param groups (each group may set its own lr, p_max/p, total_epochs, eps).
        lr: the step size eta >= 0.
        p_max: the schedule's starting p, in [2, inf); p anneals to 2 over `total_epochs` (eq. 19).
        total_epochs: S >= 1; call `set_epoch(s)` at the start of each epoch s = 1..S.
        eps: the stability constant of eq. 21, > 0.
        p: a fixed p in [2, inf] instead of the schedule (for experiments); excludes p_max.
        foreach: multi-tensor path or, with False, the per-tensor reference path.
        fused: True: one fused pass per bucket (`lpcheck.fused`: torch.compile on CPU, which compiles
            once per list of parameter shapes, tens of seconds for a ResNet; a Triton kernel on CUDA).
            None (default): foreach; fused for CUDA tensors once `lpcheck.fused.AUTO_ON_CUDA` is on
            (after the kernel's GPU validation), when Triton is available and foreach is not given. Buckets the fused step does not cover take the foreach path.
        check_finite: raise NonFiniteGradientError on inf/nan gradients before touching any state
            (one extra read of the gradients and, on GPU, one host sync per step).
    """

    _name = "LPSGD"
    _with_momentum = False

    def __init__(self, params, lr, p_max=None, total_epochs=None, eps=1e-8, *, p=None, foreach=None, fused=None, check_finite=True):
        if (p_max is None) == (p is None):
            raise ValueError("give exactly one of p_max (cosine schedule, eq. 19) or p (fixed p)")
        defaults = dict(lr=lr, p_max=p_max, total_epochs=total_epochs, eps=eps, p=p, epoch=1, check_finite=check_finite)
        super().__init__(params, defaults, foreach, fused)


class LPSGDM(_LpOptimizer):
    """Algorithm 2: m = beta m + (1 - beta) g; theta <- (1 - lr lambda) theta - lr * m / (|m| + eps)^rho_s.

    The momentum buffer starts at m = 0 (Algorithm 2, line 1), so the first step uses (1 - beta) g;
    weight decay is decoupled (eq. 25). Arguments as in `LPSGD`, plus `momentum` (beta in [0, 1)) and
    `weight_decay` (lambda >= 0).
    """

    _name = "LPSGDM"
    _with_momentum = True

    def __init__(
        self, params, lr, p_max=None, total_epochs=None, momentum=0.9, weight_decay=0.0, eps=1e-8, *,
        p=None, foreach=None, fused=None, check_finite=True,
    ):
        if (p_max is None) == (p is None):
            raise ValueError("give exactly one of p_max (cosine schedule, eq. 19) or p (fixed p)")
        defaults = dict(
            lr=lr, p_max=p_max, total_epochs=total_epochs, momentum=momentum, weight_decay=weight_decay,
            eps=eps, p=p, epoch=1, check_finite=check_finite,
        )
        super().__init__(params, defaults, foreach, fused)
