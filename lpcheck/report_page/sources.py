"""The folders a report is built from: each one's kind from the files the pillar wrote there.

A folder is a verify folder if it holds verify.json, an estimate folder if it holds constants.json,
a rates folder if it holds rates.json (a folder may hold several). Every folder is checked before
anything is read in full: a missing one is a FileNotFoundError, one of no known kind a ValueError,
each naming the folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lpcheck import report

__all__ = ["KINDS", "Source", "kinds_of", "load", "pillar_files"]

# kind -> (the report file that marks it, a key its JSON always has, the command that writes it)
KINDS = {
    "verify": ("verify.json", "obligations", "lpcheck verify --out DIR"),
    "estimate": ("constants.json", "records", "lpcheck estimate --out DIR"),
    "rates": ("rates.json", "problems", "lpcheck rates --out DIR"),
}


@dataclass
class Source:
    """One pillar's report: its kind, folder, JSON, the PNG figures beside it and a short unique
    name."""

    kind: str
    folder: Path
    data: dict
    figures: list = field(default_factory=list)
    name: str = ""

    @property
    def anchor(self) -> str:
        return f"{self.kind}-{self.name}".replace(" ", "-").replace("/", "-")


def kinds_of(folder: Path) -> list:
    return [kind for kind, (marker, _, _) in KINDS.items() if (folder / marker).is_file()]


def _check_folders(folders) -> list:
    """Every folder as (Path, kinds), or the first problem as an error naming the folder."""
    if not folders:
        raise ValueError(
            "DIR: give at least one folder written by lpcheck verify, estimate or rates"
        )
    checked = []
    for raw in folders:
        folder = Path(raw)
        if not folder.exists():
            raise FileNotFoundError(f"DIR {raw}: no such folder")
        if not folder.is_dir():
            raise ValueError(
                f"DIR {raw} is a file, not a folder: give the folder a pillar wrote with --out"
            )
        kinds = kinds_of(folder)
        if not kinds:
            known = "; ".join(f"{marker} ({cmd})" for marker, _, cmd in KINDS.values())
            raise ValueError(f"DIR {raw} is of no known kind: it holds none of {known}")
        checked.append((folder, kinds))
    seen = {}
    for folder, _ in checked:
        key = folder.resolve()
        if key in seen:
            raise ValueError(f"DIR {folder} is given twice (also as {seen[key]})")
        seen[key] = folder
    return checked


# kind -> {key: (the type it must have, what to call it)}: the containers the page walks, checked so
# that a hand-edited or cut-down report is an error naming its file and key, not a TypeError deep in
# the page builders (which `readable` catches for whatever this table does not cover)
SHAPES = {
    "verify": {
        "obligations": ((list,), "a list of obligation records"),
        "findings": ((list,), "a list of finding records"),
        "summary": ((dict,), "an object of counts"),
    },
    "estimate": {
        "records": ((list,), "a list of checkpoint records"),
        "fit": ((dict, type(None)), "an object or null"),
        "config": ((dict,), "an object"),
        "run": ((dict,), "an object"),
    },
    "rates": {
        "problems": ((dict,), "an object {problem: {studies: [...]}}"),
        "config": ((dict,), "an object"),
    },
}
_OPTIONAL = {
    ("verify", "findings"),
    ("estimate", "fit"),
    ("estimate", "config"),
    ("estimate", "run"),
}
_ITEMS = {("verify", "obligations"), ("verify", "findings"), ("estimate", "records")}
# kind -> {key: type}: the scalars a verdict reads where they are present (older reports lack
# some); a hand-edited "complete": "false" is a true string, and the page called the run complete
_SCALARS = {
    "verify": {"state": str},
    "estimate": {"complete": bool},
    "rates": {"complete": bool},
}


def _check_scalars(folder: Path, kind: str, data: dict) -> None:
    for key, want in _SCALARS[kind].items():
        if key in data and data[key] is not None and type(data[key]) is not want:
            raise ValueError(
                f"DIR {folder}: {KINDS[kind][0]}'s {key!r} must be {want.__name__}, got "
                f"{type(data[key]).__name__} {data[key]!r}"
            )


def _check_shape(folder: Path, kind: str, data: dict) -> None:
    _check_scalars(folder, kind, data)
    marker = KINDS[kind][0]
    for key, (types, what) in SHAPES[kind].items():
        if key not in data:
            if key == KINDS[kind][1]:
                continue  # the marker key: reported by _read
            if (kind, key) in _OPTIONAL:
                continue  # older reports, runs stopped before a fit
            raise ValueError(f"DIR {folder}: {marker} has no {key!r} (it must be {what})")
        value = data[key]
        bad = not isinstance(value, types)
        if not bad and (kind, key) in _ITEMS:
            bad = not all(isinstance(item, dict) for item in value)
        if not bad and (kind, key) == ("rates", "problems"):
            bad = not all(
                isinstance(p, dict) and isinstance(p.get("studies"), list) for p in value.values()
            )
        if bad:
            raise ValueError(
                f"DIR {folder}: {marker}'s {key!r} must be {what}, got {type(value).__name__}"
                + (" holding other things" if isinstance(value, types) else "")
            )


def _read(folder: Path, kind: str) -> dict:
    marker, key, _ = KINDS[kind]
    data = report.read_json(folder / marker)
    if not isinstance(data, dict) or key not in data:
        article = "an" if kind[0] in "aeiou" else "a"
        raise ValueError(
            f"DIR {folder}: {marker} is not {article} {kind} report (it has no {key!r})"
        )
    _check_shape(folder, kind, data)
    return data


def pillar_files(folder: Path) -> list:
    """The files of a pillar's folder that a report reads or that the pillar wrote beside them
    (verify.json and verify.md, ..., the figures): `lpcheck report --out` must not replace them."""
    names = [m for m, _, _ in KINDS.values()] + [
        Path(m).with_suffix(".md").name for m, _, _ in KINDS.values()
    ]
    return [folder / n for n in names if (folder / n).is_file()] + sorted(folder.glob("*.png"))


def _names(folders) -> list:
    """Short names for the folders: the last path part, with as many parents as make them unique."""
    parts = [Path(f).resolve().parts for f in folders]
    depth = 1
    while True:
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names) or depth >= max(len(p) for p in parts):
            return names
        depth += 1


def load(folders) -> list:
    """The sources of a report, in the order given; every folder checked first (module
    docstring)."""
    checked = _check_folders(folders)
    names = _names([f for f, _ in checked])
    out = []
    for (folder, kinds), name in zip(checked, names):
        for kind in kinds:
            data = _read(folder, kind)
            out.append(Source(kind, folder, data, sorted(folder.glob("*.png")), name))
    return out
