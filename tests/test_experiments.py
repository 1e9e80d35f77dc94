"""experiments/: each script runs end to end on tiny settings and writes what it promises."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(name, *args, timeout=300):
    out = subprocess.run([sys.executable, str(ROOT / "experiments" / name), *args], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


def test_fig3_toy_trajectories(tmp_path):
    run_script("fig3_toy_trajectories.py", "--steps", "30", "--grid", "5", "--p", "4", "--out", str(tmp_path))
    data = json.loads((tmp_path / "fig3.json").read_text())
    assert set(data["problems"]) == {"eq17", "eq18"}
    assert set(data["problems"]["eq17"]) == {"GD", "signGD", "LPSGD p=4"}
    assert len(data["problems"]["eq18"]["GD"]["path"]) == 31
    assert "fig3_toy_trajectories.py" in data["provenance"]["command"] and data["provenance"]["device"]
    assert (tmp_path / "eq17.png").stat().st_size > 1000 and (tmp_path / "fig3.md").exists()


def test_fig3_rejects_bad_arguments():
    out = subprocess.run([sys.executable, str(ROOT / "experiments" / "fig3_toy_trajectories.py"), "--p", "1.5"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--p values must be >= 2" in out.stderr
