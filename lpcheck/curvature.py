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

from lpcheck import checks

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
        if type(matrix).__module__ == "numpy":
            matrix = torch.as_tensor(matrix)
        if not isinstance(matrix, torch.Tensor) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] \
                or matrix.shape[0] == 0:
            got = f"shape {tuple(matrix.shape)}" if isinstance(matrix, torch.Tensor) else type(matrix).__name__
            raise ValueError(f"matrix must be a non-empty square 2-D tensor, got {got}")
        if not matrix.is_floating_point():
            raise ValueError(f"matrix must be real floating-point, got {matrix.dtype}")
        if not bool(torch.isfinite(matrix).all()):
            raise ValueError("matrix must be finite, got inf or nan entries")
        scale = float(matrix.abs().max())
        if float((matrix - matrix.T).abs().max()) > 1e3 * torch.finfo(matrix.dtype).eps * scale:
            raise ValueError("matrix must be symmetric (Lanczos and the spectral measure assume a symmetric operator)")
        self.matrix = matrix
        self.dim, self.device, self.dtype = matrix.shape[0], matrix.device, matrix.dtype

    def __call__(self, v):
        _check_vector("v", v, self)
        return self.matrix @ v


class HessianOperator:
    """v -> H v, H the Hessian of the mean loss over `batches` w.r.t. the trainable parameters.

    `loss_fn(model, batch) -> scalar loss`; `batches` is a list of batches (each passed to loss_fn
    as is). The operator works on flat vectors in the parameters' order.
    """

    def __init__(self, model, loss_fn, batches, mode="train"):
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be a callable loss_fn(model, batch) -> scalar loss, got "
                             f"{type(loss_fn).__name__}")
        if not isinstance(mode, str) or mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        if isinstance(batches, (torch.Tensor, str, bytes)) or not hasattr(batches, "__iter__"):
            raise ValueError(f"batches must be a list of mini-batches, got {type(batches).__name__}")
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
        _check_vector("v", v, self)
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


def _check_op(op) -> None:
    if not callable(op) or not all(hasattr(op, a) for a in ("dim", "device", "dtype")):
        raise ValueError("op must be an operator v -> H v with dim, device and dtype (HessianOperator, DenseOperator), "
                         f"got {type(op).__name__}")


def _check_vector(name, v, op) -> None:
    if not isinstance(v, torch.Tensor) or v.shape != (op.dim,):
        raise ValueError(f"{name} must be a flat vector of length {op.dim}, got "
                         + (f"shape {tuple(v.shape)}" if isinstance(v, torch.Tensor) else type(v).__name__))
    if v.dtype != op.dtype or v.device != op.device:
        raise ValueError(f"{name} must be {op.dtype} on {op.device} (the operator's), got {v.dtype} on {v.device}")


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be None or a torch.Generator, got {type(generator).__name__}")


def lanczos(op, steps, v0=None, generator=None):
    """Lanczos with full reorthogonalisation: (alpha, beta, Q) with Q^T H Q = tridiag(beta, alpha, beta).

    Stops early when the Krylov space is exhausted (beta ~ 0); at most op.dim steps. alpha, beta are
    returned on the CPU.
    """
    _check_op(op)
    n = op.dim
    steps = min(checks.integer("steps", steps, low=1), n)
    _check_generator(generator)
    if v0 is not None:
        _check_vector("v0", v0, op)
        norm = float(torch.linalg.vector_norm(v0))  # one sync, before the loop
        if not (math.isfinite(norm) and norm > 0):
            raise ValueError(f"v0 must be a finite non-zero vector, got norm {norm}")
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
    """The k largest eigenvalues of op (Ritz values of a Lanczos run), largest first.

    Fewer than k come back only where the Krylov space is exhausted first (an operator with fewer
    than k distinct eigenvalues along the start vector).
    """
    _check_op(op)
    k = checks.integer("k", k, low=1, high=op.dim)
    if steps is None:
        steps = min(op.dim, max(2 * k + 20, 40))
    else:
        steps = checks.integer("steps", steps, low=k)  # k Ritz values need k Lanczos steps
    alpha, beta, _ = lanczos(op, steps, generator=generator)
    values, _ = _ritz(alpha, beta)
    return torch.flip(values, [0])[:k]


def hutchinson_trace(op, samples=64, generator=None):
    """tr(H) = E[v^T H v] for Rademacher v: (estimate, standard error, samples)."""
    _check_op(op)
    samples = checks.integer("samples", samples, low=2)  # >= 2 for a standard error
    _check_generator(generator)
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
    _check_op(op)
    vectors = checks.integer("vectors", vectors, low=1)
    steps = checks.integer("steps", steps, low=1)
    if sigma is not None:
        sigma = checks.real("sigma", sigma, low=0.0, low_open=True)
    if grid is not None:
        try:
            grid = torch.as_tensor(grid, dtype=torch.float64).cpu()
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"grid must be a 1-D array of finite numbers, got {type(grid).__name__} ({e})") from None
        if grid.ndim != 1 or grid.numel() == 0 or not bool(torch.isfinite(grid).all()):
            raise ValueError(f"grid must be a non-empty 1-D array of finite numbers, got shape {tuple(grid.shape)}")
    _check_generator(generator)
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
