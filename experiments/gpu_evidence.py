#!/usr/bin/env python3
"""All of lpcheck's GPU evidence in one call (issue 14), planned to end within 8 minutes on one
H200.

A session is lent a GPU only by chance, with 15 minutes of device time in all (the machine's start
included), 10 minutes per command and 8 files back. So one prepared command runs every GPU part in
priority order, each under its own time budget, going on past a part that fails or overruns, and
after every part (and every --pack-every seconds while one runs) rewrites OUT/gpu_evidence.tar.gz
(everything measured so far, atomically: a temporary file, then a rename) and appends to
OUT/log.txt. A call cut off at any moment still returns what it measured. This orchestrator imports
only the standard library (so it can neither hang on CUDA nor import z3, which the device lacks);
every part is a subprocess of an existing script or CLI, in its own process group, killed whole when
its time is up. Each part writes incrementally, so a part stopped at its budget keeps what it did.

The device call (prepare once, in the root of the checkout the session was started in; the data,
33.9 MB, travels in the git-ignored folder .data, well inside the 64 MiB that may travel):

    mkdir -p .data && cp ../shared/data/cifar10_subset.npz .data/ \\
        && echo /.data/ >> "$(git rev-parse --git-path info/exclude)"

    run(command="PYTHONUNBUFFERED=1 python3 experiments/gpu_evidence.py
                 --data .data/cifar10_subset.npz --out $OUT --budget 480",
        carry=[".data"], timeout_s=540)

then here: `python experiments/gpu_evidence.py --unpack <files_at>/gpu_evidence.tar.gz` (into
experiments/results/gpu/, with the call's log, status, environment and a summary of the targets).

The plan (H200, --budget 480). A part may run until the sum of the budgets up to and including it
has passed since the start, so time a part leaves unused goes to the parts after it; the last part
takes whatever is left. Sizes are planned from stated throughput, to be corrected from this call's
log: ResNet-18 on CIFAR at batch 128 trains at 15-30k images/s in bfloat16 autocast with channels
last (the issue), taken as 15k, and at 10k in float32 (an assumption: TF32 convolutions); a probe
checkpoint is n_b + K + n_b = 78 + 32 + 78 forward-backward passes of 128 images (24k images at the
float32 rate, about 2.5 s); a fresh Python process with torch and CUDA costs about 10 s.

| part | budget s | what runs (-> what it writes) |
|---|---|---|
| env | 15 | torch, CUDA, Triton, GPU and source versions; does the GPU path import z3 |
| | | (-> env.json) |
| tests | 60 | `pytest -m gpu` on the files with GPU tests: Triton kernel, optimizers, probe |
| | | (-> tests/) |
| bench | 50 | bench_optim_step.py: fused LPSGDM/LPSGD vs torch fused SGDM/AdamW, ResNet-18/50, |
| | | fp32 and bf16, bytes per step, memory floor from the measured copy bandwidth (-> bench/) |
| estimate-resnet18 | 75 | `lpcheck estimate`, full width, Table 4, 30 epochs, 12 checkpoints, |
| | | K = 32: 2340 steps (~30 s) and 12 probes (~30 s) (-> estimate/resnet18/) |
| estimate-vgg11 | 50 | the same on VGG-11 (-> estimate/vgg11/) |
| probe-cost | 30 | estimate_cost.py, full width: 3 rounds of 188 training steps and one probe |
| | | (144k images, ~15 s): probe against training throughput, target >= 0.8 (-> probe-cost/) |
| table1 | 65 | cifar_train.py: LPSGDM, SGDM, AdamW, Lion (in that order), ResNet-18, 6 epochs, |
| | | seeds 0 and 1: 480k images, ~32 s (-> cifar/table1.*) |
| fig4 | 35 | cifar_train.py: LPSGDM at p_max 2, 4, 6, 9, 6 epochs: 240k images, ~16 s |
| | | (-> cifar/fig4.*) |
| fig1 | 50 | fig1_hessian.py: SGDM vs LPSGDM, 10 epochs, SLQ density and top eigenvalue at 5 |
| | | checkpoints, 64 Hessian-vector products each (-> fig1/) |
| kernel-sweep | 20 | the Triton kernel alone on ResNet-50 at four block sizes and warp counts |
| | | (-> kernel-sweep/) |
| estimate-resnet50 | rest | `lpcheck estimate` on ResNet-50, 15 epochs, 12 checkpoints, K = 32, |
| | | as far as time allows |

Budgets sum to 450 s, leaving 30 s of the 480 for ResNet-50 and 10 s reserved for the last pack;
the device command's timeout (540 s) leaves a minute beyond that.

    # on the GPU machine
    python experiments/gpu_evidence.py --data D --out OUT [--budget 480]
    # CPU, tiny sizes, same path (CI)
    python experiments/gpu_evidence.py --data D --out OUT --dry-run
    # the commands, without running
    python experiments/gpu_evidence.py --plan [--dry-run]
    # results into experiments/results/gpu
    python experiments/gpu_evidence.py --unpack TARBALL [--dest DIR]

Debugging options: --only/--skip NAME,... ; --part-budget NAME=SECONDS (repeatable) ; --fail-part
NAME replaces a part's commands by one that fails (the tests use it to check that the next part
runs). """

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TARBALL = "gpu_evidence.tar.gz"
LOG = "log.txt"
RESERVE_S = 10.0  # kept back from --budget for the last pack and exit
KILL_GRACE_S = 3.0  # SIGTERM, then SIGKILL after this long
# Test files holding GPU tests (marked gpu; tests/test_fused_triton.py marks all its tests gpu on
# CUDA). Named, not collected from tests/: one module importing something the device lacks would
# stop the whole collection (and --continue-on-collection-errors lets the others run if one fails to
# import there). tests/test_gpu_evidence.py checks that every file with a gpu mark is listed.
GPU_TEST_FILES = (
    "tests/test_fused_triton.py",
    "tests/test_optim.py",
    "tests/test_estimate_gpu.py",
    "tests/test_curvature.py",
    "tests/test_rates_problems.py",
    "tests/test_rates_simulation.py",
    "tests/test_methods.py",
    "tests/test_estimate_methods.py",
)
# modules the GPU parts import: none may pull in z3 (not on the device)
GPU_PATH_MODULES = (
    "lpcheck.optim",
    "lpcheck.fused",
    "lpcheck.fused_triton",
    "lpcheck.estimate",
    "lpcheck.estimate.trainer",
    "lpcheck.estimate.cli",
    "lpcheck.training",
    "lpcheck.curvature",
    "lpcheck.baselines",
    "lpcheck.methods",
    "lpcheck.models",
    "lpcheck.data",
    "lpcheck.report",
    "lpcheck.cli",
)


