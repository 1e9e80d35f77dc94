"""SGD with the EMA momentum of eq. 23 (LPSGDM at p = 2, Theorem 2's method in the Euclidean norm).

    input: beta in [0, 1);  m_{-1} = 0
    m_t = beta m_{t-1} + (1 - beta) g_t                                              (eq. 23)
    direction:  d_t = m_t
    state: momentum_buffer;  norm: ||.||_2

Not torch.optim.SGD's momentum: torch keeps b_t = mu b_{t-1} + (1 - dampening) g_t with b_0 = g_0
(method 'heavyball'). With dampening = mu the two agree from the second step on, up to the first
step, where torch copies g into the buffer and this EMA takes (1 - beta) g.
"""

from __future__ import annotations

from lpcheck import checks
from lpcheck.methods.base import Method, ema
from lpcheck.methods.norms import Lp

__all__ = ["SGDM"]


class SGDM(Method):
    """SGD with EMA momentum (eq. 23): m = beta m + (1 - beta) g, d = m."""

    name = "sgdm"
    summary = (
        "SGD with the EMA momentum of eq. 23: m = beta m + (1-beta) g from m = 0, d = m; norm l2"
    )
    defaults = {"momentum": 0.9}

    def _check(self, hp):
        return {"momentum": checks.probability("momentum", hp["momentum"])}

    def state_keys(self, hp):
        return ("momentum_buffer",)

    def _update(self, grads, state, hp, *, batched, params):
        m = ema(state["momentum_buffer"], grads, hp["momentum"])
        return [t.clone() for t in m], {"momentum_buffer": m}

    def norm(self, state=None, hp=None):
        return Lp(2.0)
