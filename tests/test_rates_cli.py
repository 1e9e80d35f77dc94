"""`lpcheck rates`: the report files, a user's problem through the CLI, and bad input."""

import json
import re

import pytest

from lpcheck import cli
from lpcheck.report import read_json

TINY = [
    "--T",
    "20,40,80",
    "--seeds",
    "3",
    "--K",
    "32",
    "--pilot-seeds",
    "3",
    "--boot",
    "200",
    "--quiet",
    "--device",
    "cpu",
]


def test_report_json_markdown_and_plot(tmp_path):
    out = tmp_path / "r"
    code = cli.main(
        [
            "rates",
            "--problem",
            "weak,logsum",
            "--optimizer",
            "sgd,lpsgdm@constant",
            *TINY,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    data = read_json(out / "rates.json")
    assert data["provenance"]["command"] and data["config"]["T"] == [20, 40, 80]
    for name in ("weak", "logsum"):
        studies = data["problems"][name]["studies"]
        assert [(s["method"], s["rule"]) for s in studies] == [
            ("sgd", "theorem"),
            ("lpsgdm", "constant"),
        ]
        for s in studies:
            assert s["verdict"] in ("confirmed", "refuted", "inconclusive")
            assert {"slope", "lo", "hi"} <= set(s["fit"]) and len(s["runs"]) == 3
            assert s["eta"] == [r["eta"] for r in s["runs"]]
        assert len(set(studies[1]["eta"])) == 1  # the constant rule
        assert (out / data["problems"][name]["plot"]).stat().st_size > 1000
    md = (out / "rates.md").read_text()
    (out / "rates.md").unlink()
    assert (
        cli.main(["rates", "--render-only", "--out", str(out)]) == 0
    )  # the same report from the JSON alone
    assert (out / "rates.md").read_text() == md
    assert (
        "## Verdict rule" in md
        and "| method | step | slope, all T [95%]" in md
        and "![weak](rates_weak.png)" in md
    )
    assert "Command: `" in md and "smoke run" not in md
    from lpcheck.rates.render import render_markdown

    data["config"]["quick"] = (
        True  # a --quick report says that its verdicts are about its short T range
    )
    assert "**A smoke run (`--quick`)**: T <= 80 and 3 seeds." in render_markdown(data)


def test_a_study_without_measurable_constants_is_reported_not_fatal(tmp_path):
    out = tmp_path / "r"
    args = [
        a if a != "32" else "2" for a in TINY
    ]  # K = 2: no checkpoint resolves its alignment ratio
    assert (
        cli.main(
            ["rates", "--problem", "weak", "--optimizer", "sgd,sign", *args, "--out", str(out)]
        )
        == 0
    )
    studies = read_json(out / "rates.json")["problems"]["weak"]["studies"]
    assert len(studies) == 2
    assert all(
        s["verdict"] == "inconclusive" and s["reason"].startswith("no step: c1 = ") for s in studies
    )
    assert "no step" in (out / "rates.md").read_text()


def test_a_user_problem_runs_through_the_cli(tmp_path):
    out = tmp_path / "r"
    assert (
        cli.main(
            [
                "rates",
                "--problem",
                "rates_user_problem:Cosine",
                "--optimizer",
                "lpsgd",
                *TINY,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads((out / "rates.json").read_text())
    assert data["problems"]["rates_user_problem:Cosine"]["info"]["name"] == "cosine"
    assert len(data["problems"]["rates_user_problem:Cosine"]["studies"][0]["runs"]) == 3
    assert (out / "rates_rates_user_problem_Cosine.png").exists()


@pytest.mark.parametrize(
    "args,match",
    [
        (
            ["--problem", "rosenbrock"],
            "unknown problem 'rosenbrock'; choose from strong, weak, aniso, logsum, logistic, "
            "heavy",
        ),
        (
            ["--optimizer", "adamw"],
            (
                "unknown optimizer 'adamw'; choose from lpsgd, lpsgdm, sgd, sgdm, sign, steepest, "
                "heavyball, lion, adam, rmsprop, scion, clipped, signsgd, or give a class as "
                "MODULE:CLASS"
            ),
        ),
        (
            ["--optimizer", "sgd@fast"],
            "unknown step rule 'fast' in 'sgd@fast'; choose from theorem, sqrt, constant",
        ),
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
    ],
)
def test_bad_input_is_one_clear_line(args, match, capsys, tmp_path):
    code = cli.main(
        [
            "rates",
            "--problem",
            "weak",
            "--optimizer",
            "sgd",
            "--quiet",
            "--out",
            str(tmp_path),
            *args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lpcheck rates: error: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(match, err), err


def test_help_is_written_for_a_newcomer(capsys):
    with pytest.raises(SystemExit):
        cli.main(["rates", "--help"])
    text = capsys.readouterr().out
    assert (
        "O(T^-1/2)" in text and "--quick" in text and "module:Class" in text and "Examples:" in text
    )


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
    assert re.search(
        r"interrupted; kept what it wrote: .*/ rates_weak.png, rates.json, rates.md|"
        r"interrupted; kept what it wrote: .*/ rates.json, rates.md",
        capsys.readouterr().err,
    )
    data = read_json(out / "rates.json")
    assert data["complete"] is False and (data["studies_done"], data["studies_planned"]) == (1, 2)
    md = (out / "rates.md").read_text()
    assert "**Partial: 1 of 2 studies.**" in md
    assert (
        cli.main(["rates", "--render-only", "--out", str(out)]) == 0
    )  # still partial when redrawn
    assert "**Partial: 1 of 2 studies.**" in (out / "rates.md").read_text()
    monkeypatch.setattr(study, "rate_study", real)
    assert cli.main(argv) == 0
    data = read_json(out / "rates.json")
    assert (
        data["complete"] is True
        and data["studies_done"] == 2
        and "Partial" not in (out / "rates.md").read_text()
    )


@pytest.mark.parametrize("eps", ["0", "nan"])
def test_a_bad_eps_is_an_error_not_an_inconclusive_study(tmp_path, capsys, eps):
    """The issue's example: --eps 0 / nan used to exit 0 with every study 'inconclusive' (the
    validation error was caught as 'no step')."""
    out = str(tmp_path / "r")
    code = cli.main(
        ["rates", "--problem", "weak", "--optimizer", "sgd", *TINY, "--eps", eps, "--out", out]
    )
    assert code == 2 and re.search(
        r"--eps must be a (finite )?real number > 0, got", capsys.readouterr().err
    )
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

    class Broken(
        type(problem)
    ):  # a user's problem that raises ValueError mid-run: its bug, not a result
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


# -- any method, any metric, any rate, a p schedule of one's own (issue 15, item 5) ----------------

USER_FILE = '''
import torch


class NormSGD(torch.optim.Optimizer):
    """Momentum on the gradient normalised by the global norm of all its parameters (not
    elementwise)."""

    def __init__(self, params, lr=0.1, momentum=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            norm = torch.sqrt(sum((p.grad * p.grad).sum() for p in params))
            for p in params:
                buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad / (norm + 1e-12))
                p.add_(buf, alpha=-group["lr"])


def two_phase(epoch, epochs):
    return 6.0 if epoch <= epochs // 2 else 2.0
'''


def test_a_users_optimizer_class_and_schedule_run_from_their_own_folder(tmp_path):
    """The user's file holds plain torch and Python (no lpcheck import); lpcheck runs from that
    folder with no PYTHONPATH (-P: the interpreter adds no folder of its own to sys.path)."""
    import os
    import subprocess
    import sys

    (tmp_path / "my_optim.py").write_text(USER_FILE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = [
        sys.executable,
        "-P",
        "-m",
        "lpcheck",
        "rates",
        "--problem",
        "weak",
        "--optimizer",
        "my_optim:NormSGD:momentum=0.5,torch.optim:Adam:betas=(0.8,0.99),lpsgd",
        "--p-schedule",
        "my_optim:two_phase",
        "--T",
        "50,100,200",
        "--seeds",
        "4",
        "--K",
        "16",
        "--pilot-seeds",
        "2",
        "--boot",
        "200",
        "--quick",
        "--quiet",
        "--device",
        "cpu",
        "--epochs",
        "4",
        "--out",
        "out",
    ]
    done = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr
    data = read_json(tmp_path / "out" / "rates.json")
    assert data["config"]["p_schedule"] == "my_optim:two_phase"
    studies = {s["method"]: s for s in data["problems"]["weak"]["studies"]}
    assert list(studies) == [
        "my_optim:NormSGD:momentum=0.5",
        "torch.optim:Adam:betas=(0.8,0.99)",
        "lpsgd",
    ]
    assert studies["my_optim:NormSGD:momentum=0.5"]["execution"].startswith("per seed")
    assert studies["torch.optim:Adam:betas=(0.8,0.99)"]["execution"].startswith("batched")
    assert studies["lpsgd"]["p_epochs"] == [6.0, 6.0, 2.0, 2.0]
    assert studies["lpsgd"]["label"] == "lpsgd (p by --p-schedule my_optim:two_phase)"
    for s in studies.values():
        assert s["verdict"] in ("confirmed", "refuted", "inconclusive") and len(s["runs"]) == 3
        assert all(r["mean"] > 0 for r in s["runs"])
    md = (tmp_path / "out" / "rates.md").read_text()
    assert "my_optim:NormSGD:momentum=0.5 (per seed): per seed: a class lpcheck does not know" in md


def _readme_demo():
    """The docs' "Your own optimizer" (docs/rates.md): its myopt.py (the python block) and its
    command (the bash block) as argv."""
    import shlex
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "rates.md").read_text()
    section = page[page.index("**Your own optimizer**") :]
    blocks = []
    for fence in ("```python", "```bash"):
        start = section.index(fence) + len(fence)
        blocks.append(section[start : section.index("```", start)])
    return blocks[0], shlex.split(blocks[1].replace("\\\n", " "))


def test_ci_demo_a_users_optimizer_file_through_lpcheck_rates(tmp_path):
    """Issue 15's demo, as the README shows it: a torch.optim.Optimizer subclass in the user's own
    myopt.py (normalized momentum: m = beta m + (1 - beta) g, theta -= lr m / ||m||_2), with no
    line of lpcheck in it, checked by the README's `lpcheck rates` command run from that folder
    with no PYTHONPATH, against the rate its kind of method claims (E||grad f||_2 = O(T^-1/4) for
    normalized momentum steps), in a few seconds."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code, argv = _readme_demo()
    assert "class NormalizedMomentum(torch.optim.Optimizer):" in code and "lpcheck" not in code
    assert argv[:2] == ["lpcheck", "rates"] and "--metric" in argv and "--rate" in argv
    (tmp_path / "myopt.py").write_text(code)
    script = Path(sys.executable).with_name(
        "lpcheck"
    )  # the console script pip installed beside this Python
    command = (
        [str(script)] if script.exists() else [sys.executable, "-P", "-m", "lpcheck"]
    )  # -P: no cwd on sys.path
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        command + argv[1:] + ["--quiet", "--device", "cpu"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (study,) = read_json(tmp_path / "report" / "rates.json")["problems"]["weak"]["studies"]
    assert (study["method"], study["rule"], study["metric"], study["rate"]) == (
        "myopt:NormalizedMomentum:beta=0.9",
        "sqrt",
        "grad_l2",
        -0.25,
    )
    assert study["execution"].startswith("per seed")  # a global norm: rows must not see each other
    assert study["verdict"] in ("confirmed", "refuted", "inconclusive") and len(study["runs"]) == 3
    assert all(r["mean"] > 0 for r in study["runs"])
    md = (tmp_path / "report" / "rates.md").read_text()
    assert md.startswith("# Rate fitting: does the method reach O(T^-1/4)?")
    assert (
        "metric: grad_l2; claimed rate: T^-1/4" in md
        and "||grad f(theta_t)||_2 (first power)" in md
    )


def test_metric_and_rate_reach_the_report(tmp_path):
    out = tmp_path / "r"
    argv = [
        "rates",
        "--problem",
        "logsum",
        "--optimizer",
        "sgd@sqrt",
        "--metric",
        "dual",
        "--rate",
        "-1/4",
        *TINY,
        "--T",
        "50,100,200",
        "--seeds",
        "8",
        "--epochs",
        "4",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    data = read_json(out / "rates.json")
    assert (data["config"]["metric"], data["config"]["rate"]) == ("dual", -0.25)
    study = data["problems"]["logsum"]["studies"][0]
    assert (study["verdict"], study["regime"], study["metric"], study["rate"]) == (
        "confirmed",
        "T^-1/4",
        "dual",
        -0.25,
    )
    assert study["bound_checked"] == "0/3" and study["bound_reason"].startswith(
        "no bound for this metric"
    )
    md = (out / "rates.md").read_text()
    assert md.startswith("# Rate fitting: does the method reach O(T^-1/4)?")
    assert (
        "With the rate r = -1/4 (the claimed rate)" in md
        and "metric: dual; claimed rate: T^-1/4" in md
    )
    assert (
        "Observed: the seed mean of (1/T) sum_(t<T) ||grad f(theta_t)||_* " in md
        and "T^-1/2" not in md.split("## How it is measured")[0].split("## Verdict rule")[0]
    )
    assert (
        cli.main(argv[: argv.index("--rate")] + argv[argv.index("--rate") + 2 :]) == 0
    )  # the same runs at -1/2
    assert read_json(out / "rates.json")["problems"]["logsum"]["studies"][0]["verdict"] == "refuted"


@pytest.mark.parametrize(
    "args,match",
    [
        (["--rate", "0"], r"--rate must be a finite real number < 0, got 0.0"),
        (["--rate", "-0.05"], r"--tolerance must be a finite real number in \[0, 0.05\), got 0.1"),
        (
            ["--metric", "l2"],
            r"--metric must be one of grad_l2_sq, grad_l2, grad_q_sq, dual_sq, dual, got 'l2'",
        ),
        (
            ["--optimizer", "adam", "--metric", "dual"],
            r"--metric dual is not defined for --optimizer adam: adam has no",
        ),
        (
            ["--p-schedule", "math:floor"],
            r"--p-schedule math:floor raised TypeError at epoch 1 of 10",
        ),
        (["--p-schedule", "math:pi"], r"--p-schedule math:pi is not a function"),
        (["--p-schedule", "lpsgd"], r"--p-schedule must be MODULE:FUNCTION, got 'lpsgd'"),
        (["--p-schedule", "math:inf", "--p", "4"], r"--p and --p-schedule both fix p"),
        (
            ["--optimizer", "sgd,momentum=0.9"],
            r"'momentum=0.9' is a key=value with no NAME:key=value spec before it",
        ),
        (
            ["--optimizer", "torch.optim:SGD:lr=0.1"],
            r"--optimizer torch.optim:SGD:lr=0.1: lr is set by the step rule",
        ),
    ],
)
def test_bad_new_options_are_one_clear_line(args, match, capsys, tmp_path):
    out = str(tmp_path / "o")
    code = cli.main(
        ["rates", "--problem", "weak", "--optimizer", "sgd", "--quiet", "--out", out, *args]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(match, err), err
    assert not (tmp_path / "o").exists()


def test_an_old_report_renders_with_the_default_rate_and_metric(tmp_path):
    from lpcheck.rates.render import render_markdown

    out = tmp_path / "r"
    assert (
        cli.main(
            ["rates", "--problem", "weak", "--optimizer", "sgd@sqrt", *TINY, "--out", str(out)]
        )
        == 0
    )
    data = read_json(out / "rates.json")
    for key in ("rate", "metric", "p_schedule"):
        del data["config"][key]
    md = render_markdown(data)
    assert md.startswith("# Rate fitting: does the method reach O(T^-1/2)?")
    assert "With the rate r = -1/2 (eq. 33/48)" in md
