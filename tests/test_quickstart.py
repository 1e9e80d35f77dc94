"""The README's quick start is exactly two commands, and .ci/run runs exactly those."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart():
    script = "awk '/^## Quick start/{f=1} f&&/^```bash/{b=1;next} b&&/^```/{exit} b' README.md"
    out = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_install_and_run_then_test():
    install_and_run, tests = _quickstart()
    assert install_and_run.startswith("pip install ") and "lpcheck " in install_and_run
    assert tests.split()[0] == "pytest"


def test_ci_runs_the_readme_block_in_a_fresh_venv_with_nothing_installed_first():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and "## Quick start" in ci
    # nothing is installed before the README's own commands run
    code = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert not any(re.search(r"\bpip3?\b", line) for line in code), (
        "CI must install nothing beyond the README's commands"
    )
