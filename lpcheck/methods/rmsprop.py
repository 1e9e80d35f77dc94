"""RMSProp (Hinton's lecture 6e; torch.optim.RMSprop's form, centered and momentum variants
included).

    input: alpha in [0, 1), eps > 0, momentum mu in [0, 1), centered;  v_0 = 0, gbar_0 = 0, b_0 = 0
    v_t = alpha v_{t-1} + (1 - alpha) g_t^2
    gbar_t = alpha gbar_{t-1} + (1 - alpha) g_t                       (centered)
    a_t = sqrt(v_t - gbar_t^2) + eps  (centered)   or   sqrt(v_t) + eps
          (eps outside the root, as torch)
    direction:  d_t = b_t = mu b_{t-1} + g_t / a_t  (mu > 0)   or   d_t = g_t / a_t
    state: square_avg (v), grad_avg (centered), momentum_buffer (mu > 0)   -- torch's keys
    norm: ellipsoidal ||x||_A = sqrt(sum a_j x_j^2) with a from the state
          (Kohler, Adolphs & Lucchi), a = eps at the start (v = 0)

No bias correction (torch's RMSprop has none). torch.optim.RMSprop with weight_decay = 0 takes this
step."""

from __future__ import annotations

import torch

from lpcheck import checks
from lpcheck.methods.base import Method
from lpcheck.methods.norms import Ellipsoidal

__all__ = ["RMSProp"]


class RMSProp(Method):
    """RMSProp: d = g / (sqrt(v) + eps), v = alpha v + (1 - alpha) g^2 (centered and momentum as
    torch)."""

    name = "rmsprop"
    summary = (
        "RMSProp (torch's form): d = g/(sqrt(v) + eps), "
        "v = alpha v + (1-alpha) g^2; norm ellipsoidal"
    )
    defaults = {"alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False}

    def _check(self, hp):
        return {
            "alpha": checks.probability("alpha", hp["alpha"]),
            "eps": checks.real("eps", hp["eps"], low=0.0, low_open=True),
            "momentum": checks.probability("momentum", hp["momentum"]),
            "centered": checks.boolean("centered", hp["centered"]),
        }

    def check_dtype(self, hp, dtype):
        checks.representable(
            "eps", hp["eps"], dtype, why="sqrt(v) + eps would be 0 where g has been 0 (0/0)"
        )

    def state_keys(self, hp):
        return (
            ("square_avg",)
            + (("grad_avg",) if hp["centered"] else ())
            + (("momentum_buffer",) if hp["momentum"] > 0 else ())
        )

    @staticmethod
    def _denominator(v, gbar, eps):
        centred = v if gbar is None else torch._foreach_addcmul(v, gbar, gbar, value=-1)
        avg = torch._foreach_sqrt(centred)
        torch._foreach_add_(avg, eps)
        return avg

    def _update(self, grads, state, hp, *, batched, params):
        alpha, mu = hp["alpha"], hp["momentum"]
        v = torch._foreach_mul(state["square_avg"], alpha)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - alpha)
        new = {"square_avg": v}
        gbar = None
        if hp["centered"]:
            gbar = new["grad_avg"] = torch._foreach_lerp(state["grad_avg"], grads, 1.0 - alpha)
        avg = self._denominator(v, gbar, hp["eps"])
        if mu > 0:
            b = torch._foreach_mul(state["momentum_buffer"], mu)
            torch._foreach_addcdiv_(b, grads, avg)
            new["momentum_buffer"] = b
            return [t.clone() for t in b], new
        return torch._foreach_div(grads, avg), new

    def norm(self, state=None, hp=None):
        h = self.hp if hp is None else self.check(hp)
        if state is None:
            raise ValueError(
                "rmsprop's norm depends on the state (a = sqrt(v) + eps): pass the state"
            )
        return Ellipsoidal(
            self._denominator(
                state["square_avg"], state.get("grad_avg") if h["centered"] else None, h["eps"]
            )
        )
