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

import functools
import math
import numbers
import sys
from typing import Any

__all__ = [
    "as_number",
    "real",
    "integer",
    "probability",
    "boolean",
    "representable",
    "rounded",
    "power_representable",
    "real_array",
    "first_line",
]

_INF = math.inf


def first_line(e: Any) -> str:
    """The first line of an exception's (or a warning's) text, at most 300 characters: what a
    ValueError quotes of an error raised inside a user's code or torch."""
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else ""


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _big(value: Any) -> str:
    """A number too large for a float, said briefly (10**400 has 401 digits)."""
    if isinstance(value, numbers.Integral):
        return f"an integer of {len(str(abs(int(value))))} digits"
    return _describe(value)


def as_number(name: str, value: Any, *, kind: str = "real", what: str | None = None) -> Any:
    """`value` as a Python float (kind='real') or int (kind='integer'), or ValueError naming `name`.

    Accepts what torch accepts as a scalar hyperparameter (see the module docstring). An
    integer-valued float (3.0) is accepted where an integer is asked for; 3.5 is not. `what` (e.g.
    'a finite real number > 0') is what the error says was expected, so that a NaN or a string also
    hears the range.
    """
    if (
        kind == "real" and type(value) is float and value == value
    ):  # the common case, first (every step)
        return value
    what = what or ("a real number" if kind == "real" else "an integer")
    original = value
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex() or value.dtype == torch.bool:
            raise ValueError(
                f"{name} must be {what}, got a tensor of shape {tuple(value.shape)} "
                f"and dtype {value.dtype}"
            )
        if value.device.type == "meta":
            raise ValueError(
                f"{name} must be a real number, got a tensor on the meta device (it has no value)"
            )
        value = value.item()
    elif (
        type(value).__module__ == "numpy"
        and hasattr(value, "ndim")
        and getattr(value, "ndim", 1) == 0
    ):
        value = value.item()  # numpy scalar or 0-d array -> Python scalar
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {_describe(original)}")
    if kind == "integer":
        if isinstance(value, numbers.Integral):
            return int(value)
        try:
            value = float(value)
        except OverflowError:  # a Fraction past float's range
            raise ValueError(f"{name} must be {what}, got {_describe(original)}") from None
        if not value.is_integer():
            raise ValueError(f"{name} must be {what}, got {_describe(original)}")
        return int(value)
    try:
        value = float(value)
    except OverflowError:  # an int (or Fraction) past float's range: no float holds it
        raise ValueError(
            f"{name} must be {what}, got {_big(value)}, too large for a float "
            f"(its largest value is {sys.float_info.max:g})"
        ) from None
    if math.isnan(value):
        raise ValueError(f"{name} must be {what}, got nan")
    return value


def _range_text(low: Any, high: Any, low_open: bool, high_open: bool, finite: bool = True) -> str:
    if high is None or high == _INF:
        if low is None:
            return ""
        if not finite:  # inf allowed: say so
            return f" in {'(' if low_open else '['}{low:g}, inf]"
        return f" {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def real(
    name: str,
    value: Any,
    *,
    low: Any = None,
    high: Any = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """A real number in the given range (open or closed at each end), finite unless finite=False."""
    rng = _range_text(low, high, low_open, high_open, finite)
    v = as_number(
        name, value, what="a real number" + rng
    )  # NaN or a string: not a real number, say the range
    if finite and math.isinf(v):
        raise ValueError(f"{name} must be a finite real number{rng}, got {_describe(value)}")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and (v >= high if high_open else v > high)
    if bad_low or bad_high:
        raise ValueError(
            f"{name} must be {'a finite real number' if finite else 'a real number'}{rng}, got "
            f"{_describe(value)}"
        )
    return v


def integer(name: str, value: Any, *, low: Any = None, high: Any = None) -> int:
    """An integer in [low, high] (either end may be None)."""
    rng = _range_text(low, high, False, False)
    v = as_number(name, value, kind="integer", what="an integer" + rng)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must be an integer{rng}, got {_describe(value)}")
    return v


