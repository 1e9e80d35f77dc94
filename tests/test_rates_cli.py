"""`lpcheck rates`: the report files, a user's problem through the CLI, and bad input."""

import json
import re

import pytest

from lpcheck import cli
from lpcheck.report import read_json

TINY = ["--T", "20,40,80", "--seeds", "3", "--K", "32", "--pilot-seeds", "3", "--boot", "200", "--quiet",
        "--device", "cpu"]


def test_report_json_markdown_and_plot(tmp_path):
    out = tmp_path / "r"
    code = cli.main(["rates", "--problem", "weak,logsum", "--optimizer", "sgd,lpsgdm@constant", *TINY, "--out", str(out)])
    assert code == 0
    data = read_json(out / "rates.json")
    assert data["provenance"]["command"] and data["config"]["T"] == [20, 40, 80]
    for name in ("weak", "logsum"):
        studies = data["problems"][name]["studies"]
        assert [(s["method"], s["rule"]) for s in studies] == [("sgd", "theorem"), ("lpsgdm", "constant")]
        for s in studies:
            assert s["verdict"] in ("confirmed", "refuted", "inconclusive")
            assert {"slope", "lo", "hi"} <= set(s["fit"]) and len(s["runs"]) == 3
            assert s["eta"] == [r["eta"] for r in s["runs"]]
        assert len(set(studies[1]["eta"])) == 1  # the constant rule
        assert (out / data["problems"][name]["plot"]).stat().st_size > 1000
    md = (out / "rates.md").read_text()
    (out / "rates.md").unlink()
    assert cli.main(["rates", "--render-only", "--out", str(out)]) == 0  # the same report from the JSON alone
    assert (out / "rates.md").read_text() == md
    assert "## Verdict rule" in md and "| method | step | slope, all T [95%]" in md and "![weak](rates_weak.png)" in md
    assert "Command: `" in md and "smoke run" not in md
    from lpcheck.rates.render import render_markdown
    data["config"]["quick"] = True  # a --quick report says that its verdicts are about its short T range
    assert "**A smoke run (`--quick`)**: T <= 80 and 3 seeds." in render_markdown(data)


def test_a_study_without_measurable_constants_is_reported_not_fatal(tmp_path):
    out = tmp_path / "r"
    args = [a if a != "32" else "2" for a in TINY]  # K = 2: no checkpoint resolves its alignment ratio
    assert cli.main(["rates", "--problem", "weak", "--optimizer", "sgd,sign", *args, "--out", str(out)]) == 0
    studies = read_json(out / "rates.json")["problems"]["weak"]["studies"]
    assert len(studies) == 2
    assert all(s["verdict"] == "inconclusive" and s["reason"].startswith("no step: c1 = ") for s in studies)
    assert "no step" in (out / "rates.md").read_text()


def test_a_user_problem_runs_through_the_cli(tmp_path):
    out = tmp_path / "r"
    assert cli.main(["rates", "--problem", "rates_user_problem:Cosine", "--optimizer", "lpsgd", *TINY,
                     "--out", str(out)]) == 0
    data = json.loads((out / "rates.json").read_text())
    assert data["problems"]["rates_user_problem:Cosine"]["info"]["name"] == "cosine"
    assert len(data["problems"]["rates_user_problem:Cosine"]["studies"][0]["runs"]) == 3
    assert (out / "rates_rates_user_problem_Cosine.png").exists()


