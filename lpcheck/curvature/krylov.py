"""Lanczos on a symmetric operator: the tridiagonalisation, extreme eigenpairs with residuals, SLQ.

All three run the same loop (`_Krylov`): Lanczos with full reorthogonalisation against every earlier
vector (twice, which is enough in floating point), so no ghost copies of converged eigenvalues
appear. After m steps, with Q the m orthonormal Lanczos vectors and T = tridiag(beta, alpha, beta),

    H Q^T = Q^T T + beta_m q_{m+1} e_m^T,

so a Ritz pair (theta, y = Q^T s) of T has the residual ||H y - theta y|| = beta_m |s_m| (the
Lanczos estimate; no product needed). `eigenpairs` also measures it directly, one product per
vector."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from lpcheck import checks
from lpcheck.curvature.operators import Operator, check_generator, check_op, check_vector

__all__ = [
    "lanczos",
    "eigenpairs",
    "Eigenpairs",
    "EigenResult",
    "top_eigenvalues",
    "spectral_density",
]


class _Krylov:
    """Lanczos vectors Q (rows), alpha, beta of a growing run; `extend(steps)` adds steps.

    restart=True: when the Krylov space is exhausted (beta ~ 0: an invariant subspace is found), set
    that beta to 0 and go on from a random vector orthogonal to Q. T stays tridiagonal with Q^T H
    Q = T, and repeated eigenvalues show up as often as they occur (one Krylov space holds each only
    once). That costs one host sync per step. restart=False never syncs (the caller cuts the run
    where beta ~ 0).
    """

    def __init__(
        self, op: Operator, v0: torch.Tensor | None, generator: torch.Generator | None = None
    ) -> None:
        self.op, self.generator = op, generator
        self.Q = torch.empty(0, op.dim, device=op.device, dtype=op.dtype)
        self.alphas: list[torch.Tensor] = []
        self.betas: list[torch.Tensor] = []
        self.m, self.restarts, self.scale = 0, 0, 0.0
        self.q = v0 / torch.linalg.vector_norm(v0)

    def _reserve(self, steps: int) -> None:
        need = min(self.m + steps, self.op.dim)
        if need > self.Q.shape[0]:
            Q = torch.empty(need, self.op.dim, device=self.op.device, dtype=self.op.dtype)
            Q[: self.m] = self.Q[: self.m]
            self.Q = Q

    def _orthogonal(self, w: torch.Tensor) -> torch.Tensor:
        Q = self.Q[: self.m]
        w = w - Q.T @ (Q @ w)
        return w - Q.T @ (Q @ w)

    def extend(self, steps: int, restart: bool = False) -> _Krylov:
        self._reserve(steps)
        eps = torch.finfo(self.op.dtype).eps
        for _ in range(steps):
            if self.m == self.op.dim:
                break
            j = self.m
            self.Q[j] = self.q
            w = self.op(self.q)
            alpha = torch.dot(w, self.q)
            w = w - alpha * self.q - (self.betas[-1] * self.Q[j - 1] if j > 0 else 0)
            self.m += 1
            w = self._orthogonal(w)
            beta = torch.linalg.vector_norm(w)
            self.alphas.append(alpha)
            if restart:
                self.scale = max(self.scale, abs(float(alpha)), float(beta))
                if float(beta) <= 1e3 * eps * self.scale and self.m < self.op.dim:
                    self.restarts += 1
                    beta = torch.zeros_like(beta)
                    w = self._orthogonal(
                        torch.randn(
                            self.op.dim,
                            device=self.op.device,
                            dtype=self.op.dtype,
                            generator=self.generator,
                        )
                    )
                    self.betas.append(beta)
                    self.q = w / torch.linalg.vector_norm(w)
                    continue
            self.betas.append(beta)
            self.q = w / torch.clamp(beta, min=torch.finfo(self.op.dtype).tiny)
        return self

    def tridiagonal(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, beta) on the CPU: T's diagonal (m) and the betas (m; beta[m-1] couples to the
        next vector)."""
        alpha, beta = torch.stack(self.alphas).cpu(), torch.stack(self.betas).cpu()
        if not (bool(torch.isfinite(alpha).all()) and bool(torch.isfinite(beta).all())):
            # eigh would fail to converge on a NaN matrix, deep inside torch.linalg
            raise ValueError(
                "op returned inf or nan (a Hessian product of a loss or gradient that is "
                "not finite at these parameters?): no eigenvalue can be computed from it"
            )
        return alpha, beta


def _start(
    op: Operator, v0: torch.Tensor | None, generator: torch.Generator | None
) -> torch.Tensor:
    check_generator(generator)
    if v0 is not None:
        check_vector("v0", v0, op)
        norm = float(torch.linalg.vector_norm(v0))  # one sync, before the loop
        if not (math.isfinite(norm) and norm > 0):
            raise ValueError(f"v0 must be a finite non-zero vector, got norm {norm}")
        return v0
    return torch.randn(op.dim, device=op.device, dtype=op.dtype, generator=generator)


