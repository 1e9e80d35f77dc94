"""The fooling corpus: ways to make the proof gate say PASS without a proof, each run through the
real CLI (`python -m lpcheck verify --no-builtin --proofs DIR`) and the pytest plugin. Every case
must end in a non-zero exit and a report that says why; the positive case (correct obligations)
must still pass.

Each user module is written to tmp_path. Cases that cannot disturb one another share one gate run
(`corpus`), so the corpus costs a few runs, not one per case.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fail-closed host needs fork")

HEAD = """\
import os, sys, time
import sympy as sp
from lpcheck.verify import Check, Witness, control, finding, obligation
from lpcheck.verify.engines import sympy_equal, z3_implies
x, y = sp.symbols("x y", positive=True)
"""

GOOD = (
    HEAD
    + """
@obligation("good.identity", "x (x + 1) = x^2 + x")
def identity():
    return sympy_equal(x * (x + 1), x**2 + x)

@obligation("good.z3", "x <= y and y <= 1 imply x <= 1")
def implication():
    return z3_implies([sp.Le(x, y), sp.Le(y, 1)], sp.Le(x, 1))

@control("good.control", "x <= y implies y <= x (wrong)")
def wrong():
    return z3_implies([sp.Le(x, y)], sp.Le(y, x))
"""
)

# module file -> source; the shared run's cases (none of them disturbs another: no patching of
# lpcheck)
CORPUS = {
    "good.py": GOOD,
    "vacuous.py": HEAD
    + """
@obligation("fool.vacuous", "x < y and x > y imply anything")
def vacuous():
    return z3_implies([sp.Lt(x, y), sp.Gt(x, y)], sp.Lt(x, 0))

@control(
    "fool.control_vacuous", "a control whose hypotheses contradict each other 'refutes' nothing"
)
def control_vacuous():
    return z3_implies([sp.Lt(x, y), sp.Gt(x, y)], sp.Lt(x, 0))
""",
    "trivial.py": HEAD
    + """
@obligation("fool.goal_is_hypothesis", "P implies P")
def goal_is_hypothesis():
    return z3_implies([sp.Le(x, y), sp.Le(y, 2)], sp.Le(x, y))

@obligation("fool.true_before_z3", "x < x + 1: sympy decides it before z3 sees it")
def true_before_z3():
    return z3_implies([sp.Le(x, y)], sp.Lt(x, x + 1))

@obligation("fool.same_expression", "an identity compared with itself")
def same_expression():
    e = (x + y) ** 3
    return sympy_equal(e, e)
""",
    "returns.py": HEAD
    + """
@obligation("fool.returns_none", "forgets to return")
def returns_none():
    sympy_equal(x, x + 1)

@obligation("fool.returns_empty", "returns no check")
def returns_empty():
    return []

@obligation("fool.returns_string", "returns a string")
def returns_string():
    return "proved"

@obligation("fool.generator_raises", "yields a proof, then raises")
def generator_raises():
    yield sympy_equal(x * (x + 1), x**2 + x)
    raise RuntimeError("midway")

@obligation("fool.by_hand", "builds Check(status='proved') by hand")
def by_hand():
    return Check("z3", "proved", "ForAll(x, x > 0)", decided_by="z3")

@obligation("fool.patched_engine", "monkeypatches the engine, then calls it")
def patched_engine():
    import lpcheck.verify.engines as engines
    engines.z3_implies = lambda hyps, goal, **kw: Check("z3", "proved", str(goal))
    return engines.z3_implies([], sp.Lt(x, 0))
""",
    "exits.py": HEAD
    + """
@obligation("fool.sys_exit", "sys.exit(0) in an obligation")
def sys_exit():
    sys.exit(0)

@obligation("fool.os_exit", "os._exit(0) in an obligation")
def os_exit():
    os._exit(0)

@finding("fool.finding_raises", "a finding whose witness raises", "gap")
def finding_raises():
    raise ValueError("no witness")
""",
    "swallow.py": HEAD
    + """
@obligation("fool.swallow_then_prove", "catches the timeout, then returns a real proof", timeout=1)
def swallow_then_prove():
    start = time.monotonic()
    while time.monotonic() - start < 2.5:
        try:
            time.sleep(0.05)
        except BaseException:
            pass
    return sympy_equal(x * (x + 1), x**2 + x)