@pytest.mark.parametrize("args,match", [
    (["--problem", "rosenbrock"], "unknown problem 'rosenbrock'; choose from strong, weak, aniso, logsum, logistic, heavy"),
    (["--optimizer", "adam"], "unknown optimizer 'adam'; choose from lpsgd, lpsgdm, sgd, sgdm, sign, steepest"),
    (["--optimizer", "sgd@fast"], "unknown step rule 'fast' in 'sgd@fast'; choose from theorem, sqrt, constant"),
    (["--step", "cosine"], "unknown step rule 'cosine'"),
    (["--T", "100,50,200"], "T must be strictly increasing"),
    (["--T", "100"], "T needs at least 2 values"),
    (["--T", "0,10"], "strictly increasing integers >= 1"),
    (["--T", "10,x"], "--T must be comma-separated integers"),
    (["--seeds", "1"], r"--seeds must be an integer in \[2, "),
    (["--K", "1"], r"--K must be an integer in \[2, "),
    (["--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--p-max", "1.5"], "--p-max must be a finite real number >= 2"),
    (["--momentum", "1.0"], r"--momentum must be a finite real number in \[0, 1\)"),
    (["--device", "tpu"], "--device must be cpu, cuda, cuda:N or auto"),
])
def test_bad_input_is_one_clear_line(args, match, capsys, tmp_path):
    code = cli.main(["rates", "--problem", "weak", "--optimizer", "sgd", "--quiet", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lpcheck rates: error: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(match, err), err


def test_help_is_written_for_a_newcomer(capsys):
    with pytest.raises(SystemExit):
        cli.main(["rates", "--help"])
    text = capsys.readouterr().out
    assert "O(T^-1/2)" in text and "--quick" in text and "module:Class" in text and "Examples:" in text


def test_an_interrupted_run_leaves_a_report_that_says_it_is_partial(tmp_path, monkeypatch, capsys):
    from lpcheck.rates import study

    out = tmp_path / "r"
    real, calls = study.rate_study, {"n": 0}

    def second_is_interrupted(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(study, "rate_study", second_is_interrupted)
    argv = ["rates", "--problem", "weak", "--optimizer", "sgd,sign", *TINY, "--out", str(out)]
    assert cli.main(argv) == 130
    assert re.search(r"interrupted; kept what it wrote: .*/ rates_weak.png, rates.json, rates.md|"
                     r"interrupted; kept what it wrote: .*/ rates.json, rates.md", capsys.readouterr().err)
    data = read_json(out / "rates.json")
    assert data["complete"] is False and (data["studies_done"], data["studies_planned"]) == (1, 2)
    md = (out / "rates.md").read_text()
    assert "**Partial: 1 of 2 studies.**" in md
    assert cli.main(["rates", "--render-only", "--out", str(out)]) == 0  # still partial when redrawn
    assert "**Partial: 1 of 2 studies.**" in (out / "rates.md").read_text()
    monkeypatch.setattr(study, "rate_study", real)
    assert cli.main(argv) == 0
    data = read_json(out / "rates.json")
    assert data["complete"] is True and data["studies_done"] == 2 and "Partial" not in (out / "rates.md").read_text()


@pytest.mark.parametrize("eps", ["0", "nan"])
def test_a_bad_eps_is_an_error_not_an_inconclusive_study(tmp_path, capsys, eps):
    """The issue's example: --eps 0 / nan used to exit 0 with every study 'inconclusive' (the validation
    error was caught as 'no step')."""
    out = str(tmp_path / "r")
    code = cli.main(["rates", "--problem", "weak", "--optimizer", "sgd", *TINY, "--eps", eps, "--out", out])
    assert code == 2 and re.search(r"--eps must be a (finite )?real number > 0, got", capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_rate_study_reports_only_a_missing_step_as_inconclusive():
    import torch

    from lpcheck.rates import make_method, make_problem
    from lpcheck.rates.study import NoStepError, rate_study

    problem, method = make_problem("weak"), make_method("sgd")
    with pytest.raises(ValueError, match=r"eps must be a finite real number > 0, got 0"):
        rate_study(problem, method, "theorem", [20, 40], seeds=3, eps=0.0)
    with pytest.raises(ValueError, match=r"eps = 1e-50 rounds to 0 in torch.float32"):
        rate_study(problem, method, "theorem", [20, 40], seeds=3, eps=1e-50, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"pilot_seeds must be an integer >= 1, got -1"):
        rate_study(problem, method, "theorem", [20, 40], seeds=3, pilot_seeds=-1)
    with pytest.raises(ValueError, match=r"epochs must be an integer in \[1, 20\]"):
        rate_study(problem, method, "theorem", [20, 40], seeds=3, epochs=21)

    class Broken(type(problem)):  # a user's problem that raises ValueError mid-run: its bug, not a result
        calls = 0

        def stoch_grad(self, theta, gen, g_full=None):
            Broken.calls += 1
            if Broken.calls > 3:
                raise ValueError("my problem's own bug")
            return super().stoch_grad(theta, gen, g_full)

    broken = make_problem("weak")
    broken.__class__ = Broken
    with pytest.raises(ValueError, match="my problem's own bug"):
        rate_study(broken, method, "theorem", [20, 40], seeds=3, K=8, pilot_seeds=3, n_boot=100)
    assert issubclass(NoStepError, ValueError)
