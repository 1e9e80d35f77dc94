"""`lpcheck estimate`: a tiny end-to-end run, resume after an interruption, clear errors."""

import json
import math
import re

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
    np.savez(path, x_train=rng.integers(0, 256, (128, 32, 32, 3), dtype=np.uint8), y_train=np.arange(128) % 10,
             x_test=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), y_test=np.arange(40) % 10)
    return path


def _argv(npz, out, *extra):
    return ["estimate", "--model", "resnet18", "--width", "0.0625", "--data", str(npz), "--batch-size", "32",
            "--epochs", "2", "--checkpoints", "3", "--samples", "3", "--resamples", "200", "--threads", "1", "--warmup-epochs", "0.5",
            "--quiet", "--out", str(out), *extra]


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
    assert d["complete"] and [r["step"] for r in d["records"]] == d["run"]["probe_steps"] == [0, 2, 5]
    assert d["run"]["T"] == 8 and d["config"]["lr"] == 0.001 and d["config"]["weight_decay"] == 0.01  # Table 4
    assert [r["p"] for r in d["records"]] == [6.0, 6.0, 2.0]  # eq. 19 with S = 2
    assert d["records"][0]["lr"] == pytest.approx(0.001 * 0.1)  # the warm-up starts at 0.1 lr
    f = d["fit"]
    assert f["sample_sizes"]["checkpoints"] == 3 and f["sample_sizes"]["K"] == [3, 3, 3]
    assert f["assumption5"]["c1"] <= f["assumption5"]["estimate"]["c1"]
    assert f["lr_max"] == pytest.approx(0.001)  # the schedule's peak, reached after the warm-up
    assert f["lr_source"] == "the T per-step lrs (lr_used), largest at step 2"  # the trainer passes its schedule
    assert f["smoothness"]["pairs"] == 5  # a step pair per checkpoint, a trajectory pair from the second on
    assert d["provenance"]["versions"]["torch"] == torch.__version__ and d["provenance"]["command"]
    md = (full_run / "constants.md").read_text()
    assert "c1 (lower confidence bound)" in md and "step cap" in md and "Command:" in md


def test_the_tiny_run_reports_no_clamp_or_sentinel(full_run):
    """Every number in constants.json/.md and the summary line is a measurement: nothing like the 1e-300 c3 and
    3e296 step cap a grid search used to print (the best pair has c3 > 0, so the caps are real numbers here)."""
    d = _load(full_run)
    assert sentinels.in_json(d) == []
    assert sentinels.in_text((full_run / "constants.md").read_text()) == []
    line = estimate_cli.summary(d["fit"])
    assert sentinels.in_text(line) == [] and "peak lr 0.001" in line
    for key in ("assumption5", "assumption6"):
        a = d["fit"][key]
        assert a["c3"] > 1e-6 and a["step_cap"] == pytest.approx(a["c1"] / (d["fit"]["smoothness"]["L"] * a["c3"]))
        assert a["lr_within_cap"] == (0.001 <= a["step_cap"])
    assert d["fit"]["delta_from"]["source"].startswith("the default")


def test_no_number_prints_as_none_with_its_reason(full_run):
    """A fit with no cap (c3 -> 0) and no L: the Markdown and the summary line say 'none (reason)'."""
    d = _load(full_run)
    rec = dict(d["records"][0], grad_sq=0.0, pairs=[])  # the largest moment at a zero gradient: a flat frontier
    other = dict(d["records"][1], pairs=[])
    rec["samples"] = dict(rec["samples"], moment=[1e3] * rec["K"], moment_m=[1e3] * rec["K"])
    no_l = fit_run([rec, other], T=d["run"]["T"], resamples=200)
    assert no_l["smoothness"]["L"] is None and no_l["assumption5"]["step_cap"] is None
    line = estimate_cli.summary(no_l)
    assert "L none (no smoothness pairs" in line and "step cap c1/(L c3) none (" in line and "peak lr none (" in line
    d["fit"] = no_l
    md = render.markdown(d)
    assert "| L (eq. 4: largest quadratic-form ratio) | none (no smoothness pairs" in md
    assert "| peak lr of the run <= step cap | not compared (no step cap to compare with: no smoothness" in md
    assert sentinels.in_text(md) == []
    rec["pairs"] = d["records"][1]["pairs"]
    no_cap = fit_run([rec, other], T=d["run"]["T"], resamples=200, lr_used=0.001)
    a5 = no_cap["assumption5"]
    assert a5["c3"] == 0.0 and a5["c3_is_limit"] and a5["step_cap"] is None
    d["fit"] = no_cap
    md = render.markdown(d)
    assert "0 (the limit c3 -> 0)" in md and "| peak lr of the run <= step cap | no cap (eq. 28 holds" in md
    assert "step cap c1/(L c3) none (eq. 28 holds" in estimate_cli.summary(no_cap)
    assert sentinels.in_text(md) == []
    assert sentinels.in_json({k: v for k, v in no_cap.items() if k != "checkpoints"}) == []
    render.plots(d, full_run / "no_cap")  # the frontier plot draws the limit pair without a sentinel


