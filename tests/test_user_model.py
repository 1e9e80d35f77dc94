"""A researcher's own model, data, loss and optimizer through `lpcheck estimate`, with no
lpcheck-specific Python.

The four files below are what a user writes in their own project (plain torch: none of them mentions
lpcheck); the command line names them as MODULE:NAME and lpcheck imports them from the current
directory. The command runs as `python -P -m lpcheck`: -P keeps Python from putting the current
directory on sys.path (as the installed `lpcheck` script does not either), so the modules are found
by lpcheck's loader, not by `python -m`.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest

from lpcheck import cli

USER_FILES = {
    "mymodel.py": """
        import torch


        def build(num_classes=3):
            return torch.nn.Sequential(
                torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, num_classes)
            )
    """,
    "mydata.py": """
        import torch


        def load():
            g = torch.Generator().manual_seed(1)
            x = torch.randn(96, 8, generator=g)
            y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
            return x[:64], y[:64], x[64:], y[64:]
    """,
    "myloss.py": """
        import math

        import torch


        def loss(outputs, targets):
            # cross-entropy relative to guessing uniformly among the 3 classes: negative once the
            # model beats chance, never below -log(3)
            return torch.nn.functional.cross_entropy(outputs, targets) - math.log(3)
    """,
    "myopt.py": """
        import torch


        class SignMomentum(torch.optim.Optimizer):
            # sign descent on an EMA of the gradients (Signum)

            def __init__(self, params, lr=0.01, beta=0.9):
                super().__init__(params, dict(lr=lr, beta=beta))

            @torch.no_grad()
            def step(self, closure=None):
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is None:
                            continue
                        m = self.state[p].setdefault("m", torch.zeros_like(p))
                        m.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                        p.add_(m.sign(), alpha=-group["lr"])
    """,
}

LOWER_BOUND = -math.log(3)
ARGS = [
    "estimate",
    "--model",
    "mymodel:build",
    "--data",
    "mydata:load",
    "--loss",
    "myloss:loss",
    "--loss-lower-bound",
    repr(LOWER_BOUND),
    "--optimizer",
    "myopt:SignMomentum",
    "--optimizer-args",
    '{"beta": 0.8}',
    "--lr",
    "0.01",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--checkpoints",
    "3",
    "--samples",
    "4",
    "--resamples",
    "200",
    "--threads",
    "1",
    "--quiet",
]


@pytest.fixture
def project(tmp_path):
    for name, text in USER_FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def _finite(v):
    return v is not None and math.isfinite(v)


def test_the_user_files_are_plain_torch():
    for name, text in USER_FILES.items():
        assert "lpcheck" not in text, name


def test_a_users_model_data_loss_and_optimizer_run_through_estimate(project):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-P", "-m", "lpcheck", *ARGS, "--out", "out"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    d = json.loads((project / "out" / "constants.json").read_text())
    assert (
        d["complete"] and d["config"]["model"] == f"{project / 'mymodel.py'}:build"
    )  # compared on --resume
    assert (
        d["run"]["data_sha256"] and d["run"]["train_images"] == 64 and d["run"]["test_images"] == 32
    )
    assert d["run"]["optimizer_class"] == "myopt:SignMomentum"
    assert (
        d["run"]["optimizer_kwargs"] == {"lr": 0.01, "beta": 0.8} and d["run"]["p_schedule"] is None
    )
    for r in d["records"]:  # a class lpcheck has never seen: its own steps on a copy, read in l2
        assert (r["method"], r["source"], r["norm"], r["optimizer"]) == (
            "blackbox",
            "blackbox",
            "l2",
            "myopt.SignMomentum",
        )
    assert (
        min(r["loss"] for r in d["records"]) < 0
    )  # the loss went negative: the stated bound was needed
    f = d["fit"]
    assert f["delta_from"]["loss_lower_bound"] == pytest.approx(LOWER_BOUND)
    for v in (
        f["assumption5"]["c1"],
        f["assumption5"]["c2"],
        f["assumption5"]["c3"],
        f["smoothness"]["L"],
        f["noise"]["sigma"],
        f["delta"],
    ):
        assert _finite(v)
    assert f["assumption6"] is None and _finite(d["test_accuracy"]) and _finite(d["test_loss"])
    lrs = [r["lr"] for r in d["records"]]
    assert (
        lrs[0] == pytest.approx(0.01) and lrs[1] < lrs[0]
    )  # the warm-up + cosine schedule on its 'lr'
    assert "lpcheck estimate: wrote" in done.stderr and "c1 >=" in done.stderr


def test_the_same_files_with_another_norm_and_a_named_optimizer(project, monkeypatch, capsys):
    """--norm reads the black box in l-inf; --optimizer adam runs as its layer method (Adam's
    ellipsoid)."""
    monkeypatch.chdir(project)
    assert cli.main([*ARGS, "--norm", "linf", "--out", "linf"]) == 0, capsys.readouterr().err
    d = json.loads((project / "linf" / "constants.json").read_text())
    assert {(r["norm"], r["norm_from"]) for r in d["records"]} == {("linf", "override")}
    argv = [a for a in ARGS]
    argv[argv.index("myopt:SignMomentum")] = "adam"
    argv[argv.index('{"beta": 0.8}')] = '{"betas": [0.8, 0.99]}'
    assert cli.main([*argv, "--out", "adam"]) == 0, capsys.readouterr().err
    d = json.loads((project / "adam" / "constants.json").read_text())
    assert {(r["method"], r["source"]) for r in d["records"]} == {("adam", "layer")}
    assert d["records"][0]["norm"] == "ellipsoidal" and d["run"]["optimizer_kwargs"]["betas"] == [
        0.8,
        0.99,
    ]


def test_the_readme_names_these_files():
    """The docs' 'Your own model' command (docs/estimate.md) names the four files above as this test
    runs them."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "docs" / "estimate.md").read_text()
    block = (
        readme.split("## Your own model, data, loss and optimizer", 1)[1]
        .split("```bash", 1)[1]
        .split("```")[0]
    )
    for option in ("--model", "--data", "--loss", "--optimizer", "--optimizer-args", "--lr"):
        assert f"{option} {ARGS[ARGS.index(option) + 1]}" in block.replace("'", ""), option
    assert float(block.split("--loss-lower-bound ")[1].split()[0]) <= LOWER_BOUND


