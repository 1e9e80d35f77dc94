"""The folders a report is built from: each one's kind from the files the pillar wrote there.

A folder is a verify folder if it holds verify.json, an estimate folder if it holds constants.json, a rates
folder if it holds rates.json (a folder may hold several). Every folder is checked before anything is read
in full: a missing one is a FileNotFoundError, one of no known kind a ValueError, each naming the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lpcheck import report

__all__ = ["KINDS", "Source", "kinds_of", "load"]

# kind -> (the report file that marks it, a key its JSON always has, the command that writes it)
KINDS = {
    "verify": ("verify.json", "obligations", "lpcheck verify --out DIR"),
    "estimate": ("constants.json", "records", "lpcheck estimate --out DIR"),
    "rates": ("rates.json", "problems", "lpcheck rates --out DIR"),
}


@dataclass
class Source:
    """One pillar's report: its kind, folder, JSON, the PNG figures beside it and a short unique name."""

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


def _read(folder: Path, kind: str) -> dict:
    marker, key, _ = KINDS[kind]
    data = report.read_json(folder / marker)
    if not isinstance(data, dict) or key not in data:
        article = "an" if kind[0] in "aeiou" else "a"
        raise ValueError(
            f"DIR {folder}: {marker} is not {article} {kind} report (it has no {key!r})"
        )
    return data


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
    """The sources of a report, in the order given; every folder checked first (module docstring)."""
    checked = _check_folders(folders)
    names = _names([f for f, _ in checked])
    out = []
    for (folder, kinds), name in zip(checked, names):
        for kind in kinds:
            data = _read(folder, kind)
            out.append(Source(kind, folder, data, sorted(folder.glob("*.png")), name))
    return out