def test_interrupted_then_resumed_equals_uninterrupted(npz, full_run, tmp_path, monkeypatch):
    calls = {"n": 0}
    measure = Probe.measure

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if Ctrl-C during the third probe
        return measure(self, *a, **kw)

    monkeypatch.setattr(Probe, "measure", flaky)
    assert cli.main(_argv(npz, tmp_path)) == 130
    d = _load(tmp_path)
    assert not d["complete"] and len(d["records"]) == 2 and (tmp_path / "constants.png").exists()
    monkeypatch.setattr(Probe, "measure", measure)
    assert cli.main(_argv(npz, tmp_path, "--resume")) == 0
    a, b = _load(tmp_path), _load(full_run)
    assert len(a["earlier_provenance"]) == 1 and a["earlier_provenance"][0]["time"]  # the interrupted invocation
    for r in a["records"] + b["records"]:
        r.pop("seconds")
    for key in ("records", "fit", "epoch_losses", "test_accuracy", "complete"):
        assert a[key] == b[key], key
    sa, sb = (torch.load(o / "state.pt", weights_only=False) for o in (tmp_path, full_run))
    for k, v in sb["model"].items():
        assert torch.equal(sa["model"][k], v), k
    # a finished run resumes to the same report
    assert cli.main(_argv(npz, tmp_path, "--resume")) == 0
    assert _load(tmp_path)["records"][2]["samples"] == b["records"][2]["samples"]


@pytest.mark.parametrize("extra,match", [
    (["--device", "cuda"], "CUDA is not available"),
    (["--checkpoints", "9"], r"--checkpoints \(9\) must be <= the number of steps T = 8"),
    (["--mode", "eval", "--resume"], "no interrupted run"),
    (["--warmup-epochs", "2"], r"--warmup-epochs must be in \[0, epochs\)"),
    (["--device", "tpu"], "--device must be cpu or cuda"),
    (["--device", "meta"], "--device must be cpu or cuda"),
    (["--samples", "1"], r"--samples must be >= 2 \(the intervals are a bootstrap"),
    (["--loss-lower-bound", "nan"], r"--loss-lower-bound must be a real number"),
    (["--loss-lower-bound", "3"], r"loss_lower_bound = 3 is above the measured loss"),
])
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
    assert "options differ" in capsys.readouterr().err


def test_paper_defaults_and_overrides():
    c = trainer.Config(model="resnet50", data="x", out="o").resolved("cifar10")
    assert (c.lr, c.weight_decay, c.p_max, c.momentum, c.eps, c.batch_size) == (0.002, 0.0001, 6.0, 0.9, 1e-8, 128)
    assert c.warmup_epochs == 5.0  # 2.5 % of 200 epochs
    c = trainer.Config(model="vgg11", data="x", out="o", lr=0.1).resolved("cifar100")
    assert (c.lr, c.p_max, c.weight_decay) == (0.1, 8.0, 0.0005)
    with pytest.raises(ValueError, match="no paper hyperparameters"):
        trainer.defaults_for("imagenet", "resnet50")


def test_lr_schedule():
    lrs = [trainer.lr_at(t, 100, 10, 1.0) for t in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == 1.0 and lrs[5] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert trainer.checkpoint_steps(10, 4) == [0, 2, 5, 7]
