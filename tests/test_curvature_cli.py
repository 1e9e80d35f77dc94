"""`lpcheck curvature`: a user's own model, data, loss and checkpoint from the current directory,
and a built-in CIFAR model; the numbers it writes against the explicit Hessian."""

import json
import textwrap

import numpy as np
import pytest
import torch

from lpcheck import cli
from lpcheck import curvature as C

USER = textwrap.dedent("""
    import torch

    def build():
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))

    def data():
        g = torch.Generator().manual_seed(0)
        return torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)

    def summed(outputs, targets):
        return torch.nn.functional.cross_entropy(outputs, targets, reduction="sum")
""")


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "mymodels.py").write_text(USER)
    monkeypatch.chdir(tmp_path)  # MODULE:NAME is imported from the current directory, no PYTHONPATH
    import sys

    sys.modules.pop("mymodels", None)
    namespace = {}
    exec(USER, namespace)
    model = namespace["build"]().double()
    with torch.no_grad():  # the checkpoint differs from the factory's initialisation
        for p in model.parameters():
            p.mul_(1.7).add_(0.05)
    torch.save(model.state_dict(), tmp_path / "ck.pt")
    x, y = namespace["data"]()
    return tmp_path, model, x.double(), y


def explicit(model, x, y):
    op = C.HessianOperator(
        model, lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]), [(x, y)], mode="eval"
    )
    H = torch.stack([op(e) for e in torch.eye(op.dim, dtype=torch.float64)], 1)
    return torch.linalg.eigvalsh((H + H.T) / 2)


def run(tmp, *extra):
    code = cli.main(
        [
            "curvature",
            "--model",
            "mymodels:build",
            "--data",
            "mymodels:data",
            "--checkpoint",
            str(tmp / "ck.pt"),
            "--dtype",
            "float64",
            "--batch-size",
            "7",
            "--top",
            "2",
            "--bottom",
            "2",
            "--tol",
            "1e-9",
            "--trace-products",
            "30",
            "--slq-vectors",
            "1",
            "--slq-steps",
            "10",
            "--out",
            str(tmp / "out"),
            "--quiet",
            *extra,
        ]
    )
    assert code == 0
    return json.loads((tmp / "out" / "curvature.json").read_text())


def test_a_users_model_data_and_checkpoint(user_dir):
    tmp, model, x, y = user_dir
    lam = explicit(model, x, y)
    out = run(tmp)
    assert out["complete"] and out["data"]["batch_sizes"] == [7, 7, 6]  # unequal batches, one f
    e = out["eigenpairs"]
    np.testing.assert_allclose(e["largest"]["values"], lam.flip(0)[:2].tolist(), rtol=1e-8)
    np.testing.assert_allclose(e["smallest"]["values"], lam[:2].tolist(), rtol=1e-8)
    assert all(e["largest"]["converged"] + e["smallest"]["converged"])
    assert max(e["largest"]["residuals"] + e["smallest"]["residuals"]) < 1e-9 * float(
        lam.abs().max()
    )
    for name in ("hutchinson", "hutchpp"):
        t = out["trace"][name]
        assert (
            t["products"] == 30 and abs(t["estimate"] - float(lam.sum())) < 5 * t["standard_error"]
        )
    assert out["density"]["vectors"] == 1 and out["operator"]["products"] == e["products"] + 60 + 10
    assert 0 <= out["density"]["negative_mass_below_1pct"] <= out["density"]["negative_mass"] <= 1
    assert {p.name for p in (tmp / "out").iterdir()} >= {
        "curvature.json",
        "curvature.md",
        "curvature.png",
    }
    assert "converged" in (tmp / "out" / "curvature.md").read_text()


def test_a_sum_reduced_loss(user_dir):
    tmp = user_dir[0]
    mean = run(tmp, "--retain", "no")["eigenpairs"]
    summed = run(tmp, "--loss", "mymodels:summed", "--loss-reduction", "sum")["eigenpairs"]
    np.testing.assert_allclose(summed["largest"]["values"], mean["largest"]["values"], rtol=1e-9)


def test_a_builtin_cifar_model(tmp_path):
    g = np.random.default_rng(0)
    np.savez(
        tmp_path / "tiny.npz",
        x_train=g.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8),
        y_train=g.integers(0, 10, 12),
        x_test=g.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
        y_test=g.integers(0, 10, 4),
    )
    code = cli.main(
        [
            "curvature",
            "--model",
            "vgg11",
            "--width",
            "0.0625",
            "--data",
            str(tmp_path / "tiny.npz"),
            "--train-subset",
            "10",
            "--batch-size",
            "6",
            "--top",
            "1",
            "--bottom",
            "0",
            "--lanczos-steps",
            "3",
            "--max-steps",
            "3",
            "--trace-products",
            "4",
            "--slq-vectors",
            "1",
            "--slq-steps",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    out = json.loads((tmp_path / "out" / "curvature.json").read_text())
    assert out["data"]["batch_sizes"] == [6, 4] and out["eigenpairs"]["steps"] == 3
    assert out["operator"]["products"] == 3 + 1 + 8 + 2 and out["complete"]