@obligation("fool.swallow_forever", "catches every exception, forever", timeout=1)
def swallow_forever():
    while True:
        try:
            time.sleep(0.05)
        except BaseException:
            pass
""",
    "huge.py": HEAD
    + """
@obligation("fool.huge", "a statement with 5 MB of text and a huge counterexample")
def huge():
    return sympy_equal(x, x + 1, where="w" * 5_000_000)
""",
    "exit_at_import.py": "import sys\nsys.exit(0)\n",
    "os_exit_at_import.py": "import os\nos._exit(0)\n",
    "loops_at_import.py": "while True:\n    pass\n",
    "raises_at_import.py": "raise RuntimeError('broken at import')\n",
}


def write(directory: Path, files: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        (directory / name).write_text(textwrap.dedent(src))
    return directory


def gate_cmd(proofs: Path, out: Path, *extra):
    return [
        sys.executable,
        "-m",
        "lpcheck",
        "verify",
        "--no-builtin",
        "--proofs",
        str(proofs),
        "--out",
        str(out),
        *extra,
    ]


def verify(proofs, out, *extra, timeout=240, env=None):
    proc = subprocess.run(
        gate_cmd(proofs, out, *extra), capture_output=True, text=True, timeout=timeout, env=env
    )
    report = (
        json.loads((out / "verify.json").read_text()) if (out / "verify.json").exists() else None
    )
    return proc, report


def by_id(report):
    return {r["id"]: r for r in report["obligations"] + report["findings"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    proc, report = verify(
        write(tmp / "proofs", CORPUS), tmp / "out", "--jobs", "2", "--timeout", "3"
    )
    return proc, report, tmp


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    """--jobs 0: items run one after another in the host, which the gate watches and restarts."""
    tmp = tmp_path_factory.mktemp("inline")
    files = {k: CORPUS[k] for k in ("good.py", "swallow.py", "exits.py")}
    proc, report = verify(
        write(tmp / "proofs", files), tmp / "out", "--jobs", "0", "--timeout", "3", timeout=180
    )
    return proc, report


# --- the positive case: a correct module still passes -----------------------------------------


def test_correct_obligations_pass_and_exit_0(tmp_path):
    proc, report = verify(write(tmp_path / "proofs", {"good.py": GOOD}), tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["passes"] and report["state"] == "complete"
    r = by_id(report)
    assert (
        r["good.identity"]["status"] == "proved" and r["good.z3"]["checks"][0]["decided_by"] == "z3"
    )
    assert r["good.control"]["status"] == "refuted"


# --- the shared run: each case is a failure, and the report says which and why --------------------


def test_the_corpus_run_fails_with_a_report(corpus):
    proc, report, _ = corpus
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert report is not None and report["state"] == "complete" and not report["passes"]
    assert "gate FAILS" in proc.stdout
    r = by_id(report)
    assert (
        r["good.identity"]["ok"] and r["good.z3"]["ok"] and r["good.control"]["ok"]
    )  # the good still pass


@pytest.mark.parametrize(
    "oid,status,why",
    [
        ("fool.vacuous", "vacuous", "unsatisfiable"),
        ("fool.control_vacuous", "vacuous", "unsatisfiable"),
        ("fool.goal_is_hypothesis", "trivial", "hypothesis 1"),
        ("fool.true_before_z3", "trivial", "True before z3 saw it"),
        ("fool.same_expression", "trivial", "one expression as built"),
        ("fool.returns_none", "error", "returned None"),
        ("fool.returns_empty", "error", "returned no check"),
        ("fool.returns_string", "error", "must return a Check"),
        ("fool.generator_raises", "error", "midway"),
        ("fool.by_hand", "failed", "built by hand"),
        ("fool.patched_engine", "failed", "built by hand"),
        ("fool.sys_exit", "error", "SystemExit"),
        ("fool.os_exit", "error", "exit code 0"),
        ("fool.swallow_then_prove", "timeout", ""),
        ("fool.swallow_forever", "timeout", ""),
        ("fool.huge", "refuted", ""),
    ],
)
def test_each_fooling_obligation_fails_and_says_why(corpus, oid, status, why):
    proc, report, _ = corpus
    r = by_id(report)[oid]
    assert r["status"] == status and not r["ok"], r
    assert why in r["detail"], r["detail"]
    line = next(
        x for x in proc.stdout.splitlines() if x.strip().startswith(f"{oid}: ")
    )  # the FAIL line says why
    assert f"{oid}: {status}:" in line and len(line) < 170


def test_a_finding_whose_witness_raises_fails_the_gate(corpus):
    proc, report, _ = corpus
    f = by_id(report)["fool.finding_raises"]
    assert f["status"] == "error" and "fool.finding_raises" in report["summary"]["findings_broken"]
    assert "finding fool.finding_raises: error: ValueError: no witness" in proc.stdout


@pytest.mark.parametrize(
    "module,status,why",
    [
        ("exit_at_import.py", "error", "SystemExit: 0"),
        ("os_exit_at_import.py", "error", "exit code 0"),
        ("loops_at_import.py", "timeout", "did not finish within 3 s"),
        ("raises_at_import.py", "error", "RuntimeError: broken at import"),
    ],
)
def test_a_module_that_exits_hangs_or_raises_at_import_is_a_named_failure(
    corpus, module, status, why
):
    proc, report, tmp = corpus
    m = next(m for m in report["modules"] if m["module"].endswith(module))
    assert m["status"] == status and why in m["detail"], m
    assert str(tmp / "proofs" / module) in report["summary"]["modules_broken"]
    assert f"module {tmp / 'proofs' / module}: {status}:" in proc.stdout


def test_huge_output_is_cut_not_shipped(corpus):
    _, report, tmp = corpus
    r = by_id(report)["fool.huge"]
    assert "more characters cut" in r["checked"][0] and len(r["checked"][0]) < 30_000
    assert (tmp / "out" / "verify.json").stat().st_size < 2_000_000


@pytest.mark.parametrize(
    "oid,status",
    [
        ("fool.swallow_then_prove", "timeout"),
        ("fool.swallow_forever", "timeout"),
        ("fool.sys_exit", "error"),
        ("fool.os_exit", "error"),
        ("good.identity", "proved"),
        ("good.control", "refuted"),
    ],
)
def test_jobs_0_never_passes_an_overrun_or_an_exit(inline, oid, status):
    proc, report = inline
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = by_id(report)[oid]
    assert r["status"] == status and r["ok"] == oid.startswith("good."), r


# --- the gate's own process: signals, stale reports ---------------------------------------------

SLOW = (
    HEAD
    + """
