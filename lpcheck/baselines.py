"""Baseline optimizers of the paper's Section 6 that torch does not ship: Lion.

SGD with momentum and AdamW come from torch.optim; LPSGD/LPSGDM from lpcheck.optim. Lion's math is
the method layer's (`lpcheck.methods.lion`); this is that method as a torch optimizer, kept here
under its old name for the experiments and checkpoints that use it.
"""

from __future__ import annotations

from lpcheck.methods.lion import Lion as _LionMethod
from lpcheck.methods.optimizer import MethodOptimizer

__all__ = ["Lion"]


class Lion(MethodOptimizer):
    """Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023, Program 1):

        c = beta1 m + (1 - beta1) g;  theta <- theta - lr (sign(c) + lambda theta);
        m <- beta2 m + (1 - beta2) g

    with m = 0 at the start: `lpcheck.methods.as_optimizer('lion', ...)`, multi-tensor (foreach),
    tested step for step against the lion-pytorch package (lucidrains), to the last bit. Defaults
    are the paper's: betas (0.9, 0.99). Numbers are taken as torch takes them (numpy numbers,
    one-element tensors; a tensor lr stays in the group for LR schedulers); every value is checked
    when a group is added, a state dict is loaded, and per group at every step, before anything
    changes. Param groups hold lr, betas and weight_decay, the state exp_avg, as before (old
    checkpoints load)."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, _LionMethod(), lr=lr, weight_decay=weight_decay, betas=betas)
