"""lpcheck.training: the paper's hyperparameters, the optimizers, the shared training loop."""

import numpy as np
import pytest
import torch

from lpcheck import models, training
from lpcheck.baselines import Lion
from lpcheck.data import DeviceCifar
from lpcheck.optim import LPSGDM

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=n)
    return DeviceCifar(x, y, "cifar10")


def tiny_run(opt_name="lpsgdm", epochs=3, seed=0):
    torch.manual_seed(seed)
    model = models.build("resnet18", width=0.0625)
    hp = training.paper_hyperparameters("cifar10", "resnet18", opt_name)
    opt = training.make_optimizer(opt_name, model.parameters(), hp, epochs)
    run = training.Training(
        model,
        opt,
        tiny_data(),
        batch_size=32,
        epochs=epochs,
        steps_per_epoch=3,
        warmup_steps=2,
        lr=hp["lr"],
        seed=seed,
    )
    return model, opt, run


def test_paper_rows():
    assert training.paper_hyperparameters("cifar10", "resnet18", "lpsgdm") == {
        "lr": 0.001,
        "weight_decay": 0.01,
        "batch_size": 128,
        "p_max": 6.0,
        "momentum": 0.9,
        "eps": 1e-8,
    }
    assert training.paper_hyperparameters("cifar10", "resnet50", "sgdm")["lr"] == 0.05
    assert training.paper_hyperparameters("cifar100", "vgg11", "lpsgdm")["p_max"] == 8.0
    assert training.paper_hyperparameters("cifar10", "resnet18", "lion")["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="no paper hyperparameters for adam"):
        training.paper_hyperparameters("cifar10", "resnet18", "adam")


def test_make_optimizer_builds_each_with_its_row():
    params = [torch.nn.Parameter(torch.zeros(3))]
    kinds = {"sgdm": torch.optim.SGD, "adamw": torch.optim.AdamW, "lion": Lion, "lpsgdm": LPSGDM}
    for name, cls in kinds.items():
        hp = training.paper_hyperparameters("cifar10", "resnet18", name)
        opt = training.make_optimizer(name, params, hp, 10)
        assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == hp["lr"]
        assert opt.param_groups[0]["weight_decay"] == hp["weight_decay"]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        training.make_optimizer("adam", params, {}, 10)


def test_training_runs_the_schedule_and_reports_epoch_losses():
    model, opt, run = tiny_run()
    ps, lrs = [], []
    while run.step_index < run.T:
        run.step()
        ps.append(opt.param_groups[0]["p"])
        lrs.append(opt.param_groups[0]["lr"])
    assert len(run.epoch_losses) == 3 and all(np.isfinite(run.epoch_losses))
    assert ps[0] == 6.0 and ps[-1] == 2.0  # eq. 19 per epoch
    assert lrs[0] == pytest.approx(1e-4) and lrs[2] == pytest.approx(1e-3)  # warm-up, then cosine
    with pytest.raises(ValueError, match="training is complete"):
        run.step()


@pytest.mark.parametrize("opt_name", ["lpsgdm", "sgdm", "lion", "adamw"])
def test_interrupted_and_resumed_training_is_bitwise_identical(opt_name):
    model_a, _, run_a = tiny_run(opt_name)
    while run_a.step_index < run_a.T:
        run_a.step()
    model_b, opt_b, run_b = tiny_run(opt_name)
    for _ in range(4):  # stop mid-epoch 2
        run_b.step()
    saved = {"model": model_b.state_dict(), "opt": opt_b.state_dict(), "run": run_b.state_dict()}
    model_c, opt_c, run_c = tiny_run(opt_name, seed=0)
    model_c.load_state_dict(saved["model"])
    opt_c.load_state_dict(saved["opt"])
    run_c.load_state_dict(saved["run"])
    while run_c.step_index < run_c.T:
        run_c.step()
    for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values()):
        assert torch.equal(a, c)
    assert run_a.epoch_losses == run_c.epoch_losses


def test_evaluate_accuracy_and_nll_by_hand():
    data = tiny_data(n=50)
    model = models.build("vgg11", width=0.0625)
    out = training.evaluate(model, data, batch_size=16)
    model.eval()
    with torch.no_grad():
        x, y = data.batch(torch.arange(50))
        logits = model(x)
    assert out["accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert out["nll"] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5
    )
    model.train()
    training.evaluate(model, data)
    assert model.training


def test_bfloat16_autocast_runs_on_cpu():
    model, _, run = tiny_run()
    run.autocast = torch.bfloat16
    for _ in range(3):
        run.step()
    assert np.isfinite(run.epoch_losses[0])


def test_divergence_is_a_clear_error():
    model, opt, run = tiny_run("sgdm")
    run.lr = 1e30
    with pytest.raises(ValueError, match="training diverged: the mean loss of epoch 1"):
        for _ in range(3):
            run.step()


@pytest.mark.parametrize(
    "name,match", [("tpu", "--device must be cpu or cuda"), ("cuda:7", "CUDA|only")]
)
def test_torch_device_errors(name, match):
    if name.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("a machine with 8 GPUs")
    with pytest.raises(ValueError, match=match):
        training.torch_device(name)


def test_steps_per_epoch_is_checked():
    model, opt, _ = tiny_run()
    with pytest.raises(ValueError, match="steps_per_epoch must be in"):
        training.Training(
            model,
            opt,
            tiny_data(n=40),
            batch_size=32,
            epochs=1,
            steps_per_epoch=2,
            warmup_steps=0,
            lr=0.1,
        )


# -- option checks shared by lpcheck estimate and the experiments ----------------------------------


def test_threads_and_seed_checks():
    import os

    assert training.check_threads(None) is None and training.check_threads(np.int64(1)) == 1
    for bad in (0, -1, (os.cpu_count() or 1) + 1, 10**6, 1.5, "2"):
        with pytest.raises(ValueError, match=r"--threads must be an integer in \[1, "):
            training.check_threads(bad)
    assert training.check_seed(torch.tensor(5)) == 5 and training.check_seed(2**63 - 1) == 2**63 - 1
    for bad in (-1, 2**63, 2**64, 0.5, None):
        with pytest.raises(ValueError, match=r"--seed must be an integer in \[0, 2\*\*63 - 1\]"):
            training.check_seed(bad)


def test_device_check_names_the_option():
    assert training.torch_device("cpu").type == "cpu"
    for bad in ("tpu", "", "meta", "cuda:x", None):
        with pytest.raises(ValueError, match=r"--dev must be cpu or cuda"):
            training.torch_device(bad, "--dev")


def test_model_size_is_counted_without_memory():
    assert (
        training.check_model_size("resnet18", 10, 1.0, "cpu") == 11_173_962
    )  # the models module's count
    with pytest.raises(ValueError, match=r"--width 1e\+06.* more parameters than"):
        training.check_model_size("resnet50", 10, 1e6, "cpu")
    with pytest.raises(
        ValueError, match=r"--width 100.* parameters.* GiB"
    ):  # memory, counted without allocating it
        training.check_model_size("vgg11", 10, 100.0, "cpu")
