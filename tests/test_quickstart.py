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
    install_and_run, tests = _quickstart()
    code = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    # the README's two commands, in order, after the venv; the only pip is the README's own
    ran = [i for i, line in enumerate(code) if line in (f"{install_and_run} || exit", tests)]
    venv = next(i for i, line in enumerate(code) if "python3 -m venv" in line)
    assert [code[i] for i in ran] == [f"{install_and_run} || exit", tests] and venv < ran[0]
    pips = [
        line for line in code if re.search(r"\bpip3?\b", line) and not line.startswith("expected=")
    ]
    assert pips == [f"{install_and_run} || exit"], (
        "CI must install nothing beyond the README's commands"
    )
    # and .ci/run refuses to run when the README's block is not exactly those two commands
    assert f"expected='{install_and_run}\n{tests}'" in ci


def test_ci_removes_its_venv_whatever_way_it_ends():
    # a CI venv is ~6 GB with torch's CUDA build; ones left behind filled the disk once
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"""trap 'rm -rf "\$ci_tmp"' EXIT""", ci)
    assert 'venv="$ci_tmp/venv"' in ci
