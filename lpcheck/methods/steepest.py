"""Normalized lp steepest descent (eq. 10): the step that minimises the lp-regularised linear model.

    input: p in (1, inf];  q = p / (p - 1)
    direction:  d_t = g^# = argmax_x <g, x> - ||x||_p^2 / 2
                      = ||g||_q^(2-q) sign(g) |g|^(q-1)
                        (elementwise power; ||g||_q over ALL coordinates)
    step:       theta_{t+1} = theta_t - lr d_t   (eq. 10)
                (= theta_t + lpcheck.lp.steepest_descent(g, p, lr))
    state: none;  norm: ||.||_p

LPSGD's eq. 21 drops the global factor ||g||_q^(2-q) and adds eps; this keeps the factor, so it is
not
elementwise: batched runs take ||g||_q per row. Computed as m * r^(q-1) * ||r||_q^(2-q) with m =
max|g| and r = |g|/m, so no power overflows (`lpcheck.methods.norms.Lp.sharp`)."""

from __future__ import annotations

from lpcheck import checks
from lpcheck.methods.base import REQUIRED, Method
from lpcheck.methods.norms import Lp

__all__ = ["Steepest"]


class Steepest(Method):
    """eq. 10: d = ||g||_q^(2-q) sign(g) |g|^(q-1), the sharp operator of the lp norm."""

    name = "steepest"
    summary = (
        "normalized lp steepest descent, eq. 10: d = ||g||_q^(2-q) sign(g)|g|^(q-1) "
        "(global factor kept); norm lp"
    )
    defaults = {"p": REQUIRED}
    elementwise = False

    def _check(self, hp):
        return {"p": checks.real("p", hp["p"], low=1.0, low_open=True, finite=False)}

    def _update(self, grads, state, hp, *, batched, params):
        return Lp(hp["p"]).sharp(grads, batched=batched), {}

    def norm(self, state=None, hp=None):
        return Lp((self.hp if hp is None else self.check(hp))["p"])
