"""An LMO method in the spirit of Scion (Pethick et al., "Training Deep Learning Models with
Norm-Constrained LMOs", ICML 2025): steps along the linear minimisation oracle of a layerwise norm
ball.

    input: beta in [0, 1), radius rho_r > 0, vector in {sign, l2, rms},
           solver in {newton_schulz, svd}
    m_t = beta m_{t-1} + (1 - beta) g_t          (m_{-1} = 0; Scion's "momentum" is 1 - beta)
    direction:  d_t = -lmo(m_t),  lmo(m) = argmin_{||x|| <= 1} <m, x>  layer by layer:
                  >= 2-D tensor W (as a (shape[0], rest) matrix):  rho_r U V^T  for W = U S V^T
                      (svd: exact, 0 along numerically zero singular values;
                       newton_schulz: the quintic iteration, approximate)
                  vector: rho_r sign(m) (sign), rho_r m / ||m||_2 (l2),
                          rho_r sqrt(n) m / ||m||_2 (rms)
    step:       theta_{t+1} = (1 - lr lambda) theta_t - lr d_t
                (Scion's unconstrained variant: lambda = 0; its constrained one: lambda = 1)
    state: momentum_buffer;  norm: `Layerwise`: max over layers of the layer's norm / rho_r

Differences from the reference code (LIONS-EPFL/scion): no per-shape factors (its Spectral scales U
V^T by sqrt(d_out/d_in) and its Sign by 1/d_in; such factors are per-layer radii), Newton-Schulz in
the gradients' dtype rather than bfloat16, and vectors by `vector` rather than its BiasRMS default.
"""

from __future__ import annotations

from lpcheck import checks
from lpcheck.methods.base import Method, choice
from lpcheck.methods.norms import Layerwise

__all__ = ["Scion", "check_lmo", "layerwise"]

LMO_DEFAULTS = {"radius": 1.0, "vector": "sign", "solver": "newton_schulz", "ns_steps": 5}


def check_lmo(hp: dict) -> dict:
    out = dict(hp)
    out["momentum"] = checks.probability("momentum", hp["momentum"])
    out["radius"] = checks.real("radius", hp["radius"], low=0.0, low_open=True)
    out["vector"] = choice("vector", hp["vector"], Layerwise.VECTORS)
    out["solver"] = choice("solver", hp["solver"], Layerwise.SOLVERS)
    out["ns_steps"] = checks.integer("ns_steps", hp["ns_steps"], low=1, high=Layerwise.NS_STEPS_MAX)
    return out


def layerwise(hp: dict) -> Layerwise:
    return Layerwise(
        vector=hp["vector"], radius=hp["radius"], solver=hp["solver"], ns_steps=hp["ns_steps"]
    )


def momentum(state, grads, beta):
    """Scion's buffer update, in its order: m <- beta m + (1 - beta) g (mul, then add)."""
    return [m.mul(beta).add_(g, alpha=1.0 - beta) for m, g in zip(state["momentum_buffer"], grads)]


class Scion(Method):
    """Scion-like LMO step: d = -lmo(m) over the layerwise ball (spectral for matrices, `vector` for
    vectors)."""

    name = "scion"
    summary = (
        "Scion-like LMO step: d = -lmo(m), spectral ball (Newton-Schulz or SVD) for matrices; "
        "norm layerwise"
    )
    defaults = {"momentum": 0.9, **LMO_DEFAULTS}
    elementwise = False

    def _check(self, hp):
        return check_lmo(hp)

    def state_keys(self, hp):
        return ("momentum_buffer",)

    def _update(self, grads, state, hp, *, batched, params):
        m = momentum(state, grads, hp["momentum"])
        return [-x for x in layerwise(hp).lmo(m, batched=batched)], {"momentum_buffer": m}

    def norm(self, state=None, hp=None):
        h = self.hp if hp is None else self.check(hp)
        return Layerwise(vector=h["vector"], radius=h["radius"], solver="svd")
