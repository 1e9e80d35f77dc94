"""Baseline optimizers of the paper's Section 6 that torch does not ship: Lion.

SGD with momentum and AdamW come from torch.optim; LPSGD/LPSGDM from lpcheck.optim.
"""

from __future__ import annotations

import torch

from lpcheck import checks
from lpcheck.optim import _CheckedOptimizer, _math_dtype, _naming

__all__ = ["Lion"]


def _betas(betas) -> tuple:
    """(beta1, beta2), each in [0, 1), from any two-number sequence torch would take (tuple, list, array)."""
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    return tuple(checks.probability(f"betas[{i}]", b) for i, b in enumerate(betas))


def _hyper(group: dict) -> tuple:
    """(lr, beta1, beta2, weight_decay) as checked floats; lr * weight_decay <= 1, as for LPSGDM's eq. 25
    (the decay theta <- (1 - lr lambda) theta shrinks theta, never flips its sign)."""
    lr = checks.real("lr", group["lr"], low=0.0)
    beta1, beta2 = _betas(group["betas"])
    wd = checks.real("weight_decay", group["weight_decay"], low=0.0)
    if lr * wd > 1:
        raise ValueError(f"lr * weight_decay must be <= 1 (the decay multiplies theta by 1 - lr * weight_decay), "
                         f"got lr = {lr!r}, weight_decay = {wd!r}")
    return lr, beta1, beta2, wd


class Lion(_CheckedOptimizer):
    """Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023, Program 1):

        c = beta1 m + (1 - beta1) g;  theta <- theta - lr (sign(c) + lambda theta);  m <- beta2 m + (1 - beta2) g

    with m = 0 at the start. Multi-tensor (foreach) implementation; tested step for step against the
    lion-pytorch package (lucidrains). Defaults are the paper's: betas (0.9, 0.99). Numbers are taken
    as torch takes them (numpy numbers, one-element tensors; a tensor lr stays in the group for LR
    schedulers); every value is checked when a group is added, a state dict is loaded, and per group
    at every step, before anything changes.
    """

    _name = "Lion"
    _STATE_KEYS = ("exp_avg",)
    _REQUIRED = ("lr", "betas", "weight_decay")

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    def _check_group(self, group: dict, tensors) -> dict:
        lr, beta1, beta2, wd = _hyper(group)
        for dtype in {t.dtype for t in tensors}:
            checks.representable("lr", lr, _math_dtype(dtype), why=f"the step of {dtype} parameters would be 0 or inf")
        return dict(lr=group["lr"] if isinstance(group["lr"], torch.Tensor) else lr, betas=(beta1, beta2),
                    weight_decay=wd)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None and not callable(closure):
            raise ValueError(f"closure must be None or a callable returning the loss, got {type(closure).__name__}")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = []
        for i, group in enumerate(self.param_groups):  # every group checked before any state changes
            with _naming(f"param group {i}"):
                hyper = _hyper(group)
                params, grads = [], []
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.is_sparse:
                        raise ValueError("Lion does not support sparse gradients")
                    checks.representable("lr", hyper[0], _math_dtype(p.dtype), why="the step would be 0 or inf")
                    params.append(p)
                    grads.append(p.grad)
            work.append((hyper, params, grads))
        for (lr, beta1, beta2, wd), params, grads in work:
            if not params:
                continue
            bufs = []
            for p in params:
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                bufs.append(state["exp_avg"])
            c = torch._foreach_mul(bufs, beta1)
            torch._foreach_add_(c, grads, alpha=1 - beta1)
            torch._foreach_sign_(c)
            if wd:
                torch._foreach_mul_(params, 1 - lr * wd)
            torch._foreach_add_(params, c, alpha=-lr)
            torch._foreach_mul_(bufs, beta2)
            torch._foreach_add_(bufs, grads, alpha=1 - beta2)
        return loss
