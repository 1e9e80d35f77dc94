"""The one gradient flattener: a list of tensors to one 1-D vector and back, in a fixed order.

The estimators of Assumptions 1, 3, 5 and 6 treat a model's parameters as one vector theta in R^d
(the paper's setting); these functions are the only place where per-parameter tensors become that
vector. The order is `model.parameters()` order, restricted to parameters that require a gradient
(shared parameters once), so flat gradients, flat parameters and flat momentum buffers line up
coordinate by coordinate. Nothing here reads a value back to the host: safe in hot loops on CUDA.
"""

from __future__ import annotations

import torch

__all__ = ["parameters", "flatten", "unflatten", "flat_params", "flat_grad", "flat_state", "set_flat_params"]


def parameters(model_or_params) -> list:
    """The trainable parameters in a fixed order: `model.parameters()` order, each shared one once."""
    params = model_or_params.parameters() if isinstance(model_or_params, torch.nn.Module) else model_or_params
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


def flatten(tensors) -> torch.Tensor:
    """Concatenate tensors (any shapes, one device and dtype) into one 1-D tensor (a copy)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("flatten needs at least one tensor")
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(flat: torch.Tensor, like) -> list:
    """Split a 1-D tensor into views shaped like the tensors in `like` (the inverse of `flatten`)."""
    like = list(like)
    numels = [t.numel() for t in like]
    if flat.ndim != 1 or flat.numel() != sum(numels):
        raise ValueError(f"flat must be 1-D with {sum(numels)} entries to match, got shape {tuple(flat.shape)}")
    return [v.view_as(t) for v, t in zip(torch.split(flat, numels), like)]


def flat_params(params) -> torch.Tensor:
    """theta as one 1-D tensor (a detached copy)."""
    return flatten(p.detach() for p in params)


@torch.no_grad()
def set_flat_params(params, flat: torch.Tensor) -> None:
    """Copy a 1-D tensor back into the parameters (in place, exact: a copy, no arithmetic)."""
    for p, v in zip(params, unflatten(flat, params)):
        p.copy_(v)


def flat_grad(loss: torch.Tensor, params) -> torch.Tensor:
    """d loss / d theta as one 1-D tensor, by torch.autograd.grad: the parameters' .grad is untouched.

    A parameter the loss does not depend on gets a zero block (its gradient is 0, not missing).
    """
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return flatten(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads))


def flat_state(optimizer: torch.optim.Optimizer, params, key: str) -> torch.Tensor:
    """optimizer.state[p][key] for every parameter, flattened in the same order; zeros where absent.

    For LPSGDM's "momentum_buffer" an absent buffer is m_{-1} = 0 (Algorithm 2, line 1).
    """
    parts = []
    for p in params:
        buf = optimizer.state.get(p, {}).get(key)
        parts.append(torch.zeros_like(p) if buf is None else buf.detach())
    return flatten(parts)
