"""Bad input to the experiment scripts (experiments/*.py): their shared arguments (_common.py),
their own, and --resume with settings other than the saved run's.

The scripts run in this process: `main(argv)` of the checkout under test. A script that runs under
`_common.run_main` turns ValueError and FileNotFoundError into one line and exit code 2 (a clean
refusal); for the others, any exception escaping `main` is a traceback the user would see.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import shutil
import sys

import numpy as np

from corpus import Case, CliError
from corpus._tiny import (
    cached,
    cwd,
    isolated,
    npz,
    quietly,
    remember,
    same_tree,
    script,
    with_options,
)


def run_script(name: str, *argv: str) -> int:
    """experiments/NAME.py's main with argv; CliError on a clean refusal (exit 2 with a message)."""
    module = script(name)
    clean = "run_main(main" in inspect.getsource(module)
    err = io.StringIO()
    old_argv = sys.argv
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), isolated():
            if inspect.signature(module.main).parameters:
                code = module.main(list(argv))
            else:  # a main() that reads sys.argv
                sys.argv = [f"{name}.py", *argv]
                code = module.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
        if code == 2 or (isinstance(e.code, str) and "error" in e.code):
            text = err.getvalue().strip() or str(e.code)
            raise CliError(text.splitlines()[-1]) from None
    except (ValueError, FileNotFoundError) as e:
        if clean:
            raise CliError(f"{name}.py: error: {e}") from None
        raise RuntimeError(f"traceback from {name}.py: {type(e).__name__}: {e}") from None
    finally:
        sys.argv = old_argv
    if code not in (0, None):
        raise RuntimeError(f"exit {code}: {err.getvalue()[-500:]}")
    return 0


TINY = ["--width", "0.0625", "--threads", "1"]


def _argv(tmp, base, options):
    """`base` with `options` (pairs) replacing or adding values; a None value (--data) becomes a
    tiny .npz in tmp; --out tmp/out unless given (a script accepting bad input writes there,
    not in the checkout)."""
    argv = with_options(base, options)
    if "--out" not in argv and not any(str(a).startswith("--out=") for a in argv):
        argv += ["--out", str(tmp / "out")]
    return [str(npz(tmp / "data.npz", n=256)) if a is None else a for a in argv]


TRAIN = [
    *TINY,
    "--optimizers",
    "sgdm",
    "--seeds",
    "0",
    "--epochs",
    "1",
    "--batches-per-epoch",
    "1",
    "--eval-at",
    "1",
    "--quiet",
    "--data",
    None,
]
FIG1 = [
    *TINY,
    "--optimizers",
    "sgdm",
    "--epochs",
    "1",
    "--checkpoints",
    "1",
    "--hessian-batches",
    "1",
    "--hessian-batch-size",
    "8",
    "--vectors",
    "1",
    "--lanczos-steps",
    "2",
    "--quiet",
    "--data",
    None,
]
THROUGHPUT = [
    *TINY,
    "--steps",
    "1",
    "--repeats",
    "1",
    "--warmup",
    "0",
    "--fused",
    "off",
    "--data",
    None,
]
COST = [
    "--width",
    "0.0625",
    "--threads",
    "1",
    "--train-subset",
    "128",
    "--samples",
    "2",
    "--rounds",
    "1",
    "--train-steps",
    "1",
    "--data",
    None,
]
FIG3 = ["--steps", "5", "--grid", "3", "--p", "4"]
BENCH = [
    "--device",
    "cpu",
    "--threads",
    "1",
    "--models",
    "resnet18",
    "--optimizers",
    "LPSGDM foreach",
    "--rounds",
    "1",
    "--steps",
    "1",
    "--warmup",
    "1",
]


def bad(name, base, *options, flags=()):
    def run(tmp):
        argv = _argv(tmp, base, list(options)) + list(flags)
        remember(tmp)
        run_script(name, *argv)

    return run


def X(name, run, match, unchanged=same_tree, **kw):
    return Case("experiments", name, run, match, unchanged=unchanged, **kw)


def _each(script_name, base, option, values, match, label=None):
    return [
        X(f"{label or script_name} {option} {v!r}", bad(script_name, base, option, v), match)
        for v in values
    ]


