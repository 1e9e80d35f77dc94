"""Plain SGD: the direction is the gradient.

    direction:  d_t = g_t
    step:       theta_{t+1} = (1 - lr lambda) theta_t - lr g_t
    state: none;  norm: ||.||_2 (the Euclidean geometry: LPSGD at p = 2)

torch.optim.SGD with momentum = 0 and weight_decay = 0 takes exactly this step. Its weight_decay is
coupled (an L2 term, g + lambda theta, inside the direction); here, as everywhere in the layer,
weight decay is the caller's decoupled (1 - lr lambda) factor."""

from __future__ import annotations

import torch

from lpcheck.methods.base import Method
from lpcheck.methods.norms import Lp

__all__ = ["SGD"]


class SGD(Method):
    """SGD: d = g."""

    name = "sgd"
    summary = "SGD: d = g; norm l2"
    defaults: dict = {}

    def _update(self, grads, state, hp, *, batched, params):
        return torch._foreach_mul(grads, 1.0), {}

    def norm(self, state=None, hp=None):
        return Lp(2.0)
