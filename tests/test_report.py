"""lpcheck.report: the one writer of JSON, Markdown and PNG."""

import json
import math

import numpy as np
import pytest
import torch

from lpcheck import report


def test_json_is_strict_and_round_trips_non_finite(tmp_path):
    data = {"a": math.inf, "b": [-math.inf, math.nan, 1.5], "c": np.float32(2.5), "d": torch.tensor([1.0, 2.0]),
            "e": np.arange(3), "f": None, "g": True}
    path = report.write_json(tmp_path / "r.json", data)
    raw = json.loads(path.read_text())  # strict JSON: no Infinity/NaN literals
    assert raw["a"] == "inf" and raw["b"][:2] == ["-inf", "nan"] and raw["d"] == [1.0, 2.0] and raw["e"] == [0, 1, 2]
    back = report.read_json(path)
    assert back["a"] == math.inf and back["b"][0] == -math.inf and math.isnan(back["b"][1]) and back["g"] is True


def test_write_is_atomic_and_leaves_no_temporaries(tmp_path):
    report.write_json(tmp_path / "r.json", {"x": 1})
    with pytest.raises(TypeError, match="cannot write object"):
        report.write_json(tmp_path / "r.json", {"x": object()})
    assert report.read_json(tmp_path / "r.json") == {"x": 1}  # the old report survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no report at"):
        report.read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not a valid JSON report"):
        report.read_json(tmp_path / "bad.json")


def test_write_report_adds_provenance_and_renders_markdown(tmp_path):
    paths = report.write_report(tmp_path, "demo", {"rows": [[1, "a|b"]]},
                                lambda d: report.markdown_table(["n", "s"], d["rows"]))
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

    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": __import__("os").environ["PATH"]})


@pytest.mark.skipif(__import__("shutil").which("git") is None, reason="needs git")
def test_git_commit_only_for_lpcheck_s_own_tree(tmp_path):
    # a source tree: <repo>/lpcheck is the package -> its commit, '+dirty' once a tracked file changes
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
