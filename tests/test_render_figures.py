"""The figures people look at: drawn from the committed reports, checked for what a reader relies on
(c1 on a symmetric-log axis with 0 marked, the step cap against the lr used, fitted slopes in the
rates legend, guide lines of the claimed rate, the paper's symbols through mathtext)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lpcheck import report
from lpcheck.estimate import render

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results"
EST, RATES = RESULTS / "estimate-cpu" / "constants.json", RESULTS / "rates" / "rates.json"
pytestmark = pytest.mark.skipif(
    not (EST.is_file() and RATES.is_file()), reason="the committed results are not here"
)


def _capture(monkeypatch, module):
    figs = []
    monkeypatch.setattr(module, "save_figure", lambda fig, path: figs.append(fig) or Path(path))
    return figs


def test_estimate_alignment_symlog_with_zero_and_the_cap_against_the_lr(monkeypatch, tmp_path):
    figs = _capture(monkeypatch, render.report)
    d = report.read_json(EST)
    render.plots(d, tmp_path)
    constants, frontier = figs
    ax = next(a for a in constants.axes if a.get_title().startswith("Alignment"))
    assert ax.get_yscale() == "symlog"
    assert any(np.allclose(line.get_ydata(), 0.0) for line in ax.get_lines())  # 0 is marked
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(r"\tilde c_1" in t for t in labels) and not any("c~" in t for t in labels)
    cap = next(a for a in constants.axes if a.get_title().startswith("Step cap"))
    caps = [
        line.get_ydata()[0]
        for line in cap.get_lines()
        if line.get_label().startswith("Theorem 1: $c_1$")
    ]
    assert np.isclose(caps[0], d["fit"]["assumption5"]["step_cap"])
    lr = next(line for line in cap.get_lines() if line.get_label() == "lr used (the schedule)")
    assert len(lr.get_xdata()) == d["run"]["T"] and np.isclose(
        max(lr.get_ydata()), d["fit"]["lr_max"]
    )
    assert all(r"\tilde" in a.get_xlabel() for a in frontier.axes[1:])


def test_rates_legend_carries_the_fitted_slopes_and_guides(monkeypatch, tmp_path):
    from lpcheck.rates import render_plot
    from lpcheck.rates.render import plot_problem

    figs = _capture(monkeypatch, render_plot)
    prob = report.read_json(RATES)["problems"]["logistic"]
    plot_problem(prob, tmp_path / "x.png")
    (fig,) = figs
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    study = next(s for s in prob["studies"] if s["rule"] == "theorem" and s["method"] == "lpsgd")
    assert f"lpsgd: slope {study['tail_fit']['slope']:.3f}" in " ".join(labels)
    guides = [line for line in ax.get_lines() if line.get_color() == "0.8"]
    assert guides
    for line in guides:  # each guide has the claimed slope -1/2 on the log-log axes
        (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
        assert np.isclose(np.log(y1 / y0) / np.log(x1 / x0), -0.5)
