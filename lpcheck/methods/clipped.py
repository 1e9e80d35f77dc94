"""Generalized gradient norm clipping: the hybrid steepest-descent / conditional-gradient step of
Pethick, Xie et al., "Generalized Gradient Norm Clipping & Non-Euclidean (L0, L1)-Smoothness"
(NeurIPS 2025, arXiv 2506.01913; "Clipped Scion"), Algorithm 3, and with constrained=True Algorithm
4 (variant 2), as in the authors' reference code (LIONS-EPFL/ClippedScion).

    input: beta in [0, 1), clipping threshold rho > 0, and the layerwise ball of `scion`
           (radius, vector, solver)
    d_t = beta d_{t-1} + (1 - beta) g_t             (d_{-1} = 0; the code's "momentum" is 1 - beta)
    u_t = -lmo(d_t)                                 (||u_t|| = 1 in the layerwise norm;
                                                     <u_t, d_t> = ||d_t||_*)
    unconstrained (Algorithm 3):
        eta_t = min(1, <u_t, d_t> / rho)            (one number for all layers together)
        direction:  eta_t u_t          step: theta_{t+1} = theta_t - lr eta_t u_t
    constrained (Algorithm 4, variant 2; s_t = lmo(d_t) = -u_t, the ball's vertex):
        eta_t = min(1, <theta_t - s_t, d_t> / rho)  (the Frank-Wolfe gap over rho: the short step)
        direction:  eta_t (theta_t - s_t)
        step:       theta_{t+1} = (1 - lr eta_t) theta_t + lr eta_t s_t
    state: d (momentum_buffer);  norm: `Layerwise`, as `scion`

Where ||d||_* <= rho the unconstrained step is lr/rho * d^# (steepest descent, d^# = ||d||_* u the
sharp operator): descent with the small-gradient step of (L0, L1)-smoothness; above rho it is lr u
(the normalised conditional-gradient step): gradient norm clipping, in any norm. In the l2 ball with
beta = 0 it is exactly g min(1/rho, 1/||g||_2), classic clipping. The constrained variant's weight
decay (the (1 - lr eta_t) factor) depends on theta and on the gap, so its direction uses params;
with it the caller's own weight decay should be 0."""

from __future__ import annotations

import torch

from lpcheck import checks
from lpcheck.methods.base import Method, dot, per_row
from lpcheck.methods.norms import Layerwise
from lpcheck.methods.scion import LMO_DEFAULTS, check_lmo, layerwise, momentum

__all__ = ["Clipped"]


class Clipped(Method):
    """Clipped Scion: d = min(1, <u, m>/rho) u with u = -lmo(m) (Algorithm 3), or the constrained
    Algorithm 4."""

    name = "clipped"
    summary = (
        "generalized gradient norm clipping (Pethick, Xie et al. 2025): d = min(1, ||m||_*/rho) "
        "(-lmo(m)); constrained=True: Algorithm 4; norm layerwise"
    )
    defaults = {"momentum": 0.9, "rho": 1.0, "constrained": False, **LMO_DEFAULTS}
    elementwise = False

    def _check(self, hp):
        out = check_lmo(hp)
        out["rho"] = checks.real("rho", hp["rho"], low=0.0, low_open=True)
        out["constrained"] = checks.boolean("constrained", hp["constrained"])
        return out

    def needs_params(self, hp):
        return hp["constrained"]

    def state_keys(self, hp):
        return ("momentum_buffer",)

    def _update(self, grads, state, hp, *, batched, params):
        m = momentum(state, grads, hp["momentum"])
        u = [-x for x in layerwise(hp).lmo(m, batched=batched)]
        if hp["constrained"]:
            u = [p + x for p, x in zip(params, u)]  # theta - s
        eta = torch.clamp(dot(u, m, batched) / hp["rho"], max=1.0)
        return [x * per_row(eta, x, batched) for x in u], {"momentum_buffer": m}

    def norm(self, state=None, hp=None):
        h = self.hp if hp is None else self.check(hp)
        return Layerwise(vector=h["vector"], radius=h["radius"], solver="svd")
