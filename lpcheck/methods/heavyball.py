"""torch.optim.SGD's momentum (heavy ball, optionally Nesterov), in torch's own convention.

    input: mu in [0, 1), dampening tau in [0, 1], nesterov (needs mu > 0 and tau = 0, as torch)
    b_1 = g_1;  b_t = mu b_{t-1} + (1 - tau) g_t  (t > 1)
    direction:  d_t = g_t + mu b_t (nesterov)  or  d_t = b_t
    state: momentum_buffer (b), step (t - 1 before the step);  norm: ||.||_2

The first step copies g into the buffer (torch's `momentum_buffer is None` branch), which is why the
state keeps a step count. For the paper's EMA (eq. 23, b_0 = 0), use 'sgdm'.
"""

from __future__ import annotations

import torch

from lpcheck import checks
from lpcheck.methods.base import Method
from lpcheck.methods.norms import Lp

__all__ = ["HeavyBall"]


class HeavyBall(Method):
    """torch.optim.SGD's momentum: b = mu b + (1 - dampening) g (b = g at the first step); d = b or
    g + mu b."""

    name = "heavyball"
    summary = (
        "torch.optim.SGD's momentum: b = mu b + (1-dampening) g, b = g at step 1; d = b (or g + mu "
        "b, nesterov); norm l2"
    )
    defaults = {"momentum": 0.9, "dampening": 0.0, "nesterov": False}

    def _check(self, hp):
        out = {
            "momentum": checks.probability("momentum", hp["momentum"]),
            "dampening": checks.real("dampening", hp["dampening"], low=0.0, high=1.0),
            "nesterov": checks.boolean("nesterov", hp["nesterov"]),
        }
        if out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise ValueError(
                "nesterov needs momentum > 0 and dampening = 0 (as torch.optim.SGD), got momentum "
                f"= {out['momentum']!r}, dampening = {out['dampening']!r}"
            )
        return out

    def state_keys(self, hp):
        return ("momentum_buffer",)

    def scalar_state(self, hp):
        return ("step",)

    def _update(self, grads, state, hp, *, batched, params):
        mu, tau = hp["momentum"], hp["dampening"]
        first = [float(t) == 0 for t in state["step"]]
        if not any(first):  # the usual case, multi-tensor
            bufs = torch._foreach_mul(state["momentum_buffer"], mu)
            torch._foreach_add_(bufs, grads, alpha=1.0 - tau)
        else:
            bufs = [
                g.clone() if f else b.mul(mu).add_(g, alpha=1.0 - tau)
                for g, b, f in zip(grads, state["momentum_buffer"], first)
            ]
        direction = (
            torch._foreach_add(grads, bufs, alpha=mu)
            if hp["nesterov"]
            else torch._foreach_mul(bufs, 1.0)
        )
        return direction, {"momentum_buffer": bufs, "step": [t + 1 for t in state["step"]]}

    def norm(self, state=None, hp=None):
        return Lp(2.0)
