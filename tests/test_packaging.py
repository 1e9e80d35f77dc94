"""The wheel holds every package of the source tree: pyproject's package list is written by hand
(the proofs/ folder is mapped to lpcheck.proofs), so a new subpackage left out of it would be
missing from a non-editable install, the README's quick start included."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

tomllib = (
    pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")
)


def _source_packages():
    found = set()
    for base, prefix in ((ROOT / "lpcheck", "lpcheck"), (ROOT / "proofs", "lpcheck.proofs")):
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base).parts
            if "__pycache__" not in rel:
                found.add(".".join((prefix, *rel)))
    return found


def test_every_source_package_is_in_the_wheel_list():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert _source_packages() - listed == set(), (
        "add these to [tool.setuptools] packages in pyproject.toml"
    )
    assert listed - _source_packages() == set(), "pyproject lists packages that do not exist"