@obligation("slow.first", "quick")
def first():
    return sympy_equal(x * (x + 1), x**2 + x)

@obligation("slow.sleeper", "writes its pid, then sleeps")
def sleeper():
    d = os.environ["FOOL_DIR"]
    with open(os.path.join(d, "pids.tmp"), "w") as f:
        f.write(f"{os.getpid()} {os.getppid()}")
    os.replace(os.path.join(d, "pids.tmp"), os.path.join(d, "pids"))
    time.sleep(120)
    return sympy_equal(x * (x + 1), x**2 + x)
"""
)


def _alive(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return "\nState:\tZ" not in status  # a zombie whose parent is gone is dead
    except FileNotFoundError:
        return False
    except OSError:  # not Linux: ask the kernel
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def _start_then(tmp_path, sig, *extra):
    """A PASS report in OUT; then a run that is sent `sig` while an obligation runs. Returns what is
    left."""
    out = tmp_path / "out"
    proc, report = verify(write(tmp_path / "good", {"good.py": GOOD}), out)
    assert proc.returncode == 0 and report["passes"]
    env = dict(os.environ, FOOL_DIR=str(tmp_path))
    # SIGINT back to its default in the gate: a job started in the background of a non-interactive
    # shell (CI runners, `cmd &`) inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt
    gate = subprocess.Popen(
        gate_cmd(write(tmp_path / "slow", {"slow.py": SLOW}), out, "--jobs", "1", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "pids").exists():
        assert gate.poll() is None and time.monotonic() < deadline, gate.communicate()
        time.sleep(0.1)
    worker, host = map(int, (tmp_path / "pids").read_text().split())
    running = json.loads((out / "verify.json").read_text())
    assert (
        running["state"] == "running" and not running["passes"]
    )  # the stale PASS is gone while it runs
    gate.send_signal(sig)
    stdout, stderr = gate.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while (_alive(worker) or _alive(host)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return (
        gate.returncode,
        stdout,
        stderr,
        json.loads((out / "verify.json").read_text()),
        (out / "verify.md").read_text(),
        (_alive(worker), _alive(host)),
    )


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_gate_leaves_a_fail_report_and_no_worker(tmp_path, sig, code):
    rc, stdout, stderr, report, md, alive = _start_then(tmp_path, sig)
    assert rc == code, stdout + stderr
    assert report["state"] == "interrupted" and not report["passes"]
    assert [o["id"] for o in report["obligations"]] == ["slow.first"]  # what finished is kept
    assert "The gate FAILS: incomplete" in md and "interrupted" in md
    assert "results written so far are kept" not in stderr and "says FAILS (interrupted)" in stderr
    assert alive == (False, False)


def test_a_killed_gate_leaves_an_incomplete_fail_report_and_no_worker(tmp_path):
    rc, _, _, report, md, alive = _start_then(tmp_path, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert report["state"] == "running" and not report["passes"]
    assert "The gate FAILS: incomplete" in md
    assert alive == (False, False)  # the host and its worker died with the gate


# --- selection and collection errors -------------------------------------------------------------


def test_only_matching_nothing_is_an_error_and_replaces_a_pass_report(tmp_path):
    proofs = write(tmp_path / "proofs", {"good.py": GOOD})
    assert verify(proofs, tmp_path / "out")[0].returncode == 0
    proc, report = verify(proofs, tmp_path / "out", "--only", "no.such.*")
    assert proc.returncode == 2 and "matches no obligation" in proc.stderr
    assert report["state"] == "aborted" and not report["passes"]


def test_one_id_in_two_modules_is_an_error(tmp_path):
    proc, report = verify(
        write(tmp_path / "proofs", {"a.py": GOOD, "b.py": GOOD}), tmp_path / "out"
    )
    assert proc.returncode == 2 and "'good.identity' is defined twice" in proc.stderr
    assert not report["passes"]


PATCHES_LPCHECK = (
    HEAD
    + """
