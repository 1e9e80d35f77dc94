"""The built-in methods by name, and `resolve`: a name, a spec with hyperparameters, or a user's
class.

    resolve("adam")                         # a built-in, its defaults
    # NAME:key=value,...  (values as Python literals; bare words are strings)
    resolve("lpsgdm:p=4,momentum=0.95")
    # MODULE:CLASS, a Method subclass -> an instance (defaults)
    resolve("mymodule:MyMethod")
    # a torch.optim.Optimizer subclass -> an OptimizerClass (made per use)
    resolve("mymodule:MyOpt:lr=0.1")
    resolve("path/to/file.py:MyOpt")        # MODULE may be a .py file

MODULE is imported by `lpcheck.userspec` (the loader every option naming a user's code shares): the
current working directory first on sys.path for the import (and only for it: sys.path is restored
afterwards), so a user's module next to where lpcheck runs is found without PYTHONPATH, as the
command lines need."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch

from lpcheck.methods.adam import Adam
from lpcheck.methods.base import Method
from lpcheck.methods.clipped import Clipped
from lpcheck.methods.heavyball import HeavyBall
from lpcheck.methods.lion import Lion
from lpcheck.methods.lpsgd import LPSGD
from lpcheck.methods.lpsgdm import LPSGDM
from lpcheck.methods.rmsprop import RMSProp
from lpcheck.methods.scion import Scion
from lpcheck.methods.sgd import SGD
from lpcheck.methods.sgdm import SGDM
from lpcheck.methods.sign import Sign
from lpcheck.methods.steepest import Steepest

__all__ = ["BUILTINS", "METHODS", "make", "resolve", "parse_hp", "OptimizerClass"]

BUILTINS = {
    cls.name: cls
    for cls in (
        LPSGD,
        LPSGDM,
        SGD,
        SGDM,
        HeavyBall,
        Sign,
        Lion,
        Steepest,
        Adam,
        RMSProp,
        Scion,
        Clipped,
    )
}
METHODS = {name: cls.summary for name, cls in BUILTINS.items()}


def make(name: str, **hp: Any) -> Method:
    """The built-in method `name` (one of METHODS) with hyperparameters `hp` (checked)."""
    if not isinstance(name, str) or name not in BUILTINS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(BUILTINS)}")
    return BUILTINS[name](**hp)


def _split(text: str) -> list:
    """Split 'a=1,b=(0.9,0.99),c=x' at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("inf", "+inf", "infinity"):
        return float("inf")
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string (solver=svd)


def parse_hp(text: str) -> dict:
    """'key=value,...' -> {key: value}; values are Python literals, 'inf', true/false, or bare
    strings."""
    out = {}
    for item in _split(text):
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(
                f"hyperparameters must be key=value pairs separated by commas, got {item!r} in "
                f"{text!r}"
            )
        out[key.strip()] = _value(value.strip())
    return out


@dataclass
class OptimizerClass:
    """A torch.optim.Optimizer class from a spec, with the keyword arguments the spec gave."""

    cls: type
    kwargs: dict = field(default_factory=dict)

    def build(self, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """An instance on `params` (kwargs over the spec's)."""
        return self.cls(params, **{**self.kwargs, **kwargs})

    def spec(self) -> str:
        items = ",".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        from lpcheck.userspec import spec_of

        return spec_of(self.cls) + (f":{items}" if items else "")


def _import(module: str) -> ModuleType:
    """Import MODULE (dotted, or a .py file) with the current directory on sys.path for the import
    only (`lpcheck.userspec`, the loader every option naming a user's code shares)."""
    from lpcheck import userspec

    try:
        return userspec.import_module(module, "optimizer")
    except ValueError as e:
        if (
            e.__cause__ is not None
        ):  # the module's own code raised on import: its exception, for the caller to name
            raise e.__cause__ from None
        raise ValueError(
            f"cannot import module {module!r} ({str(e).removeprefix('optimizer: ')})"
        ) from None


def resolve(spec: Any, **hp: Any) -> Method | OptimizerClass:
    """A Method instance (or, for a torch optimizer class, an `OptimizerClass`) from `spec` (module
    docstring).

    `spec` may also be a Method instance (returned as is, or with `hp` applied), a Method subclass,
    or a torch.optim.Optimizer subclass. `hp` are added to the spec's own key=value pairs (and win).
    """
    from lpcheck.methods.blackbox import BlackBox

    if isinstance(spec, Method):
        return spec.replace(**hp) if hp else spec
    if isinstance(spec, torch.optim.Optimizer):
        if hp:
            raise ValueError(
                "hyperparameters for a torch optimizer instance live in its param groups"
            )
        return BlackBox(spec)
    if isinstance(spec, type):
        return _from_class(spec, hp, repr(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"optimizer must be a method name ({', '.join(BUILTINS)}), 'NAME:key=value,...', or "
            f"'MODULE:CLASS', got {spec!r}"
        )
    text = spec.strip()
    head, _, rest = text.partition(":")
    if head in BUILTINS:
        return make(head, **{**parse_hp(rest), **hp})
    if not rest:
        raise ValueError(
            f"unknown method {head!r}; choose from {', '.join(BUILTINS)}, or give a user class as "
            "'MODULE:CLASS'"
        )
    name, _, args = rest.partition(":")
    module = _import(head)
    cls = module
    for part in name.split("."):
        if not hasattr(cls, part):
            raise ValueError(f"module {head!r} has no attribute {name!r} (optimizer spec {spec!r})")
        cls = getattr(cls, part)
    return _from_class(cls, {**parse_hp(args), **hp}, spec)


def _from_class(cls: Any, hp: dict, where: str) -> Method | OptimizerClass:
    if isinstance(cls, type) and issubclass(cls, Method):
        return cls(**hp)
    if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
        return OptimizerClass(cls, dict(hp))
    raise ValueError(
        f"{where} is neither a lpcheck.methods.Method subclass nor a torch.optim.Optimizer "
        f"subclass (got {cls!r})"
    )