@dataclasses.dataclass
class Part:
    """One unit of the call: commands run in order under one budget (None: whatever time is
    left)."""

    name: str
    budget: float | None
    commands: list
    produces: str
    min_seconds: float = 5.0  # not started with less time than this left


# ---------------------------------------------------------------------------------------------
# the plan


def plan(data: str, work: Path, dry_run: bool) -> list:
    """The parts in priority order, with their commands: full size on CUDA, or tiny on CPU
    (--dry-run)."""
    lp = [PY, "-m", "lpcheck"]
    exp = ROOT / "experiments"
    if dry_run:  # the same commands at toy sizes, one CPU thread each
        dev = ["--device", "cpu"]
        tiny = ["--width", "0.0625", "--train-subset", "256", "--threads", "1"]
        est = [
            *dev,
            "--width",
            "0.0625",
            "--train-subset",
            "128",
            "--batch-size",
            "32",
            "--threads",
            "1",
            "--epochs",
            "1",
            "--checkpoints",
            "2",
            "--samples",
            "2",
            "--resamples",
            "100",
        ]
        bench = [
            *dev,
            "--models",
            "resnet18",
            "--threads",
            "1",
            "--width",
            "0.0625",
            "--warmup",
            "1",
            "--rounds",
            "2",
            "--steps",
            "1",
            "--optimizers",
            "torch SGD momentum foreach,LPSGDM foreach",
        ]
        cost = [
            *dev,
            "--width",
            "0.0625",
            "--train-subset",
            "256",
            "--threads",
            "1",
            "--rounds",
            "1",
            "--samples",
            "2",
        ]
        train = [*dev, *tiny, "--epochs", "1", "--batches-per-epoch", "1"]
        fig1 = [
            *dev,
            *tiny,
            "--epochs",
            "1",
            "--checkpoints",
            "2",
            "--hessian-batches",
            "1",
            "--hessian-batch-size",
            "16",
            "--vectors",
            "1",
            "--lanczos-steps",
            "4",
        ]
        sweep = [
            "--device",
            "cpu",
            "--model",
            "resnet18",
            "--width",
            "0.0625",
            "--max-tensors",
            "4",
            "--reps",
            "1",
            "--configs",
            "8192:8,4096:4",
        ]
        r50 = est
    else:
        dev = ["--device", "cuda"]
        est = [*dev, "--epochs", "30", "--checkpoints", "12", "--samples", "32"]
        bench = [*dev, "--models", "resnet18,resnet50", "--optimizers", ",".join(BENCH_OPTIMIZERS)]
        cost = [*dev, "--width", "1", "--train-subset", "10000", "--rounds", "3", "--samples", "32"]
        train = [*dev, "--amp", "bf16", "--channels-last", "--epochs", "6"]
        fig1 = [
            *dev,
            "--amp",
            "bf16",
            "--epochs",
            "10",
            "--checkpoints",
            "5",
            "--hessian-batches",
            "2",
            "--vectors",
            "1",
            "--lanczos-steps",
            "32",
        ]
        sweep = ["--device", "cuda", "--model", "resnet50"]
        r50 = [*dev, "--epochs", "15", "--checkpoints", "12", "--samples", "32"]
    d = ["--data", data]
    w = work
    parts = [
        Part(
            "env",
            15,
            [[PY, str(Path(__file__).resolve()), "--env", str(w / "env.json")]],
            "torch/CUDA/Triton/GPU versions, source digest, z3 check -> env.json",
        ),
        Part(
            "tests",
            60,
            [
                [
                    PY,
                    "-m",
                    "pytest",
                    "-q",
                    "-o",
                    "addopts=-ra",  # one process: the device's python may lack pytest-xdist
                    "-p",
                    "no:cacheprovider",
                    "-m",
                    "gpu",
                    *GPU_TEST_FILES,
                    "--continue-on-collection-errors",
                    "--junitxml",
                    str(w / "tests" / "junit.xml"),
                ]
            ],
            "pytest -m gpu on the files with GPU tests -> tests/junit.xml",
        ),
        Part(
            "bench",
            50,
            [
                [
                    PY,
                    str(exp / "bench_optim_step.py"),
                    *bench,
                    "--dtype",
                    "float32,bfloat16",
                    "--out",
                    str(w / "bench"),
                ]
            ],
            "optimizer step: fused LPSGDM/LPSGD vs torch fused SGDM/AdamW, ResNet-18/50, "
            "fp32/bf16 -> bench/",
        ),
        Part(
            "estimate-resnet18",
            75,
            [
                [
                    *lp,
                    "estimate",
                    "--model",
                    "resnet18",
                    *d,
                    *est,
                    "--quiet",
                    "--out",
                    str(w / "estimate" / "resnet18"),
                ]
            ],
            "lpcheck estimate, ResNet-18, Table 4 settings -> estimate/resnet18/",
        ),
        Part(
            "estimate-vgg11",
            50,
            [
                [
                    *lp,
                    "estimate",
                    "--model",
                    "vgg11",
                    *d,
                    *est,
                    "--quiet",
                    "--out",
                    str(w / "estimate" / "vgg11"),
                ]
            ],
            "lpcheck estimate, VGG-11, Table 4 settings -> estimate/vgg11/",
        ),
        Part(
            "probe-cost",
            30,
            [[PY, str(exp / "estimate_cost.py"), *d, *cost, "--out", str(w / "probe-cost")]],
            "probe throughput / training throughput -> probe-cost/",
        ),
        # runs go optimizer by optimizer (both seeds each), LPSGDM and SGD-momentum first: a part
        # cut short keeps the comparison that matters most, with its spread over seeds
        Part(
            "table1",
            65,
            [
                [
                    PY,
                    str(exp / "cifar_train.py"),
                    *d,
                    *train,
                    "--optimizers",
                    "lpsgdm,sgdm,adamw,lion",
                    "--seeds",
                    "0,1",
                    "--name",
                    "table1",
                    "--quiet",
                    "--out",
                    str(w / "cifar"),
                ]
            ],
            "Table 1 reduced: LPSGDM/SGDM/AdamW/Lion, ResNet-18, seeds 0 and 1 -> cifar/table1.*",
        ),
        Part(
            "fig4",
            35,
            [
                [
                    PY,
                    str(exp / "cifar_train.py"),
                    *d,
                    *train,
                    "--optimizers",
                    "lpsgdm",
                    "--p-max",
                    "2,4,6,9",
                    "--seeds",
                    "0",
                    "--name",
                    "fig4",
                    "--quiet",
                    "--out",
                    str(w / "cifar"),
                ]
            ],
            "Fig. 4: LPSGDM p_max sweep -> cifar/fig4.*",
        ),
        Part(
            "fig1",
            50,
            [[PY, str(exp / "fig1_hessian.py"), *d, *fig1, "--quiet", "--out", str(w / "fig1")]],
            "Fig. 1: SLQ density and top eigenvalue, SGDM vs LPSGDM -> fig1/",
        ),
        Part(
            "kernel-sweep",
            20,
            [
                [
                    PY,
                    str(ROOT / "benchmarks" / "triton_block_sweep.py"),
                    *sweep,
                    "--out",
                    str(w / "kernel-sweep"),
                ]
            ],
            "the fused Triton kernel alone at several block sizes -> kernel-sweep/",
        ),
        Part(
            "estimate-resnet50",
            None,
            [
                [
                    *lp,
                    "estimate",
                    "--model",
                    "resnet50",
                    *d,
                    *r50,
                    "--quiet",
                    "--out",
                    str(w / "estimate" / "resnet50"),
                ]
            ],
            "lpcheck estimate, ResNet-50, as far as the time left allows -> estimate/resnet50/",
            min_seconds=30,
        ),
    ]
    if dry_run:  # toy sizes, but each part still starts a Python with torch: minutes on a busy CPU
        for p in parts:
            p.budget, p.min_seconds = (
                (DRY_RUN_PART_BUDGET if p.budget is not None else None),
                min(p.min_seconds, 5.0),
            )
    return parts