import lpcheck.verify.core as core
import lpcheck.verify.engines as engines

_run = core.Obligation.run
# a module that rewrites lpcheck at import: results under another id, or an unknown status
def run(self):
    import dataclasses
    res = _run(self)
    return dataclasses.replace(res, id="someone.else", ok=True) if self.id == "victim.a" else \\
        dataclasses.replace(res, status="passed", ok=True)
core.Obligation.run = run
engines.sympy_equal = lambda lhs, rhs, **kw: Check("sympy", "proved", "patched")
"""
)

VICTIM = (
    HEAD.replace("from lpcheck.verify.engines import sympy_equal, z3_implies\n", "")
    + """
from lpcheck.verify.engines import sympy_equal
@obligation("victim.a", "x = x + 1")
def a():
    return sympy_equal(x, x + 1)

@obligation("victim.b", "x = 2 x")
def b():
    return sympy_equal(x, 2 * x)
"""
)


def test_results_under_another_id_or_status_and_patched_engines_do_not_pass(tmp_path):
    proc, report = verify(
        write(tmp_path / "proofs", {"a_patch.py": PATCHES_LPCHECK, "b_victim.py": VICTIM}),
        tmp_path / "out",
        "--jobs",
        "1",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    r = by_id(report)
    assert (
        r["victim.a"]["status"] == "error"
        and "in place of the result for 'victim.a'" in r["victim.a"]["detail"]
    )
    assert r["victim.b"]["status"] == "error" and "'passed'" in r["victim.b"]["detail"]


# --- --strict and its baseline -------------------------------------------------------------------

GAP = (
    HEAD
    + """
@obligation("gap.claim", "x (x + 1) = x^2 + x")
def claim():
    return sympy_equal(x * (x + 1), x**2 + x)

@finding("gap.known", "a known gap", "gap")
def known():
    return Witness({"v": 1.0}, True, "reproduces")

