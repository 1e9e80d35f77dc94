"""experiments/gpu_evidence.py: the one GPU call, checked on CPU so that it cannot rot between the
sessions that have a GPU. The dry run is the real plan at toy sizes; the scheduling (budgets,
failures, the atomic tarball) is checked on small synthetic parts, in this process."""

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "gpu_evidence.py"
_spec = importlib.util.spec_from_file_location("gpu_evidence", SCRIPT)
ge = importlib.util.module_from_spec(_spec)
sys.modules["gpu_evidence"] = ge  # dataclasses look their module up there
_spec.loader.exec_module(ge)
PY = sys.executable


def members(tarball):
    with tarfile.open(tarball, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def read_member(tarball, name):
    with tarfile.open(tarball, "r:gz") as tar:
        return tar.extractfile(name).read().decode()


@pytest.fixture(scope="module")
def own_tmp():
    """A folder outside pytest's basetemp, which other pytest sessions of this user may rotate away
    during the dry run's minutes."""
    path = Path(tempfile.mkdtemp(prefix="gpu_evidence_test_"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def tiny_npz(own_tmp):
    rng = np.random.default_rng(0)
    path = own_tmp / "tiny_cifar.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8),
        y_train=rng.integers(0, 10, 256),
        x_test=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8),
        y_test=rng.integers(0, 10, 64),
    )
    return path


# --- the real plan, at toy sizes on CPU ----------------------------------------------------------


@pytest.fixture(scope="module")
def dry_run(tiny_npz, own_tmp):
    """One dry run of the whole plan, with the Fig. 4 part made to fail (it must not stop the
    rest)."""
    out, work = own_tmp / "out", own_tmp / "work"
    t = time.monotonic()
    proc = subprocess.run(
        [
            PY,
            str(SCRIPT),
            "--dry-run",
            "--data",
            str(tiny_npz),
            "--out",
            str(out),
            "--work",
            str(work),
            "--fail-part",
            "fig4",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return proc, out, work, time.monotonic() - t


def test_dry_run_runs_every_part_and_returns_two_files(dry_run):
    proc, out, work, seconds = dry_run
    assert proc.returncode == 1, (
        proc.stdout[-3000:] + proc.stderr[-3000:]
    )  # 1: a part (fig4) failed
    assert sorted(p.name for p in out.iterdir()) == [
        "gpu_evidence.tar.gz",
        "log.txt",
    ]  # no temporary left
    status = json.loads(read_member(out / "gpu_evidence.tar.gz", "status.json"))
    by_name = {s["name"]: s for s in status["parts"]}
    assert [s["name"] for s in status["parts"]] == [p["name"] for p in status["plan"]]
    assert by_name["fig4"]["status"] == "failed" and "injected failure" in "\n".join(
        by_name["fig4"]["log_tail"]
    )
    failed = {
        n: s.get("log_tail") for n, s in by_name.items() if s["status"] != "ok" and n != "fig4"
    }
    assert not failed, failed
    names = members(out / "gpu_evidence.tar.gz")
    for expected in (
        "env.json",
        "tests/junit.xml",
        "bench/cpu.json",
        "bench/cpu-bfloat16.json",
        "estimate/resnet18/constants.json",
        "estimate/vgg11/constants.json",
        "probe-cost/cost.json",
        "cifar/table1.json",
        "fig1/fig1.json",
        "kernel-sweep/sweep.json",
        "estimate/resnet50/constants.json",
        "summary.md",
        "log.txt",
        "logs/fig1.log",
    ):
        assert expected in names, (expected, sorted(names))
    assert not any(n.endswith(".pt") for n in names)  # checkpoints stay behind
    table1 = json.loads(read_member(out / "gpu_evidence.tar.gz", "cifar/table1.json"))
    assert sorted(r["id"] for r in table1["runs"]) == sorted(
        f"{o}-s{s}" for o in ("sgdm", "adamw", "lion", "lpsgdm-p6") for s in (0, 1)
    )
    env = json.loads(read_member(out / "gpu_evidence.tar.gz", "env.json"))
    assert env["z3_imported_by_gpu_path"] is False and env["source_digest"] == ge.source_digest()


def test_dry_run_packs_after_every_part_and_logs_each(dry_run):
    proc, out, work, seconds = dry_run
    log = (out / "log.txt").read_text()
    plan = [p.name for p in ge.plan("D", work, dry_run=True)]
    done = re.findall(r"part (\S+): (ok|failed|timeout|skipped)", log)
    assert [n for n, _ in done] == plan
    packs = re.findall(r"packed gpu_evidence\.tar\.gz \((\d+) files\) after (\S+)$", log, re.M)
    assert [name for _, name in packs if name in plan] == plan  # one pack right after each part
    assert all(
        int(a) <= int(b) for (a, _), (b, _) in zip(packs, packs[1:])
    )  # results only accumulate
    # each pack follows its part's line
    for name in plan:
        assert log.index(f"part {name}: ") < log.index(f"after {name}\n")


def test_dry_run_is_toy_sized(dry_run):
    # each part is a fresh Python with torch (about 2.5 s of CPU here) and a toy run: wall time on a
    # busy 2-core machine swings with other processes, CPU time does not
    proc, out, work, seconds = dry_run
    status = json.loads(read_member(out / "gpu_evidence.tar.gz", "status.json"))
    cpu = sum(s.get("cpu_seconds", 0) for s in status["parts"])
    assert cpu < 120, [(s["name"], s.get("cpu_seconds")) for s in status["parts"]]


# --- scheduling, on synthetic parts ---------------------------------------------------------------


def _py(code):
    return [PY, "-c", code]


def test_an_overrunning_part_is_stopped_with_its_children_and_the_next_part_runs(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    sleepy = _py(
        "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
        f"time.sleep(120)']); open({str(pidfile)!r}, 'w').write(str(p.pid)); print('started', "
        "flush=True); time.sleep(120)"
    )
    parts = [
        ge.Part("sleepy", 2.0, [sleepy], "sleeps", min_seconds=0.5),
        ge.Part("after", 30, [_py("print('ran')")], ""),
    ]
    t = time.monotonic()
    statuses = ge.run_parts(parts, tmp_path / "out", tmp_path / "work", budget=100, pack_every=0.5)
    assert time.monotonic() - t < 2.0 + ge.KILL_GRACE_S + 10
    assert [s["status"] for s in statuses] == ["timeout", "ok"]
    assert 2.0 <= statuses[0]["seconds"] < 2.0 + ge.KILL_GRACE_S + 5
    pid = int(pidfile.read_text())
    time.sleep(0.5)
    assert not _alive(pid), "the part's child outlived it"
    log = (tmp_path / "out" / "log.txt").read_text()
    assert (
        "part sleepy: timeout" in log
        and "stopped at its time limit" in log
        and "part after: ok" in log
    )
    while_running = log.split("part sleepy: start")[1].split("part sleepy: timeout")[0]
    assert "packed gpu_evidence.tar.gz" in while_running  # --pack-every while the part ran
    assert "ran" in read_member(tmp_path / "out" / "gpu_evidence.tar.gz", "logs/after.log")


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"  # a zombie has ended


def test_a_failing_part_is_logged_and_the_next_part_runs(tmp_path):
    parts = [
        ge.Part(
            "bad",
            30,
            [_py("print('about to fail'); raise SystemExit(3)"), _py("print('never')")],
            "fails",
        ),
        ge.Part("good", 30, [_py("print('fine')")], "works"),
    ]
    statuses = ge.run_parts(parts, tmp_path / "out", tmp_path / "work", budget=100)
    assert [s["status"] for s in statuses] == ["failed", "ok"]
    assert statuses[0]["returncodes"] == [3] and "exit code 3" in statuses[0]["error"]
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "part bad: failed" in log and "| about to fail" in log and "never" not in log
    assert "fine" in read_member(tmp_path / "out" / "gpu_evidence.tar.gz", "logs/good.log")


def test_time_a_part_leaves_goes_to_the_next_and_a_part_without_time_is_skipped(tmp_path):
    parts = [
        ge.Part("quick", 20, [_py("pass")], "", min_seconds=0.1),
        ge.Part("long", 1, [_py("import time; time.sleep(3)")], "", min_seconds=0.1),
        ge.Part("starved", 5, [_py("pass")], "", min_seconds=5),
    ]
    statuses = ge.run_parts(parts, tmp_path / "out", tmp_path / "work", budget=8 + ge.RESERVE_S)
    # "long" (budget 1 s) may use what "quick" left: it runs until 8 s (budget - reserve) after the
    # start, so its 3 s fit; then less than "starved"'s 5 s minimum is left
    assert [s["status"] for s in statuses] == ["ok", "ok", "skipped"]
    assert statuses[1]["allowed_s"] > 5 and statuses[1]["seconds"] >= 3
    assert "only" in statuses[2]["error"]


def test_pack_after_every_part_holds_that_part(tmp_path, monkeypatch):
    seen = []
    real = ge.pack_results

    def spy(work, dest, extra=None):
        n = real(work, dest, extra)
        seen.append(set(members(dest)))
        return n

    monkeypatch.setattr(ge, "pack_results", spy)
    parts = [ge.Part(f"p{i}", 30, [_py(f"print('part {i}')")], "") for i in range(3)]
    ge.run_parts(parts, tmp_path / "out", tmp_path / "work", budget=100)
    assert len(seen) == 3
    for i, names in enumerate(seen):
        assert {
            f"logs/p{j}.log" for j in range(i + 1)
        } <= names and f"logs/p{i + 1}.log" not in names
        assert {"status.json", "summary.md", "log.txt"} <= names


def test_the_tarball_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    work, dest = tmp_path / "work", tmp_path / "out" / "r.tar.gz"
    work.mkdir()
    dest.parent.mkdir()
    (work / "a.json").write_text('{"a": 1}')
    ge.pack_results(work, dest)
    (work / "b.json").write_text('{"b": 2}')
    (work / "c.json").write_text('{"c": 3}')
    calls = []
    real_add = tarfile.TarFile.add

    def dying_add(self, name, *a, **k):  # the packer dies after writing one member
        calls.append(name)
        if len(calls) > 1:
            raise KeyboardInterrupt("killed while packing")
        return real_add(self, name, *a, **k)

    monkeypatch.setattr(tarfile.TarFile, "add", dying_add)
    with pytest.raises(KeyboardInterrupt):
        ge.pack_results(work, dest)
    assert set(members(dest)) == {"a.json"}  # the previous archive, whole
    assert sorted(p.name for p in dest.parent.iterdir()) == ["r.tar.gz"]  # no temporary left behind


def test_a_stop_signal_packs_and_kills_the_running_part(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    code = (
        "import importlib.util, sys; s = importlib.util.spec_from_file_location('g', "
        f"{str(SCRIPT)!r}); g = importlib.util.module_from_spec(s); sys.modules['g'] = g; "
        "s.loader.exec_module(g); parts = [g.Part('slow', 100, [[sys.executable, '-c', 'import "
        f"time; time.sleep(100)']], '')]; g.run_parts(parts, g.Path({str(out)!r}), "
        f"g.Path({str(work)!r}), 200)"
    )
    proc = subprocess.Popen(
        [PY, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (out / "log.txt").exists() or "part slow: start" not in (out / "log.txt").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.terminate()
    proc.communicate(timeout=30)
    log = (out / "log.txt").read_text()
    assert "stopped by SIGTERM" in log and "after stop" in log
    status = json.loads(read_member(out / "gpu_evidence.tar.gz", "status.json"))
    assert status["parts"][-1] == {
        "name": "orchestrator",
        "status": "stopped",
        "error": "received SIGTERM",
    }


# --- the plan itself ------------------------------------------------------------------------------


def test_every_test_file_with_gpu_tests_is_run_on_the_device():
    marked = {
        f"tests/{p.name}"
        for p in (ROOT / "tests").glob("test_*.py")
        if re.search(r"mark\.gpu\b|\[pytest\.mark\.gpu\]", p.read_text())
    }
    assert marked <= set(ge.GPU_TEST_FILES), marked - set(ge.GPU_TEST_FILES)
    assert all((ROOT / f).is_file() for f in ge.GPU_TEST_FILES)


def test_the_full_plan_fits_480_seconds_and_matches_the_docstring():
    parts = ge.plan("D", Path("/w"), dry_run=False)
    assert sum(p.budget for p in parts if p.budget is not None) + ge.RESERVE_S <= 480
    assert parts[-1].budget is None and all(p.budget is not None for p in parts[:-1])
    rows = dict(re.findall(r"^\| (\S+) \| (\d+|rest) \|", ge.__doc__, re.M))
    assert rows == {p.name: "rest" if p.budget is None else f"{p.budget:g}" for p in parts}
    cmds = " ".join(" ".join(c) for p in parts for c in p.commands)
    assert "--device cpu" not in cmds and "cuda" in cmds and "z3" not in cmds
    est = next(p for p in parts if p.name == "estimate-resnet18").commands[0]
    assert (
        int(est[est.index("--checkpoints") + 1]) >= 12
        and int(est[est.index("--samples") + 1]) >= 32
    )


def test_the_gpu_path_imports_no_z3():
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {ge.GPU_PATH_MODULES!r}]; "
        "print(sorted(m for m in sys.modules if m == 'z3' or m.startswith('z3.')))"
    )
    out = subprocess.run(
        [PY, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


# --- unpacking ------------------------------------------------------------------------------------


def test_unpack_extracts_and_records_provenance(tmp_path):
    ge.run_parts(
        [ge.Part("p", 30, [_py("print('x')")], "")], tmp_path / "out", tmp_path / "work", budget=60
    )
    dest = tmp_path / "dest"
    assert (
        ge.main(["--unpack", str(tmp_path / "out" / "gpu_evidence.tar.gz"), "--dest", str(dest)])
        == 0
    )
    assert (dest / "logs" / "p.log").read_text().strip().endswith("x")
    record = json.loads((dest / "unpacked.json").read_text())
    assert len(record["sha256"]) == 64 and record["this_checkout_digest"] == ge.source_digest()
    with pytest.raises(ValueError, match="not empty"):
        ge.main(["--unpack", str(tmp_path / "out" / "gpu_evidence.tar.gz"), "--dest", str(dest)])


def test_unpack_refuses_paths_outside_the_destination(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="refusing member '../escaped.txt'"):
        ge.main(["--unpack", str(evil), "--dest", str(tmp_path / "d")])
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--part-budget", "tests=abc"], "--part-budget takes NAME=SECONDS"),
        (["--part-budget", "tests=-1"], "seconds must be > 0"),
        (["--only", "tests,nope"], "--only: unknown part"),
        (["--fail-part", "nope"], "--fail-part: unknown part"),
        (["--budget", "5"], "--budget must be > 10"),
        (["--pack-every", "0"], "--pack-every must be > 0"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, tiny_npz, args, message):
    out = subprocess.run(
        [PY, str(SCRIPT), "--data", str(tiny_npz), "--out", str(tmp_path / "o"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "o").exists()


def test_missing_data_and_a_work_folder_inside_out_are_refused(tmp_path, tiny_npz):
    with pytest.raises(FileNotFoundError, match="--data: no file"):
        ge.main(["--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="must lie outside --out"):
        ge.main(
            [
                "--data",
                str(tiny_npz),
                "--out",
                str(tmp_path / "o"),
                "--work",
                str(tmp_path / "o" / "w"),
            ]
        )
    assert not (tmp_path / "o").exists()
