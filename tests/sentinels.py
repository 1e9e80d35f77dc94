"""A generic check that no clamp, sentinel or overflow is stored or printed as a measurement.

A measured constant of lpcheck's reports lives well inside (1e-250, 1e250) in magnitude; a value
outside it (1e-300 for "c3 -> 0", 1e308 or inf for "no cap", nan for "not measured") is a
placeholder posing as a number. Where there is no number, the report holds None (JSON null) with a
reason instead.
"""

from __future__ import annotations

import math
import re

HUGE, TINY = 1e250, 1e-250
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")


def _bad(x: float) -> bool:
    return not math.isfinite(x) or abs(x) > HUGE or 0 < abs(x) < TINY


def in_json(obj, path="") -> list:
    """(path, value) of every number in a JSON-like object that is a sentinel (also "inf"/"nan"
    strings)."""
    if isinstance(obj, dict):
        return [hit for k, v in obj.items() for hit in in_json(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [hit for i, v in enumerate(obj) for hit in in_json(v, f"{path}[{i}]")]
    if isinstance(obj, bool) or obj is None:
        return []
    if isinstance(obj, (int, float)):
        return [(path, obj)] if _bad(float(obj)) else []
    if isinstance(obj, str) and obj.strip().lower() in (
        "inf",
        "-inf",
        "+inf",
        "nan",
        "infinity",
        "-infinity",
    ):
        return [(path, obj)]
    return []


def in_text(text: str) -> list:
    """Every number written in a text (Markdown, a summary line) that is a sentinel, and 'inf'/'nan'
    words."""
    hits = [m.group() for m in _NUMBER.finditer(text) if _bad(float(m.group()))]
    return hits + re.findall(r"\b(?:inf|nan|infinity)\b", text, flags=re.IGNORECASE)