@finding("gap.note", "a note", "note")
def note():
    return Witness({"v": 2.0}, True, "a note never fails")
"""
)


def test_strict_fails_on_a_gap_unless_the_baseline_accepts_it(tmp_path):
    proofs = write(tmp_path / "proofs", {"gap.py": GAP})
    proc, _ = verify(proofs, tmp_path / "o1", "--strict")
    assert (
        proc.returncode == 1
        and "finding gap.known: reproduced, and not in the baseline" in proc.stdout
    )
    proc, _ = verify(proofs, tmp_path / "o2", "--write-baseline", str(tmp_path / "base.json"))
    assert proc.returncode == 0 and json.loads((tmp_path / "base.json").read_text())[
        "accepted"
    ] == ["gap.known"]
    (tmp_path / "stale.txt").write_text("gap.known\ngap.fixed_long_ago  # no longer in the pack\n")
    proc, report = verify(
        proofs, tmp_path / "o3", "--strict", "--baseline", str(tmp_path / "stale.txt")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["baseline"]["new"] == [] and report["baseline"]["stale"] == ["gap.fixed_long_ago"]
    assert "no longer reproduce (remove them): gap.fixed_long_ago" in proc.stdout


def test_the_builtin_baseline_is_shipped_and_readable():
    from lpcheck.verify.gate import read_baseline

    ids = read_baseline("builtin")
    assert ids and all(i.startswith("F.") for i in ids)


# --- pytest --------------------------------------------------------------------------------------


def pytest_run(cwd, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:warnings",
            "-q",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_pytest_broken_module_is_its_collection_error_and_junit_classes_are_modules(tmp_path):
    write(
        tmp_path / "proofs",
        {
            "good.py": GOOD,
            "raises_at_import.py": CORPUS["raises_at_import.py"],
            "os_exit_at_import.py": CORPUS["os_exit_at_import.py"],
        },
    )
    out = pytest_run(
        tmp_path, "--lpcheck-proofs", "proofs", "--lpcheck-no-builtin", "--junitxml", "j.xml"
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "INTERNALERROR" not in text, text[-3000:]
    assert (
        "ERROR proofs/raises_at_import.py" in text and "ERROR proofs/os_exit_at_import.py" in text
    )
    assert "RuntimeError: broken at import" in text
    write(
        tmp_path / "proofs", {"raises_at_import.py": GAP}
    )  # fixed: the items run, junit classes per module
    (tmp_path / "proofs" / "os_exit_at_import.py").unlink()
    out = pytest_run(
        tmp_path,
        "--lpcheck-proofs",
        "proofs",
        "--lpcheck-no-builtin",
        "--junitxml",
        "j.xml",
        "--lpcheck-only",
        "good.identity,gap.*",
    )
    assert out.returncode == 0 and "4 passed" in out.stdout, out.stdout[-3000:]
    junit = (tmp_path / "j.xml").read_text()
    assert 'classname="proofs.good" name="good.identity"' in junit
    assert 'classname="proofs.raises_at_import" name="gap.known"' in junit  # findings are items too


def test_pytest_strict_finding_items_and_a_selection_that_matches_nothing(tmp_path):
    write(tmp_path / "proofs", {"gap.py": GAP})
    (tmp_path / "base.txt").write_text("gap.known\n")
    args = ["--lpcheck-proofs", "proofs", "--lpcheck-no-builtin", "--lpcheck-only", "gap.*"]
    strict = pytest_run(tmp_path, *args, "--lpcheck-strict")
    assert (
        strict.returncode == 1
        and "1 failed, 2 passed" in strict.stdout
        and "not in the baseline" in strict.stdout
    )
    accepted = pytest_run(tmp_path, *args, "--lpcheck-strict", "--lpcheck-baseline", "base.txt")
    assert accepted.returncode == 0 and "3 passed" in accepted.stdout, accepted.stdout[-2000:]
    nothing = pytest_run(
        tmp_path, "--lpcheck-proofs", "proofs", "--lpcheck-no-builtin", "--lpcheck-only", "no.such"
    )
    assert (
        nothing.returncode == 4
        and "matches no obligation or finding" in nothing.stdout + nothing.stderr
    )
