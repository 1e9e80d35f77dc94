"""LPSGD's direction (Algorithm 1, eq. 21) at a fixed p; the cosine schedule of p (eq. 19) is the
caller's.

    input: p in [2, inf], eps > 0;  rho = (p - 2)/(p - 1)                                 (eq. 20)
    direction:  u_t = g_t / (|g_t| + eps)^rho     (elementwise)                          (eq. 21)
    step:       theta_{t+1} = theta_t - lr u_t                                          (eq. 22)
    state: none;  norm: ||.||_p of all coordinates (Assumptions 1 and 5)

The same math as `lpcheck.optim.LPSGD` (whose per-tensor path calls `lpcheck.lp.rescale`), written
once more as a pure function; the tests hold the two together. lpcheck.optim stays the training
optimizer (fused and foreach kernels); this is the description the estimators and the rates runner
use."""

from __future__ import annotations

import torch

from lpcheck import checks, lp
from lpcheck.methods.base import REQUIRED, Method
from lpcheck.methods.norms import Lp

__all__ = ["LPSGD", "check_lp", "check_eps_dtype", "rescale"]


def check_lp(hp: dict) -> dict:
    out = dict(hp)
    out["p"] = checks.real("p", hp["p"], low=2.0, finite=False)
    out["eps"] = checks.real("eps", hp["eps"], low=0.0, low_open=True)
    return out


def check_eps_dtype(hp: dict, dtype) -> None:
    """eps that is 0 in `dtype` makes eq. 21 0/0 at a zero entry; eps^-rho past its range makes it
    0 * inf."""
    math_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    checks.representable(
        "eps", hp["eps"], math_dtype, why="|g| + eps would be 0 at a zero entry (eq. 21: 0/0)"
    )
    checks.power_representable(
        "eps",
        hp["eps"],
        lp.rho(hp["p"]),
        math_dtype,
        why=f"at p = {hp['p']:g} eq. 21 would be 0 * inf = NaN at a zero entry",
    )


def rescale(tensors, p: float, eps: float) -> list:
    """eq. 21 over a list of tensors, out of place: t / (|t| + eps)^rho (a copy at rho = 0)."""
    rho = lp.rho(p)
    if rho == 0:
        return torch._foreach_mul(tensors, 1.0)
    denom = torch._foreach_abs(tensors)
    torch._foreach_add_(denom, eps)
    torch._foreach_pow_(denom, rho)
    return torch._foreach_div(tensors, denom)


class LPSGD(Method):
    """LPSGD (Algorithm 1) at p: u = g / (|g| + eps)^rho, rho = (p-2)/(p-1) (eq. 21)."""

    name = "lpsgd"
    summary = "LPSGD (Algorithm 1) at p: u = g / (|g| + eps)^rho (eq. 21); norm lp"
    defaults = {"p": REQUIRED, "eps": 1e-8}

    def _check(self, hp):
        return check_lp(hp)

    def check_dtype(self, hp, dtype):
        check_eps_dtype(hp, dtype)

    def _update(self, grads, state, hp, *, batched, params):
        return rescale(grads, hp["p"], hp["eps"]), {}

    def norm(self, state=None, hp=None):
        return Lp((self.hp if hp is None else self.check(hp))["p"])
