"""pytest integration: `pytest --lpcheck` collects every proof obligation and finding as a test
item.

Registered through the `pytest11` entry point, so a project whose CI runs pytest gates on the
mathematics with no extra step. Off unless asked. Options:
  --lpcheck                  collect the built-in obligations (the paper's claims and lpcheck's
                             conformance)
  --lpcheck-proofs DIR       also your own obligation modules (repeatable; implies --lpcheck)
  --lpcheck-only PATTERN     only ids matching these comma-separated globs (matching nothing is a
                             usage error)
  --lpcheck-no-builtin       only the --lpcheck-proofs obligations
  --lpcheck-timeout S        seconds per obligation, and per module's import (default 60)
  --lpcheck-strict           a finding of verdict error/gap that reproduces fails its item ...
  --lpcheck-baseline FILE    ... unless FILE accepts it ('builtin': the shipped baseline of the
                             built-in pack)
Items sit under one collector per proof module (node id `lpcheck/proofs/theorem1.py::thm1.eq34`, so
JUnit's classname is `lpcheck.proofs.theorem1`); a module that raises, exits or hangs at import is
that module's collection error. A finding's item passes when its witness ran. A failing item's
report shows the statement, the status, the counterexample and what each engine checked. As in
`lpcheck verify`, the modules are imported and each item runs in a host process with a hard timeout
(lpcheck.verify.host), never in pytest's own process.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

_HOST = pytest.StashKey()
_BASELINE = pytest.StashKey()
_SPECS = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("lpcheck", "lpcheck proof obligations")
    group.addoption(
        "--lpcheck",
        action="store_true",
        default=False,
        help="collect lpcheck's proof obligations as tests",
    )
    group.addoption(
        "--lpcheck-proofs",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of your own obligation modules (implies --lpcheck)",
    )
    group.addoption(
        "--lpcheck-only",
        default=None,
        metavar="PATTERN",
        help="only obligations whose id matches these globs",
    )
    group.addoption(
        "--lpcheck-no-builtin",
        action="store_true",
        default=False,
        help="only the --lpcheck-proofs obligations",
    )
    group.addoption(
        "--lpcheck-timeout", type=float, default=60.0, metavar="S", help="seconds per obligation"
    )
    group.addoption(
        "--lpcheck-strict",
        action="store_true",
        default=False,
        help=(
            "a reproduced finding of verdict error or gap fails (unless --lpcheck-baseline accepts "
            "it)"
        ),
    )
    group.addoption(
        "--lpcheck-baseline",
        default=None,
        metavar="FILE",
        help=(
            "finding ids accepted under --lpcheck-strict ('builtin': the built-in pack's baseline)"
        ),
    )


def _enabled(config):
    return config.getoption("lpcheck") or bool(config.getoption("lpcheck_proofs"))


def pytest_configure(config):
    if not _enabled(config):
        return
    timeout = config.getoption("lpcheck_timeout")
    if not timeout > 0 or timeout == float("inf"):
        raise pytest.UsageError(
            f"--lpcheck-timeout must be a finite number of seconds > 0, got {timeout}"
        )
    if config.getoption("lpcheck_baseline") is not None and not config.getoption("lpcheck_strict"):
        raise pytest.UsageError("--lpcheck-baseline applies only with --lpcheck-strict")
    if config.getoption("lpcheck_no_builtin") and not config.getoption("lpcheck_proofs"):
        raise pytest.UsageError("--lpcheck-no-builtin needs at least one --lpcheck-proofs DIR")
    from lpcheck.verify.gate import read_baseline
    from lpcheck.verify.host import module_specs

    try:
        config.stash[_BASELINE] = set(
            read_baseline(config.getoption("lpcheck_baseline"))
            if config.getoption("lpcheck_baseline") is not None
            else ()
        )
        config.stash[_SPECS] = module_specs(
            config.getoption("lpcheck_proofs"), not config.getoption("lpcheck_no_builtin")
        )
    except (ValueError, FileNotFoundError, NotADirectoryError) as e:
        raise pytest.UsageError(str(e)) from None


def pytest_unconfigure(config):
    host = config.stash.get(_HOST, None)
    if host is not None:
        host.close()


class ObligationFailed(Exception):
    pass


class ProofModuleBroken(Exception):
    pass


def _node_path(spec, rootpath: Path) -> str:
    """A module's node id path: `lpcheck/proofs/theorem1.py`, or the user file relative to the
    rootdir."""
    if spec.kind == "builtin":
        return spec.name.replace(".", "/") + ".py"
    path = Path(os.path.abspath(spec.name))
    try:
        return path.relative_to(rootpath).as_posix()
    except ValueError:
        return f"lpcheck-proofs/{path.parent.name}/{path.name}"


def _file_of(spec) -> Path:
    if spec.kind == "file":
        return Path(spec.name)
    found = importlib.util.find_spec(spec.name)
    return Path(found.origin) if found and found.origin else Path(spec.name)


class ProofModule(pytest.Collector):
    """One proof module: its obligations and findings, or its import failure as a collection
    error."""

    def __init__(self, *, status, entries, **kwargs):
        super().__init__(**kwargs)
        self.status, self.entries = status, entries

    def collect(self):
        if self.status.status != "ok":
            raise ProofModuleBroken(
                f"proof module {self.status.module}: {self.status.status}: {self.status.detail}"
            )
        for index, meta in self.entries:
            cls = FindingItem if hasattr(meta, "verdict") else ObligationItem
            yield cls.from_parent(self, name=meta.id, index=index, meta=meta)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ProofModuleBroken):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class _HostItem(pytest.Item):
    def __init__(self, *, index, meta, **kwargs):
        super().__init__(**kwargs)
        self.index, self.meta, self.result = index, meta, None

    def _run(self):
        host = self.config.stash[_HOST]
        self.result = host.run([self.index], jobs=1)[self.index]
        return self.result

    def reportinfo(self):
        return (
            self.path,
            None,
            f"lpcheck {'finding' if hasattr(self.meta, 'verdict') else 'obligation'} "
            f"{self.meta.id}",
        )


class ObligationItem(_HostItem):
    def runtest(self):
        r = self._run()
        if r.status == "skipped" and r.kind != "control":
            pytest.skip(f"obligation {r.id} skipped: {r.detail}")
        if not r.ok:
            raise ObligationFailed(self.result)

    def repr_failure(self, excinfo):
        if not isinstance(excinfo.value, ObligationFailed):
            return super().repr_failure(excinfo)
        r = excinfo.value.args[0]
        want = "a refutation (negative control)" if r.expect == "refuted" else "proved or held"
        lines = [
            f"obligation {r.id} (eq. {r.equation}): {r.status}, expected {want}",
            f"statement: {r.statement}",
        ]
        if r.counterexample:
            lines.append(f"counterexample: {r.counterexample}")
        lines += [
            f"checked: {c}"
            + (
                f"  [decided by {k['decided_by']}{', trivial' if k.get('trivial') else ''}]"
                if k
                else ""
            )
            for c, k in zip(r.checked, list(r.checks) + [None] * len(r.checked))
        ]
        if r.detail:
            lines.append(f"detail: {r.detail}")
        return "\n".join(lines)


class FindingItem(_HostItem):
    """Passes when the witness ran; under --lpcheck-strict a reproduced error/gap fails unless
    accepted."""

    def runtest(self):
        f = self._run()
        if f.status != "ok":
            raise ObligationFailed(
                f"finding {f.id}: the witness did not run ({f.status}): {f.explanation}"
            )
        if (
            self.config.getoption("lpcheck_strict")
            and f.reproduced
            and f.verdict in ("error", "gap")
            and f.id not in self.config.stash[_BASELINE]
        ):
            raise ObligationFailed(
                f"finding {f.id} ({f.verdict}) reproduced and is not in the baseline "
                f"(--lpcheck-strict): {f.claim}\nwitness: {f.witness}"
            )

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ObligationFailed):
            return str(excinfo.value.args[0])
        return super().repr_failure(excinfo)


def pytest_collection_modifyitems(session, config, items):
    if not _enabled(config):
        return
    from lpcheck.verify.gate import select
    from lpcheck.verify.host import Host, HostError, preload

    specs = config.stash[_SPECS]
    preload(specs)
    host = config.stash[_HOST] = Host(specs, timeout=config.getoption("lpcheck_timeout"))
    try:
        host.load()
    except ValueError as e:  # e.g. one id defined in two modules
        pytest.exit(f"lpcheck: {e}", returncode=pytest.ExitCode.USAGE_ERROR)
    except HostError as e:
        pytest.exit(
            f"lpcheck: the proof modules could not be loaded: {e}",
            returncode=pytest.ExitCode.INTERNAL_ERROR,
        )
    chosen = {
        i for i, it in enumerate(host.items) if select([it], config.getoption("lpcheck_only"))
    }
    if not chosen and not host.broken():
        only = config.getoption("lpcheck_only")
        pytest.exit(
            f"lpcheck: --lpcheck-only {only!r} matches no obligation or finding"
            if only
            else "lpcheck: the proof modules define no obligation or finding",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    placed = set()
    for k, spec in enumerate(specs):
        status = host.modules[k]
        ids = set(status.ids)
        entries = [
            (i, it)
            for i, it in enumerate(host.items)
            if it.id in ids and i in chosen and i not in placed
        ]
        placed.update(i for i, _ in entries)
        if status.status == "ok" and not entries:
            continue
        collector = ProofModule.from_parent(
            session,
            name=_node_path(spec, config.rootpath),
            path=_file_of(spec),
            nodeid=_node_path(spec, config.rootpath),
            status=status,
            entries=entries,
        )
        items.extend(session.genitems(collector))
