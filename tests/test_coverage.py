"""experiments/coverage.py: the measurement behind lpcheck's intervals runs end to end and checks
its options.

The coverage tests themselves are beside the code they test: tests/test_estimate_fit.py (the
per-checkpoint intervals, at lpcheck estimate's N and K) and tests/test_rates_fit.py (fit_slope)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "coverage.py"


def test_quick_run_writes_both_reports(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    cov = json.loads((tmp_path / "coverage.json").read_text())
    methods = {r["method"] for r in cov["table1"]}
    assert {
        "percentile bootstrap (old)",
        "BCa",
        "bootstrap-t",
        "Student t",
        cov["chosen"],
    } <= methods
    assert {(r["N"], r["K"]) for r in cov["table1"]} == {(12, 24), (20, 32)}
    assert all(
        0 <= r["coverage"] <= 1 and r["se"] >= 0 and r["width_vs_percentile"] > 0
        for r in cov["table1"]
    )
    assert {r["law"] for r in cov["table3"]} >= {"normal", "student_t3", "gamma2", "lognormal_1"}
    assert "coverage.py" in cov["provenance"]["command"]
    assert "## 2. One end at a time" in (tmp_path / "coverage.md").read_text()
    slopes = json.loads((tmp_path / "slopes.json").read_text())
    assert {r["method"] for r in slopes["table4"]} == {
        "percentile bootstrap (old)",
        "jackknife t",
        "studentized bootstrap",
        "union: fit_slope",
    }
    assert {r["seeds"] for r in slopes["table4"]} == {256, 32, 16, 8}


def test_bad_options_are_refused_before_any_work(tmp_path):
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "0", "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--trials must be an integer >= 1, got 0" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "x").exists()
