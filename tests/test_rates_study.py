"""lpcheck.rates.study: the claimed rate and the metric reach the verdict and the bound check; no
nan is stored."""

import json
import math

import numpy as np
import pytest

from lpcheck.rates import make_problem
from lpcheck.rates.fit import fit_slope, verdict, verdict_rule
from lpcheck.rates.simulation import make_method, resolve_method
from lpcheck.rates.study import rate_study

SMALL = dict(
    seeds=8, epochs=4, K=32, pilot_seeds=4, checkpoint_seeds=2, checkpoint_count=6, n_boot=200
)
T = [50, 100, 200]


def test_a_quarter_rate_is_refuted_at_one_half_and_confirmed_at_one_quarter():
    """Data decaying like T^-1/4 (seed noise around it): -1/2 refutes them, -1/4 confirms them."""
    rng = np.random.default_rng(0)
    Ts = [100, 300, 1000, 3000, 10000, 30000]
    values = np.array(Ts, dtype=float) ** -0.25 * rng.lognormal(0, 0.05, size=(64, len(Ts)))
    tail = fit_slope(Ts[3:], values[:, 3:])
    assert verdict(tail, rate=-0.5)[0] == "refuted" and verdict(tail, rate=-0.25)[:2] == (
        "confirmed",
        "T^-1/4",
    )
    assert "r = -1/4" in verdict_rule(-0.25) and "r = -1/2 (eq. 33/48)" in verdict_rule()


def test_the_study_gives_its_rate_to_the_verdict():
    """SGD with eta ~ 1/sqrt(T): (1/T) sum ||grad f||_2 decays like T^-1/4 (the square root of the
    T^-1/2 mean of the squares), so on the same runs the claim -1/2 is refuted and -1/4
    confirmed."""
    problem = make_problem("logsum")
    out = {
        r: rate_study(problem, make_method("sgd"), "sqrt", T, metric="dual", rate=r, **SMALL)
        for r in (-0.5, -0.25)
    }
    assert out[-0.5]["verdict"] == "refuted" and out[-0.25]["verdict"] == "confirmed"
    assert [r["mean"] for r in out[-0.5]["runs"]] == [r["mean"] for r in out[-0.25]["runs"]]
    assert out[-0.25]["rate"] == -0.25 and out[-0.25]["metric"] == "dual"
    assert out[-0.25]["regime"] == "T^-1/4"


@pytest.mark.parametrize(
    "rate,tolerance,match",
    [
        (0.0, 0.1, r"rate must be a finite real number < 0, got 0.0"),
        (0.5, 0.1, r"rate must be"),
        (math.nan, 0.1, r"rate must be"),
        (-0.05, 0.1, r"tolerance must be a finite real number in \[0, 0.05\)"),
    ],
)
def test_bad_rates_are_named(rate, tolerance, match):
    with pytest.raises(ValueError, match=match):
        rate_study(
            make_problem("weak"),
            make_method("sgd"),
            "sqrt",
            T,
            lr=0.1,
            rate=rate,
            tolerance=tolerance,
            **SMALL,
        )


def test_the_bound_is_checked_only_for_the_metric_it_bounds():
    problem = make_problem("weak")
    own = rate_study(
        problem, resolve_method("signsgd"), "sqrt", T, lr=0.05, metric="dual_sq", **SMALL
    )
    other = rate_study(problem, resolve_method("signsgd"), "sqrt", T, lr=0.05, **SMALL)
    paper = rate_study(problem, make_method("sgd"), "sqrt", T, lr=0.05, metric="dual_sq", **SMALL)
    assert own["bound_checked"] == "3/3" and all(r["bound"]["status"] == "ok" for r in own["runs"])
    assert own["geometry"].startswith("linf")
    for study in (other, paper):
        assert study["bound_checked"] == "0/3" and study["bound_reason"].startswith(
            "no bound for this metric"
        )
        assert all(
            r["bound"]
            == {"ratio": None, "rhs": None, "note": study["bound_reason"], "status": "no bound"}
            for r in study["runs"]
        )


def test_runs_without_a_finite_result_store_none_with_a_reason_not_nan():
    study = rate_study(
        make_problem("strong"), make_method("sgd"), "constant", T, lr=10.0, **SMALL
    )  # eta L = 2000
    assert study["verdict"] == "inconclusive"
    for run in study["runs"]:
        assert (
            run["mean"] is None
            and run["sem"] is None
            and run["mean_reason"].endswith("no mean over all seeds")
        )
        assert run["f_final_mean"] is None and run["f_final_reason"]
    json.dumps(study, allow_nan=False)  # no nan anywhere


def test_a_pilot_without_a_resolved_alignment_says_none(monkeypatch):
    """The pilot's note printed 'c~1 = nan' where no checkpoint resolved eq. 43's ratio."""
    from lpcheck.rates import study as S
    from lpcheck.rates.constants import Constants

    real = S.measure

    def unresolved_with_momentum(problem, method, *a, **kw):
        c = real(problem, method, *a, **kw)
        if method.momentum > 0 and len(c.t) > 1:
            return Constants(
                c.alignment,
                1e9 * np.abs(c.alignment) + 1,
                c.moment,
                c.grad_sq,
                c.p,
                c.t,
                c.resolve,
                c.samples,
            )
        return c

    monkeypatch.setattr(S, "measure", unresolved_with_momentum)
    study = rate_study(make_problem("weak"), make_method("lpsgdm"), "theorem", T, **SMALL)
    note = study["pilot"]["note"]
    assert "c~1: none (no checkpoint resolves the alignment ratio" in note and "nan" not in note
