"""Curvature of a torch model's loss: Hessian-vector products, top eigenvalues, trace, spectral density.

- `HessianOperator(model, loss_fn, batches, mode=...)`: v -> H v for the loss averaged over the given
  mini-batches (double backward, one batch at a time), with the mode stated explicitly: "train"
  (the loss the optimizer sees: BatchNorm uses batch statistics; its running statistics are saved
  and restored, so measuring never changes training) or "eval".
- `lanczos(op, steps)`: the Lanczos tridiagonalisation with full reorthogonalisation.
- `top_eigenvalues(op, k)`: the k largest (algebraic) eigenvalues, by Lanczos.
- `hutchinson_trace(op, samples)`: E[v^T H v] over Rademacher v, with its standard error.
- `spectral_density(op, vectors, steps)`: stochastic Lanczos quadrature (Ghorbani et al. 2019): nodes
  and weights of the spectral measure, a Gaussian-smoothed density on a grid, and the fraction of
  negative mass.

Everything runs on the model's device (CPU or CUDA) and keeps the Lanczos scalars on it until the end
(no host sync per iteration). `DenseOperator` wraps an explicit symmetric matrix for tests.
"""

from __future__ import annotations

import contextlib
import math

import torch

__all__ = ["HessianOperator", "DenseOperator", "lanczos", "top_eigenvalues", "hutchinson_trace", "spectral_density",
           "preserved_batchnorm"]


