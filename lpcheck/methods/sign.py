"""Sign descent, and with momentum Signum (Bernstein et al., "signSGD", ICML 2018).

    input: beta in [0, 1) (0: plain sign descent);  m_{-1} = 0
    m_t = beta m_{t-1} + (1 - beta) g_t       (only when beta > 0)
    direction:  d_t = sign(m_t)  (sign(g_t) when beta = 0),  sign(0) = 0
    state: momentum_buffer when beta > 0;  norm: ||.||_inf (d_t = -lmo of the linf unit ball at m_t)

The exact sign, not LPSGD at p = inf (u = g/(|g| + eps), which differs where |g| is near eps).
"""

from __future__ import annotations

import torch

from lpcheck import checks
from lpcheck.methods.base import Method
from lpcheck.methods.norms import Lp

__all__ = ["Sign"]


class Sign(Method):
    """Sign descent / Signum: d = sign(m), m = beta m + (1 - beta) g (m = g when beta = 0)."""

    name = "sign"
    summary = "sign descent (beta = 0) or Signum: d = sign(beta m + (1-beta) g); norm linf"
    defaults = {"momentum": 0.0}

    def _check(self, hp):
        return {"momentum": checks.probability("momentum", hp["momentum"])}

    def state_keys(self, hp):
        return ("momentum_buffer",) if hp["momentum"] > 0 else ()

    def _update(self, grads, state, hp, *, batched, params):
        beta = hp["momentum"]
        if beta == 0:
            return torch._foreach_sign(grads), {}
        m = torch._foreach_mul(state["momentum_buffer"], beta)
        torch._foreach_add_(m, grads, alpha=1.0 - beta)
        return torch._foreach_sign(m), {"momentum_buffer": m}

    def norm(self, state=None, hp=None):
        return Lp(float("inf"))
