"""lpcheck.progress: an ETA that weights each kind of work by its measured cost, a bar in a terminal
and one flushed line per milestone in a log; and the two commands that use it, in a log."""

from __future__ import annotations

import io
import re

import numpy as np

from lpcheck import cli
from lpcheck.progress import Progress, clock


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _run(progress, timer, steps, probes):
    """`probes` probes of 100 s, then `steps` steps of 1 s."""
    for _ in range(probes):
        progress.mark()
        timer.t += 100.0
        progress.advance("probe")
    for _ in range(steps):
        timer.t += 1.0
        progress.update()


def test_eta_weights_probes_by_their_measured_cost():
    timer, log = Clock(), io.StringIO()
    p = Progress(
        "est",
        {"step": 10, "probe": 2},
        {"step": 1, "probe": 50},
        bar="step",
        stream=log,
        timer=timer,
    )
    assert p.eta() is None  # nothing timed yet: unknown, not a guess
    _run(p, timer, steps=0, probes=1)
    assert (
        p.eta() == 10 * 2.0 + 1 * 100.0
    )  # steps priced by the prior (a probe = 50 steps) until one is timed
    _run(p, timer, steps=5, probes=0)
    assert p.eta() == 5 * 1.0 + 1 * 100.0  # a step-only ETA would say 5 s
    p.milestone("checkpoint 1/2")
    assert log.getvalue() == "est: checkpoint 1/2; elapsed 1:45, ETA 1:45\n"


def test_a_log_gets_one_line_per_milestone_and_no_bar():
    timer, log = Clock(), io.StringIO()
    p = Progress(
        "est",
        {"step": 3, "probe": 3},
        {"step": 1, "probe": 50},
        bar="step",
        stream=log,
        timer=timer,
    )
    for i in range(3):
        _run(p, timer, steps=1, probes=1)
        p.milestone(f"checkpoint {i + 1}/3")
    p.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 3
    assert all(
        re.fullmatch(r"est: checkpoint \d/3; elapsed \d+:\d\d, ETA \d+:\d\d", x) for x in lines
    )
    assert lines[-1].endswith("ETA 0:00") and "\r" not in log.getvalue()


def test_a_terminal_gets_the_bar_with_the_weighted_eta():
    timer, term = Clock(), Terminal()
    p = Progress(
        "est",
        {"step": 10, "probe": 2},
        {"step": 1, "probe": 50},
        bar="step",
        stream=term,
        timer=timer,
    )
    _run(p, timer, steps=5, probes=1)
    p.milestone("checkpoint 1/2")
    text = term.getvalue()
    assert (
        "5/10" in text and "ETA 1:45, checkpoint 1/2" in text
    )  # the bar counts steps, its ETA counts the probe
    assert "est: checkpoint" not in text  # no log line in a terminal
    p.close()


def test_quiet_writes_nothing():
    timer = Clock()
    for stream in (io.StringIO(), Terminal()):
        p = Progress("est", {"step": 2}, bar="step", stream=stream, quiet=True, timer=timer)
        _run(p, timer, steps=2, probes=0)
        p.milestone("done")
        p.close()
        assert stream.getvalue() == ""


def test_clock():
    assert clock(None) == "?" and clock(float("inf")) == "?"
    assert clock(65) == "1:05" and clock(3725) == "1:02:05"


def test_estimate_in_a_log_prints_one_line_per_checkpoint(tmp_path, capsys):
    rng = np.random.default_rng(0)
    npz = tmp_path / "tiny.npz"
    np.savez(
        npz,
        x_train=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(64) % 10,
        x_test=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(16) % 10,
    )
    argv = [
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
        "2",
        "--samples",
        "2",
        "--resamples",
        "100",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "out"),
    ]
    assert cli.main(argv) == 0
    lines = [
        x
        for x in capsys.readouterr().err.splitlines()
        if x.startswith("lpcheck estimate: checkpoint")
    ]
    assert len(lines) == 2, lines
    assert re.fullmatch(
        r"lpcheck estimate: checkpoint 1/2 \(step 0 of 4\) measured; elapsed \d+:\d\d, ETA "
        r"\d+:\d\d",
        lines[0],
    )
    assert lines[1].endswith("ETA 0:00") or "step 2 of 4" in lines[1]


def test_rates_in_a_log_prints_one_line_per_study(tmp_path, capsys):
    argv = [
        "rates",
        "--problem",
        "weak",
        "--optimizer",
        "sgd,lpsgd",
        "--T",
        "20,40,80",
        "--seeds",
        "3",
        "--K",
        "32",
        "--pilot-seeds",
        "3",
        "--boot",
        "200",
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 0
    lines = [
        x for x in capsys.readouterr().err.splitlines() if x.startswith("lpcheck rates: study")
    ]
    assert [x.split(":")[1].split()[1] for x in lines] == ["1/2", "2/2"], lines
    assert all(re.search(r"; elapsed \d+:\d\d, ETA \d+:\d\d$", x) for x in lines)
    assert lines[-1].endswith("ETA 0:00")
