"""`lpcheck estimate`: a tiny end-to-end run, resume after an interruption, clear errors."""

import json
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import sentinels
from lpcheck import cli
from lpcheck.estimate import cli as estimate_cli
from lpcheck.estimate import render, trainer
from lpcheck.estimate.fit import fit_run
from lpcheck.estimate.probe import Probe


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (128, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(128) % 10,
        x_test=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(40) % 10,
    )
    return path


def _argv(npz, out, *extra):
    return [
        "estimate",
        "--model",
        "resnet18",
        "--width",
        "0.0625",
        "--data",
        str(npz),
        "--batch-size",
        "32",
        "--epochs",
        "2",
        "--checkpoints",
        "3",
        "--samples",
        "3",
        "--resamples",
        "200",
        "--threads",
        "1",
        "--warmup-epochs",
        "0.5",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def full_run(npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    assert cli.main(_argv(npz, out)) == 0
    return out


def _load(out):
    return json.loads((out / "constants.json").read_text())


def test_help_explains_the_verb():
    sub = cli.build_parser()._subparsers._group_actions[0].choices["estimate"]
    text = sub.format_help()
    for words in ("Assumption 5", "eq. 43-44", "--resume", "Table 4", "--checkpoints"):
        assert words in text


def test_a_tiny_run_writes_the_report(full_run):
    d = _load(full_run)
    for name in ("constants.json", "constants.md", "constants.png", "frontier.png", "state.pt"):
        assert (full_run / name).stat().st_size > 0
    assert d["complete"] and [r["step"] for r in d["records"]] == d["run"]["probe_steps"] == [
        0,
        2,
        5,
    ]
    assert (
        d["run"]["T"] == 8 and d["config"]["lr"] == 0.001 and d["config"]["weight_decay"] == 0.01
    )  # Table 4
    assert [r["p"] for r in d["records"]] == [6.0, 6.0, 2.0]  # eq. 19 with S = 2
    assert d["records"][0]["lr"] == pytest.approx(0.001 * 0.1)  # the warm-up starts at 0.1 lr
    f = d["fit"]
    assert f["sample_sizes"]["checkpoints"] == 3 and f["sample_sizes"]["K"] == [3, 3, 3]
    assert f["assumption5"]["c1"] <= f["assumption5"]["estimate"]["c1"]
    assert f["lr_max"] == pytest.approx(0.001)  # the schedule's peak, reached after the warm-up
    assert (
        f["lr_source"] == "the T per-step lrs (lr_used), largest at step 2"
    )  # the trainer passes its schedule
    assert (
        f["smoothness"]["pairs"] == 5
    )  # a step pair per checkpoint, a trajectory pair from the second on
    assert d["provenance"]["versions"]["torch"] == torch.__version__ and d["provenance"]["command"]
    md = (full_run / "constants.md").read_text()
    assert "c1 (lower confidence bound)" in md and "step cap" in md and "Command:" in md


def test_the_tiny_run_reports_no_clamp_or_sentinel(full_run):
    """Every number in constants.json/.md and the summary line is a measurement: nothing like the
    1e-300 c3 and 3e296 step cap a grid search used to print (the best pair has c3 > 0, so the
    caps are real numbers here)."""
    d = _load(full_run)
    assert sentinels.in_json(d) == []
    assert sentinels.in_text((full_run / "constants.md").read_text()) == []
    line = estimate_cli.summary(d["fit"])
    assert sentinels.in_text(line) == [] and "peak lr 0.001" in line
    for key in ("assumption5", "assumption6"):
        a = d["fit"][key]
        assert a["c3"] > 1e-6 and a["step_cap"] == pytest.approx(
            a["c1"] / (d["fit"]["smoothness"]["L"] * a["c3"])
        )
        assert a["lr_within_cap"] == (0.001 <= a["step_cap"])
    assert d["fit"]["delta_from"]["source"].startswith("the default")


def test_no_number_prints_as_none_with_its_reason(full_run):
    """A fit with no cap (c3 -> 0) and no L: the Markdown and the summary line say 'none
    (reason)'."""
    d = _load(full_run)
    rec = dict(
        d["records"][0], grad_sq=0.0, pairs=[]
    )  # the largest moment at a zero gradient: a flat frontier
    other = dict(d["records"][1], pairs=[])
    rec["samples"] = dict(rec["samples"], moment=[1e3] * rec["K"], moment_m=[1e3] * rec["K"])
    no_l = fit_run([rec, other], T=d["run"]["T"], resamples=200)
    assert no_l["smoothness"]["L"] is None and no_l["assumption5"]["step_cap"] is None
    line = estimate_cli.summary(no_l)
    assert (
        "L none (no smoothness pairs" in line
        and "step cap c1/(L c3) none (" in line
        and "peak lr none (" in line
    )
    d["fit"] = no_l
    md = render.markdown(d)
    assert "| L (eq. 4: largest quadratic-form ratio) | none (no smoothness pairs" in md
    assert (
        "| peak lr of the run <= step cap | not compared (no step cap to compare with: no "
        "smoothness" in md
    )
    assert sentinels.in_text(md) == []
    rec["pairs"] = d["records"][1]["pairs"]
    no_cap = fit_run([rec, other], T=d["run"]["T"], resamples=200, lr_used=0.001)
    a5 = no_cap["assumption5"]
    assert a5["c3"] == 0.0 and a5["c3_is_limit"] and a5["step_cap"] is None
    d["fit"] = no_cap
    md = render.markdown(d)
    assert (
        "0 (the limit c3 -> 0)" in md
        and "| peak lr of the run <= step cap | no cap (eq. 28 holds" in md
    )
    assert "step cap c1/(L c3) none (eq. 28 holds" in estimate_cli.summary(no_cap)
    assert sentinels.in_text(md) == []
    assert sentinels.in_json({k: v for k, v in no_cap.items() if k != "checkpoints"}) == []
    render.plots(
        d, full_run / "no_cap"
    )  # the frontier plot draws the limit pair without a sentinel


def test_interrupted_then_resumed_equals_uninterrupted(
    npz, full_run, tmp_path, monkeypatch, capsys
):
    calls = {"n": 0}
    measure = Probe.measure

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if Ctrl-C during the third probe
        return measure(self, *a, **kw)

    monkeypatch.setattr(Probe, "measure", flaky)
    assert cli.main(_argv(npz, tmp_path)) == 130
    err = capsys.readouterr().err  # Ctrl-C names the files it kept
    assert re.search(
        r"interrupted; kept what it wrote: .*/ state.pt, constants.json, "
        r"constants.md.*constants.png",
        err,
    )
    d = _load(tmp_path)
    assert not d["complete"] and len(d["records"]) == 2 and (tmp_path / "constants.png").exists()
    monkeypatch.setattr(Probe, "measure", measure)
    assert cli.main(_argv(npz, tmp_path, "--resume")) == 0
    a, b = _load(tmp_path), _load(full_run)
    assert (
        len(a["earlier_provenance"]) == 1 and a["earlier_provenance"][0]["time"]
    )  # the interrupted invocation
    for r in a["records"] + b["records"]:
        r.pop("seconds")
    for key in ("records", "fit", "epoch_losses", "test_accuracy", "complete"):
        assert a[key] == b[key], key
    sa, sb = (
        torch.load(o / "state.pt", weights_only=True) for o in (tmp_path, full_run)
    )  # no pickled code
    for k, v in sb["model"].items():
        assert torch.equal(sa["model"][k], v), k
    # a finished run resumes to the same report
    assert cli.main(_argv(npz, tmp_path, "--resume")) == 0
    assert _load(tmp_path)["records"][2]["samples"] == b["records"][2]["samples"]


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--device", "cuda"], "CUDA is not available"),
        (["--checkpoints", "9"], r"--checkpoints \(9\) must be <= the number of steps T = 8"),
        (["--mode", "eval", "--resume"], "no interrupted run"),
        (
            ["--warmup-epochs", "2"],
            r"--warmup-epochs must be a finite real number in \[0, 2\), got 2.0",
        ),
        (["--device", "tpu"], "--device must be cpu or cuda"),
        (["--device", "meta"], "--device must be cpu or cuda"),
        (["--samples", "1"], r"--samples must be an integer in \[2, 100000\], got 1"),
        (["--loss-lower-bound", "nan"], r"--loss-lower-bound must be a real number"),
        (["--loss-lower-bound", "3"], r"loss_lower_bound = 3 is above the measured loss"),
    ],
)
def test_clear_errors(npz, tmp_path, capsys, extra, match):
    if "cuda" in extra and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli.main(_argv(npz, tmp_path, *extra)) == 2
    assert re.search(match, capsys.readouterr().err)


