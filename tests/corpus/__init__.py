"""The bad-input corpus: every bad input lpcheck has been shown, as a table of cases.

A case does one bad thing (calls an API or the command line with a bad argument) and says what a
good answer is: `raises` (ValueError unless said otherwise) with a message matching `match`, which
names the argument and, where there is one, its allowed range. `unchanged`, if given, is checked
after the error: nothing the call could have changed was changed (an optimizer's state, a file).

The cases live in one module per area (`corpus/api.py`, `corpus/cli.py`, ...): each defines
`CASES`, a list of `Case`. `tests/test_bad_input.py` runs every case as a test;
`experiments/bad_input_corpus.py` runs them against any checkout (also an old one) and counts the
outcomes per area: handled (the right error, naming the argument), silent (no error: the bad input
was accepted), traceback (some other exception, e.g. from deep inside torch) and wrong message.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

AREAS = ("api", "cli", "data", "experiments", "curvature", "user", "hunt")  # one module per area


@dataclass(frozen=True)
class Case:
    area: str
    name: str  # unique within its area, e.g. "LPSGD eps rounds to 0 in float32"
    run: Callable[[Path], object]  # gets an empty temporary folder
    match: str  # regex the error message must match: the argument's name (and range)
    raises: tuple = (ValueError,)
    unchanged: Callable[[Path], None] | None = None  # asserts nothing changed; run after the error
    tags: tuple = field(
        default=()
    )  # e.g. ("silent-before",) for how the case behaved before its fix

    @property
    def id(self) -> str:
        return f"{self.area}:{self.name}"


class CliError(ValueError):
    """The command line refused the input the way a user should see it: exit 2, one line, no
    traceback."""


def run_lpcheck(*argv: str) -> int:
    """Run `lpcheck ARGV` in this process; raise CliError with its message on a clean refusal (exit
    2).

    A clean refusal is exit code 2 with a short message and no Python traceback. Exit 0 returns 0
    (the bad input was accepted: 'silent'); any exception escaping `main` propagates ('traceback').
    """
    from lpcheck.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse's own refusals (a non-number for a float option, ...)
            code = e.code if isinstance(e.code, int) else 2
    text = err.getvalue().strip()
    if code == 2 and "Traceback" not in text:
        raise CliError(text.splitlines()[-1] if text else "(no message)")
    if code not in (0, None):
        raise RuntimeError(f"exit {code}: {text[-500:]}")
    return 0


def load(areas=AREAS) -> list[Case]:
    cases = []
    for area in areas:
        try:
            module = importlib.import_module(f"corpus.{area}")
        except ModuleNotFoundError as e:
            if e.name == f"corpus.{area}":
                continue  # no cases for this area yet
            raise
        cases += module.CASES
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate corpus case ids: {dupes}")
    return cases


def outcome(case: Case, tmp: Path) -> tuple[str, str]:
    """('handled' | 'silent' | 'traceback' | 'wrong message' | 'changed state', detail) for one
    case."""
    try:
        case.run(tmp)
    except case.raises as e:
        message = str(e)
        if not re.search(case.match, message):
            return "wrong message", message[:300]
        if case.unchanged is not None:
            try:
                case.unchanged(tmp)
            except AssertionError as bad:
                return "changed state", str(bad)[:300]
        return "handled", message[:300]
    except Exception as e:  # noqa: BLE001 - the point is to classify whatever escapes
        return "traceback", f"{type(e).__name__}: {str(e)[:300]}"
    return "silent", "no error"
