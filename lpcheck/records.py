"""Typed records for the JSON that lpcheck writes.

A record is a keyword-only dataclass whose fields are the JSON object's keys in the order they are
written. `to_dict()` gives that object key for key (a field left at `ABSENT` is a key the object
does not have, which is not the same as a key whose value is null); `from_dict()` reads one back and
refuses unknown keys and missing required ones, naming them. Values stay JSON values (nested dicts
and lists as written), so a record round-trips through `json.dumps` byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

__all__ = ["ABSENT", "Absent", "JsonRecord"]


class Absent:
    """The marker of a key that a record's JSON object does not have."""

    _instance: Absent | None = None

    def __new__(cls) -> Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT = Absent()

R = TypeVar("R", bound="JsonRecord")


class JsonRecord:
    """Base of the records (a dataclass subclasses it): the JSON conversion both ways."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in field order, without the ABSENT keys."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)  # type: ignore[arg-type]
            if getattr(self, f.name) is not ABSENT
        }

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """The record of a JSON object written by `to_dict` (or by the code before the record
        existed)."""
        if not isinstance(data, Mapping):
            raise ValueError(
                f"{cls.__name__}.from_dict needs a JSON object (dict), got {type(data).__name__}"
            )
        known = fields(cls)  # type: ignore[arg-type]
        unknown = sorted(set(data) - {f.name for f in known})
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        missing = [
            f.name
            for f in known
            if f.name not in data and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise ValueError(f"{cls.__name__}: missing keys {missing}")
        return cls(**data)