def probability(name: str, value: Any, *, open_low: bool = False, open_high: bool = True) -> float:
    """A number in [0, 1) by default (e.g. a momentum beta); the ends' openness is adjustable."""
    return real(name, value, low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def boolean(name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """True or False (numpy's bool_ too), or None where allowed; anything else is a ValueError."""
    if value is None and allow_none:
        return None
    if type(value).__module__ == "numpy" and type(value).__name__ == "bool":
        value = bool(value)
    if not isinstance(value, bool):
        raise ValueError(
            f"{name} must be {'None, ' if allow_none else ''}True or False, got {_describe(value)}"
        )
    return value


def _is_torch_dtype(dtype: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(dtype, torch.dtype)


@functools.cache
def _limits(dtype: Any) -> tuple[float, float, float, float]:
    """(half the smallest subnormal, the overflow threshold, smallest subnormal, max) of a float
    dtype.

    Round to nearest even: a value of magnitude <= half the smallest subnormal rounds to 0 (the tie
    goes to the even 0), one >= max + ulp(max)/2 rounds to inf (the tie goes away from max, whose
    last bit is odd). Both thresholds are exact in float64 for float32/float16/bfloat16; float64
    itself (and wider) has no finite float64 that rounds to 0 or inf, so it gets (0, inf).
    """
    if _is_torch_dtype(dtype):
        import torch

        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype, got {dtype}")
        info = torch.finfo(dtype)
    else:
        import numpy as np

        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"dtype must be a floating dtype, got {dtype}")
        info = np.finfo(dtype)
    tiny, eps, top = float(info.smallest_normal), float(info.eps), float(info.max)
    if eps <= 2.0**-52:
        return 0.0, _INF, tiny * eps, top
    sub = tiny * eps
    return sub / 2, top + top * eps / (2 * (2 - eps)), sub, top


def _dtype_name(dtype: Any) -> str:
    if _is_torch_dtype(dtype):
        return str(dtype)
    import numpy as np

    return f"numpy {np.dtype(dtype).name}"


def representable(name: str, value: float, dtype: Any, *, why: str = "") -> float:
    """ValueError if a non-zero `value` rounds to 0 (or overflows) in `dtype` (torch or numpy).

    eps = 1e-46 is 0 in float32, so (|g| + eps)^-rho is inf at a zero gradient and the step is NaN:
    such a value is refused before it reaches the parameters. Pure arithmetic on cached thresholds
    (no tensor is made), so it is cheap enough to run on every optimizer step.
    """
    if value == 0 or not math.isfinite(value):
        return value
    zero_at, inf_at, sub, top = _limits(dtype)
    size = abs(value)
    if size <= zero_at or size >= inf_at:
        raise ValueError(
            f"{name} = {value!r} {'rounds to 0' if size <= zero_at else 'overflows'} in "
            f"{_dtype_name(dtype)} (its positive values run from {sub:g}, subnormal, to {top:g})"
            + (f": {why}" if why else "")
        )
    return value


@functools.lru_cache(maxsize=4096)
def rounded(value: float, dtype: Any) -> float:
    """`value` rounded to `dtype` (torch or numpy), back as a Python float."""
    if _is_torch_dtype(dtype):
        import torch

        return torch.tensor(value, dtype=torch.float64).to(dtype).item()
    import numpy as np

    return float(np.asarray(value, dtype=np.float64).astype(dtype))


def power_representable(
    name: str, base: float, exponent: float, dtype: Any, *, why: str = ""
) -> float:
    """ValueError unless base^exponent and base^-exponent (base > 0 rounded to `dtype`) stay finite
    and non-zero in `dtype` with a factor 2 to spare, for the rounding of pow, or of exp(-rho
    log(x)).

    eq. 21 at a zero gradient is 0 * eps^-rho: with rho near 1 and eps = 1e-40 (a float32 subnormal)
    eps^-rho = 1e40 overflows float32 and the step is inf * 0 = NaN, though eps itself is fine.
    """
    if exponent == 0 or base <= 0 or not math.isfinite(base):
        return base
    representable(name, base, dtype, why=why)
    _, _, _, top = _limits(dtype)
    log_b = math.log(rounded(float(base), dtype))
    if abs(exponent * log_b) > math.log(top / 2):
        small = log_b < 0
        power = f"{name}^{-exponent:g}" if small else f"{name}^{exponent:g}"
        raise ValueError(
            f"{name} = {base!r} is too {'small' if small else 'large'} for {_dtype_name(dtype)}: "
            f"{power} "
            f"overflows it (its largest value is {top:g})" + (f": {why}" if why else "")
        )
    return base


def real_array(name: str, values: Any, *, noun: str = "an array", none_as_nan: bool = False) -> Any:
    """`values` (a sequence, numpy array or torch tensor) as a float64 numpy array, or ValueError
    naming it: strings, dicts, sets, ragged rows, complex numbers (numpy would drop the imaginary
    part silently), bools (True is not a count) and meta tensors are refused. With none_as_nan,
    None entries become NaN (for the caller's finiteness check to refuse with its own words).
    Whether the values are finite is the caller's to check."""
    import numpy as np  # here: the scalar checks above stay importable without numpy

    what = f"{name} must be {noun} of real numbers"
    if hasattr(values, "detach"):  # torch
        if values.device.type == "meta":
            raise ValueError(f"{name} is on the meta device: it has a shape but no values")
        values = values.detach().cpu().numpy()
    if isinstance(values, (str, bytes, dict, set, frozenset)):
        raise ValueError(f"{what}, got {type(values).__name__}")
    try:
        raw = np.asarray(values)
    except ValueError as e:  # ragged rows
        raise ValueError(f"{what} ({e})") from None
    if raw.dtype.kind == "O" and none_as_nan:
        try:
            raw = raw.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(what) from None
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"{what}, got dtype {raw.dtype}")
    return raw.astype(np.float64)
