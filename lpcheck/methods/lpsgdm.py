"""LPSGDM's direction (Algorithm 2, eq. 23-24) at a fixed p; decoupled weight decay (eq. 25) is the
caller's.

    input: p in [2, inf], eps > 0, beta in [0, 1);  rho = (p - 2)/(p - 1);  m_{-1} = 0
    m_t = beta m_{t-1} + (1 - beta) g_t                                              (eq. 23)
    direction:  v_t = m_t / (|m_t| + eps)^rho                                        (eq. 24)
    step:       theta_{t+1} = (1 - lr lambda) theta_t - lr v_t                        (eq. 25)
    state: momentum_buffer (m);  norm: ||.||_p of all coordinates (Assumptions 1 and 6)

The same math as `lpcheck.optim.LPSGDM` (its state key too, so a state moves between them), as a
pure function. With the buffer m_{t-1} fixed, v for fresh gradients g is exactly eq. 43-44's
conditional direction: `update(g, state)` is what the Probe measures.
"""

from __future__ import annotations

from lpcheck import checks
from lpcheck.methods.base import REQUIRED, Method, ema
from lpcheck.methods.lpsgd import check_eps_dtype, check_lp, rescale
from lpcheck.methods.norms import Lp

__all__ = ["LPSGDM"]


class LPSGDM(Method):
    """LPSGDM (Algorithm 2) at p: m = beta m + (1 - beta) g; v = m / (|m| + eps)^rho (eq. 23-24)."""

    name = "lpsgdm"
    summary = (
        "LPSGDM (Algorithm 2) at p: EMA momentum m (eq. 23), "
        "v = m / (|m| + eps)^rho (eq. 24); norm lp"
    )
    defaults = {"p": REQUIRED, "eps": 1e-8, "momentum": 0.9}

    def _check(self, hp):
        out = check_lp(hp)
        out["momentum"] = checks.probability("momentum", hp["momentum"])
        return out

    def check_dtype(self, hp, dtype):
        check_eps_dtype(hp, dtype)

    def state_keys(self, hp):
        return ("momentum_buffer",)

    def _update(self, grads, state, hp, *, batched, params):
        m = ema(state["momentum_buffer"], grads, hp["momentum"])
        return rescale(m, hp["p"], hp["eps"]), {"momentum_buffer": m}

    def norm(self, state=None, hp=None):
        return Lp((self.hp if hp is None else self.check(hp))["p"])
