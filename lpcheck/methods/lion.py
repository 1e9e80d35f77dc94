"""Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023, Program 1).

    input: beta1, beta2 in [0, 1);  m_{-1} = 0
    c_t = beta1 m_{t-1} + (1 - beta1) g_t
    direction:  d_t = sign(c_t)
    m_t = beta2 m_{t-1} + (1 - beta2) g_t
    step:       theta_{t+1} = (1 - lr lambda) theta_t - lr d_t      (decoupled weight decay)
    state: exp_avg (m);  norm: ||.||_inf

The operations and their order are lion-pytorch's (multiply, then add with alpha), so the step is
the same to the last bit; tested against that package. `lpcheck.baselines.Lion` is this method as a
torch optimizer (`lpcheck.methods.as_optimizer`)."""

from __future__ import annotations

import torch

from lpcheck.methods.base import Method, pair
from lpcheck.methods.norms import Lp

__all__ = ["Lion"]


class Lion(Method):
    """Lion: d = sign(beta1 m + (1 - beta1) g), then m = beta2 m + (1 - beta2) g."""

    name = "lion"
    summary = (
        "Lion (Chen et al. 2023): d = sign(beta1 m + (1-beta1) g), "
        "m = beta2 m + (1-beta2) g; norm linf"
    )
    defaults = {"betas": (0.9, 0.99)}

    def _check(self, hp):
        return {"betas": pair("betas", hp["betas"])}

    def state_keys(self, hp):
        return ("exp_avg",)

    def _update(self, grads, state, hp, *, batched, params):
        beta1, beta2 = hp["betas"]
        m = state["exp_avg"]
        c = torch._foreach_mul(m, beta1)
        torch._foreach_add_(c, grads, alpha=1.0 - beta1)
        torch._foreach_sign_(c)
        new = torch._foreach_mul(m, beta2)
        torch._foreach_add_(new, grads, alpha=1.0 - beta2)
        return c, {"exp_avg": new}

    def norm(self, state=None, hp=None):
        return Lp(float("inf"))
