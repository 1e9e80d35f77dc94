"""lpcheck.records and the typed results built on it (estimate.fit.FitResult,
rates.study.StudyResult): to_dict() is the JSON that fit_run and rate_study write, key for key
and in order, and from_dict() reads it back."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from lpcheck.estimate.fit import FitResult
from lpcheck.rates import make_problem
from lpcheck.rates.simulation import make_method
from lpcheck.rates.study import StudyResult, rate_study
from lpcheck.records import ABSENT, Absent, JsonRecord

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


@dataclass(kw_only=True)
class _Rec(JsonRecord):
    a: int
    b: float | None
    c: str | Absent = ABSENT
    d: int


def test_absent_keys_are_left_out_and_null_values_kept_in_field_order():
    assert list(_Rec(d=4, a=1, b=None).to_dict().items()) == [("a", 1), ("b", None), ("d", 4)]
    assert list(_Rec(a=1, b=2.0, c="x", d=4).to_dict()) == ["a", "b", "c", "d"]
    assert _Rec.from_dict({"a": 1, "b": None, "d": 4}).c is ABSENT


@pytest.mark.parametrize(
    "data, match",
    [
        ({"a": 1, "b": 2, "d": 3, "e": 0}, r"_Rec: unknown keys \['e'\]"),
        ({"a": 1, "c": "x"}, r"_Rec: missing keys \['b', 'd'\]"),
        ([("a", 1)], "needs a JSON object"),
    ],
)
def test_from_dict_names_unknown_and_missing_keys(data, match):
    with pytest.raises(ValueError, match=match):
        _Rec.from_dict(data)


def _same_json(record_cls, data):
    assert json.dumps(record_cls.from_dict(data).to_dict()) == json.dumps(data)


def test_fit_result_is_the_fit_json():
    """The committed CPU run's fit byte for byte, and the golden fit (stored with sorted keys) as a
    dict."""
    _same_json(
        FitResult, json.loads((RESULTS / "estimate-cpu" / "constants.json").read_text())["fit"]
    )
    golden = json.loads((ROOT / "tests" / "golden" / "estimate_cpu_fit.json").read_text())
    record = FitResult.from_dict(golden)
    assert record.to_dict() == golden and record.assumption6_reason is ABSENT
    assert record.delta == golden["delta"] and record.assumption5 is golden["assumption5"]


def test_study_result_is_the_study_json_committed_and_fresh():
    """Every study of the committed reports (written before metric, rate and how were recorded) and
    a fresh study (with them, and with a fixed lr: no pilot) come back byte for byte."""
    studies = [
        s
        for name in ("rates", "rates-quick")
        for e in json.loads((RESULTS / name / "rates.json").read_text())["problems"].values()
        for s in e["studies"]
    ]
    assert len(studies) > 10
    for s in studies:
        _same_json(StudyResult, s)
    fresh = rate_study(
        make_problem("weak"),
        make_method("sgd"),
        "sqrt",
        [50, 100],
        lr=0.1,
        seeds=4,
        epochs=2,
        K=16,
        pilot_seeds=2,
        checkpoint_seeds=2,
        checkpoint_count=4,
        n_boot=200,
    )
    fresh = json.loads(
        json.dumps(fresh, default=lambda x: x.tolist())
    )  # numpy arrays as rates.json has them
    _same_json(StudyResult, fresh)
    record = StudyResult.from_dict(fresh)
    assert (
        record.pilot is ABSENT and record.metric == fresh["metric"] and record.runs == fresh["runs"]
    )


def test_fit_result_of_a_fresh_fit_with_its_reasons():
    """A fit without momentum statistics or pairs carries assumption6_reason and the smoothness
    reasons."""
    import numpy as np

    from lpcheck.estimate.fit import fit_run

    rng = np.random.default_rng(0)
    recs = [
        {
            "step": 10 * i,
            "epoch": 1,
            "p": 4.0,
            "lr": 0.01,
            "K": 16,
            "loss": 2.0 - 0.1 * i,
            "grad_sq": g,
            "grad_norm_q": g**0.5,
            "pairs": [],
            "samples": {
                "align": list(0.8 + 0.1 * rng.standard_normal(16)),
                "moment": list(g + 1 + rng.random(16)),
                "noise": [1.0] * 16,
                "noise_l2": [0.5] * 16,
            },
        }
        for i, g in enumerate([4.0, 2.0, 1.0])
    ]
    out = json.loads(json.dumps(fit_run(recs, T=100, resamples=200)))
    _same_json(FitResult, out)
    record = FitResult.from_dict(out)
    assert record.assumption6 is None and record.assumption6_reason == out["assumption6_reason"]
    assert record.geometry is ABSENT and "L_reason" in record.smoothness
