"""experiments/mutation.py: the catalogue applies to this tree, and a planted bug is caught end to
end."""

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location(
        "mutation_script", ROOT / "experiments" / "mutation.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


mutation = _load()


def test_every_original_occurs_exactly_once_in_this_tree():
    mutation.check_catalogue(ROOT)
    assert len(mutation.CATALOGUE) >= 40
    scope = mutation.gate_scope(ROOT)
    flags = [mutation.in_scope(m, ROOT, scope)[0] for m in mutation.CATALOGUE]
    assert sum(flags) >= 40 and not all(flags)  # out-of-scope mutants exist: the tests' job alone


def test_a_stale_or_ambiguous_original_stops_the_run(tmp_path):
    m = mutation.CATALOGUE[0]
    (tmp_path / Path(m.file).parent).mkdir(parents=True)
    (tmp_path / m.file).write_text("nothing here")
    with pytest.raises(ValueError, match="occurs 0 times"):
        mutation.check_catalogue(tmp_path, [m])
    (tmp_path / m.file).write_text(m.original * 2)
    with pytest.raises(ValueError, match="occurs 2 times"):
        mutation.check_catalogue(tmp_path, [m])


def test_scope_names_the_enclosing_function():
    src = "X = (1,\n 2)\n\nclass A:\n    def f(self):\n        return 1 + 2\n"
    assert mutation.enclosing(src, src.index("1 + 2")) == "A.f"
    assert mutation.enclosing(src, src.index("2)")) == "X"


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    dest = tmp_path_factory.mktemp("mutation") / "copy"
    mutation.copy_tree(ROOT, dest)
    mutation.check_copy_imports(dest)
    return dest


class Args:
    full_gate, gate_jobs, gate_timeout, test_timeout = False, 1, 120, 300


def _narrow(mid, gate, tests):
    return dataclasses.replace(
        next(m for m in mutation.CATALOGUE if m.id == mid), gate=gate, tests=tests
    )


@pytest.mark.parametrize(
    "mid, gate, tests",
    [
        ("lp.rho_inf", "conf.lp.limits", ("tests/test_lp.py::test_exponent_special_values",)),
        (
            "optim.load_state_ignored",
            "conf.optim.resume",
            ("tests/test_optim.py", "-k", "resume_is_bit"),
        ),
    ],
)
def test_a_catalogue_mutant_is_caught_by_the_gate_and_the_tests(copy, mid, gate, tests):
    before = (copy / _narrow(mid, gate, tests).file).read_text()
    out = mutation.run_mutant(_narrow(mid, gate, tests), copy, Args())
    assert out["gate"]["caught"] and gate in out["gate"]["failing"], out["gate"]
    assert out["tests"]["caught"], out["tests"]
    assert (copy / _narrow(mid, gate, tests).file).read_text() == before  # restored


def test_a_harmless_edit_is_caught_by_neither(copy):
    # the harness itself can say "survived": an edit that changes no behaviour
    m = mutation.Mutant(
        "noop",
        "lpcheck/lp.py",
        "    return (p - 2) / (p - 1)\n",
        "    return (p - 2) / (p - 1)  # same\n",
        ("tests/test_lp.py::test_exponent_special_values",),
        gate="conf.lp.limits",
    )
    out = mutation.run_mutant(m, copy, Args())
    assert not out["gate"]["caught"] and not out["tests"]["caught"], out


def test_tests_that_run_past_their_timeout_are_no_catch(copy):
    out = mutation.run_tests(copy, ("tests/test_lp.py::test_exponent_special_values",), 1)
    assert out["rc"] is None and not out["caught"], out


def _row(m, caught=True):
    result = {"caught": caught, "seconds": 1.0, "failing": [], "failed": []}
    return {
        "id": m.id,
        "file": m.file,
        "original": m.original,
        "replacement": m.replacement,
        "what": m.what,
        "in_scope": True,
        "gate_selection": m.gate,
        "test_args": list(m.tests),
        "gate": dict(result),
        "tests": dict(result),
    }


def test_resume_with_only_merges_into_the_whole_table_and_reruns_stale_rows(tmp_path, monkeypatch):
    cat = mutation.CATALOGUE
    stale = dict(_row(cat[3]), original="text that is no longer in the catalogue")
    old = {"commit": "old", "seconds": 5.0, "mutants": [_row(m) for m in cat[:3]] + [stale]}
    (tmp_path / "mutation.json").write_text(json.dumps(old))
    ran = []

    def fake(m, copy, args):
        ran.append(m.id)
        return {"gate": {"caught": False, "seconds": 0.0, "failing": []}, "tests": _row(m)["tests"]}

    monkeypatch.setattr(mutation, "run_mutant", fake)
    monkeypatch.setattr(mutation, "copy_tree", lambda root, dest: dest.mkdir(parents=True))
    monkeypatch.setattr(mutation, "check_copy_imports", lambda copy: None)
    argv = ["--resume", "--only", cat[4].id, "--out", str(tmp_path), "--no-baseline"]
    assert mutation.main(argv) == 0
    report = json.loads((tmp_path / "mutation.json").read_text())
    assert sorted(ran) == sorted([cat[3].id, cat[4].id])  # the --only one and the stale one
    assert [r["id"] for r in report["mutants"]] == [m.id for m in cat[:5]]
    assert report["catalogue_ids"] == [m.id for m in cat] and report["finished"] == 5
    assert report["mutants"][3]["original"] == cat[3].original  # the stale row replaced
    assert not report["mutants"][4]["gate"]["caught"] and report["mutants"][0]["gate"]["caught"]


def test_survivors_are_argued_equivalent_or_flagged_as_gaps():
    argued = next(iter(mutation.EQUIVALENT))
    assert argued in {m.id for m in mutation.CATALOGUE}  # an argument for a mutant that exists
    gap = next(m for m in mutation.CATALOGUE if m.id not in mutation.EQUIVALENT)
    rows = [_row(m) for m in mutation.CATALOGUE[:2]]
    for m in (next(m for m in mutation.CATALOGUE if m.id == argued), gap):
        row = _row(m, caught=False)
        rows.append(row)
    report = {
        "command": "x",
        "machine": "m",
        "commit": "c",
        "catalogue_ids": [r["id"] for r in rows],
        "mutants": rows,
        "seconds": 1.0,
        "finished": len(rows),
    }
    report["totals"] = mutation.totals(rows)
    text = mutation.markdown(report)
    assert f"- {argued}: equivalent: {mutation.EQUIVALENT[argued]}." in text
    assert f"- {gap.id}: **not argued equivalent: a gap in the tests**" in text
    assert f"in scope but missed by the gate's selection: {argued}, {gap.id}" in text
