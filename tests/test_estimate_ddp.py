"""`torchrun --nproc-per-node 2 -m lpcheck estimate`: DDP on two gloo processes gives one process's
constants.

The model is a small MLP in float64 with a BatchNorm layer (which DDP alone would apply to each
process's slice, another function: lpcheck normalises over the global batch), so that the only
difference between one and two processes is the order of float sums: every measured number agrees to
1e-6 (relative) with a wide margin.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from lpcheck import cli, training
from lpcheck.data import DeviceCifar
from lpcheck.estimate import trainer
from lpcheck.estimate.probe import Probe

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed is not built in"
)

USER = textwrap.dedent("""
    import torch


    def build():
        return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.BatchNorm1d(12),
                                   torch.nn.Tanh(), torch.nn.Linear(12, 3)).double()


    def load():
        g = torch.Generator().manual_seed(3)
        x = torch.randn(72, 6, generator=g, dtype=torch.float64)
        y = (x[:, 0] > 0).long() + (x[:, 2] > 0.3).long()
        return x[:56], y[:56], x[56:], y[56:]
""")

ARGS = [
    "estimate",
    "--model",
    "ddpmodel:build",
    "--data",
    "ddpmodel:load",
    "--optimizer",
    "lpsgdm",
    "--lr",
    "0.05",
    "--epochs",
    "2",
    "--batch-size",
    "8",
    "--checkpoints",
    "4",
    "--samples",
    "4",
    "--step-pairs",
    "2",
    "--resamples",
    "200",
    "--threads",
    "1",
    "--quiet",
]
SKIP = {"seconds", "provenance", "earlier_provenance", "train_seconds", "out"}


def _torchrun(folder, *argv, n=2):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={n}",
            "-m",
            "lpcheck",
            *argv,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _close(a, b, path=""):
    """Every number in a equals b's to 1e-6 (relative); everything else equal."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if k not in SKIP:
                _close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and math.isfinite(a):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-300), path
    else:
        assert a == b, path


def _load(out):
    return json.loads((out / "constants.json").read_text())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    (folder / "ddpmodel.py").write_text(USER)
    here = os.getcwd()
    os.chdir(folder)
    try:
        assert cli.main([*ARGS, "--out", "one"]) == 0
    finally:
        os.chdir(here)
    return folder


@pytest.mark.slow
def test_two_gloo_processes_give_the_one_process_constants(one_process):
    done = _torchrun(one_process, *ARGS, "--out", "two")
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _load(one_process / "one"), _load(one_process / "two")
    assert b["provenance"]["processes"] == 2 and a["provenance"]["processes"] == 1
    assert len(b["records"]) == 4 and b["complete"] and b["run"]["T"] == 14
    for key in ("records", "fit", "epoch_losses", "test_accuracy", "test_loss", "run", "config"):
        _close(a[key], b[key], key)
    assert sorted(p.name for p in (one_process / "two").iterdir()) == [
        "constants.json",
        "constants.md",
        "constants.png",
        "frontier.png",
        "state.pt",
    ]


@pytest.mark.slow
def test_an_interrupted_one_process_run_resumes_on_two(one_process, monkeypatch):
    """Rank 0 reads state.pt and sends it; every rank loads the global loss sum; the run ends as one
    process's. A fresh run over it is refused on every rank (rank 0 alone looks at --out)."""
    monkeypatch.chdir(one_process)
    calls = {"n": 0}
    measure = Probe.measure

    def interrupted(self, *a, **kw):
        calls["n"] += 1
        if (
            calls["n"] == 3
        ):  # Ctrl-C during the third probe, mid-epoch 2: the loss sum is half an epoch's
            raise KeyboardInterrupt
        return measure(self, *a, **kw)

    monkeypatch.setattr(Probe, "measure", interrupted)
    assert cli.main([*ARGS, "--out", "cut"]) == 130
    assert len(_load(one_process / "cut")["records"]) == 2
    refused = _torchrun(one_process, *ARGS, "--out", "cut")
    held = "holds a run (state.pt, constants.json): pass --resume"
    assert refused.returncode != 0 and refused.stderr.count(held) == 2
    done = _torchrun(one_process, *ARGS, "--out", "cut", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _load(one_process / "one"), _load(one_process / "cut")
    assert [p["processes"] for p in b["earlier_provenance"] + [b["provenance"]]] == [1, 2]
    for key in ("records", "fit", "epoch_losses", "test_accuracy", "test_loss"):
        _close(a[key], b[key], key)


def test_each_rank_trains_on_its_slice_of_the_global_batch(monkeypatch):
    """Rank r's examples are the slice [r b/W, (r+1) b/W) of the one-process batch, augmented or not
    (the augmentation is drawn for the whole batch on every rank: the one-process random
    numbers)."""
    x = torch.randint(0, 256, (32, 32, 32, 3), dtype=torch.uint8).numpy()
    data = DeviceCifar(x, (torch.arange(32) % 10).numpy(), "cifar10")
    model = torch.nn.Flatten()
    idx = torch.randperm(32)[:16]
    for augment in (False, True):
        monkeypatch.setattr(training, "_dist", lambda: (0, 1))
        whole = training.Training(
            model,
            None,
            data,
            batch_size=16,
            epochs=1,
            steps_per_epoch=2,
            warmup_steps=0,
            lr=0.1,
            augment=augment,
            seed=4,
        )._batch(idx)
        parts = []
        for rank in range(4):
            monkeypatch.setattr(training, "_dist", lambda rank=rank: (rank, 4))
            run = training.Training(
                model,
                None,
                data,
                batch_size=16,
                epochs=1,
                steps_per_epoch=2,
                warmup_steps=0,
                lr=0.1,
                augment=augment,
                seed=4,
            )
            parts.append(run._batch(idx))
        assert torch.equal(torch.cat([p[0] for p in parts]), whole[0]) and all(
            len(p[0]) == 4 for p in parts
        )
        assert torch.equal(torch.cat([p[1] for p in parts]), whole[1])
    monkeypatch.setattr(training, "_dist", lambda: (0, 3))
    with pytest.raises(
        ValueError, match=r"batch_size \(16\) must be a multiple of the 3 processes"
    ):
        training.Training(
            model, None, data, batch_size=16, epochs=1, steps_per_epoch=2, warmup_steps=0, lr=0.1
        )


def test_the_global_batch_must_split_evenly_over_the_processes():
    c = trainer.Config(
        model="resnet18", data="x", out="o", batch_size=12, epochs=1, checkpoints=2, samples=4
    ).resolved("cifar10")
    with pytest.raises(
        ValueError, match=r"--batch-size \(12\) must be a multiple of the 8 processes"
    ):
        trainer._sizes(c, 64, 8, "images")
    assert trainer._sizes(c, 64, 4, "images")[0] == 5