# -- cifar_train.py --resume -----------------------------------------------------------------------


def _finished_train(folder):
    data = npz(folder / "data.npz", n=256)
    quietly(
        run_script,
        "cifar_train",
        *_argv(folder, TRAIN, ["--data", str(data), "--out", str(folder / "out")]),
    )


def resume_train(*options, flags=(), prepare=None, fresh=False):
    def run(tmp):
        src = cached("cifar-train-run", _finished_train)
        shutil.copy(src / "data.npz", tmp / "data.npz")
        shutil.copytree(src / "out", tmp / "out")
        if prepare is not None:
            prepare(tmp)
        argv = _argv(tmp, TRAIN, ["--data", str(tmp / "data.npz"), *options]) + list(flags)
        remember(tmp)
        run_script("cifar_train", *argv, *(() if fresh else ("--resume",)))

    return run


def _empty(name, base, option):
    """OPTION '' run in tmp as the current folder: '' must not mean the current folder."""

    def run(tmp):
        with cwd(tmp):
            argv = _argv(tmp, base, [option, ""])
            remember(tmp)
            run_script(name, *argv)

    return run


def _epoch_floor(*options):
    def run(tmp):
        report = tmp / "rates.json"
        report.write_text(
            '{"config": {"epochs": 2, "p_max": 6.0}, "problems": {"logistic": {"studies": '
            '[{"method": "lpsgd", "rule": "theorem", "runs": [{"T": 1000, "eta": '
            '0.01}]},{"method": "sign", "rule": "theorem", "runs": []}]},"aniso": {"studies": '
            '[{"method": "lpsgd", "rule": "theorem", "runs": []},{"method": "sign", "rule": '
            '"theorem", "runs": []}]}}}\n'
        )
        argv = ["--report", str(report), "--out", str(tmp / "out" / "floor.json"), *options]
        remember(tmp)
        run_script("rates_epoch_floor", *argv)

    return run


COMMON = [  # _common.py's parser, through the scripts that use it
    *_each(
        "cifar_train",
        TRAIN,
        "--width",
        ["0", "-1", "nan", "inf"],
        r"--width must be a (finite )?real number > 0",
    ),
    *_each(
        "fig1_hessian",
        FIG1,
        "--width",
        ["0", "nan"],
        r"--width must be a (finite )?real number > 0",
    ),
    *_each(
        "train_throughput",
        THROUGHPUT,
        "--width",
        ["-0.5", "inf"],
        r"--width must be a (finite )?real number > 0",
    ),
    X(
        "cifar_train --width huge",
        bad("cifar_train", TRAIN, "--width", "1e6"),
        r"--width 1e\+06\b.*parameters",
    ),
    *_each(
        "cifar_train",
        TRAIN,
        "--train-subset",
        ["0", "-1", "1000"],
        r"--train-subset must be an integer (>= 1|in \[1, 256\])",
    ),
    *_each(
        "fig1_hessian",
        FIG1,
        "--train-subset",
        ["0"],
        r"--train-subset must be an integer (>= 1|in \[1, 256\])",
    ),
    *_each(
        "cifar_train",
        TRAIN,
        "--threads",
        ["0", "-1", "1000"],
        r"--threads must be an integer in \[1, ",
    ),
    *_each(
        "train_throughput", THROUGHPUT, "--threads", ["0"], r"--threads must be an integer in \[1, "
    ),
    *_each(
        "cifar_train",
        TRAIN,
        "--device",
        ["tpu", "", "cuda:x", "meta"],
        r"--device must be cpu or cuda",
    ),
    X(
        "cifar_train --device cuda:7",
        bad("cifar_train", TRAIN, "--device", "cuda:7"),
        r"--device cuda:7: (CUDA is not available|only \d+ CUDA)",
    ),
    X(
        "cifar_train --data missing",
        bad("cifar_train", TRAIN, "--data", "/nonexistent/c.npz"),
        r"no CIFAR dataset at",
    ),
    X("cifar_train --data ''", _empty("cifar_train", TRAIN, "--data"), r"--data is empty"),
    X(
        "cifar_train --data a label 10 without --dataset",
        lambda tmp: bad(
            "cifar_train",
            TRAIN,
            "--data",
            str(npz(tmp / "d10.npz", n=256, y_train=np.arange(256) % 11)),
        )(tmp),
        r"label 10.*--dataset",
    ),
    X(
        "cifar_train --dataset unknown",
        bad("cifar_train", TRAIN, "--dataset", "mnist"),
        r"--dataset.*(cifar10|choose from)",
    ),
]


