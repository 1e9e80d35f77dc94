"""Curvature of any torch model's loss: Hessian-vector products, extreme eigenpairs, trace, spectral
density.

- `HessianOperator(model, loss_fn, batches, mode=..., weights=None, retain="auto")`: v -> H v for
  the full-data loss f = sum_b (n_b / n) L_b (the mean over all examples, for batches of any sizes),
  with the mode stated explicitly ("train": BatchNorm with batch statistics; its running statistics,
  and every other buffer a forward writes, left as they were; "eval"); kept first-backward graphs
  when they fit in memory, else recomputed (operators.py). `hvp(model, loss_fn, batches, v, **kw)`
  is one product. `DenseOperator(matrix)` for explicit matrices.
- `eigenpairs(op, largest=k, smallest=k, tol=...)`: extreme eigenvalues and eigenvectors by Lanczos
  with full reorthogonalisation, each with its residual ||H v - lambda v|| and a stated convergence
  criterion.
- `lanczos(op, steps)`, `top_eigenvalues(op, k)`: the tridiagonalisation; the top Ritz values alone.
- `hutchinson_trace(op, samples)`, `hutchpp_trace(op, products)`: the trace with its standard error;
  Hutch++ (Meyer et al. 2021) for the same number of products is far less noisy when a few
  eigenvalues dominate, as in a network's Hessian.
- `spectral_density(op, vectors, steps)`: stochastic Lanczos quadrature (Ghorbani et al. 2019).

Everything runs on the model's device (CPU or CUDA). `lpcheck curvature` (curvature/cli.py) runs
these on a built-in CIFAR model or a user's own model, data and loss. Names load on first use, so
`lpcheck --help` does not import torch for this verb."""

import importlib
from typing import Any

_WHERE = {
    "HessianOperator": "operators",
    "DenseOperator": "operators",
    "preserved_buffers": "operators",
    "preserved_batchnorm": "operators",
    "examples": "operators",
    "hvp": "operators",
    "lanczos": "krylov",
    "eigenpairs": "krylov",
    "Eigenpairs": "krylov",
    "EigenResult": "krylov",
    "top_eigenvalues": "krylov",
    "spectral_density": "krylov",
    "hutchinson_trace": "trace",
    "hutchpp_trace": "trace",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"lpcheck.curvature.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lpcheck.curvature' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
