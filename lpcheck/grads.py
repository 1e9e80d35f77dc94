"""The one gradient flattener: a list of tensors to one 1-D vector and back, in a fixed order.

The estimators of Assumptions 1, 3, 5 and 6 treat a model's parameters as one vector theta in R^d
(the paper's setting); these functions are the only place where per-parameter tensors become that
vector. The order is `model.parameters()` order, restricted to parameters that require a gradient
(shared parameters once), so flat gradients, flat parameters and flat momentum buffers line up
coordinate by coordinate. Nothing here reads a value back to the host: safe in hot loops on CUDA.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = [
    "parameters",
    "flatten",
    "unflatten",
    "flat_params",
    "flat_grad",
    "flat_grad_unreached",
    "flat_state",
    "set_flat_params",
]


def parameters(model_or_params) -> list:
    """The trainable parameters in a fixed order: `model.parameters()` order, each shared one
    once."""
    if isinstance(
        model_or_params, torch.Tensor
    ):  # one parameter (iterating it would give its rows)
        model_or_params = [model_or_params]
    params = (
        model_or_params.parameters()
        if isinstance(model_or_params, torch.nn.Module)
        else model_or_params
    )
    if not hasattr(params, "__iter__"):
        raise ValueError(
            "model_or_params must be an nn.Module or an iterable of tensors, got "
            f"{type(params).__name__}"
        )
    out, seen = [], set()
    for p in params:
        if not isinstance(p, torch.Tensor):
            raise ValueError(f"parameters must be tensors, got {type(p).__name__}")
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    if not out:
        raise ValueError("the model has no parameter that requires a gradient")
    return out


def _tensor_list(name: str, tensors) -> list:
    """A list of tensors from an iterable of them; one tensor is [tensor] (iterating it would give
    its rows)."""
    if isinstance(tensors, torch.Tensor):
        return [tensors]
    if not hasattr(tensors, "__iter__"):
        raise ValueError(f"{name} must be an iterable of tensors, got {type(tensors).__name__}")
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must hold tensors, got {type(t).__name__} at position {i}")
    return tensors


def flatten(tensors) -> torch.Tensor:
    """Concatenate tensors (any shapes, one device; dtypes promote as in torch.cat) into one 1-D
    tensor (a copy)."""
    tensors = _tensor_list("tensors", tensors)
    if not tensors:
        raise ValueError(
            "tensors must hold at least one tensor (flatten needs at least one tensor)"
        )
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        raise ValueError(f"tensors must all be on one device, got {sorted(map(str, devices))}")
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(flat: torch.Tensor, like) -> list:
    """Split a 1-D tensor into views shaped like the tensors in `like` (the inverse of
    `flatten`)."""
    if not isinstance(flat, torch.Tensor):
        raise ValueError(f"flat must be a 1-D torch tensor, got {type(flat).__name__}")
    like = _tensor_list("like", like)
    numels = [t.numel() for t in like]
    if flat.ndim != 1 or flat.numel() != sum(numels):
        raise ValueError(
            f"flat must be 1-D with {sum(numels)} entries to match, got shape {tuple(flat.shape)}"
        )
    return [v.view_as(t) for v, t in zip(torch.split(flat, numels), like)]


def flat_params(params) -> torch.Tensor:
    """theta as one 1-D tensor (a detached copy)."""
    return flatten(p.detach() for p in params)


@torch.no_grad()
def set_flat_params(params, flat: torch.Tensor) -> None:
    """Copy a 1-D tensor back into the parameters (in place, exact: a copy, no arithmetic)."""
    params = _tensor_list("params", params)
    for p, v in zip(params, unflatten(flat, params)):
        p.copy_(v)


def flat_grad(loss: torch.Tensor, params) -> torch.Tensor:
    """d loss / d theta as one 1-D tensor, by torch.autograd.grad: the parameters' .grad is
    untouched.

    A parameter the loss does not depend on gets a zero block (its gradient is 0, not missing).
    """
    return flat_grad_unreached(loss, params)[0]


def flat_grad_unreached(loss: torch.Tensor, params) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(`flat_grad(loss, params)`, the positions in `params` of the parameters the loss does not
    reach): autograd gives those no gradient, and torch's optimizers skip a parameter whose .grad
    is None, so a caller measuring a step needs to know which they are. A sparse gradient
    (Embedding(sparse=True)) is read as the dense vector it is."""
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            f"loss must be a one-element tensor (a scalar loss), got "
            f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}"
        )
    if not loss.requires_grad:
        raise ValueError(
            "loss does not require a gradient: compute it from the parameters with autograd on "
            "(not under torch.no_grad), from parameters that require a gradient"
        )
    params = _tensor_list("params", params)
    if not params:
        raise ValueError("params must hold at least one tensor")
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = flatten(
        torch.zeros_like(p) if g is None else g.to_dense() if g.is_sparse else g
        for p, g in zip(params, grads)
    )
    return flat, tuple(i for i, g in enumerate(grads) if g is None)


def flat_state(optimizer: torch.optim.Optimizer, params, key: str) -> torch.Tensor:
    """optimizer.state[p][key] for every parameter, flattened in the same order; zeros where absent.

    For LPSGDM's "momentum_buffer" an absent buffer is m_{-1} = 0 (Algorithm 2, line 1).
    """
    if not isinstance(getattr(optimizer, "state", None), Mapping):
        raise ValueError(
            "optimizer must be a torch optimizer (with a .state dict), got "
            f"{type(optimizer).__name__}"
        )
    if not isinstance(key, str):
        raise ValueError(f"key must be a state name such as 'momentum_buffer', got {key!r}")
    params = _tensor_list("params", params)
    parts = []
    for p in params:
        buf = optimizer.state.get(p, {}).get(key)
        if buf is not None and (not isinstance(buf, torch.Tensor) or buf.shape != p.shape):
            # e.g. Adam's 'step' (one number per parameter) would misalign every later coordinate
            got = (
                f"shape {tuple(buf.shape)}" if isinstance(buf, torch.Tensor) else type(buf).__name__
            )
            raise ValueError(
                f"key {key!r} must name per-coordinate state shaped like its parameter "
                f"{tuple(p.shape)}, got {got}"
            )
        parts.append(torch.zeros_like(p) if buf is None else buf.detach())
    return flatten(parts)