def test_errors_on_data_and_existing_output(npz, full_run, tmp_path, capsys):
    assert cli.main(_argv(tmp_path / "missing.npz", tmp_path)) == 2
    assert "no CIFAR dataset at" in capsys.readouterr().err
    assert cli.main(_argv(npz, full_run)) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main(_argv(npz, full_run, "--resume", "--seed", "1")) == 2
    assert (
        "was made with other settings; resume with the saved ones or choose another --out: --seed: "
        "saved 0, now 1" in capsys.readouterr().err
    )


def test_paper_defaults_and_overrides():
    c = trainer.Config(model="resnet50", data="x", out="o").resolved("cifar10")
    assert (c.lr, c.weight_decay, c.p_max, c.momentum, c.eps, c.batch_size) == (
        0.002,
        0.0001,
        6.0,
        0.9,
        1e-8,
        128,
    )
    assert c.warmup_epochs == 5.0  # 2.5 % of 200 epochs
    c = trainer.Config(model="vgg11", data="x", out="o", lr=0.1).resolved("cifar100")
    assert (c.lr, c.p_max, c.weight_decay) == (0.1, 8.0, 0.0005)
    with pytest.raises(ValueError, match="no paper hyperparameters"):
        trainer.defaults_for("imagenet", "resnet50")


