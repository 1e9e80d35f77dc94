"""lpcheck.report: the one writer of JSON, Markdown and PNG."""

import json
import math

import numpy as np
import pytest
import torch

from lpcheck import report


def test_json_is_strict_and_round_trips_non_finite(tmp_path):
    data = {
        "a": math.inf,
        "b": [-math.inf, math.nan, 1.5],
        "c": np.float32(2.5),
        "d": torch.tensor([1.0, 2.0]),
        "e": np.arange(3),
        "f": None,
        "g": True,
    }
    path = report.write_json(tmp_path / "r.json", data)
    raw = json.loads(path.read_text())  # strict JSON: no Infinity/NaN literals
    assert (
        raw["a"] == "inf"
        and raw["b"][:2] == ["-inf", "nan"]
        and raw["d"] == [1.0, 2.0]
        and raw["e"] == [0, 1, 2]
    )
    back = report.read_json(path)
    assert (
        back["a"] == math.inf
        and back["b"][0] == -math.inf
        and math.isnan(back["b"][1])
        and back["g"] is True
    )


def test_write_is_atomic_and_leaves_no_temporaries(tmp_path):
    report.write_json(tmp_path / "r.json", {"x": 1})
    with pytest.raises(TypeError, match="cannot write object"):
        report.write_json(tmp_path / "r.json", {"x": object()})
    assert report.read_json(tmp_path / "r.json") == {
        "x": 1
    }  # the old report survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no report at"):
        report.read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not a valid JSON report"):
        report.read_json(tmp_path / "bad.json")


def test_write_report_adds_provenance_and_renders_markdown(tmp_path):
    paths = report.write_report(
        tmp_path,
        "demo",
        {"rows": [[1, "a|b"]]},
        lambda d: report.markdown_table(["n", "s"], d["rows"]),
    )
    data = report.read_json(paths["json"])
    prov = data["provenance"]
    assert {"command", "versions", "device", "time"} <= set(prov) and prov["versions"]["python"]
    md = paths["md"].read_text()
    assert "| 1 | a\\|b |" in md and "Command: `" in md and "Device:" in md


def test_markdown_table_shape():
    assert report.markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |\n"


def test_save_figure_writes_png(tmp_path):
    fig, ax = report.new_figure()
    ax.plot([0, 1], [1, 0])
    path = report.save_figure(fig, tmp_path / "sub" / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _git(cwd, *args):
    import subprocess

    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "HOME": str(cwd),
            "PATH": __import__("os").environ["PATH"],
        },
    )


@pytest.mark.skipif(__import__("shutil").which("git") is None, reason="needs git")
def test_git_commit_only_for_lpcheck_s_own_tree(tmp_path):
    # a source tree: <repo>/lpcheck is the package -> its commit, '+dirty' once a tracked file
    # changes
    repo = tmp_path / "src"
    (repo / "lpcheck").mkdir(parents=True)
    (repo / "lpcheck" / "m.py").write_text("x = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "c")
    commit = report._git_commit(repo / "lpcheck")
    assert commit and len(commit) == 40
    (repo / "lpcheck" / "m.py").write_text("x = 2\n")
    assert report._git_commit(repo / "lpcheck") == commit + "+dirty"
    # an installed copy inside some other repository (a pyenv checkout, a project) has no commit
    other = tmp_path / "other"
    (other / "site-packages" / "lpcheck").mkdir(parents=True)
    (other / "f").write_text("y\n")
    _git(other, "init", "-q")
    _git(other, "add", ".")
    _git(other, "commit", "-q", "-m", "c")
    assert report._git_commit(other / "site-packages" / "lpcheck") is None
    outside = tmp_path / "plain" / "lpcheck"
    outside.mkdir(parents=True)
    assert report._git_commit(outside) is None


# -- file modes: what open() would give, and a rewrite keeps the mode ------------------------------


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after)."""
    import os

    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path):
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_new_reports_follow_the_umask(tmp_path, umask, mask):
    """mkstemp makes 0600 files; reports used to keep that (JSON, Markdown) while PNGs got 0644."""
    umask(mask)
    paths = report.write_report(tmp_path, "r", {"x": 1}, lambda d: "# r\n")
    fig, ax = report.new_figure()
    ax.plot([0, 1])
    png = report.save_figure(fig, tmp_path / "f.png")
    with open(tmp_path / "plain", "w") as f:  # the reference: what a normal open() creates
        f.write("x")
    for path in (paths["json"], paths["md"], png):
        assert _mode(path) == _mode(tmp_path / "plain") == 0o666 & ~mask, path


def test_a_rewrite_keeps_the_file_s_mode(tmp_path, umask):
    umask(0o022)
    path = report.write_json(tmp_path / "r.json", {"x": 1})
    path.chmod(0o640)
    umask(0o077)  # a stricter umask at rewrite time does not matter: the file exists
    report.write_json(path, {"x": 2})
    assert _mode(path) == 0o640 and report.read_json(path) == {"x": 2}
    path.chmod(0o664)
    report.write_text(path, "{}\n")
    assert _mode(path) == 0o664


def test_atomic_write_records_what_it_wrote(tmp_path):
    before = len(report.written())
    report.atomic_write(tmp_path / "a.bin", lambda tmp: tmp.write_bytes(b"1"))
    with pytest.raises(RuntimeError):
        report.atomic_write(
            tmp_path / "b.bin", lambda tmp: (_ for _ in ()).throw(RuntimeError("boom"))
        )
    assert report.written()[before:] == (
        tmp_path / "a.bin",
    )  # a failed write is neither kept nor listed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


@pytest.mark.parametrize(
    "bad, match",
    [
        ("", "--out is empty"),
        ("FILE", r"--out .*f.txt is a file, not a folder"),
        ("UNDER", r"--out .*f.txt/sub cannot be created: .*f.txt is a file"),
    ],
)
def test_check_out_dir_refuses_before_writing(tmp_path, bad, match):
    (tmp_path / "f.txt").write_text("x")
    path = {"": "", "FILE": tmp_path / "f.txt", "UNDER": tmp_path / "f.txt" / "sub"}[bad]
    with pytest.raises(ValueError, match=match):
        report.check_out_dir(path)
    assert report.check_out_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checked, not created