TRAIN_CASES = [
    *_each(
        "cifar_train",
        TRAIN,
        "--epochs",
        ["0", "-1"],
        r"--epochs must be an integer (>= 1|in \[1, )",
    ),
    *_each("cifar_train", TRAIN, "--seeds", ["", ",", "0,0", "x", "1.5"], r"--seeds "),
    *_each("cifar_train", TRAIN, "--seeds", ["-1", str(2**64)], r"--seeds .*\[0, "),
    *_each("cifar_train", TRAIN, "--optimizers", ["", "adam", "sgdm,sgdm"], r"--optimizers\b"),
    *_each("cifar_train", TRAIN, "--p-max", ["", "1.5", "nan", "inf", "x", "4,4"], r"--p-max "),
    *_each("cifar_train", TRAIN, "--eval-at", ["", "0", "1.5", "nan", "x"], r"--eval-at "),
    *_each(
        "cifar_train",
        TRAIN,
        "--warmup-epochs",
        ["-1", "nan", "inf", "1"],
        r"--warmup-epochs must be .*in \[0, 1\)",
    ),
    *_each(
        "cifar_train",
        TRAIN,
        "--lr",
        ["0", "-0.1", "nan", "inf"],
        r"--lr must be a (finite )?real number > 0",
    ),
    X(
        "cifar_train --lr rounds to 0 in float32",
        bad("cifar_train", TRAIN, "--lr", "1e-50"),
        r"--lr = 1e-50 rounds to 0",
    ),
    *_each(
        "cifar_train",
        TRAIN,
        "--batches-per-epoch",
        ["0", "-1"],
        r"--batches-per-epoch must be an integer (>= 1|in \[1, )",
    ),
    *_each(
        "cifar_train", TRAIN, "--name", ["", "a/b", "..", "../up"], r"--name must be a file name"
    ),
    X("cifar_train --out ''", _empty("cifar_train", TRAIN, "--out"), r"--out is empty"),
    X(
        "cifar_train --out is a file",
        lambda tmp: ((tmp / "out").write_text("x"), bad("cifar_train", TRAIN)(tmp)),
        r"--out .*is a file",
    ),
    X(
        "cifar_train --resume with another --epochs",
        resume_train("--epochs", "2"),
        r"--epochs: saved 1, now 2",
    ),
    X(
        "cifar_train --resume with another --lr",
        resume_train("--lr", "0.5"),
        r"--lr: saved None, now 0.5",
    ),
    X(
        "cifar_train --resume with another --width",
        resume_train("--width", "0.125"),
        r"--width: saved 0.0625, now 0.125",
    ),
    X(
        "cifar_train --resume with --no-augment",
        resume_train(flags=("--no-augment",)),
        r"--no-augment: saved False, now True",
    ),
    X(
        "cifar_train --resume with other data",
        resume_train(prepare=lambda tmp: npz(tmp / "data.npz", n=320)),
        r"--resume: .*(data|train_images)",
    ),
    X(
        "cifar_train --resume on a report that is not one",
        resume_train(prepare=lambda tmp: (tmp / "out" / "table1.json").write_text("{}\n")),
        r"table1.json.*not a cifar_train.py report",
    ),
    X(
        "cifar_train a fresh run over a finished one",
        resume_train(fresh=True),
        r"table1.json exists.*--resume",
    ),
]