def test_lr_schedule():
    lrs = [trainer.lr_at(t, 100, 10, 1.0) for t in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == 1.0 and lrs[5] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 89 / 90))
    )
    assert trainer.checkpoint_steps(10, 4) == [0, 2, 5, 7]


def _same_results(a, b):
    for r in a["records"] + b["records"]:
        r.pop("seconds")
    for key in ("records", "fit", "epoch_losses", "test_accuracy", "complete"):
        assert a[key] == b[key], key


# Kill -9 at a chosen moment: a child process patches one function to SIGKILL itself at its n-th
# call (so nothing in Python runs after it: no finally, no atexit), then runs `lpcheck estimate`.
_KILLER = """
import os, signal, sys
import importlib
module, name, n, when = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
owner, _, attr = name.rpartition(".")
target = importlib.import_module(module)
holder = getattr(target, owner) if owner else target
original = getattr(holder, attr)
calls = [0]
def killing(*a, **kw):
    calls[0] += 1
    if calls[0] == n and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    out = original(*a, **kw)
    if calls[0] == n and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return out
setattr(holder, attr, killing)
from lpcheck import cli
sys.exit(cli.main(sys.argv[5:]))
"""


def _killed(argv, module, name, n, when):
    out = subprocess.run(
        [sys.executable, "-c", _KILLER, module, name, str(n), when, *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]


@pytest.mark.parametrize(
    "module, name, n, when, files",
    [
        # after the first state.pt, before the first constants.json: the old order's dead end,
        # reversed
        ("lpcheck.report", "write_report", 1, "before", {"state.pt"}),
        # during training, between the second and the third probe
        (
            "lpcheck.training",
            "Training.step",
            4,
            "before",
            {"state.pt", "constants.json", "constants.md"},
        ),
        # after the last step and its state, before the final report
        (
            "lpcheck.estimate.trainer",
            "evaluate",
            1,
            "before",
            {"state.pt", "constants.json", "constants.md"},
        ),
    ],
)
def test_kill_9_anywhere_then_resume_gives_the_same_numbers(
    npz, full_run, tmp_path, module, name, n, when, files
):
    out = tmp_path / "run"
    _killed(_argv(npz, out), module, name, n, when)
    assert {p.name for p in out.iterdir()} == files  # atomic writes: no temporaries left behind
    torch.load(out / "state.pt", weights_only=True)
    assert cli.main(_argv(npz, out)) == 2  # a fresh run would overwrite it: refused
    # resumed with the same folders written differently: a relative --data, an --out with '..'
    here = os.getcwd()
    os.chdir(npz.parent)
    try:
        assert cli.main(_argv(npz.name, out / ".." / "run", "--resume")) == 0
    finally:
        os.chdir(here)
    a = _load(out)
    assert a["complete"] and len(a["earlier_provenance"]) == 1
    _same_results(a, _load(full_run))


def test_a_report_without_state_restarts_from_step_0(npz, full_run, tmp_path, capsys):
    """constants.json without state.pt (an older lpcheck's kill between the two, or a removed
    state.pt): --resume restarts the run, and says so; a fresh run is told to pass --resume."""
    out = tmp_path / "run"
    _killed(_argv(npz, out), "lpcheck.training", "Training.step", 4, "before")
    (out / "state.pt").unlink()
    assert cli.main(_argv(npz, out)) == 2
    assert "holds a run (constants.json): pass --resume" in capsys.readouterr().err
    assert cli.main(_argv(npz, out, "--resume")) == 0
    assert (
        "has no state.pt (the run was stopped before it saved one): restarting it from step 0"
        in capsys.readouterr().err
    )
    _same_results(_load(out), _load(full_run))


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_crafted_state_pt_runs_no_code(npz, full_run, tmp_path, capsys):
    import pickle
    import shutil

    out = tmp_path / "run"
    shutil.copytree(full_run, out)
    with open(out / "state.pt", "wb") as f:
        pickle.dump({"model": _Payload(tmp_path / "ran")}, f, protocol=2)
    assert cli.main(_argv(npz, out, "--resume")) == 2
    assert not (tmp_path / "ran").exists()
    err = capsys.readouterr().err
    assert re.search(
        r"state.pt is not a state.pt that lpcheck estimate can load safely \(UnpicklingError", err
    )


def test_ctrl_c_before_any_file_says_so(npz, tmp_path, monkeypatch, capsys):
    def interrupted(self, *a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(Probe, "measure", interrupted)
    assert cli.main(_argv(npz, tmp_path / "run")) == 130
    assert "interrupted; it wrote no file" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_options_are_checked_before_anything_is_built(npz, tmp_path, monkeypatch):
    """A bad option is refused before the data is read or a model is built (the corpus has one case
    per option; this checks the order, with numpy and torch numbers taken as torch would)."""
    from lpcheck import data as cifar

    def fail(*a, **kw):
        raise AssertionError("work before validation")

    c = trainer.Config(
        model="resnet18",
        data=str(npz),
        out=str(tmp_path / "o"),
        lr=np.float32(0.01),
        epochs=np.int64(2),
        momentum=torch.tensor(0.9),
        eps=1e-8,
    )
    checked = trainer.check_config(c)
    assert (type(checked.lr), type(checked.epochs), type(checked.momentum)) == (float, int, float)
    monkeypatch.setattr(cifar, "load_cifar", fail)
    monkeypatch.setattr(trainer.models, "build", fail)
    for bad, match in [
        (dict(eps=1e-50), "--eps = 1e-50 rounds to 0 in torch.float32"),
        (dict(momentum=1 - 1e-12), r"--momentum = 0.999999999999 rounds to 1"),
        (dict(resamples=50), r"--resamples must be an integer in \[100, 1e\+06\], got 50"),
        (
            dict(confidence=float("nan")),
            r"--confidence must be a real number in \(0, 1\), "
            r"got nan",
        ),
        (dict(threads=0), r"--threads must be an integer in \[1, "),
    ]:
        with pytest.raises(ValueError, match=match):
            trainer.run(
                trainer.Config(model="resnet18", data=str(npz), out=str(tmp_path / "o"), **bad)
            )
    assert not (tmp_path / "o").exists()


def test_the_same_data_at_another_path_is_the_same_run(npz, full_run, tmp_path, capsys):
    import shutil

    out, moved = tmp_path / "run", tmp_path / "moved" / "copy.npz"
    shutil.copytree(full_run, out)
    moved.parent.mkdir()
    shutil.copy(npz, moved)
    assert (
        cli.main(_argv(moved, out, "--resume")) == 0
    )  # compared by what it holds, not by its name
    np.savez(
        moved, **{**np.load(npz), "y_test": np.zeros(40, dtype=np.int64)}
    )  # other labels, same path
    assert cli.main(_argv(moved, out, "--resume")) == 2
    assert re.search(
        r"--data: the images or labels in .*copy.npz differ from the saved run's",
        capsys.readouterr().err,
    )
