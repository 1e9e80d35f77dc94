"""`lpcheck estimate`: a tiny end-to-end run, resume after an interruption, clear errors."""

import json
import math
import re

import numpy as np
import pytest
import torch

from lpcheck import cli
from lpcheck.estimate import trainer
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
    assert f["smoothness"]["pairs"] == 5  # a step pair per checkpoint, a trajectory pair from the second on
    assert d["provenance"]["versions"]["torch"] == torch.__version__ and d["provenance"]["command"]
    md = (full_run / "constants.md").read_text()
    assert "c1 (lower confidence bound)" in md and "step cap" in md and "Command:" in md


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
