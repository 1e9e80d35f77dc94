"""The estimators on CUDA: the same numbers as on the CPU, and no host sync per batch or per step.

Skipped without a CUDA device (tests/conftest.py). Host syncs are counted with torch's sync debug
mode ("warn"): a loop without per-iteration syncs gives the same count for 4 and for 8 iterations.
"""

import warnings

import numpy as np
import pytest
import torch

from lpcheck.estimate.probe import Probe
from lpcheck.optim import LPSGDM

pytestmark = pytest.mark.gpu


def _setup(device, n):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    net = net.double().to(device)
    gen = torch.Generator().manual_seed(1)
    data = (
        torch.randn(n, 6, generator=gen, dtype=torch.float64).to(device),
        torch.randint(0, 3, (n,), generator=gen).to(device),
    )
    opt = LPSGDM(net.parameters(), lr=0.05, p=6.0, weight_decay=0.01, check_finite=False)
    x, y = data
    torch.nn.functional.cross_entropy(net(x[:8]), y[:8]).backward()
    opt.step()
    return net, data, opt


def test_probe_on_cuda_equals_cpu():
    recs = []
    for device in ("cpu", "cuda"):
        net, data, opt = _setup(device, 96)
        recs.append(Probe(net, data, batch_size=16, samples=4, seed=2).measure(opt, step=1))
    a, b = recs
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-10)
    for name in a["samples"]:
        np.testing.assert_allclose(a["samples"][name], b["samples"][name], rtol=1e-8, err_msg=name)
    assert a["pairs"][0]["grad_ratio"] == pytest.approx(b["pairs"][0]["grad_ratio"], rel=1e-6)


def _syncs(fn):
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(x.message) for x in w)


def test_probe_syncs_do_not_grow_with_blocks_or_samples():
    counts = []
    for n, k in ((64, 2), (128, 6)):  # 4 blocks, 2 samples vs 8 blocks, 6 samples
        net, data, opt = _setup("cuda", n)
        probe = Probe(net, data, batch_size=16, samples=k, seed=2)
        probe.measure(opt, step=1)  # warm-up: lazy CUDA initialisation
        counts.append(_syncs(lambda: probe.measure(opt, step=2)))  # noqa: B023 -- called at once
    assert counts[0] == counts[1], counts


def test_training_loop_syncs_once_per_epoch(tmp_path):
    from lpcheck.estimate import trainer

    rng = np.random.default_rng(0)
    npz = tmp_path / "d.npz"
    np.savez(
        npz,
        x_train=rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(256) % 10,
        x_test=rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(32) % 10,
    )
    counts = []
    for bpe in (2, 6):  # one epoch of 2 and of 6 steps, one probe (at step 0) each
        cfg = trainer.Config(
            model="resnet18",
            data=str(npz),
            out=str(tmp_path / f"o{bpe}"),
            width=0.0625,
            epochs=1,
            checkpoints=1,
            samples=2,
            batch_size=32,
            batches_per_epoch=bpe,
            device="cuda",
            resamples=100,
            step_pairs=0,
        )
        counts.append(_syncs(lambda: trainer.run(cfg, quiet=True)))  # noqa: B023 -- called at once
    assert counts[0] == counts[1], counts
