"""Argument checks shared by every layer: one error for one kind of bad input.

Each check returns the value as a plain Python number, or raises ValueError naming the argument and
the allowed range, e.g. ``lr must be a finite real number >= 0, got nan``. What torch accepts as a
number, lpcheck accepts too: Python ints and floats, numpy scalars and 0-d arrays, and one-element
torch tensors (read with ``.item()``, which is a host sync on a GPU: these checks run on
hyperparameters, never on hot-path data). ``bool`` is refused everywhere (``True`` is not a step
size), as are strings, complex numbers and tensors with more than one element.

Checks run before any work and before any state changes; callers keep the returned plain number.
"""

from __future__ import annotations

import math
import numbers
import sys

__all__ = ["as_number", "real", "integer", "probability", "representable"]

_INF = math.inf


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_number(name: str, value, *, kind: str = "real", what: str | None = None):
    """`value` as a Python float (kind='real') or int (kind='integer'), or ValueError naming `name`.

    Accepts what torch accepts as a scalar hyperparameter (see the module docstring). An integer-valued
    float (3.0) is accepted where an integer is asked for; 3.5 is not. `what` (e.g. 'a finite real
    number > 0') is what the error says was expected, so that a NaN or a string also hears the range.
    """
    what = what or ("a real number" if kind == "real" else "an integer")
    original = value
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex() or value.dtype == torch.bool:
            raise ValueError(f"{name} must be {what}, got a tensor of shape {tuple(value.shape)} "
                             f"and dtype {value.dtype}")
        value = value.item()
    elif type(value).__module__ == "numpy" and hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar or 0-d array -> Python scalar
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {_describe(original)}")
    if kind == "integer":
        if isinstance(value, numbers.Integral):
            return int(value)
        value = float(value)
        if not value.is_integer():
            raise ValueError(f"{name} must be {what}, got {_describe(original)}")
        return int(value)
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be {what}, got nan")
    return value


def _range_text(low, high, low_open, high_open) -> str:
    if high is None or high == _INF:
        if low is None:
            return ""
        return f" {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def real(name: str, value, *, low=None, high=None, low_open=False, high_open=False, finite=True) -> float:
    """A real number in the given range (open or closed at each end), finite unless finite=False."""
    rng = _range_text(low, high, low_open, high_open)
    prefix = "a finite real number" if finite else "a real number"
    v = as_number(name, value, what=prefix + rng)
    if finite and math.isinf(v):
        raise ValueError(f"{name} must be a finite real number{rng}, got {_describe(value)}")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        raise ValueError(f"{name} must be {prefix}{rng}, got {_describe(value)}")
    return v


def integer(name: str, value, *, low=None, high=None) -> int:
    """An integer in [low, high] (either end may be None)."""
    rng = _range_text(low, high, False, False)
    v = as_number(name, value, kind="integer", what="an integer" + rng)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be an integer{rng}, got {_describe(value)}")
    return v


def probability(name: str, value, *, open_low=False, open_high=True) -> float:
    """A number in [0, 1) by default (e.g. a momentum beta); the ends' openness is adjustable."""
    return real(name, value, low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def representable(name: str, value: float, dtype, *, why: str = "") -> float:
    """ValueError if a non-zero `value` rounds to 0 (or overflows) in torch `dtype`.

    eps = 1e-46 is 0 in float32, so (|g| + eps)^-rho is inf at a zero gradient and the step is NaN:
    such a value is refused before it reaches the parameters.
    """
    import torch

    if value == 0 or not math.isfinite(value):
        return value
    cast = torch.tensor(value, dtype=torch.float64).to(dtype).item()
    if cast == 0 or not math.isfinite(cast):
        info = torch.finfo(dtype)
        raise ValueError(f"{name} = {value!r} {'rounds to 0' if cast == 0 else 'overflows'} in {dtype} "
                         f"(its positive values run from {info.tiny * info.eps:g}, subnormal, to {info.max:g})"
                         + (f": {why}" if why else ""))
    return value