DRY_RUN_PART_BUDGET = (
    240.0  # a guard against a hang, not a plan: toy parts take seconds of CPU each
)
DRY_RUN_BUDGET = 1800.0
BENCH_OPTIMIZERS = (
    "torch SGD momentum foreach",
    "torch SGD momentum fused",
    "torch AdamW fused",
    "LPSGDM foreach",
    "LPSGDM fused",
    "LPSGDM fused (check_finite=False)",
    "LPSGD fused",
)


def render_plan(parts) -> str:
    lines = []
    for p in parts:
        budget = "rest" if p.budget is None else f"{p.budget:g} s"
        lines.append(f"{p.name} ({budget}): {p.produces}")
        lines += ["    " + shlex.join(c) for c in p.commands]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# running the parts


class Log:
    """OUT/log.txt (appended and flushed line by line, so a killed call keeps it) and stdout."""

    def __init__(self, path: Path, t0: float):
        self.path, self.t0 = path, t0

    def __call__(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {text}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


class Stopped(Exception):
    """The orchestrator itself was told to stop (SIGTERM, SIGINT, SIGHUP)."""


def _on_signal(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def _kill_group(proc) -> None:
    """SIGTERM to the part's whole process group, SIGKILL after KILL_GRACE_S."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; its children may linger in the group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


def _popen(cmd, log_file, env):
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        **group,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_part(part: Part, deadline: float, work: Path, log: Log, pack, pack_every: float) -> dict:
    """Run a part's commands until they end or `deadline` (monotonic seconds) passes; never raises
    for the part's own failures. Returns its status entry."""
    part_log = work / "logs" / f"{part.name}.log"
    part_log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    start, cpu_start = time.monotonic(), _children_cpu()
    status = {
        "name": part.name,
        "budget_s": part.budget,
        "allowed_s": round(deadline - start, 1),
        "commands": [shlex.join(c) for c in part.commands],
        "returncodes": [],
    }
    with open(part_log, "a") as out:
        for cmd in part.commands:
            out.write(f"$ {shlex.join(cmd)}\n")
            out.flush()
            try:
                proc = _popen(cmd, out, env)
            except OSError as e:
                status.update(status="failed", error=f"{type(e).__name__}: {e}")
                break
            next_pack = time.monotonic() + pack_every
            try:
                while True:
                    left = deadline - time.monotonic()
                    try:
                        rc = proc.wait(timeout=max(0.05, min(left, next_pack - time.monotonic())))
                        break
                    except subprocess.TimeoutExpired:
                        if time.monotonic() >= deadline:
                            _kill_group(proc)
                            rc = None
                            break
                        pack(f"{part.name} running")
                        next_pack = time.monotonic() + pack_every
            except BaseException:  # the orchestrator is stopping: take the part down with it
                _kill_group(proc)
                raise
            if rc is None:
                status.update(
                    status="timeout",
                    error=f"stopped at its time limit after {time.monotonic() - start:.1f} s",
                )
                break
            status["returncodes"].append(rc)
            _kill_group(proc)  # anything it left running in its group
            if rc != 0:
                status.update(status="failed", error=f"exit code {rc}: {shlex.join(cmd)}")
                break
        else:
            status["status"] = "ok"
    status["seconds"] = round(time.monotonic() - start, 1)
    status["cpu_seconds"] = round(
        _children_cpu() - cpu_start, 1
    )  # its processes' CPU time, once they ended
    if status["status"] != "ok":
        tail = part_log.read_text(errors="replace").splitlines()[-15:]
        status["log_tail"] = tail
    return status


def run_parts(
    parts, out: Path, work: Path, budget: float, pack_every: float = 60.0, t0=None
) -> list:
    """Run `parts` in order within `budget` seconds (see the module docstring); pack after each."""
    t0 = time.monotonic() if t0 is None else t0
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log = Log(out / LOG, t0)
    statuses = []
    end_all = t0 + budget - RESERVE_S

    def pack(after):
        write_status(work, statuses, parts, budget, t0)
        n = pack_results(work, out / TARBALL, extra={LOG: out / LOG})
        log(f"packed {TARBALL} ({n} files) after {after}")

    log(f"gpu_evidence: {len(parts)} parts, budget {budget:g} s, out {out}, work {work}")
    write_status(work, statuses, parts, budget, t0)
    cumulative = 0.0
    handlers = {
        s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        for part in parts:
            cumulative += part.budget if part.budget is not None else budget
            deadline = min(t0 + cumulative, end_all)
            left = deadline - time.monotonic()
            if left < part.min_seconds:
                statuses.append(
                    {
                        "name": part.name,
                        "budget_s": part.budget,
                        "status": "skipped",
                        "error": f"only {max(left, 0):.1f} s left (needs {part.min_seconds:g})",
                    }
                )
                log(f"part {part.name}: skipped, only {max(left, 0):.1f} s left")
                pack(part.name)
                continue
            log(
                f"part {part.name}: start (budget "
                f"{part.budget if part.budget is not None else 'rest'}, may run {left:.0f} s)"
            )
            status = run_part(part, deadline, work, log, pack, pack_every)
            statuses.append(status)
            log(
                f"part {part.name}: {status['status']} in {status['seconds']} s (CPU "
                f"{status['cpu_seconds']} s)"
                + (f" ({status['error']})" if "error" in status else "")
            )
            for line in status.get("log_tail", []):
                log(f"    | {line}")
            pack(part.name)
    except Stopped as e:
        statuses.append({"name": "orchestrator", "status": "stopped", "error": f"received {e}"})
        log(f"gpu_evidence: stopped by {e}; packing what was measured")
        pack("stop")
        raise
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    log("gpu_evidence: done; " + ", ".join(f"{s['name']} {s['status']}" for s in statuses))
    return statuses


def write_status(work: Path, statuses, parts, budget, t0) -> None:
    data = {
        "budget_s": budget,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "plan": [
            {
                "name": p.name,
                "budget_s": p.budget,
                "produces": p.produces,
                "commands": [shlex.join(c) for c in p.commands],
            }
            for p in parts
        ],
        "parts": statuses,
    }
    _atomic_write(work / "status.json", json.dumps(data, indent=1).encode())
    _atomic_write(work / "summary.md", render_summary(work, data).encode())


def _atomic_write(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


MAX_MEMBER_BYTES = (
    4 << 20
)  # checkpoints (state.pt) and anything this large stay behind: 16 MiB come back


def pack_results(work: Path, dest: Path, extra=None) -> int:
    """Rewrite `dest` (a .tar.gz of work/, minus files over MAX_MEMBER_BYTES and *.pt) atomically:
    it is built in a temporary file beside it and renamed over it, so `dest` is always a whole
    archive (the last one) even if this process dies while packing. Returns the number of files."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    n = 0
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            members = sorted(
                p for p in work.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
            for path in members:
                if path.suffix == ".pt" or path.stat().st_size > MAX_MEMBER_BYTES:
                    continue
                tar.add(path, arcname=str(path.relative_to(work)))
                n += 1
            for name, path in (extra or {}).items():
                if Path(path).is_file():
                    tar.add(path, arcname=name)
                    n += 1
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


# ---------------------------------------------------------------------------------------------
# what the parts produced, in a few lines (summary.md, also printed at the end of the call)


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _tests_summary(work: Path):
    path = work / "tests" / "junit.xml"
    if not path.exists():
        return None
    try:
        suites = ElementTree.parse(path).getroot().iter("testsuite")
    except ElementTree.ParseError as e:
        return {"error": str(e)}
    counts = {k: 0 for k in ("tests", "failures", "errors", "skipped")}
    for s in suites:
        for k in counts:
            counts[k] += int(s.get(k, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    # AUTO_ON_CUDA may be switched on only when GPU tests ran and none failed (issue 14, step 5)
    counts["gpu_tests_passed"] = (
        counts["passed"] > 0 and counts["failures"] == counts["errors"] == 0
    )
    return counts


def _bench_summary(work: Path):
    rows = []
    for path in sorted((work / "bench").glob("*.json")):
        data = _read(path) or {}
        for model, entry in (data.get("models") or {}).items():
            res = entry.get("results", {})
            for name in ("LPSGDM fused", "LPSGDM fused (check_finite=False)", "LPSGD fused"):
                if name in res:
                    r = res[name]
                    rows.append(
                        {
                            "file": path.name,
                            "model": model,
                            "dtype": entry.get("dtype"),
                            "optimizer": name,
                            "median_ms": r.get("median_ms"),
                            "x_torch_sgdm_fused": r.get("x torch SGD momentum fused"),
                            "x_floor": r.get("x floor"),
                        }
                    )
    return rows


def _estimate_summary(work: Path):
    out = {}
    for path in sorted((work / "estimate").glob("*/constants.json")):
        data = _read(path) or {}
        fit = data.get("fit") or {}
        a5, a6 = fit.get("assumption5") or {}, fit.get("assumption6") or {}
        out[path.parent.name] = {
            "complete": data.get("complete"),
            "probes": len(data.get("records") or []),
            "planned": len((data.get("run") or {}).get("probe_steps") or []),
            "c1_lcb": a5.get("c1"),
            "c1_tilde_lcb": a6.get("c1"),
            "L": (fit.get("smoothness") or {}).get("L"),
            "test_accuracy": data.get("test_accuracy"),
        }
    return out


def _targets(work: Path, data: dict, tests, bench, cost) -> list:
    """Issue 14's targets, each with the measured value (None where not measured)."""
    r50 = next(
        (
            r
            for r in bench
            if r["file"] == "cuda.json"
            and r["model"] == "resnet50"
            and r["optimizer"] == "LPSGDM fused"
        ),
        {},
    )
    rows = [
        (
            "LPSGDM fused / torch fused SGDM, ResNet-50 float32",
            r50.get("x_torch_sgdm_fused"),
            "<= 1.0",
        ),
        ("LPSGDM fused / memory floor, ResNet-50 float32", r50.get("x_floor"), "<= 1.5"),
        ("probe / training throughput", (cost or {}).get("ratio_probe_over_train"), ">= 0.8"),
        ("whole call, seconds", data["elapsed_s"], "<= 480"),
    ]
    out = []
    for name, value, bound in rows:
        op, limit = bound.split()
        met = (
            None
            if value is None
            else (value <= float(limit) if op == "<=" else value >= float(limit))
        )
        out.append({"target": name, "measured": value, "bound": bound, "met": met})
    out.append(
        {
            "target": "GPU tests ran and passed (then AUTO_ON_CUDA may be switched on)",
            "measured": tests,
            "bound": "all passed",
            "met": (tests or {}).get("gpu_tests_passed"),
        }
    )
    return out


def render_summary(work: Path, data: dict) -> str:
    lines = [
        "# GPU evidence: summary\n",
        f"Budget {data['budget_s']:g} s, elapsed {data['elapsed_s']} s.\n",
        "| part | status | seconds | budget s | note |",
        "|---|---|---|---|---|",
    ]
    for s in data["parts"]:
        lines.append(
            f"| {s['name']} | {s['status']} | {s.get('seconds', '')} | "
            f"{s.get('budget_s') or 'rest'} | {s.get('error', '')} |"
        )
    tests, bench, cost = (
        _tests_summary(work),
        _bench_summary(work),
        _read(work / "probe-cost" / "cost.json"),
    )
    sections = {
        "targets": _targets(work, data, tests, bench, cost),
        "tests": tests,
        "bench (fused rows)": bench,
        "estimate": _estimate_summary(work),
        "probe cost": cost,
    }
    if cost:
        sections["probe cost"] = {
            k: cost.get(k)
            for k in (
                "ratio_probe_over_train",
                "target",
                "meets_target",
                "model",
                "width",
                "median",
            )
        }
    for title, value in sections.items():
        if value:
            lines += ["", f"## {title}", "```", json.dumps(value, indent=1, default=str), "```"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# the environment part (run as a subprocess: it imports torch) and the source digest


def source_digest(root: Path = ROOT) -> str:
    """sha256 over the Python sources that the parts run (lpcheck/, proofs/, experiments/, tests/,
    benchmarks/), path and content: --unpack compares it with the checkout it unpacks into."""
    h = hashlib.sha256()
    for top in ("lpcheck", "proofs", "experiments", "tests", "benchmarks"):
        for path in sorted((root / top).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def write_env(path: Path) -> int:
    """env.json: versions, device, GPU, Triton, and whether the GPU path imports z3."""
    t = time.perf_counter()
    import platform

    import torch

    info = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "source_digest": source_digest(),
        "hostname": platform.node(),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": props.name,
            "memory_GiB": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "capability": f"{props.major}.{props.minor}",
            "cudnn": torch.backends.cudnn.version(),
        }
        try:
            smi = subprocess.run(
                [
                    "nvidia-smi",
                    "--query-gpu=name,driver_version,clocks.sm,clocks.mem,power.limit",
                    "--format=csv",
                ],
                capture_output=True,
                text=True,
                timeout=20,
            )
            info["nvidia_smi"] = smi.stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            info["nvidia_smi"] = f"unavailable: {e}"
    import importlib
    import importlib.util

    sys.path.insert(0, str(ROOT))
    for name in GPU_PATH_MODULES:
        importlib.import_module(name)
    info["z3_imported_by_gpu_path"] = "z3" in sys.modules
    from lpcheck import fused

    info["fused_auto_on_cuda"] = fused.AUTO_ON_CUDA
    try:
        info["z3_installed"] = importlib.util.find_spec("z3") is not None
    except (ImportError, ValueError):
        info["z3_installed"] = False
    info["seconds"] = round(time.perf_counter() - t, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(info, indent=1).encode())
    print(json.dumps(info, indent=1))
    return 1 if info["z3_imported_by_gpu_path"] else 0


# ---------------------------------------------------------------------------------------------
# unpacking the results here


def unpack(tarball: Path, dest: Path, force: bool = False) -> int:
    """Extract the call's tarball into dest (refusing absolute paths and '..'), and record what was
    unpacked and whether the sources it ran are this checkout's."""
    if not tarball.is_file():
        raise FileNotFoundError(f"--unpack: no file {tarball}")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise ValueError(f"--dest {dest} is not empty: pass --force to unpack over it")
    with tarfile.open(tarball, "r:gz") as tar:
        for m in tar.getmembers():
            if (
                m.name.startswith("/")
                or ".." in Path(m.name).parts
                or not (m.isfile() or m.isdir())
            ):
                raise ValueError(f"--unpack: refusing member {m.name!r} of {tarball}")
        dest.mkdir(parents=True, exist_ok=True)
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    env = _read(dest / "env.json") or {}
    here = source_digest()
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    record = {
        "tarball": str(tarball),
        "sha256": hashlib.sha256(tarball.read_bytes()).hexdigest(),
        "unpacked": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device_source_digest": env.get("source_digest"),
        "this_checkout_digest": here,
        "this_checkout_commit": commit or None,
        "sources_match_this_checkout": env.get("source_digest") == here,
    }
    (dest / "unpacked.json").write_text(json.dumps(record, indent=1) + "\n")
    summary = dest / "summary.md"
    print(
        summary.read_text()
        if summary.exists()
        else f"unpacked {tarball} into {dest} (no summary.md)"
    )
    print(json.dumps(record, indent=1))
    return 0


# ---------------------------------------------------------------------------------------------


def _names(text, known, flag):
    names = [n for n in (text or "").split(",") if n]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"{flag}: unknown part(s) {unknown}; parts are {list(known)}")
    return names


def parse(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", help="CIFAR .npz (on the device: .data/cifar10_subset.npz, carried)")
    ap.add_argument("--out", help="where gpu_evidence.tar.gz and log.txt go (on the device: $OUT)")
    ap.add_argument(
        "--work", help="where the parts write, outside OUT (default: a new folder in the temp dir)"
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for the whole call (default 480; dry 1800)",
    )
    ap.add_argument(
        "--dry-run", action="store_true", help="CPU, tiny sizes, the same parts and code path"
    )
    ap.add_argument("--only", default=None, help="comma-separated parts to run (default all)")
    ap.add_argument("--skip", default=None, help="comma-separated parts to leave out")
    ap.add_argument(
        "--part-budget",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="override one part's budget (repeatable)",
    )
    ap.add_argument("--fail-part", default=None, metavar="NAME", help="debug: make this part fail")
    ap.add_argument(
        "--pack-every", type=float, default=60.0, help="repack while a part runs, every N s"
    )
    ap.add_argument(
        "--plan", action="store_true", help="print the parts and their commands, run nothing"
    )
    ap.add_argument("--env", default=None, help=argparse.SUPPRESS)  # the env part's own entry point
    ap.add_argument(
        "--unpack", default=None, metavar="TARBALL", help="extract a call's results here"
    )
    ap.add_argument(
        "--dest", default=str(ROOT / "experiments" / "results" / "gpu"), help="for --unpack"
    )
    ap.add_argument("--force", action="store_true", help="--unpack over a non-empty --dest")
    return ap.parse_args(argv)


def _part_budgets(items, known) -> dict:
    """{part: seconds} from --part-budget NAME=SECONDS items, each name a known part and seconds >
    0."""
    overrides = {}
    for item in items:
        name, _, seconds = item.partition("=")
        _names(name, known, "--part-budget")
        try:
            overrides[name] = float(seconds)
        except ValueError:
            raise ValueError(f"--part-budget takes NAME=SECONDS, got {item!r}") from None
        if not overrides[name] > 0:
            raise ValueError(f"--part-budget {name}: seconds must be > 0, got {seconds}")
    return overrides


def _check_paths(args, out, work) -> None:
    """--data is a file, --out is given, and --work is a fresh folder outside --out."""
    if not args.data or not args.out:
        raise ValueError("--data and --out are required (or --plan, --unpack)")
    if not Path(args.data).is_file():
        raise FileNotFoundError(f"--data: no file {args.data}")
    if work.resolve() == out.resolve() or out.resolve() in work.resolve().parents:
        raise ValueError(
            f"--work {work} must lie outside --out {out}: only {TARBALL} and {LOG} go back"
        )
    if work.exists() and any(work.iterdir()):
        raise ValueError(
            f"--work {work} is not empty: give a fresh folder (earlier results would mix in)"
        )


def main(argv=None) -> int:
    args = parse(argv)
    if args.env:
        return write_env(Path(args.env))
    if args.unpack:
        return unpack(Path(args.unpack), Path(args.dest), args.force)
    budget = args.budget if args.budget is not None else (DRY_RUN_BUDGET if args.dry_run else 480.0)
    if not budget > RESERVE_S:
        raise ValueError(f"--budget must be > {RESERVE_S:g} seconds, got {budget}")
    if not args.pack_every > 0:
        raise ValueError(f"--pack-every must be > 0 seconds, got {args.pack_every}")
    out = Path(args.out) if args.out else None
    work = (
        Path(args.work)
        if args.work
        else Path(tempfile.gettempdir()) / f"gpu_evidence_{os.getpid()}"
    )
    parts = plan(
        str(Path(args.data).resolve()) if args.data else "DATA", work.resolve(), args.dry_run
    )
    known = [p.name for p in parts]
    only, skip = _names(args.only, known, "--only"), _names(args.skip, known, "--skip")
    overrides = _part_budgets(args.part_budget, known)
    if args.fail_part:
        _names(args.fail_part, known, "--fail-part")
    parts = [p for p in parts if (not only or p.name in only) and p.name not in skip]
    for p in parts:
        if p.name in overrides:
            p.budget = overrides[p.name]
        if p.name == args.fail_part:
            p.commands = [
                [PY, "-c", "import sys; sys.exit('gpu_evidence: injected failure (--fail-part)')"]
            ]
    if args.plan:
        print(render_plan(parts))
        return 0
    _check_paths(args, out, work)
    try:
        statuses = run_parts(parts, out, work, budget, args.pack_every)
    except Stopped:
        return 143
    print((work / "summary.md").read_text())
    return 1 if any(s["status"] == "failed" for s in statuses) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:
        print(f"gpu_evidence.py: error: {e}", file=sys.stderr)
        sys.exit(2)
