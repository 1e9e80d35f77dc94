"""lpcheck.verify: the obligation engine, the runner, the gate, its CLI and pytest plugin."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import strategies as st

from lpcheck import cli
from lpcheck.verify import Witness, control, finding, gate, obligation
from lpcheck.verify.engines import (
    numeric_forall,
    sympy_equal,
    sympy_limit,
    sympy_nonneg,
    z3_implies,
)
from lpcheck.verify.runner import run_items

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "proofs"
x, y = sp.symbols("x y", positive=True)


def run1(item, **kw):
    (res,) = run_items([item], **kw)
    return res


# --- engines ---------------------------------------------------------------------------------


def test_sympy_equal_proves_refutes_and_gives_a_checked_counterexample():
    assert sympy_equal((x * y) ** 2, x**2 * y**2).status == "proved"
    bad = sympy_equal(x + 1, x * 1.0000001 + 1)
    assert bad.status == "refuted" and set(bad.counterexample) >= {"x", "lhs", "rhs"}
    assert "for all x (positive)" in bad.checked


def test_sympy_nonneg_with_and_without_certificate():
    s = sp.Symbol("s", nonnegative=True)
    assert sympy_nonneg(x**2 - 2 * x * y + y**2, certificate=(x - y) ** 2).status == "proved"
    assert sympy_nonneg(x - y).status == "refuted"
    assert sympy_nonneg(s / (1 + s)).status == "proved"


def test_sympy_limit():
    p = sp.Symbol("p", positive=True)
    assert sympy_limit((p - 2) / (p - 1), p, sp.oo, 1).status == "proved"
    assert sympy_limit((p - 2) / (p - 1), p, sp.oo, 2).status == "refuted"


def test_z3_proves_and_refutes_with_a_verified_model():
    a, b = sp.symbols("a b", real=True)
    assert z3_implies([sp.Le(a, b)], sp.Le(a - 1, b)).status == "proved"
    out = z3_implies([sp.Le(a, b)], sp.Le(b, a))
    assert out.status == "refuted" and float(out.counterexample["a"]) < float(
        out.counterexample["b"]
    )
    assert out.checked.startswith("ForAll(")


def test_z3_encodes_abs_and_negative_powers():
    # |a| and a^-2 as z3 terms: a wrong encoding (|a| as a, a^-2 as a^2) proves a false claim or
    # refutes a true one
    a = sp.symbols("a", real=True)
    assert z3_implies([], sp.Ge(sp.Abs(a), 0)).status == "proved"
    assert z3_implies([sp.Le(a, -1)], sp.Ge(sp.Abs(a), 1)).status == "proved"
    assert z3_implies([sp.Ge(a, 2)], sp.Le(a**-2, sp.Rational(1, 4))).status == "proved"
    assert z3_implies([sp.Ge(a, 2)], sp.Ge(a**-2, 1)).status == "refuted"


def test_z3_rejects_real_exponents_clearly():
    with pytest.raises(TypeError, match="integer powers"):
        z3_implies([], sp.Le(x ** sp.Rational(1, 2), x))


def test_z3_hypotheses_that_contradict_each_other_are_vacuous_not_proved():
    a, b = sp.symbols("a b", real=True)
    out = z3_implies([sp.Le(a, b), sp.Gt(a, b)], sp.Le(b, a - 1))
    assert (
        out.status == "vacuous"
        and "unsatisfiable" in out.detail
        and out.decided_by.startswith("z3")
    )
    assert (
        z3_implies([sp.Lt(x, 0)], sp.Le(x, y)).status == "vacuous"
    )  # x is declared positive: the sign fact counts
    assert (
        z3_implies([sp.Le(a, b)], sp.Le(a - 1, b)).trivial == ""
    )  # satisfiable hypotheses: an ordinary proof


def test_z3_goal_that_is_a_hypothesis_or_true_before_z3_is_trivial_and_says_who_decided():
    a, b, c = sp.symbols("a b c", real=True)
    same = z3_implies([sp.Le(a, b), sp.Le(b, c)], sp.Le(b, c))
    assert (
        same.status == "proved"
        and "hypothesis 2" in same.trivial
        and same.decided_by == "syntactic (no solving)"
    )
    both = z3_implies([sp.Le(a, b), sp.Le(b, c)], sp.And(sp.Le(a, b), sp.Le(b, c)))
    assert both.trivial and "hypothesis 1" in both.trivial
    early = z3_implies(
        [sp.Le(a, b)], sp.Lt(x, x + 1)
    )  # sympy evaluates x < x + 1 to True as it is built
    assert early.trivial and early.decided_by == "sympy: True before z3"
    real = z3_implies([sp.Le(a, b), sp.Le(b, c)], sp.Le(a, c))
    assert real.status == "proved" and not real.trivial and real.decided_by == "z3"


def test_sympy_checks_say_when_nothing_was_left_to_do():
    same = sympy_equal(x * y, y * x)
    assert same.status == "proved" and same.trivial and "as built" in same.decided_by
    work = sympy_equal(x * (x + 1), x**2 + x)
    assert work.status == "proved" and not work.trivial and work.decided_by == "sympy simplify"
    assert sympy_nonneg(sp.Integer(3) - 3).trivial and not sympy_nonneg(x / (1 + x)).trivial
    assert (
        sympy_limit(sp.Integer(2), x, sp.oo, 2).trivial
        and not sympy_limit(1 / x, x, sp.oo, 0).trivial
    )
    from sympy.core.facts import InconsistentAssumptions

    with pytest.raises(
        InconsistentAssumptions
    ):  # sympy refuses contradictory symbols itself: no vacuous sympy check
        sp.Symbol("z", positive=True, negative=True)


def test_a_check_records_who_built_it_and_only_engines_count():
    from lpcheck.verify import Check

    assert sympy_equal(x, 2 * x).origin == "lpcheck.verify.engines"
    by_hand = Check("z3", "proved", "x > 0")
    assert by_hand.origin == __name__ and not by_hand.by_engine
    with pytest.raises(ValueError, match="status"):
        Check("z3", "passed", "x > 0")
    refuted = z3_implies([sp.Le(x, y)], sp.Le(y, x))
    refuted.detail = (
        "[statement abc] " + refuted.detail
    )  # commentary may be added (proofs/_descent.py does)
    for field, value in (
        ("status", "proved"),
        ("decided_by", "z3"),
        ("origin", "lpcheck.verify.engines"),
    ):
        with pytest.raises(AttributeError, match="the engine's"):
            setattr(by_hand if field == "origin" else refuted, field, value)


def test_numeric_engine_holds_and_refutes():
    held = numeric_forall(
        lambda v: v * v >= 0, {"v": st.floats(-10, 10)}, statement="v^2 >= 0", tolerance="exact"
    )
    assert held.status == "held"
    refuted = numeric_forall(
        lambda v: v < 5, {"v": st.floats(0, 10)}, statement="v < 5", tolerance="exact"
    )
    assert refuted.status == "refuted" and refuted.counterexample["v"] >= 5


# --- statuses and the runner -----------------------------------------------------------------


@obligation("t.false", "x + 1 = x")
def _false():
    return sympy_equal(x + 1, x)


@obligation("t.slow", "sleeps", timeout=0.5)
def _slow():
    time.sleep(10)


@obligation("t.raises", "raises")
def _raises():
    raise RuntimeError("boom")


@obligation("t.disagree", "engines disagree")
def _disagree():
    return [sympy_equal(x, x), sympy_equal(x, 2 * x)]


@control("t.control_holds", "a control that is in fact true (x (x + 1) = x^2 + x)")
def _control_true():
    return sympy_equal(x * (x + 1), x**2 + x)


@pytest.mark.parametrize("jobs", [1, 0])  # forked and in-process
def test_a_false_obligation_fails_a_slow_one_times_out_an_exception_is_error(jobs):
    results = {
        r.id: r
        for r in run_items([_false, _slow, _raises, _disagree, _control_true], jobs=jobs, timeout=5)
    }
    assert results["t.false"].status == "refuted" and not results["t.false"].ok
    assert (
        results["t.slow"].status == "timeout"
        and not results["t.slow"].ok
        and results["t.slow"].seconds < 5
    )
    assert (
        results["t.raises"].status == "error"
        and "boom" in results["t.raises"].detail
        and not results["t.raises"].ok
    )
    assert (
        results["t.disagree"].status == "failed"
        and "engines disagree" in results["t.disagree"].detail
    )
    assert results["t.control_holds"].status == "proved" and not results["t.control_holds"].ok


@obligation("t.by_hand", "a Check built by hand")
def _by_hand():
    from lpcheck.verify import Check

    return Check("z3", "proved", "anything at all")


@obligation("t.half_trivial", "one real check and one trivial one")
def _half_trivial():
    return [sympy_equal(x * (x + 1), x**2 + x), sympy_equal(x, x)]


@obligation("t.all_trivial", "only trivial checks")
def _all_trivial():
    return [sympy_equal(x, x), z3_implies([sp.Le(x, y)], sp.Le(x, y))]


@obligation("t.trivial_ok", "x = x by definition", trivial_ok="x is x by definition")
def _trivial_ok():
    return sympy_equal(x, x)


@control("t.control_vacuous", "a control whose hypotheses contradict each other")
def _control_vacuous():
    return z3_implies([sp.Lt(x, y), sp.Gt(x, y)], sp.Lt(x, 0))


@obligation("t.swallows", "catches the timeout and then returns a proof", timeout=0.5)
def _swallows():
    start = time.perf_counter()
    while time.perf_counter() - start < 1.5:
        try:
            time.sleep(0.05)
        except BaseException:  # noqa: BLE001 - this is the fooling attempt
            pass
    return sympy_equal(x * (x + 1), x**2 + x)


@pytest.mark.parametrize("jobs", [1, 0])
def test_statuses_for_by_hand_trivial_vacuous_and_swallowed_timeouts(jobs):
    items = [_by_hand, _half_trivial, _all_trivial, _trivial_ok, _control_vacuous, _swallows]
    r = {res.id: res for res in run_items(items, jobs=jobs, timeout=5)}
    assert (
        r["t.by_hand"].status == "failed"
        and "built by hand" in r["t.by_hand"].detail
        and not r["t.by_hand"].ok
    )
    half, every = r["t.half_trivial"], r["t.all_trivial"]
    assert half.status == "proved" and half.ok and "sympy:trivial" in half.engine
    assert every.status == "trivial" and not every.ok and "trivial_ok" in every.detail
    assert r["t.trivial_ok"].status == "trivial" and r["t.trivial_ok"].ok
    assert r["t.control_vacuous"].status == "vacuous" and not r["t.control_vacuous"].ok
    assert r["t.swallows"].status == "timeout" and not r["t.swallows"].ok
    assert [c["decided_by"] for c in r["t.half_trivial"].checks] == [
        "sympy simplify",
        "sympy: equal as built (automatic evaluation)",
    ]


def test_trivial_ok_needs_a_reason_and_declarations_are_checked():
    with pytest.raises(ValueError, match="trivial_ok"):
        obligation("t.x", "s", trivial_ok=True)
    for bad in ("", "two words", None):
        with pytest.raises(ValueError, match="id must be"):
            obligation(bad, "s")
    with pytest.raises(ValueError, match="timeout must be"):
        control("t.x", "s", timeout=0)


@obligation("t.asks_for_more_time", "sleeps, asking for 100 s", timeout=100)
def _asks_for_more_time():
    time.sleep(30)


def test_a_claim_turned_into_a_control_after_declaration_does_not_pass_by_being_refuted():
    import dataclasses

    sneaky = dataclasses.replace(_false, expect="refuted")  # kind is still "claim"
    res = run1(sneaky, jobs=1)
    assert res.status == "refuted" and not res.ok


def test_a_module_cannot_extend_the_runs_timeout():
    start = time.perf_counter()
    assert run1(_asks_for_more_time, jobs=1, timeout=0.5).status == "timeout"
    assert time.perf_counter() - start < 10


@finding("t.finding_crash", "crashes", "gap")
def _finding_crash():
    raise ValueError("no witness")


@finding("t.finding_ok", "fine", "note")
def _finding_ok():
    return Witness({"v": 1.0}, True, "ok")


def test_findings_run_and_crashes_are_reported():
    crash, fine = run_items([_finding_crash, _finding_ok], jobs=1)
    assert crash.status == "error" and "no witness" in crash.explanation
    assert fine.status == "ok" and fine.reproduced and fine.witness == {"v": 1.0}


def test_a_skipped_check_is_never_a_pass_and_fails_the_gate_only_as_a_control():
    from lpcheck.verify import render
    from lpcheck.verify.engines import skipped

    claim = obligation("t.skip", "the Triton kernel conforms", kind="conformance")(
        lambda: skipped("kernel = reference", "triton is not importable")
    )
    mixed = obligation("t.mixed", "one check skipped, one refuted")(
        lambda: [
            skipped("a", "no triton"),
            numeric_forall(lambda x: False, {"x": st.just(1)}, statement="b", tolerance="-"),
        ]
    )
    ctl = control("control.t.skip", "a control that could not run")(
        lambda: skipped("c", "no triton")
    )
    r, m, c = claim.run(), mixed.run(), ctl.run()
    assert (
        r.status == c.status == "skipped"
        and not r.ok
        and not c.ok
        and "triton is not importable" in r.detail
    )
    assert m.status == "failed"  # a skip never hides a refutation beside it
    assert render.line(r).startswith("skip") and render.line(c).startswith("FAIL")
    for results, passes in (([r], True), ([r, c], False), ([r, m], False)):
        obs = [x.to_json() for x in results]
        report = {
            "state": "complete",
            "obligations": obs,
            "findings": [],
            "summary": gate.summarize(obs, []),
        }
        assert report["summary"]["skipped"] == {"t.skip": r.detail}
        assert gate.gate_passes(report) is passes and ("t.skip" not in report["summary"]["failing"])
        assert report["summary"]["passing"] == 0  # a skip is not counted as holding
    with pytest.raises(ValueError, match="reason"):
        skipped("a", " ")


def test_the_triton_conformance_is_skipped_with_its_reason_where_triton_is_missing(monkeypatch):
    from lpcheck.proofs import conformance_optim
    from lpcheck.verify.core import _combine

    monkeypatch.setitem(sys.modules, "triton", None)  # import triton raises ImportError
    checks = conformance_optim.conf_fused_triton.fn()
    status, _, detail = _combine(checks if isinstance(checks, list) else [checks])
    assert status == "skipped" and "triton is not importable" in detail


def test_gate_passes_logic():
    def report(failing=(), broken=(), gaps=0, state="complete", modules=(), not_run=()):
        findings = [{"id": f"F.{k}", "verdict": "gap", "reproduced": True} for k in range(gaps)]
        return {
            "state": state,
            "findings": findings,
            "summary": {
                "failing": list(failing),
                "findings_broken": list(broken),
                "obligations": 3,
                "findings": 1,
                "findings_reproduced": {"error": 0, "gap": gaps, "note": 0},
                "modules_broken": list(modules),
                "not_run": list(not_run),
            },
        }

    assert gate.gate_passes(report())
    assert not gate.gate_passes(report(failing=["a"]))
    assert not gate.gate_passes(report(broken=["f"]))
    assert gate.gate_passes(report(gaps=1)) and not gate.gate_passes(report(gaps=1), strict=True)
    assert gate.gate_passes(
        report(gaps=1), strict=True, baseline=["F.0"]
    )  # accepted: only new findings fail
    assert not gate.gate_passes(report(gaps=2), strict=True, baseline=["F.0"])
    for incomplete in ("running", "interrupted", "aborted"):
        assert not gate.gate_passes(report(state=incomplete))
    assert not gate.gate_passes(
        {k: v for k, v in report().items() if k != "state"}
    )  # no state: not complete
    assert not gate.gate_passes(report(modules=["p/broken.py"])) and not gate.gate_passes(
        report(not_run=["a"])
    )


def test_collect_rejects_duplicate_ids(tmp_path):
    src = 'from lpcheck.verify import obligation\n@obligation("dup", "s")\ndef a():\n    pass\n'
    (tmp_path / "a.py").write_text(src)
    (tmp_path / "b.py").write_text(src.replace("def a", "def b"))
    with pytest.raises(ValueError, match="obligation id 'dup' is defined twice"):
        gate.collect(gate.load_modules([tmp_path], builtin=False))


# --- the built-in gate ------------------------------------------------------------------------


def test_builtin_obligations_are_in_the_papers_order_with_controls_and_findings():
    obligations, findings = gate.collect(gate.load_modules())
    ids = [o.id for o in obligations]
    assert (
        ids.index("eq10.stationarity")
        < ids.index("thm1.eq34")
        < ids.index("thm1.eq40")
        < ids.index("thm2.eq46")
    )
    thm1 = [i for i in ids if i.startswith("thm1.eq")]
    assert thm1 == sorted(thm1, key=lambda i: int(i[7:]))  # eq. 34 .. 40 in order
    assert sum(o.expect == "refuted" for o in obligations) >= 15
    assert {
        "thm1.step_condition",
        "control.thm1.step_cap_2x",
        "conf.lp.rescale",
        "conf.optim.lpsgdm",
    } <= set(ids)
    assert all(f.verdict in ("error", "gap", "note") for f in findings) and len(findings) >= 10


def test_the_full_gate_passes_from_the_cli(tmp_path):
    # the README's main job; run from an unrelated directory so the installed copy is what runs.
    # --strict with the shipped baseline: passing it implies the plain gate passes, and the baseline
    # covers every known finding
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpcheck",
            "verify",
            "--strict",
            "--baseline",
            "builtin",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["passes"] and not report["summary"]["failing"] and report["state"] == "complete"
    assert report["baseline"]["new"] == [] and report["baseline"]["stale"] == []
    assert report["summary"]["by_status"].get("vacuous", 0) == 0
    assert {"command", "versions", "device", "time"} <= set(report["provenance"])
    ob = report["obligations"][0]
    assert {
        "id",
        "statement",
        "equation",
        "engine",
        "status",
        "counterexample",
        "seconds",
        "checked",
    } <= set(ob)
    assert {"id", "claim", "verdict", "witness"} <= set(report["findings"][0])
    controls = [o for o in report["obligations"] if o["kind"] == "control"]
    assert controls and all(o["status"] == "refuted" and o["counterexample"] for o in controls)
    md = (tmp_path / "verify.md").read_text()
    assert "The gate PASSES" in md and "## Findings" in md


def _wrong_rescale(g, p, eps):
    from lpcheck import lp

    return lp._as_float_array("g", g)[0] / (abs(g) + eps) ** (lp.rho(p) * (1 + 1e-9))


def test_a_subtly_wrong_rescale_turns_the_gate_red(monkeypatch, tmp_path):
    from lpcheck import lp

    monkeypatch.setattr(lp, "rescale", _wrong_rescale)
    report = gate.run_gate(only="conf.lp.rescale,conf.optim.*", jobs=1)
    failing = set(report["summary"]["failing"])
    assert "conf.lp.rescale" in failing  # and the per-tensor optimizer path, which calls lp.rescale
    assert "conf.optim.lpsgdm" in failing and "conf.optim.lpsgd" in failing
    assert cli.main(["verify", "--only", "conf.lp.rescale", "--out", str(tmp_path), "--quiet"]) == 1


def test_a_wrong_steepest_descent_turns_the_gate_red(monkeypatch):
    from lpcheck import lp

    original = lp.steepest_descent
    monkeypatch.setattr(
        lp, "steepest_descent", lambda g, p, lr=1.0: original(g, p, lr) * (1 + 1e-9)
    )
    report = gate.run_gate(only="conf.lp.steepest_descent", jobs=1)
    assert report["summary"]["failing"] == ["conf.lp.steepest_descent"]


# --- --proofs, the CLI and the pytest plugin -------------------------------------------------


def test_user_proofs_example_runs_through_the_cli(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpcheck",
            "verify",
            "--proofs",
            str(EXAMPLE),
            "--no-builtin",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [o["id"] for o in json.loads((tmp_path / "verify.json").read_text())["obligations"]]
    assert ids == [
        "variant.is_eq10",
        "variant.descent",
        "variant.conformance",
        "control.variant.inverted_exponent",
    ]


def test_a_broken_user_variant_fails_the_gate(tmp_path):
    broken = tmp_path / "proofs"
    broken.mkdir()
    src = (EXAMPLE / "keep_global_factor.py").read_text()
    src = src.replace(
        "** lp.rho(p) * lp.rescale(g, p, eps)", "** (lp.rho(p) / 2) * lp.rescale(g, p, eps)"
    )
    (broken / "variant.py").write_text(src)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpcheck",
            "verify",
            "--proofs",
            str(broken),
            "--no-builtin",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # the FAIL line says why: the status and a short counterexample
    assert out.returncode == 1 and "gate FAILS" in out.stdout, out.stdout + out.stderr
    why = next(
        line for line in out.stdout.splitlines() if line.strip().startswith("variant.conformance:")
    )
    assert "refuted: counterexample g=" in why and len(why) < 160


@pytest.mark.parametrize(
    "argv,match",
    [
        (["verify", "--only", "no.such.*"], "matches no obligation"),
        (["verify", "--jobs", "-1"], "--jobs must be"),
        (["verify", "--timeout", "0"], "--timeout must be"),
        (["verify", "--proofs", "/no/such/dir"], "is not a directory"),
        (["verify", "--no-builtin"], "--no-builtin needs"),
        (["verify", "--timeout", "inf"], "--timeout must be"),
        (["verify", "--timeout", "nan"], "--timeout must be"),
        (["verify", "--baseline", "builtin"], "--baseline applies only with --strict"),
        (["verify", "--strict", "--baseline", "/no/such/file"], "--baseline: no file"),
        (
            ["verify", "--write-baseline", "/tmp/b.json", "--only", "eq10.*"],
            "--write-baseline needs a run of every",
        ),
        (
            ["verify", "--write-baseline", "/no/such/dir/b.json"],
            "must be a file in an existing directory",
        ),
        (["verify", "--out", __file__], "exists and is not a directory"),
    ],
)
def test_cli_bad_arguments_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no report may be written for bad arguments: checked below
    assert cli.main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "lpcheck-out").exists() or "--only" in argv


def test_bad_baseline_files_are_named(tmp_path):
    (tmp_path / "b.json").write_text('{"accepted": [1, 2]}')
    with pytest.raises(ValueError, match="list of finding ids"):
        gate.read_baseline(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("[not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        gate.read_baseline(tmp_path / "c.json")
    (tmp_path / "d.txt").write_text("F.a  # known\n\nF.b\n")
    assert gate.read_baseline(tmp_path / "d.txt") == ["F.a", "F.b"]


def test_cli_list_names_a_broken_module_and_a_selection_that_matches_nothing(tmp_path, capsys):
    ok = 'from lpcheck.verify import obligation\n@obligation("ok.a", "s")\ndef a():\n    pass\n'
    (tmp_path / "ok.py").write_text(ok)
    (tmp_path / "bad.py").write_text("import sys\nsys.exit(0)\n")
    assert cli.main(["verify", "--list", "--no-builtin", "--proofs", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "ok.a" in out and f"BROKEN {tmp_path / 'bad.py'}: error: SystemExit: 0" in out
    (tmp_path / "bad.py").unlink()
    assert (
        cli.main(["verify", "--list", "--no-builtin", "--proofs", str(tmp_path), "--only", "no.*"])
        == 2
    )
    assert "matches no obligation" in capsys.readouterr().err


def test_cli_list(capsys):
    assert cli.main(["verify", "--list", "--only", "thm1.*"]) == 0
    out = capsys.readouterr().out
    assert "thm1.step_condition" in out and "eq10" not in out


def test_only_given_twice_selects_both(capsys):
    # argparse keeps the last of a repeated option: the first pattern was dropped without a word
    assert cli.main(["verify", "--list", "--only", "thm1.*", "--only", "eq10.*"]) == 0
    out = capsys.readouterr().out
    assert "thm1.step_condition" in out and "eq10." in out and "thm2." not in out


def test_pytest_plugin_collects_obligations_as_items(tmp_path):
    shutil.copy(EXAMPLE / "keep_global_factor.py", tmp_path / "variant.py")
    (tmp_path / "variant.py").write_text(
        (tmp_path / "variant.py")
        .read_text()
        .replace(
            "return check_variant(variant_numeric)",
            "return check_variant(lambda *a: variant_numeric(*a) * 1.001)",
        )
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--lpcheck-proofs",
            str(tmp_path),
            "--lpcheck-no-builtin",
            "-q",
            "-p",
            "no:warnings",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    text = out.stdout + out.stderr
    assert "3 passed" in text and "1 failed" in text, text[-3000:]
    assert (
        "obligation variant.conformance" in text
        and "counterexample:" in text
        and "statement:" in text
    )


def test_pytest_plugin_is_off_unless_asked(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:warnings"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert "1 passed" in out.stdout and "lpcheck" not in out.stdout


def test_numpy_witnesses_are_reproducible():
    # findings use fixed seeds: the witness is the same number on every run
    _, findings = gate.collect(gate.load_modules())
    f = next(f for f in findings if f.id == "F.A5.c2_dimension")
    assert f.run().witness == f.run().witness
    assert np.isfinite(f.run().witness["fitted exponent of d"])


def test_the_readme_obligation_example_runs(tmp_path):
    readme = (ROOT / "docs" / "verify.md").read_text()  # the README's section, moved into the docs
    section = readme[readme.index("## Adding an obligation") :]
    code = section[
        section.index("```python") + len("```python") : section.index(
            "```", section.index("```python") + 9
        )
    ]
    (tmp_path / "proofs").mkdir()
    (tmp_path / "proofs" / "readme_example.py").write_text(code)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpcheck",
            "verify",
            "--proofs",
            str(tmp_path / "proofs"),
            "--no-builtin",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2/2 obligations hold (1 controls)" in out.stdout