def lanczos(
    op: Operator,
    steps: int,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lanczos with full reorthogonalisation: (alpha, beta, Q) with Q H Q^T = tridiag(beta, alpha,
    beta).

    Stops early when the Krylov space is exhausted (beta ~ 0); at most op.dim steps. alpha, beta are
    returned on the CPU; Q (one Lanczos vector per row) on the operator's device.
    """
    check_op(op)
    steps = min(checks.integer("steps", steps, low=1), op.dim)
    v0 = _start(op, v0, generator)
    run = _Krylov(op, v0, generator).extend(steps)
    alpha, beta = run.tridiagonal()
    # the Krylov space is exhausted where beta vanishes (relative to the operator's scale)
    scale = torch.max(torch.abs(alpha)).clamp(min=torch.finfo(alpha.dtype).tiny)
    dead = torch.nonzero(beta[:-1] <= 1e3 * torch.finfo(alpha.dtype).eps * scale)
    m = int(dead[0]) + 1 if len(dead) else len(alpha)
    return alpha[:m], beta[: m - 1], run.Q[:m]


def _ritz(alpha: torch.Tensor, beta: torch.Tensor) -> Any:
    T = torch.diag(alpha.double()) + torch.diag(beta.double(), 1) + torch.diag(beta.double(), -1)
    return torch.linalg.eigh(T)


@dataclass
class Eigenpairs:
    """Ritz pairs at one end of the spectrum, from the end inwards (largest first, or smallest
    first).

    values, residuals, estimates: float64 on the CPU; vectors: (k, dim) unit rows in the operator's
    dtype and on its device; residuals[i] = ||H v_i - values[i] v_i|| (one product each);
    estimates[i] = the Lanczos estimate beta_m |s_m,i| of the same residual; converged[i]:
    residuals[i] <= tol * scale.
    """

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    estimates: torch.Tensor
    converged: torch.Tensor

    def as_dict(self) -> dict:
        return {
            "values": self.values.tolist(),
            "residuals": self.residuals.tolist(),
            "lanczos_estimates": self.estimates.tolist(),
            "converged": self.converged.tolist(),
        }


@dataclass
class EigenResult:
    """`largest` and `smallest` Eigenpairs of one Lanczos run, and how it ran.

    scale = max |Ritz value| (an estimate of ||H||_2 from below); steps = Lanczos steps (one product
    each), restarts = exhausted Krylov spaces continued from a fresh vector, products = all products
    including the residuals'.
    """

    largest: Eigenpairs
    smallest: Eigenpairs
    tol: float
    scale: float
    steps: int
    restarts: int
    products: int

    @property
    def converged(self) -> bool:
        return bool(self.largest.converged.all()) and bool(self.smallest.converged.all())

    def as_dict(self) -> dict:
        return {
            "largest": self.largest.as_dict(),
            "smallest": self.smallest.as_dict(),
            "tol": self.tol,
            "scale": self.scale,
            "steps": self.steps,
            "restarts": self.restarts,
            "products": self.products,
            "converged": self.converged,
        }


def eigenpairs(
    op: Operator,
    largest: int = 1,
    smallest: int = 0,
    tol: float = 1e-3,
    steps: int | None = None,
    max_steps: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> EigenResult:
    """The `largest` algebraically largest and `smallest` algebraically smallest eigenpairs of a
    symmetric operator, by Lanczos with full reorthogonalisation, each with its residual.

    Convergence criterion: a Ritz pair (theta, v), ||v|| = 1, is converged when its residual
    ||H v - theta v|| <= tol * scale, scale = max |theta| over the Ritz values (~ ||H||_2). For a
    symmetric H this bounds the eigenvalue's error: some eigenvalue of H lies within the residual of
    theta (Bauer-Fike), and within residual^2 / gap when theta is apart from the rest of the
    spectrum by gap (Kato-Temple); the vector's angle to the eigenvector is at most residual / gap.
    Lanczos runs `steps` steps (default min(dim, max(2k + 20, 40)), k = largest + smallest), then
    adds max(10, steps // 2) at a time until the Lanczos estimates of the wanted residuals meet the
    criterion or `max_steps` (default min(dim, 3 * steps)) is reached; the residuals are then
    measured, one product per vector, and `converged` says which meet the criterion. Memory:
    max_steps vectors of dim entries.
    """
    check_op(op)
    n = op.dim
    largest = checks.integer("largest", largest, low=0, high=n)
    smallest = checks.integer("smallest", smallest, low=0, high=n)
    k = largest + smallest
    if k == 0 or k > n:
        raise ValueError(
            f"largest + smallest must be an integer in [1, {n}] (the operator's dimension), got {k}"
        )
    tol = checks.real("tol", tol, low=0.0, high=1.0, low_open=True, high_open=True)
    steps = (
        min(n, max(2 * k + 20, 40))
        if steps is None
        else min(n, checks.integer("steps", steps, low=k))
    )
    max_steps = (
        min(n, 3 * steps)
        if max_steps is None
        else min(n, checks.integer("max_steps", max_steps, low=steps))
    )
    v0 = _start(op, v0, generator)
    calls = getattr(op, "calls", None)
    run = _Krylov(op, v0, generator).extend(steps, restart=True)
    while True:
        alpha, beta = run.tridiagonal()
        theta, S = _ritz(alpha, beta[:-1])
        estimates = float(beta[-1]) * S[-1].abs()
        scale = float(theta.abs().max())
        wanted = list(range(run.m - 1, run.m - 1 - largest, -1)) + list(range(smallest))
        if bool((estimates[wanted] <= tol * scale).all()) or run.m >= max_steps:
            break
        run.extend(min(max(10, steps // 2), max_steps - run.m), restart=True)
    lanczos_steps = run.m
    Qm = run.Q[: run.m]
    ends = []
    for idx in (wanted[:largest], wanted[largest:]):
        values = theta[idx]
        vectors = S[:, idx].T.to(device=op.device, dtype=op.dtype) @ Qm
        vectors = vectors / torch.linalg.vector_norm(vectors, dim=1, keepdim=True)
        residuals = (
            torch.stack(
                [
                    torch.linalg.vector_norm(op(v) - v * values[i].to(op.dtype))
                    for i, v in enumerate(vectors)
                ]
            )
            .double()
            .cpu()
            if len(idx)
            else torch.zeros(0, dtype=torch.float64)
        )
        ends.append(
            Eigenpairs(values, vectors, residuals, estimates[idx], residuals <= tol * scale)
        )
    products = (op.calls - calls) if calls is not None else lanczos_steps + k
    return EigenResult(ends[0], ends[1], tol, scale, lanczos_steps, run.restarts, products)


def top_eigenvalues(
    op: Operator, k: int = 1, steps: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The k largest eigenvalues of op (Ritz values of a Lanczos run of `steps` steps), largest
    first.

    Fewer than k come back only where the Krylov space is exhausted first (an operator with fewer
    than k distinct eigenvalues along the start vector). `eigenpairs` gives vectors and residuals.
    """
    check_op(op)
    k = checks.integer("k", k, low=1, high=op.dim)
    if steps is None:
        steps = min(op.dim, max(2 * k + 20, 40))
    else:
        steps = checks.integer("steps", steps, low=k)  # k Ritz values need k Lanczos steps
    alpha, beta, _ = lanczos(op, steps, generator=generator)
    values, _ = _ritz(alpha, beta)
    return torch.flip(values, [0])[:k]


def spectral_density(
    op: Operator,
    vectors: int = 4,
    steps: int = 64,
    grid: Any = None,
    sigma: float | None = None,
    generator: torch.Generator | None = None,
) -> dict:
    """Stochastic Lanczos quadrature (Ghorbani et al. 2019): the spectral measure (1/d) sum_i
    delta(lambda_i) estimated from `vectors` random starts of `steps` Lanczos steps each.

    Returns a dict: nodes and weights per vector (weights sum to 1 per vector), the smoothed density
    on `grid` (Gaussian kernel of width sigma), the fraction of negative mass, and the extreme
    nodes.
    """
    check_op(op)
    vectors = checks.integer("vectors", vectors, low=1)
    steps = checks.integer("steps", steps, low=1)
    if sigma is not None:
        sigma = checks.real("sigma", sigma, low=0.0, low_open=True)
    if grid is not None:
        try:
            grid = torch.as_tensor(grid, dtype=torch.float64).cpu()
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(
                f"grid must be a 1-D array of finite numbers, got {type(grid).__name__} ({e})"
            ) from None
        if grid.ndim != 1 or grid.numel() == 0 or not bool(torch.isfinite(grid).all()):
            raise ValueError(
                "grid must be a non-empty 1-D array of finite numbers, got shape "
                f"{tuple(grid.shape)}"
            )
    check_generator(generator)
    nodes, weights = [], []
    for _ in range(vectors):
        alpha, beta, _ = lanczos(op, steps, generator=generator)
        theta, S = _ritz(alpha, beta)
        nodes.append(theta)
        weights.append(S[0] ** 2)
    all_nodes, all_weights = torch.cat(nodes), torch.cat(weights) / vectors
    lo, hi = float(all_nodes.min()), float(all_nodes.max())
    span = max(hi - lo, 1e-12)
    sigma = sigma if sigma is not None else span / 200
    if grid is None:
        grid = torch.linspace(lo - 0.05 * span, hi + 0.05 * span, 1000, dtype=torch.float64)
    kernel = torch.exp(-0.5 * ((grid[:, None] - all_nodes[None, :]) / sigma) ** 2) / (
        sigma * math.sqrt(2 * math.pi)
    )
    return {
        "nodes": [n.tolist() for n in nodes],
        "weights": [w.tolist() for w in weights],
        "grid": grid.tolist(),
        "density": (kernel @ all_weights).tolist(),
        "sigma": sigma,
        "negative_mass": float(all_weights[all_nodes < 0].sum()),
        "min_node": lo,
        "max_node": hi,
        "vectors": vectors,
        "steps": steps,
    }
