"""Adam (Kingma & Ba, ICLR 2015), and AdamW (Loshchilov & Hutter, ICLR 2019) with decoupled weight
decay.

    input: beta1, beta2 in [0, 1), eps > 0, amsgrad;  m_0 = v_0 = 0 (v^max_0 = 0)
    t <- t + 1
    m_t = beta1 m_{t-1} + (1 - beta1) g_t
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    v^max_t = max(v^max_{t-1}, v_t)          (amsgrad; then v_t below reads v^max_t)
    a_t = sqrt(v_t / (1 - beta2^t)) + eps    (eps outside the square root, as torch)
    direction:  d_t = (m_t / (1 - beta1^t)) / a_t
    step:       theta_t = (1 - lr lambda) theta_{t-1} - lr d_t       (lambda > 0: AdamW)
    state: step, exp_avg (m), exp_avg_sq (v), max_exp_avg_sq (amsgrad)   -- torch's keys

The norm: d_t = A_t^-1 m^_t with A_t = diag(a_t) is the steepest-descent direction of m^_t in the
ellipsoidal norm ||x||_{A_t} = sqrt(sum_j a_j x_j^2) (Kohler, Adolphs & Lucchi: Adam and RMSProp are
first-order trust-region methods with ellipsoidal constraints). `norm(state)` is that norm with a
from the state given: the state after a step gives A_t of that step; the state before it gives
A_{t-1}, which is fixed given F_t (what a conditional expectation over g_t needs). At step 0
(v = 0) it is a = eps.

torch.optim.Adam (coupled weight_decay = 0) and torch.optim.AdamW take this step; the tests compare
step for step, bias correction and eps placement included.
"""

from __future__ import annotations

import math

import torch

from lpcheck import checks
from lpcheck.methods.base import Method, pair
from lpcheck.methods.norms import Ellipsoidal

__all__ = ["Adam"]


class Adam(Method):
    """Adam: d = m^ / (sqrt(v^) + eps) with bias-corrected moments m^, v^."""

    name = "adam"
    summary = (
        "Adam / AdamW (decoupled weight decay): d = m^/(sqrt(v^) + eps); "
        "norm ellipsoidal, a = sqrt(v^) + eps"
    )
    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False}

    def _check(self, hp):
        return {
            "betas": pair("betas", hp["betas"]),
            "eps": checks.real("eps", hp["eps"], low=0.0, low_open=True),
            "amsgrad": checks.boolean("amsgrad", hp["amsgrad"]),
        }

    def check_dtype(self, hp, dtype):
        checks.representable(
            "eps", hp["eps"], dtype, why="sqrt(v) + eps would be 0 where g has been 0 (0/0)"
        )

    def state_keys(self, hp):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if hp["amsgrad"] else ())

    def scalar_state(self, hp):
        return ("step",)

    def _update(self, grads, state, hp, *, batched, params):
        beta1, beta2 = hp["betas"]
        m = torch._foreach_lerp(state["exp_avg"], grads, 1.0 - beta1)
        v = torch._foreach_mul(state["exp_avg_sq"], beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - beta2)
        new = {"exp_avg": m, "exp_avg_sq": v, "step": [t + 1 for t in state["step"]]}
        second = v
        if hp["amsgrad"]:
            second = new["max_exp_avg_sq"] = torch._foreach_maximum(state["max_exp_avg_sq"], v)
        steps = [float(t) for t in new["step"]]
        if len(set(steps)) == 1:  # the usual case: one bias correction for all, multi-tensor
            t = steps[0]
            denom = torch._foreach_sqrt(second)
            torch._foreach_div_(denom, math.sqrt(1.0 - beta2**t))
            torch._foreach_add_(denom, hp["eps"])
            direction = torch._foreach_div(m, denom)
            torch._foreach_div_(direction, 1.0 - beta1**t)
            return direction, new
        direction = []  # parameters that skipped steps (no gradient then) have their own counts
        for mi, si, t in zip(m, second, steps):
            denom = (si.sqrt() / math.sqrt(1.0 - beta2**t)).add_(hp["eps"])
            direction.append(mi.div(denom).div_(1.0 - beta1**t))
        return direction, new

    def norm(self, state=None, hp=None):
        h = self.hp if hp is None else self.check(hp)
        if state is None:
            raise ValueError(
                "adam's norm depends on the state (a = sqrt(v^) + eps): pass the state"
            )
        key = "max_exp_avg_sq" if h["amsgrad"] else "exp_avg_sq"
        a = []
        for v, t in zip(state[key], state["step"]):
            t = float(t)
            a.append(
                (
                    v.sqrt() / math.sqrt(1.0 - h["betas"][1] ** t) if t > 0 else torch.zeros_like(v)
                ).add_(h["eps"])
            )
        return Ellipsoidal(a)
