"""experiments/: each script runs end to end on tiny settings and writes what it promises."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(name, *args, timeout=300):
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


def test_fig3_toy_trajectories(tmp_path):
    run_script(
        "fig3_toy_trajectories.py",
        "--steps",
        "30",
        "--grid",
        "5",
        "--p",
        "4",
        "--out",
        str(tmp_path),
    )
    data = json.loads((tmp_path / "fig3.json").read_text())
    assert set(data["problems"]) == {"eq17", "eq18"}
    assert set(data["problems"]["eq17"]) == {"GD", "signGD", "LPSGD p=4"}
    assert len(data["problems"]["eq18"]["GD"]["path"]) == 31
    assert (
        "fig3_toy_trajectories.py" in data["provenance"]["command"] and data["provenance"]["device"]
    )
    assert (tmp_path / "eq17.png").stat().st_size > 1000 and (tmp_path / "fig3.md").exists()


def test_fig3_render_only_redraws_from_the_json_alone(tmp_path):
    """--render-only runs nothing: the JSON (and its provenance) stays, the figures are redrawn from
    it."""
    src = ROOT / "experiments" / "results" / "fig3" / "fig3.json"
    (tmp_path / "fig3.json").write_bytes(src.read_bytes())
    run_script("fig3_toy_trajectories.py", "--render-only", "--out", str(tmp_path))
    assert json.loads((tmp_path / "fig3.json").read_text()) == json.loads(src.read_text())
    assert (tmp_path / "eq17.png").stat().st_size > 1000 and (
        tmp_path / "eq18.png"
    ).stat().st_size > 1000
    (tmp_path / "fig3.json").unlink()
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "fig3_toy_trajectories.py"),
            "--render-only",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "no report at" in out.stderr


def test_fig3_rejects_bad_arguments():
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "fig3_toy_trajectories.py"), "--p", "1.5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        out.returncode == 2
        and "--p values must be a real number in [2, inf], got 1.5" in out.stderr
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Arguments for tiny runs on a synthetic CIFAR-shaped .npz (the scripts need no real images
    here)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny_cifar.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8),
        y_train=rng.integers(0, 10, 256),
        x_test=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8),
        y_test=rng.integers(0, 10, 64),
    )
    return ["--data", str(path), "--width", "0.0625", "--threads", "1"]


def test_cifar_train_table1_and_resume(tmp_path, small):
    args = [
        *small,
        "--optimizers",
        "sgdm,lpsgdm",
        "--seeds",
        "0",
        "--epochs",
        "2",
        "--eval-at",
        "0.5,1",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    run_script("cifar_train.py", *args)
    data = json.loads((tmp_path / "table1.json").read_text())
    assert [r["id"] for r in data["runs"]] == ["sgdm-s0", "lpsgdm-p6-s0"] and all(
        r["complete"] for r in data["runs"]
    )
    lp = data["runs"][1]
    assert lp["hyperparameters"]["lr"] == 0.001 and lp["hyperparameters"]["weight_decay"] == 0.01
    assert (
        [e["epoch"] for e in lp["curve"]] == [1, 2]
        and "train_nll" in lp["curve"][0]
        and "train_nll" in lp["curve"][1]
    )
    assert (tmp_path / "table1.png").exists() and "| LPSGDM (p_max 6) | 1/1 |" in (
        tmp_path / "table1.md"
    ).read_text()
    out = run_script("cifar_train.py", *args, "--resume")  # finished runs are skipped
    assert "test top-1" not in out.stderr
    # the same data named by another path is the same run
    moved = [
        a
        if not a.endswith("tiny_cifar.npz")
        else str(Path(a).parent / ".." / Path(a).parent.name / Path(a).name)
        for a in args
    ]
    assert "test top-1" not in run_script("cifar_train.py", *moved, "--resume").stderr
    before = (tmp_path / "table1.json").read_bytes()
    for extra, said in [
        (["--epochs", "3"], "--epochs: saved 2, now 3"),
        (["--lr", "0.5"], "--lr: saved None, now 0.5"),
        (["--no-augment"], "--no-augment: saved False, now True"),
    ]:
        bad = subprocess.run(
            [
                sys.executable,
                str(ROOT / "experiments" / "cifar_train.py"),
                *args,
                *extra,
                "--resume",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert bad.returncode == 2 and said in bad.stderr and "Traceback" not in bad.stderr, (
            bad.stderr[-1000:]
        )
    fresh = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "cifar_train.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )  # without --resume: an existing report is not overwritten
    assert fresh.returncode == 2 and "table1.json exists: pass --resume" in fresh.stderr
    assert (tmp_path / "table1.json").read_bytes() == before


def test_cifar_train_pmax_sweep_and_errors(tmp_path, small):
    run_script(
        "cifar_train.py",
        *small,
        "--optimizers",
        "lpsgdm",
        "--p-max",
        "2,4",
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--batches-per-epoch",
        "1",
        "--name",
        "fig4",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    ids = [r["id"] for r in json.loads((tmp_path / "fig4.json").read_text())["runs"]]
    assert ids == ["lpsgdm-p2-s0", "lpsgdm-p4-s0"]
    bad = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "cifar_train.py"),
            *small,
            "--optimizers",
            "adam",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown ['adam']" in bad.stderr
    missing = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "cifar_train.py"),
            "--data",
            str(tmp_path / "x.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no CIFAR dataset" in missing.stderr


def test_fig1_hessian(tmp_path, small):
    run_script(
        "fig1_hessian.py",
        *small,
        "--optimizers",
        "lpsgdm",
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
        "--out",
        str(tmp_path),
        "--quiet",
    )
    data = json.loads((tmp_path / "fig1.json").read_text())
    cps = data["checkpoints"]["lpsgdm"]
    assert [c["epoch"] for c in cps] == [0, 1] and data["config"]["mode"] == "eval"
    assert all(
        c["top_eigenvalue"] >= c["max_node"] - 1e-6 * abs(c["max_node"]) or c["top_eigenvalue"] > 0
        for c in cps
    )
    assert all(0 <= c["negative_mass_below_1pct"] <= c["negative_mass"] <= 1 for c in cps)
    assert (tmp_path / "fig1.png").exists()


def test_train_throughput(tmp_path, small):
    run_script(
        "train_throughput.py",
        *small,
        "--steps",
        "1",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--out",
        str(tmp_path),
    )
    data = json.loads((tmp_path / "throughput.json").read_text())
    res = data["results"]
    assert res["torch SGD momentum=0.9 (foreach)"]["relative_to_sgd"] == 1.0
    assert res["LPSGDM (foreach)"]["images_per_second"] > 0


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (ROOT / "experiments").glob("*.py") if not p.name.startswith("_")),
)
def test_scripts_use_this_checkout_s_lpcheck(tmp_path, name):
    # a decoy lpcheck earlier on the path (as an installed copy would be): the script must not
    # import it
    decoy = tmp_path / "lpcheck"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise ImportError('the decoy lpcheck was imported')\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / name), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_estimate_cost_runs_and_checks_its_options(tmp_path, small):
    data = small[small.index("--data") + 1]
    run_script(
        "estimate_cost.py",
        "--data",
        data,
        "--width",
        "0.0625",
        "--threads",
        "1",
        "--train-subset",
        "256",
        "--samples",
        "2",
        "--rounds",
        "1",
        "--train-steps",
        "1",
        "--out",
        str(tmp_path),
    )
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert len(cost["rounds"]) == 1 and cost["ratio_probe_over_train"] > 0
    bad = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "estimate_cost.py"),
            "--data",
            data,
            "--rounds",
            "0",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--rounds must be an integer in [1, 1e+09], got 0" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()


def test_refit_estimate_gives_mains_fit_of_the_committed_run(tmp_path):
    """experiments/refit_estimate.py on a copy of the committed CPU run: the fit is the golden refit
    (tests/golden/estimate_cpu_fit.json), the records untouched, and a folder without a run is
    refused."""
    import shutil

    src = ROOT / "experiments" / "results" / "estimate-cpu"
    shutil.copytree(src, tmp_path / "run")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "refit_estimate.py"), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = json.loads((tmp_path / "run" / "constants.json").read_text())
    old = json.loads((src / "constants.json").read_text())
    assert new["records"] == old["records"]
    assert new["fit"] == json.loads(
        (ROOT / "tests" / "golden" / "estimate_cpu_fit.json").read_text()
    )
    bad = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "refit_estimate.py"), str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "folder: no constants.json" in bad.stderr