DATASET = """
    import torch

    from mydata import load


    class Pairs(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i], self.y[i]


    def load_sets():
        x, y, x_test, y_test = load()
        return Pairs(x, y), Pairs(x_test, y_test)
"""


def _measured(d):
    """The records' and fit's numbers, without timings."""
    drop = {"seconds"}
    return (
        [{k: v for k, v in r.items() if k not in drop} for r in d["records"]],
        d["fit"],
        d["test_loss"],
    )


def test_a_dataset_and_an_npz_give_the_numbers_of_the_tensors(project, monkeypatch, capsys):
    """--data as a map-style Dataset pair (read on the host, collated) and as an .npz of the same
    arrays: the same batches, so the same measurements as the tensors, exactly."""
    import numpy as np

    from lpcheck import userspec

    (project / "mydataset.py").write_text(textwrap.dedent(DATASET).lstrip())
    monkeypatch.chdir(project)
    runs = {}
    for name, data in (
        ("tensors", "mydata:load"),
        ("dataset", "mydataset:load_sets"),
        ("npz", "d.npz"),
    ):
        if name == "npz":
            x, y, x_test, y_test = (t.numpy() for t in userspec.load("mydata:load", "--data")())
            np.savez(project / "d.npz", x_train=x, y_train=y, x_test=x_test, y_test=y_test)
        argv = list(ARGS)
        argv[argv.index("mydata:load")] = data
        assert cli.main([*argv, "--out", name]) == 0, capsys.readouterr().err
        runs[name] = json.loads((project / name / "constants.json").read_text())
    assert (
        runs["dataset"]["run"]["kind"] == "Dataset"
        and runs["dataset"]["run"]["data_sha256"] is None
    )
    assert runs["npz"]["run"]["data_sha256"] == runs["tensors"]["run"]["data_sha256"]
    assert _measured(runs["dataset"]) == _measured(runs["tensors"]) == _measured(runs["npz"])


def test_resume_may_add_a_loss_lower_bound():
    """A run stopped because its loss went negative continues with --loss-lower-bound: the bound
    enters only the fit, which is redone over every record; any other setting that differs is
    still refused."""
    import dataclasses

    from lpcheck.estimate import trainer

    c = trainer.Config(model="resnet18", data="d.npz", out="o", epochs=2, checkpoints=2).resolved(
        "cifar10"
    )
    saved = dataclasses.asdict(c)
    assert (
        trainer._differences(saved, dataclasses.replace(c, loss_lower_bound=-2.0), "x", "x") == []
    )
    assert trainer._differences(saved, dataclasses.replace(c, lr=0.5), "x", "x") == [
        f"--lr: saved {c.lr}, now 0.5"
    ]