FIG1_CASES = [
    *_each("fig1_hessian", FIG1, "--optimizers", ["", "adam", "sgdm,sgdm"], r"--optimizers\b"),
    *_each("fig1_hessian", FIG1, "--checkpoints", ["0", "5"], r"--checkpoints "),
    *_each("fig1_hessian", FIG1, "--epochs", ["0"], r"--epochs must be"),
    *_each("fig1_hessian", FIG1, "--hessian-batch-size", ["0"], r"--hessian-batch-size must be"),
    *_each("fig1_hessian", FIG1, "--seed", ["-1"], r"--seed must be an integer in \[0, "),
    X("fig1_hessian --out ''", _empty("fig1_hessian", FIG1, "--out"), r"--out is empty"),
]

THROUGHPUT_CASES = [
    *_each(
        "train_throughput",
        THROUGHPUT,
        "--steps",
        ["0"],
        r"--steps must be an integer (>= 1|in \[1, )",
    ),
    *_each(
        "train_throughput",
        THROUGHPUT,
        "--repeats",
        ["0"],
        r"--repeats must be an integer (>= 1|in \[1, )",
    ),
    *_each(
        "train_throughput",
        THROUGHPUT,
        "--warmup",
        ["-1"],
        r"--warmup must be an integer (>= 0|in \[0, )",
    ),
]

COST_CASES = [
    *_each(
        "estimate_cost",
        COST,
        "--rounds",
        ["0", "-1"],
        r"--rounds must be an integer (>= 1|in \[1, )",
    ),
    *_each(
        "estimate_cost",
        COST,
        "--samples",
        ["1", "0"],
        r"--samples must be an integer (>= 2|in \[2, )",
    ),
    *_each(
        "estimate_cost",
        COST,
        "--train-subset",
        ["0", "1000"],
        r"--train-subset must be an integer (>= 1|in \[1, 256\])",
    ),
    *_each(
        "estimate_cost",
        COST,
        "--width",
        ["0", "nan"],
        r"--width must be a (finite )?real number > 0",
    ),
    *_each(
        "estimate_cost", COST, "--threads", ["0", "-1"], r"--threads must be an integer in \[1, "
    ),
    *_each("estimate_cost", COST, "--step-pairs", ["-1"], r"--step-pairs must be an integer"),
    *_each(
        "estimate_cost",
        COST,
        "--train-steps",
        ["0", "-1"],
        r"--train-steps must be an integer (>= 1|in \[1, )",
    ),
    *_each("estimate_cost", COST, "--device", ["tpu", "cuda:x"], r"--device must be cpu or cuda"),
    *_each("estimate_cost", COST, "--model", ["resnet9"], r"--model"),
    X(
        "estimate_cost --data missing",
        bad("estimate_cost", COST, "--data", "/nonexistent/c.npz"),
        r"no CIFAR dataset at",
    ),
]

FIG3_CASES = [
    *_each(
        "fig3_toy_trajectories",
        FIG3,
        "--eps",
        ["0", "-1", "nan", "inf"],
        r"--eps must be a (finite )?real number > 0",
    ),
    *_each(
        "fig3_toy_trajectories", FIG3, "--grid", ["0", "-1"], r"--grid must be an integer in \[1, "
    ),
    *_each("fig3_toy_trajectories", FIG3, "--steps", ["0"], r"--steps must be"),
    *_each("fig3_toy_trajectories", FIG3, "--start", ["nan,1", "1,inf", "1", "a,b"], r"--start "),
    *_each("fig3_toy_trajectories", FIG3, "--p", ["1.5", "nan", "", "x"], r"--p "),
    X(
        "fig3_toy_trajectories --out ''",
        _empty("fig3_toy_trajectories", FIG3, "--out"),
        r"--out is empty",
    ),
]

BENCH_CASES = [
    *_each(
        "bench_optim_step",
        BENCH,
        "--threads",
        ["0", "-1"],
        r"--threads must be an integer in \[1, ",
    ),
    *_each(
        "bench_optim_step", BENCH, "--device", ["tpu", "cuda:x"], r"--device must be cpu or cuda"
    ),
    *_each(
        "bench_optim_step", BENCH, "--rounds", ["0"], r"--rounds must be an integer (>= 1|in \[1, )"
    ),
    *_each(
        "bench_optim_step", BENCH, "--steps", ["0"], r"--steps must be an integer (>= 1|in \[1, )"
    ),
    *_each(
        "bench_optim_step",
        BENCH,
        "--warmup",
        ["-1"],
        r"--warmup must be an integer (>= 0|in \[0, )",
    ),
    *_each("bench_optim_step", BENCH, "--models", ["", "resnet9"], r"--models\b"),
    *_each("bench_optim_step", BENCH, "--optimizers", ["", "adam"], r"--optimizers\b"),
]

