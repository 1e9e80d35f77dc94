"""Baseline optimizers of the paper's Section 6 that torch does not ship: Lion.

SGD with momentum and AdamW come from torch.optim; LPSGD/LPSGDM from lpcheck.optim.
"""

from __future__ import annotations

import torch

from lpcheck.optim import _finite_at_least

__all__ = ["Lion"]


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023, Program 1):

        c = beta1 m + (1 - beta1) g;  theta <- theta - lr (sign(c) + lambda theta);  m <- beta2 m + (1 - beta2) g

    with m = 0 at the start. Multi-tensor (foreach) implementation; tested step for step against the
    lion-pytorch package (lucidrains). Defaults are the paper's: betas (0.9, 0.99).
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        _finite_at_least("lr", lr, 0.0)
        if (len(betas) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        _finite_at_least("weight_decay", weight_decay, 0.0)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, bufs = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError("Lion does not support sparse gradients")
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                bufs.append(state["exp_avg"])
            if not params:
                continue
            (beta1, beta2), lr, wd = group["betas"], group["lr"], group["weight_decay"]
            c = torch._foreach_mul(bufs, beta1)
            torch._foreach_add_(c, grads, alpha=1 - beta1)
            torch._foreach_sign_(c)
            if wd:
                torch._foreach_mul_(params, 1 - lr * wd)
            torch._foreach_add_(params, c, alpha=-lr)
            torch._foreach_mul_(bufs, beta2)
            torch._foreach_add_(bufs, grads, alpha=1 - beta2)
        return loss
