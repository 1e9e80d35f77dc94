"""The `Method` protocol every optimizer of the layer implements, and the row-wise reductions it
uses.

A method is a pure description: hyperparameters (checked, Python numbers), a state (tensors only), a
direction and a norm. See the package docstring (`lpcheck.methods`) for the contract.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from lpcheck import checks

if TYPE_CHECKING:  # norms builds on this module
    from lpcheck.methods.norms import Norm

__all__ = ["Method", "State", "REQUIRED", "row_sum", "row_amax", "per_row", "dot", "ema"]

# str -> list[Tensor], one entry per parameter (a 0-d tensor for a scalar such as the step count)
State = dict


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()  # a hyperparameter without a default


# ---------------------------------------------------------------------------------------------
# reductions over a list of tensors: over everything, or per row of a leading seed axis (batched)


def _flat(t: torch.Tensor, batched: bool) -> torch.Tensor:
    return t.reshape(t.shape[0], -1) if batched else t.reshape(-1)


def row_sum(tensors: Any, batched: bool) -> torch.Tensor:
    """sum of all entries of all tensors: a 0-d tensor, or one value per row (seeds,) when
    batched."""
    parts = [_flat(t, batched).sum(-1) for t in tensors]
    return torch.stack(parts).sum(0)


def row_amax(tensors: Any, batched: bool) -> torch.Tensor:
    """max of all entries (0 over no entries), over everything or per row."""
    parts = []
    for t in tensors:
        f = _flat(t, batched)
        parts.append(f.amax(-1) if f.shape[-1] else f.new_zeros(f.shape[:-1]))
    return torch.stack(parts).amax(0)


def per_row(value: torch.Tensor, like: torch.Tensor, batched: bool) -> torch.Tensor:
    """A per-row value (seeds,) shaped to broadcast against `like` (seeds, ...); a 0-d value as it
    is."""
    return value.reshape((-1,) + (1,) * (like.dim() - 1)) if batched else value


def dot(a: Any, b: Any, batched: bool) -> torch.Tensor:
    """<a, b> over all tensors (per row when batched)."""
    return row_sum(torch._foreach_mul(a, b), batched)


def ema(bufs: list[torch.Tensor], grads: list[torch.Tensor], beta: float) -> list:
    """eq. 23 out of place: beta m + (1 - beta) g, as lpcheck.optim computes it (one lerp for
    beta >= 1/2, where lerp's weight 1 - beta is exact enough; a multiply and an add below, where
    it would lose beta's digits)."""
    if beta >= 0.5:
        return list(torch._foreach_lerp(bufs, grads, 1.0 - beta))
    out = list(torch._foreach_mul(bufs, beta))
    torch._foreach_add_(out, grads, alpha=1.0 - beta)
    return out


# ---------------------------------------------------------------------------------------------
# argument checks for hyperparameters (one named ValueError each, through lpcheck.checks)


def pair(name: str, value: Any) -> tuple:
    """(beta1, beta2), each in [0, 1), from any two-number sequence torch would take (tuple, list,
    array)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be two numbers in [0, 1), got {value!r}")
    return tuple(checks.probability(f"{name}[{i}]", b) for i, b in enumerate(value))


def choice(name: str, value: Any, options: tuple) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def _tensors(name: str, value: Any) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise ValueError(
            f"{name} must be a tensor or a list of tensors, got {type(value).__name__}"
        )
    out = list(value)
    for i, t in enumerate(out):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must hold tensors, got {type(t).__name__} at position {i}")
        if t.is_complex() or not t.is_floating_point():
            raise ValueError(
                f"{name}[{i}] must be a real floating-point tensor, got dtype {t.dtype}"
            )
        if t.layout != torch.strided:
            raise ValueError(f"{name}[{i}] must be a dense tensor, got layout {t.layout}")
    if not out:
        raise ValueError(f"{name} must hold at least one tensor")
    return out


# ---------------------------------------------------------------------------------------------


class Method:
    """One optimizer as a description: hyperparameters, state, direction, norm.

    Subclasses set `name`, `summary` (one line), `defaults` (every hyperparameter; `REQUIRED` where
    there is no default), `elementwise` (each coordinate's direction depends on that coordinate
    alone and on scalars), and implement `needs_params` (the direction depends on theta), `_check`
    (the hyperparameters as Python values, or a ValueError naming one), `state_keys` (per-parameter
    tensors shaped like the parameter), `scalar_state` (0-d tensors, e.g. the step count), `_update`
    (the math, no validation) and `norm`. `check_dtype` may refuse hyperparameters that round to 0
    or overflow in a dtype.
    """

    name = "method"
    summary = ""
    defaults: dict = {}
    elementwise = True

    def __init__(self, **hp: Any) -> None:
        self.hp = self.check(hp)

    # -- hyperparameters ------------------------------------------------------------------------

    def check(self, hp: Mapping | None = None) -> dict:
        """Every hyperparameter, checked: this method's values (its defaults before __init__)
        updated by `hp`.

        Unknown names and missing required ones are ValueErrors naming them; values are returned as
        plain Python numbers, strings and tuples (what a param group or a JSON report holds).
        """
        hp = {} if hp is None else hp
        if not isinstance(hp, Mapping):
            raise ValueError(f"hp must be a dict of hyperparameters, got {type(hp).__name__}")
        unknown = sorted(map(str, set(hp) - set(self.defaults)))
        if unknown:
            raise ValueError(
                f"{self.name} has no hyperparameter {', '.join(unknown)}; its hyperparameters are "
                f"{', '.join(self.defaults) or 'none'}"
            )
        merged = dict(getattr(self, "hp", self.defaults), **hp)
        missing = [k for k, v in merged.items() if v is REQUIRED]
        if missing:
            raise ValueError(
                f"{self.name} needs {', '.join(missing)} (no default): e.g. make({self.name!r}, "
                f"{missing[0]}=...)"
            )
        return self._check(merged)

    def _check(self, hp: dict) -> dict:
        return dict(hp)

    def needs_params(self, hp: dict) -> bool:
        """Whether the direction depends on theta under `hp` (then `update` needs params=)."""
        return False

    def check_dtype(self, hp: dict, dtype: torch.dtype) -> None:
        """ValueError if a hyperparameter rounds to 0 or overflows where the math of `dtype` tensors
        needs it."""

    def replace(self, **hp: Any) -> Method:
        """A copy with some hyperparameters changed (checked), e.g. a new p at each epoch of eq.
        19."""
        new = copy.copy(self)
        new.hp = self.check(hp)
        return new

    # -- state -----------------------------------------------------------------------------------

    def state_keys(self, hp: dict) -> tuple:
        """Names of the per-parameter state tensors (each shaped like its parameter) under `hp`."""
        return ()

    def scalar_state(self, hp: dict) -> tuple:
        """Names of the per-parameter 0-d state tensors (a step count), kept on the CPU (read
        without a device sync)."""
        return ()

    def init(self, params: Any, hp: Mapping | None = None) -> State:
        """The state before the first step: zeros (m_{-1} = 0, v_0 = 0, step 0), one entry per
        parameter."""
        h = self.hp if hp is None else self.check(hp)
        tensors = _tensors("params", params)
        state = {
            k: [torch.zeros_like(t, memory_format=torch.preserve_format) for t in tensors]
            for k in self.state_keys(h)
        }
        state.update(
            {
                k: [torch.zeros((), dtype=torch.float64) for _ in tensors]
                for k in self.scalar_state(h)
            }
        )
        return state

    def _check_state(self, state: Any, grads: list[torch.Tensor], h: Any) -> dict:
        if not isinstance(state, Mapping):
            raise ValueError(
                f"state must be a dict (as {self.name}.init returns), got {type(state).__name__}"
            )
        keys, scalars = self.state_keys(h), self.scalar_state(h)
        missing = [k for k in keys + scalars if k not in state]
        extra = sorted(map(str, set(state) - set(keys + scalars)))
        if missing or extra:
            raise ValueError(
                f"state must hold {list(keys + scalars) or 'nothing'} for {self.name} with these "
                f"hyperparameters, got {sorted(map(str, state))}: a state of another method?"
            )
        out = {}
        for k in keys + scalars:
            entries = state[k]
            if isinstance(entries, torch.Tensor) and len(grads) == 1:
                entries = [entries]
            if not isinstance(entries, (list, tuple)) or len(entries) != len(grads):
                raise ValueError(
                    f"state[{k!r}] must be a list of {len(grads)} tensors (one per parameter)"
                )
            for i, (s, g) in enumerate(zip(entries, grads)):
                if not isinstance(s, torch.Tensor):
                    raise ValueError(f"state[{k!r}][{i}] must be a tensor, got {type(s).__name__}")
                want = () if k in scalars else tuple(g.shape)
                if tuple(s.shape) != want:
                    raise ValueError(
                        f"state[{k!r}][{i}] must have shape {want}, got {tuple(s.shape)}"
                    )
            out[k] = list(entries)
        return out

    # -- the direction ---------------------------------------------------------------------------

    def update(
        self,
        grads: Any,
        state: State,
        hp: Mapping | None = None,
        *,
        params: Any = None,
        batched: bool = False,
    ) -> tuple[Any, State]:
        """(direction, new_state) for gradients `grads` at `state`: the step is
        theta <- theta - lr * direction.

        Pure: no input is changed in place. `grads` is a list of tensors (or one tensor, then the
        direction is one tensor); `hp` overrides this method's hyperparameters for this call
        (checked); `params` (theta) is needed only where `needs_params(hp)`. batched=True: every
        tensor has a leading seed axis and each row is its own problem (norms and other reductions
        per row).
        """
        single = isinstance(grads, torch.Tensor)
        gs = _tensors("grads", grads)
        h = self.hp if hp is None else self.check(hp)
        st = self._check_state(state, gs, h)
        batched = bool(checks.boolean("batched", batched))
        if batched:
            rows = {t.shape[0] if t.dim() else None for t in gs}
            if None in rows or len(rows) != 1:
                raise ValueError(
                    "batched=True needs every tensor to have the same leading (seed) axis, got "
                    f"shapes {[tuple(t.shape) for t in gs]}"
                )
        ps = None
        if params is not None:
            ps = _tensors("params", params)
            if [tuple(p.shape) for p in ps] != [tuple(g.shape) for g in gs]:
                raise ValueError(
                    "params and grads must have the same shapes, got "
                    f"{[tuple(p.shape) for p in ps]} and {[tuple(g.shape) for g in gs]}"
                )
        elif self.needs_params(h):
            raise ValueError(
                f"{self.name} with these hyperparameters needs params (theta): its direction "
                "depends on the point"
            )
        for dtype in {g.dtype for g in gs}:
            self.check_dtype(h, dtype)
        direction, new = self._update(gs, st, h, batched=batched, params=ps)
        return (direction[0] if single else direction), new

    def _update(
        self, grads: list[torch.Tensor], state: Any, hp: Any, *, batched: bool, params: Any
    ) -> tuple[list, dict]:
        raise NotImplementedError

    def norm(self, state: State | None = None, hp: Mapping | None = None) -> Norm:
        """The norm the method's analysis uses (a `lpcheck.methods.norms.Norm`), at `state` where it
        depends on it."""
        raise NotImplementedError

    # -- names -------------------------------------------------------------------------------------

    def spec(self) -> str:
        """'name:key=value,...', which `lpcheck.methods.resolve` turns back into this method."""
        items = ",".join(f"{k}={_literal(v)}" for k, v in self.hp.items())
        return f"{self.name}:{items}" if items else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.hp.items())})"

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other) and self.hp == other.hp

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.hp.items())))


def _literal(v: Any) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, tuple):
        return "(" + ",".join(_literal(x) for x in v) + ")"
    return repr(v) if not isinstance(v, str) else v


def step_counts(state: State, key: str = "step") -> list:
    """The step counts t (Python floats) from a state's 0-d CPU tensors."""
    return [float(s) for s in state[key]]