FLOOR_CASES = [
    X(
        "rates_epoch_floor --seeds 0",
        _epoch_floor("--seeds", "0"),
        r"--seeds must be an integer (>= 1|in \[1, )",
    ),
    X(
        "rates_epoch_floor --seeds -1",
        _epoch_floor("--seeds", "-1"),
        r"--seeds must be an integer (>= 1|in \[1, )",
    ),
    X(
        "rates_epoch_floor --report missing",
        lambda tmp: (
            remember(tmp),
            run_script(
                "rates_epoch_floor",
                "--report",
                str(tmp / "none.json"),
                "--out",
                str(tmp / "o.json"),
            ),
        ),
        r"no report at .*none.json",
    ),
]


def _floor_bad_report(tmp):
    (tmp / "r.json").write_text("{}\n")
    remember(tmp)
    run_script("rates_epoch_floor", "--report", str(tmp / "r.json"), "--out", str(tmp / "o.json"))


HUGE = [
    X(
        "cifar_train --batches-per-epoch above the batches",
        bad("cifar_train", TRAIN, "--batches-per-epoch", "3"),
        r"--batches-per-epoch \(3\) must be <= the 2 full batches",
    ),
    X(
        "cifar_train --epochs huge",
        bad("cifar_train", TRAIN, "--epochs", str(10**12)),
        r"--epochs must be an integer in",
    ),
    X(
        "fig1_hessian --lanczos-steps huge",
        bad("fig1_hessian", FIG1, "--lanczos-steps", str(10**6)),
        r"--lanczos-steps must be an integer in \[1, ",
    ),
    X(
        "fig3_toy_trajectories --steps huge",
        bad("fig3_toy_trajectories", FIG3, "--steps", str(10**7)),
        r"--steps must be an integer in \[1, ",
    ),
    X(
        "fig3_toy_trajectories --grid huge",
        bad("fig3_toy_trajectories", FIG3, "--grid", str(10**6)),
        r"--grid must be an integer in \[1, ",
    ),
    X(
        "estimate_cost --samples huge",
        bad("estimate_cost", COST, "--samples", str(10**6)),
        r"--samples must be an integer in",
    ),
    X(
        "train_throughput --steps huge",
        bad("train_throughput", THROUGHPUT, "--steps", str(10**12)),
        r"--steps must be an integer in",
    ),
    X(
        "bench_optim_step --rounds huge",
        bad("bench_optim_step", BENCH, "--rounds", str(10**12)),
        r"--rounds must be an integer in",
    ),
    X(
        "rates_epoch_floor --seeds huge",
        _epoch_floor("--seeds", str(10**9)),
        r"--seeds must be an integer in",
    ),
    X(
        "rates_epoch_floor --report not a rates report",
        _floor_bad_report,
        r"r.json is not a report of lpcheck rates",
    ),
    X("rates_epoch_floor --out ''", _epoch_floor("--out", ""), r"--out must be a file name"),
]

MUTATION_CASES = [
    X("mutation --jobs 0", bad("mutation", [], "--jobs", "0"), r"--jobs must be an integer >= 1"),
    X(
        "mutation --only an unknown id",
        bad("mutation", [], "--only", "no.such"),
        r"--only: unknown mutant ids",
    ),
    X(
        "mutation --redo an unknown id",
        bad("mutation", [], "--redo", "no.such"),
        r"--redo: unknown mutant ids",
    ),
    X(
        "mutation --render without a report",
        bad("mutation", [], flags=("--render",)),
        r"--render: no .*mutation.json",
    ),
]

CASES = (
    MUTATION_CASES
    + HUGE
    + COMMON
    + TRAIN_CASES
    + FIG1_CASES
    + THROUGHPUT_CASES
    + COST_CASES
    + FIG3_CASES
    + BENCH_CASES
    + FLOOR_CASES
)
