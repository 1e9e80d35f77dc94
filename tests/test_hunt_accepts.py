"""Inputs torch accepts that lpcheck must accept too (found by the bad-input hunt, where the corpus
holds what lpcheck must refuse): a loss of shape (1,), which autograd takes as a scalar."""

import json
import math

import torch

from lpcheck import cli
from lpcheck.estimate import Probe

USER = """
import torch


def build():
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def data():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.arange(32) % 3
    return x[:24], y[:24], x[24:], y[24:]


def loss(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs, targets).reshape(1)
"""


def test_estimate_takes_a_loss_of_shape_1(tmp_path):
    """Training, the probe and the test evaluation each summed it into a 0-d tensor and raised
    'output with shape [] doesn't match the broadcast shape [1]' after the first batch's checks."""
    mod = tmp_path / "usermod.py"
    mod.write_text(USER)
    argv = ["estimate", "--model", f"{mod}:build", "--data", f"{mod}:data", "--loss", f"{mod}:loss"]
    argv += ["--lr", "0.01", "--batch-size", "8", "--epochs", "1", "--checkpoints", "1"]
    argv += ["--samples", "2", "--resamples", "100", "--threads", "1", "--quiet"]
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "constants.json").read_text())
    assert report["complete"] and len(report["records"]) == 1  # --checkpoints 1
    assert all(r["loss"] > 0 for r in report["records"])
    assert report["test_loss"] is not None and report["test_loss"] > 0


def test_probe_measures_with_a_loss_of_shape_1():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    data = (torch.randn(32, 4), torch.arange(32) % 3)

    def loss_fn(outputs, targets):
        return torch.nn.functional.cross_entropy(outputs, targets).reshape(1)

    probe = Probe(net, data, batch_size=8, samples=2, loss_fn=loss_fn)
    record = probe.measure(torch.optim.SGD(net.parameters(), lr=0.1), step=0)
    expected = torch.nn.functional.cross_entropy(
        net(data[0][probe.blocks.flatten()]), data[1][probe.blocks.flatten()]
    )
    assert abs(record["loss"] - float(expected.detach())) < 1e-5


def test_a_huge_checkpoint_count_is_every_iteration_not_an_allocation():
    """rate_study(checkpoint_count=10**12) asked torch.logspace for 10**12 points (a memory error);
    past T (ln T + 1) + 1 points the grid rounds to every iteration, which is what comes back."""
    import math

    from lpcheck.rates.simulation import checkpoint_times

    def by_grid(T, n):
        grid = torch.logspace(0, math.log10(T), n, dtype=torch.float64) - 1
        return sorted({int(round(float(v))) for v in grid} | {0, T - 1})

    for T in (2, 7, 100, 1000):
        n = int(T * (math.log(T) + 1)) + 2
        assert checkpoint_times(T, n) == by_grid(T, n) == list(range(T))
    assert checkpoint_times(50, 10**12) == list(range(50))
    assert checkpoint_times(100, 12) == by_grid(100, 12)  # small counts: the grid as before


def test_intervals_of_values_at_the_top_of_float64():
    """t_hall divided each row by 2**exponent of its largest |value|: for a value >= 2**1023 that
    power is inf in float64, and the interval came back (nan, nan, nan) without a word."""
    from lpcheck.estimate.fit import intervals

    mean, lo, hi = intervals({"a": [1e308, 1e308, -1e308]}, 0.95)["a"]
    assert math.isclose(mean, 1e308 / 3, rel_tol=1e-15)
    assert lo == -math.inf and hi == math.inf  # past float64's range: unbounded, as documented
    mean, lo, hi = intervals({"a": [1.7e308, 1.6e308, 1.5e308]}, 0.95)["a"]
    assert math.isclose(mean, 1.6e308, rel_tol=1e-15) and 1.3e308 < lo < mean and hi == math.inf
    # the same samples divided by 2**1000 give the same interval divided by 2**1000, bit for bit
    small = intervals({"a": [1.7e308 / 2**1000, 1.6e308 / 2**1000, 1.5e308 / 2**1000]}, 0.95)
    assert small["a"][:2] == (mean / 2**1000, lo / 2**1000)
