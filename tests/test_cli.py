"""The `lpcheck` command and the installed package."""

import importlib
import subprocess
import sys

import lpcheck
from lpcheck import cli


def test_python_m_lpcheck_help_and_version(tmp_path):
    # run from an unrelated directory: this is the installed copy, not the source tree
    out = subprocess.run(
        [sys.executable, "-m", "lpcheck", "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0 and out.stdout.strip() == f"lpcheck {lpcheck.__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "lpcheck", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0 and "usage: lpcheck" in out.stdout


def test_every_registered_verb_has_help():
    for verb in cli._available():
        parser = cli.build_parser()
        sub = parser._subparsers._group_actions[0].choices[verb]
        assert sub.format_help().startswith(f"usage: lpcheck {verb}")


def test_no_verb_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: lpcheck" in capsys.readouterr().out


def test_proofs_ship_as_lpcheck_proofs():
    mod = importlib.import_module("lpcheck.proofs")
    assert mod.__doc__ and "obligations" in mod.__doc__
