"""Any method of the layer as a torch.optim.Optimizer: theta <- (1 - lr lambda) theta - lr *
direction.

    opt = as_optimizer("clipped:rho=5", model.parameters(), lr=0.01, weight_decay=0.0)
    ... loss.backward(); opt.step() ...

Param groups carry lr, weight_decay (decoupled, lambda) and the method's hyperparameters, each group
its own (LR schedulers, `add_param_group`, `state_dict`/`load_state_dict` work as in torch.optim; a
state dict holds the method's state tensors per parameter, plus 0-d tensors such as a step count).
Every value is checked when a group is added, when a state dict is loaded and, per group, at every
step (a scheduler or a user may change it), before anything changes (lpcheck.optim's checked base).

One `method.update` call covers every parameter of the groups that share the method's
hyperparameters, so a method whose direction couples parameters (eq. 10's ||g||_q, the clipped
step's dual norm) sees all of them; groups with other hyperparameters are methods of their own. The
update itself is multi-tensor (torch._foreach) where the method is elementwise. Half and bfloat16
parameters are stepped in float32 math (their state is kept in float32).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from lpcheck import checks
from lpcheck.methods.base import Method
from lpcheck.optim import _CheckedOptimizer, _math_dtype, _naming

__all__ = ["MethodOptimizer", "as_optimizer"]

_LOW = (torch.float16, torch.bfloat16)


def _resolve(method) -> Method:
    from lpcheck.methods.blackbox import BlackBox
    from lpcheck.methods.registry import resolve

    m = resolve(method) if not isinstance(method, Method) else method
    if not isinstance(m, Method) or isinstance(m, BlackBox):
        raise ValueError(
            f"method must be a method of the layer (a name, a spec or a Method), got {method!r}: a "
            "torch optimizer class is an optimizer already"
        )
    return m


class MethodOptimizer(_CheckedOptimizer):
    """A torch optimizer that steps `method` (see the module docstring).

    Args:
        params: parameters or param groups (each may set lr, weight_decay and any of the method's
            hyperparameters).
        method: a `lpcheck.methods.Method`, or a name / spec 'name:key=value,...' (`resolve`).
        lr: the step size >= 0 (a number as torch takes it; a one-element tensor stays in the
            group).
        weight_decay: decoupled lambda >= 0 with lr * lambda <= 1 (the decay shrinks theta, never
            flips it).
        **hp: the method's hyperparameters for the default group (over the method's own).
    """

    def __init__(self, params, method, lr=1e-3, weight_decay=0.0, **hp):
        method = _resolve(method)
        clash = sorted({"lr", "weight_decay", "params"} & set(method.defaults))
        if clash:
            raise ValueError(
                f"{method.name}'s hyperparameters {clash} clash with the param group's own keys: "
                "rename them in the method"
            )
        self.method = method
        self._name = (
            type(self).__name__
            if type(self) is not MethodOptimizer
            else f"MethodOptimizer({method.name})"
        )
        self._REQUIRED = ("lr", "weight_decay") + tuple(method.defaults)
        defaults = dict(lr=lr, weight_decay=weight_decay, **method.check(hp))
        super().__init__(params, defaults)

    # torch.optim.Optimizer pickles (and deep-copies) only defaults, state and param_groups: the
    # method is kept too
    _KEPT = ("method", "_name", "_REQUIRED")

    def __getstate__(self):
        return {
            **super().__getstate__(),
            **{k: self.__dict__[k] for k in self._KEPT if k in self.__dict__},
        }

    def __setstate__(self, state):
        super().__setstate__(state)

    # -- groups and state -----------------------------------------------------------------------

    def method_hp(self, group) -> dict:
        """The method's hyperparameters in param group `group` (one of `param_groups`), checked."""
        return self.method.check({k: group[k] for k in self.method.defaults})

    _hp = method_hp

    def _check_group(self, group: dict, tensors) -> dict:
        lr = checks.real("lr", group["lr"], low=0.0)
        wd = checks.real("weight_decay", group["weight_decay"], low=0.0)
        if lr * wd > 1:
            raise ValueError(
                "lr * weight_decay must be <= 1 (the decay multiplies theta by 1 - lr * "
                f"weight_decay), got lr = {lr!r}, weight_decay = {wd!r}"
            )
        hp = self._hp(group)
        for dtype in {t.dtype for t in tensors}:
            checks.representable(
                "lr",
                lr,
                _math_dtype(dtype),
                why=f"the step of {dtype} parameters would be 0 or inf",
            )
            self.method.check_dtype(hp, _math_dtype(dtype))
        return dict(
            lr=group["lr"] if isinstance(group["lr"], torch.Tensor) else lr, weight_decay=wd, **hp
        )

    @property
    def _STATE_KEYS(self):
        keys = set()
        for group in self.param_groups or [self.defaults]:
            hp = self._hp(group)
            keys |= set(self.method.state_keys(hp)) | set(self.method.scalar_state(hp))
        return tuple(sorted(keys))

    def _scalar_keys(self) -> set:
        keys = set()
        for group in self.param_groups:
            keys |= set(self.method.scalar_state(self._hp(group)))
        return keys

    def _check_state_dict(self, state_dict) -> None:
        """The base checks groups and per-parameter tensors; 0-d entries (a step count) are checked
        here."""
        scalars, sd = (
            self._scalar_keys(),
            dict(state_dict) if isinstance(state_dict, Mapping) else state_dict,
        )
        found = {}
        if isinstance(sd, Mapping) and isinstance(sd.get("state"), Mapping):
            kept = {}
            for k, entry in sd["state"].items():
                if isinstance(entry, Mapping):
                    found[k] = {n: v for n, v in entry.items() if n in scalars}
                    entry = {n: v for n, v in entry.items() if n not in scalars}
                kept[k] = entry
            sd["state"] = kept
        super()._check_state_dict(sd)
        for k, entry in found.items():
            for n, v in entry.items():
                ok = (
                    isinstance(v, torch.Tensor)
                    and v.numel() == 1
                    and v.is_floating_point()
                    and bool(torch.isfinite(v).all())
                    and float(v) >= 0
                    and float(v).is_integer()
                )
                if not ok:
                    raise ValueError(
                        f"state_dict['state'][{k!r}][{n!r}] must be a one-element tensor holding a "
                        f"step count (an integer >= 0), got {v!r}"
                    )

    def method_state(self, params=None, hp=None) -> dict:
        """The layer state (`Method.init`'s format) of `params` (default: all), zeros where none is
        kept yet, for the hyperparameters `hp` (default: the first group's; `method_hp(group)`
        gives another group's)."""
        params = (
            [p for g in self.param_groups for p in g["params"]] if params is None else list(params)
        )
        if hp is None:
            hp = self.method.hp if not self.param_groups else self._hp(self.param_groups[0])
        return self._state_of(params, hp)

    def method_norm(self):
        """The method's norm at the current state (groups must share the method's
        hyperparameters)."""
        hps = {tuple(sorted(self._hp(g).items())) for g in self.param_groups}
        if len(hps) != 1:
            raise ValueError(
                "the param groups use different hyperparameters of the method: no one norm"
            )
        params = [p for g in self.param_groups for p in g["params"]]
        hp = self._hp(self.param_groups[0])
        return self.method.norm(self._state_of(params, hp), hp)

    def _state_of(self, params, hp) -> dict:
        keys, scalars = self.method.state_keys(hp), self.method.scalar_state(hp)
        out = {k: [] for k in keys + scalars}
        for p in params:
            st = self.state.get(p, {})
            for k in keys:
                out[k].append(st[k] if k in st else torch.zeros_like(p, dtype=_math_dtype(p.dtype)))
            for k in scalars:
                out[k].append(st[k] if k in st else torch.zeros((), dtype=torch.float64))
        return out

    # -- the step --------------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure=None):
        """One step of the method for every param group; returns the closure's loss, if any.

        Three phases, so that bad input changes nothing: every group is checked, then the method
        computes every direction and new state, then the parameters and states are written."""
        if closure is not None and not callable(closure):
            raise ValueError(
                "closure must be None or a callable returning the loss, got "
                f"{type(closure).__name__}"
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = [self._directions(hp, members) for hp, members in self._checked_calls().values()]
        for members, params, direction, new in (
            w for w in work if w is not None
        ):  # nothing changed before here
            self._apply(members, params, direction, new)
        return loss

    def _checked_calls(self) -> dict:
        """{method hyperparameters: (hp, [(group's checked values, its params with a gradient)])}:
        groups with equal hyperparameters share one method call. Every group is checked before
        anything changes."""
        calls: dict = {}
        for i, group in enumerate(self.param_groups):
            with _naming(f"param group {i}"):
                params = []
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.is_sparse:
                        raise ValueError(f"{self._name} does not support sparse gradients")
                    params.append(p)
                checked = self._check_group(group, params)
            hp = {k: checked[k] for k in self.method.defaults}
            calls.setdefault(tuple(sorted(hp.items())), (hp, []))[1].append((checked, params))
        return calls

    def _directions(self, hp, members):
        """(members, params, directions, new state) of one method call, computed in float32 for
        low-precision parameters; None when no member has a gradient."""
        params = [p for _, ps in members for p in ps]
        if not params:
            return None
        grads = [p.grad.float() if p.dtype in _LOW else p.grad for p in params]
        thetas = [p.float() if p.dtype in _LOW else p for p in params]
        direction, new = self.method.update(
            grads,
            self._state_of(params, hp),
            hp,
            params=thetas if self.method.needs_params(hp) else None,
        )
        return members, params, direction, new

    def _apply(self, members, params, direction, new) -> None:
        """Write the new state, then theta <- (1 - lr lambda) theta - lr d for each member group
        (decoupled weight decay, as AdamW and LPSGDM's eq. 25)."""
        for k, values in new.items():
            for p, v in zip(params, values):
                self.state[p][k] = v
        at = 0
        for checked, ps in members:
            d = [x.to(p.dtype) for x, p in zip(direction[at : at + len(ps)], ps)]
            at += len(ps)
            if not ps:
                continue
            lr = float(checked["lr"])
            if checked["weight_decay"]:
                torch._foreach_mul_(ps, 1.0 - lr * checked["weight_decay"])
            torch._foreach_add_(ps, d, alpha=-lr)


def as_optimizer(method, params, lr=1e-3, weight_decay=0.0, **hp) -> MethodOptimizer:
    """A torch.optim.Optimizer stepping `method` (a Method, a name or a spec) on `params`; see
    MethodOptimizer."""
    return MethodOptimizer(params, method, lr=lr, weight_decay=weight_decay, **hp)
