"""pytest integration: `pytest --lpcheck` collects every proof obligation as a test item.

Registered through the `pytest11` entry point, so a project whose CI runs pytest gates on the
mathematics with no extra step. Off unless asked. Options:
  --lpcheck                  collect the built-in obligations (the paper's claims and lpcheck's conformance)
  --lpcheck-proofs DIR       also your own obligation modules (repeatable)
  --lpcheck-only PATTERN     only ids matching these comma-separated globs
  --lpcheck-no-builtin       only the --lpcheck-proofs obligations
  --lpcheck-timeout S        seconds per obligation (default 60)
A failing item's report shows the statement, the status, the counterexample and what each engine
checked. Each obligation runs in a forked process with a hard timeout, as in `lpcheck verify`.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("lpcheck", "lpcheck proof obligations")
    group.addoption("--lpcheck", action="store_true", default=False, help="collect lpcheck's proof obligations as tests")
    group.addoption("--lpcheck-proofs", action="append", default=[], metavar="DIR",
                    help="a directory of your own obligation modules (implies --lpcheck)")
    group.addoption("--lpcheck-only", default=None, metavar="PATTERN", help="only obligations whose id matches these globs")
    group.addoption("--lpcheck-no-builtin", action="store_true", default=False, help="only the --lpcheck-proofs obligations")
    group.addoption("--lpcheck-timeout", type=float, default=60.0, metavar="S", help="seconds per obligation")


def _enabled(config):
    return config.getoption("lpcheck") or bool(config.getoption("lpcheck_proofs"))


class ObligationFailed(Exception):
    pass


class ProofsCollector(pytest.Collector):
    def collect(self):
        from lpcheck.verify import gate
        config = self.config
        obligations, _ = gate.collect(gate.load_modules(config.getoption("lpcheck_proofs"),
                                                        not config.getoption("lpcheck_no_builtin")))
        for ob in gate.select(obligations, config.getoption("lpcheck_only")):
            yield ObligationItem.from_parent(self, name=ob.id, obligation=ob)


class ObligationItem(pytest.Item):
    def __init__(self, *, obligation, **kwargs):
        super().__init__(**kwargs)
        self.obligation = obligation
        self.result = None

    def runtest(self):
        from lpcheck.verify.runner import run_items
        (self.result,) = run_items([self.obligation], jobs=1, timeout=self.config.getoption("lpcheck_timeout"))
        if not self.result.ok:
            raise ObligationFailed(self.result)

    def repr_failure(self, excinfo):
        if not isinstance(excinfo.value, ObligationFailed):
            return super().repr_failure(excinfo)
        r = excinfo.value.args[0]
        want = "a refutation (negative control)" if r.expect == "refuted" else "proved or held"
        lines = [f"obligation {r.id} (eq. {r.equation}): {r.status}, expected {want}",
                 f"statement: {r.statement}"]
        if r.counterexample:
            lines.append(f"counterexample: {r.counterexample}")
        lines += [f"checked: {c}" for c in r.checked]
        if r.detail:
            lines.append(f"detail: {r.detail}")
        return "\n".join(lines)

    def reportinfo(self):
        return self.path, None, f"lpcheck obligation {self.obligation.id}"


def pytest_collection_modifyitems(session, config, items):
    if not _enabled(config):
        return
    collector = ProofsCollector.from_parent(session, name="lpcheck-proofs")
    items.extend(collector.collect())