@contextlib.contextmanager
def preserved_batchnorm(model):
    """Save and restore every BatchNorm's running statistics (and batch counter) around the block."""
    saved = [(m, m.running_mean.clone() if m.running_mean is not None else None,
              m.running_var.clone() if m.running_var is not None else None,
              m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, mean, var, count in saved:
                if mean is not None:
                    m.running_mean.copy_(mean)
                if var is not None:
                    m.running_var.copy_(var)
                if count is not None:
                    m.num_batches_tracked.copy_(count)


class DenseOperator:
    """An explicit symmetric matrix as an operator (for tests and known spectra)."""

    def __init__(self, matrix):
        self.matrix = matrix
        self.dim, self.device, self.dtype = matrix.shape[0], matrix.device, matrix.dtype

    def __call__(self, v):
        return self.matrix @ v


class HessianOperator:
    """v -> H v, H the Hessian of the mean loss over `batches` w.r.t. the trainable parameters.

    `loss_fn(model, batch) -> scalar loss`; `batches` is a list of batches (each passed to loss_fn
    as is). The operator works on flat vectors in the parameters' order.
    """

    def __init__(self, model, loss_fn, batches, mode="train"):
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        batches = list(batches)
        if not batches:
            raise ValueError("batches is empty: the Hessian needs at least one mini-batch")
        self.model, self.loss_fn, self.batches, self.mode = model, loss_fn, batches, mode
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.dim = sum(p.numel() for p in self.params)
        self.device, self.dtype = self.params[0].device, self.params[0].dtype
        self.calls = 0

    def _split(self, v):
        out, i = [], 0
        for p in self.params:
            out.append(v[i:i + p.numel()].view_as(p))
            i += p.numel()
        return out

    def __call__(self, v):
        if v.shape != (self.dim,):
            raise ValueError(f"v must be a flat vector of length {self.dim}, got shape {tuple(v.shape)}")
        was_training = self.model.training
        self.model.train(self.mode == "train")
        total = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
        try:
            with preserved_batchnorm(self.model), torch.enable_grad():
                vs = self._split(v)
                for batch in self.batches:
                    loss = self.loss_fn(self.model, batch)
                    grads = torch.autograd.grad(loss, self.params, create_graph=True)
                    hv = torch.autograd.grad(grads, self.params, grad_outputs=vs)
                    total += torch.cat([h.reshape(-1) for h in hv])
        finally:
            self.model.train(was_training)
        self.calls += 1
        return total / len(self.batches)


def lanczos(op, steps, v0=None, generator=None):
    """Lanczos with full reorthogonalisation: (alpha, beta, Q) with Q^T H Q = tridiag(beta, alpha, beta).

    Stops early when the Krylov space is exhausted (beta ~ 0). alpha, beta are returned on the CPU.
    """
    n = op.dim
    steps = int(min(steps, n))
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if v0 is None:
        v0 = torch.randn(n, device=op.device, dtype=op.dtype, generator=generator)
    Q = torch.zeros(steps, n, device=op.device, dtype=op.dtype)
    q = v0 / torch.linalg.vector_norm(v0)
    alphas, betas = [], []
    beta = torch.zeros((), device=op.device, dtype=op.dtype)
    for j in range(steps):
        Q[j] = q
        w = op(q)
        alpha = torch.dot(w, q)
        w = w - alpha * q - (beta * Q[j - 1] if j > 0 else 0)
        w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)  # full reorthogonalisation, twice is enough
        w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        alphas.append(alpha)
        beta = torch.linalg.vector_norm(w)
        betas.append(beta)
        q = w / torch.clamp(beta, min=torch.finfo(op.dtype).tiny)
    alpha = torch.stack(alphas).cpu()
    beta = torch.stack(betas).cpu()
    # the Krylov space is exhausted where beta vanishes (relative to the operator's scale)
    scale = torch.max(torch.abs(alpha)).clamp(min=torch.finfo(alpha.dtype).tiny)
    dead = torch.nonzero(beta[:-1] <= 1e3 * torch.finfo(alpha.dtype).eps * scale)
    m = int(dead[0]) + 1 if len(dead) else len(alpha)
    return alpha[:m], beta[: m - 1], Q[:m]


def _ritz(alpha, beta):
    T = torch.diag(alpha.double()) + torch.diag(beta.double(), 1) + torch.diag(beta.double(), -1)
    return torch.linalg.eigh(T)


def top_eigenvalues(op, k=1, steps=None, generator=None):
    """The k largest eigenvalues of op (Ritz values of a Lanczos run), largest first."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    steps = steps or min(op.dim, max(2 * k + 20, 40))
    alpha, beta, _ = lanczos(op, steps, generator=generator)
    values, _ = _ritz(alpha, beta)
    return torch.flip(values, [0])[:k]


def hutchinson_trace(op, samples=64, generator=None):
    """tr(H) = E[v^T H v] for Rademacher v: (estimate, standard error, samples)."""
    if samples < 2:
        raise ValueError(f"samples must be >= 2 for a standard error, got {samples}")
    values = []
    for _ in range(samples):
        v = torch.randint(0, 2, (op.dim,), device=op.device, generator=generator).to(op.dtype) * 2 - 1
        values.append(torch.dot(v, op(v)))
    values = torch.stack(values).double().cpu()
    return float(values.mean()), float(values.std() / math.sqrt(samples)), samples


def spectral_density(op, vectors=4, steps=64, grid=None, sigma=None, generator=None):
    """Stochastic Lanczos quadrature: the spectral measure (1/d) sum_i delta(lambda_i) estimated from
    `vectors` random starts of `steps` Lanczos steps each.

    Returns a dict: nodes and weights per vector (weights sum to 1 per vector), the smoothed density
    on `grid` (Gaussian kernel of width sigma), the fraction of negative mass, and the extreme nodes.
    """
    if vectors < 1:
        raise ValueError(f"vectors must be >= 1, got {vectors}")
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
    kernel = torch.exp(-0.5 * ((grid[:, None] - all_nodes[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return {
        "nodes": [n.tolist() for n in nodes], "weights": [w.tolist() for w in weights],
        "grid": grid.tolist(), "density": (kernel @ all_weights).tolist(), "sigma": sigma,
        "negative_mass": float(all_weights[all_nodes < 0].sum()), "min_node": lo, "max_node": hi,
        "vectors": vectors, "steps": steps,
    }
