"""Bad input on the command line: `lpcheck estimate`, `lpcheck rates` (and the top-level
dispatcher).

Every case runs `lpcheck ...` in this process (`corpus.run_lpcheck`) with one bad option on a tiny,
otherwise valid setting, so that a refusal costs nothing and a bad input accepted silently costs a
few seconds, not a training run. Most cases check with `same_tree` that the refusal left the case's
folder exactly as it was: no --out folder created, no report written, an earlier run untouched."""

from __future__ import annotations

import pathlib
import pickle
import shutil
import sys

import numpy as np

from corpus import Case
from corpus import run_lpcheck as run_cli
from corpus._tiny import cached, cwd, isolated, npz, quietly, remember, same_tree, with_options

# -- lpcheck estimate ------------------------------------------------------------------------------

EST = [
    "--model",
    "resnet18",
    "--width",
    "0.0625",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--checkpoints",
    "1",
    "--samples",
    "2",
    "--resamples",
    "100",
    "--threads",
    "1",
    "--quiet",
]


def _est_argv(tmp, options):
    """The tiny estimate command with `options` replacing (or adding to) the defaults above."""
    argv = with_options(EST, options)
    has = set(argv)
    if "--data" not in has:
        argv += ["--data", str(npz(tmp / "data.npz"))]
    if "--out" not in has:
        argv += ["--out", str(tmp / "out")]
    return ["estimate", *argv]


def estimate(*options, flags=()):
    """A case body: `lpcheck estimate` (tiny) with the given options; the case folder must stay as
    it was."""

    def run(tmp):
        argv = _est_argv(tmp, list(options)) + list(flags)
        remember(tmp)
        _cli(*argv)

    return run


def _cli(*argv):
    with isolated():
        return run_cli(*argv)


def _finished_estimate(folder):
    data = npz(folder / "data.npz")
    quietly(_cli, *_est_argv(folder, ["--data", str(data), "--out", str(folder / "out")]))


def _copy_run(tmp):
    """A finished tiny `lpcheck estimate` run (data.npz and out/) copied into tmp."""
    src = cached("estimate-run", _finished_estimate)
    shutil.copy(src / "data.npz", tmp / "data.npz")
    shutil.copytree(src / "out", tmp / "out")


def resume_with(*options, prepare=None, flags=()):
    """--resume the finished tiny run with some options changed; nothing may change."""

    def run(tmp):
        _copy_run(tmp)
        if prepare is not None:
            prepare(tmp)
        argv = _est_argv(
            tmp, ["--data", str(tmp / "data.npz"), "--out", str(tmp / "out"), *options]
        )
        remember(tmp)
        _cli(*argv, *flags, "--resume")

    return run


def fresh_over(prepare):
    """A fresh run (no --resume) into a folder that holds (part of) an earlier run: refused, nothing
    lost."""

    def run(tmp):
        _copy_run(tmp)
        prepare(tmp)
        argv = _est_argv(tmp, ["--data", str(tmp / "data.npz"), "--out", str(tmp / "out")])
        remember(tmp)
        _cli(*argv)

    return run


def _drop(name):
    return lambda tmp: (tmp / "out" / name).unlink()


class _Payload:
    """A pickle that, when loaded with weights_only=False, creates a file: code from a crafted
    state.pt."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _crafted_state(tmp):
    with open(tmp / "out" / "state.pt", "wb") as f:
        pickle.dump({"model": _Payload(tmp / "code-ran")}, f, protocol=2)


def _crafted_state_unchanged(tmp):
    assert not (tmp / "code-ran").exists(), "loading state.pt ran code from it"
    same_tree(tmp)


def _data_with(**override):
    def run(tmp, options=()):
        path = npz(tmp / "data.npz", **override)
        argv = _est_argv(tmp, ["--data", str(path), *options])
        remember(tmp)
        _cli(*argv)

    return run


def _in_cwd(body):
    def run(tmp):
        with cwd(tmp):
            body(tmp)

    return run


def _out_is_a_file(tmp):
    (tmp / "out").write_text("not a folder\n")
    argv = _est_argv(tmp, [])
    remember(tmp)
    _cli(*argv)


def _est_out_empty(tmp):
    argv = _est_argv(tmp, ["--out", ""])
    remember(tmp)
    _cli(*argv)


def _est_data_empty(tmp):
    argv = _est_argv(tmp, ["--data", ""])
    npz(tmp / "data.npz")  # a dataset in the current folder must not be picked up by --data ''
    remember(tmp)
    _cli(*argv)


def _data_is_an_empty_folder(tmp):
    (tmp / "empty").mkdir()
    argv = _est_argv(tmp, ["--data", str(tmp / "empty")])
    remember(tmp)
    _cli(*argv)


def E(name, run, match, unchanged=same_tree, **kw):
    return Case("cli", f"estimate {name}", run, match, unchanged=unchanged, **kw)


def _numeric(option, values, match, where=estimate):
    return [E(f"{option} {v!r}", where(option, v), match) for v in values]


ESTIMATE = [
    *_numeric("--epochs", ["0", "-1"], r"--epochs must be an integer (>= 1|in \[1, )"),
    *_numeric("--checkpoints", ["0", "-3"], r"--checkpoints must be an integer (>= 1|in \[1, )"),
    E(
        "--checkpoints above the steps",
        estimate("--checkpoints", "99"),
        r"--checkpoints .*<= .*T = 4",
    ),
    *_numeric("--samples", ["0", "1", "-2"], r"--samples must be an integer (>= 2|in \[2, )"),
    *_numeric(
        "--width", ["0", "-1", "nan", "inf", "-inf"], r"--width must be a (finite )?real number > 0"
    ),
    E("--width huge", estimate("--width", "1e6"), r"--width 1e\+06\b.*parameters"),
    *_numeric(
        "--train-subset", ["0", "-5"], r"--train-subset must be an integer (>= 1|in \[1, 64\])"
    ),
    E(
        "--train-subset above the images",
        estimate("--train-subset", "1000"),
        r"--train-subset must be an integer in \[1, 64\]",
    ),
    *_numeric(
        "--batches-per-epoch",
        ["0", "-1"],
        r"--batches-per-epoch must be an integer (>= 1|in \[1, )",
    ),
    *_numeric("--seed", ["-1", str(2**64)], r"--seed must be an integer in \[0, "),
    *_numeric("--threads", ["0", "-2", "1000"], r"--threads must be an integer in \[1, "),
    *_numeric("--lr", ["0", "-0.1", "nan", "inf"], r"--lr must be a (finite )?real number > 0"),
    E(
        "--lr rounds to 0 in float32",
        estimate("--lr", "1e-50"),
        r"--lr = 1e-50 rounds to 0 in torch.float32",
    ),
    *_numeric(
        "--weight-decay",
        ["-0.1", "nan", "inf"],
        r"--weight-decay must be a (finite )?real number >= 0",
    ),
    E(
        "--weight-decay rounds to 0 in float32",
        estimate("--weight-decay", "1e-50"),
        r"--weight-decay = 1e-50 rounds to 0",
    ),
    *_numeric(
        "--momentum",
        ["1", "-0.1", "nan", "1.5"],
        r"--momentum must be a (finite )?real number in \[0, 1\)",
    ),
    E(
        "--momentum rounds to 1 in float32",
        estimate("--momentum", "0.99999999999"),
        r"--momentum = 0.99999999999 .*1 in torch.float32",
    ),
    *_numeric("--eps", ["0", "-1e-8", "nan", "inf"], r"--eps must be a (finite )?real number > 0"),
    E(
        "--eps rounds to 0 in float32",
        estimate("--eps", "1e-50"),
        r"--eps = 1e-50 rounds to 0 in torch.float32",
    ),
    *_numeric("--p-max", ["1.5", "nan", "inf"], r"--p-max must be a (finite )?real number >= 2"),
    *_numeric("--batch-size", ["0", "-16"], r"--batch-size must be an integer (>= 1|in \[1, )"),
    E(
        "--batch-size above the images",
        estimate("--batch-size", "1000"),
        r"--batch-size .*1000.*64 training images",
    ),
    *_numeric(
        "--warmup-epochs", ["-1", "nan", "inf", "1"], r"--warmup-epochs must be .*in \[0, 1\)"
    ),
    *_numeric("--step-pairs", ["-1"], r"--step-pairs must be an integer"),
    E(
        "--step-pairs above --samples",
        estimate("--step-pairs", "3"),
        r"--step-pairs must be an integer in \[0, 2\]",
    ),
    *_numeric(
        "--resamples", ["0", "50", "-1"], r"--resamples must be an integer (>= 100|in \[100, )"
    ),
    *_numeric(
        "--confidence",
        ["0", "1", "nan", "1.5", "-0.5"],
        r"--confidence must be a (finite )?real number in \(0, 1\)",
    ),
    *_numeric("--device", ["tpu", "meta", "", "cuda:x"], r"--device must be cpu or cuda"),
    E(
        "--device cuda:7",
        estimate("--device", "cuda:7"),
        r"--device cuda:7: (CUDA is not available|only \d+ CUDA)",
    ),
    E(
        "--data missing",
        estimate("--data", "/nonexistent/cifar.npz"),
        r"no CIFAR dataset at /nonexistent/cifar.npz",
    ),
    E("--data ''", _in_cwd(_est_data_empty), r"--data is empty"),
    E("--data an empty folder", _data_is_an_empty_folder, r"holds no CIFAR data"),
    E(
        "--data a label 10 without --dataset",
        _data_with(y_train=np.arange(64) % 11),
        r"label 10.*--dataset",
    ),
    E(
        "--data a label 10 with --dataset cifar10",
        lambda tmp: _data_with(y_train=np.arange(64) % 11)(tmp, ["--dataset", "cifar10"]),
        r"y_train.*labels must be integers in \[0, 10\)",
    ),
    E("--dataset unknown", estimate("--dataset", "mnist"), r"--dataset.*(cifar10|choose from)"),
    E("--out ''", _in_cwd(_est_out_empty), r"--out is empty"),
    E("--out is a file", _out_is_a_file, r"--out .*is a file"),
    E(
        "--out under a file",
        estimate("--out", "/proc/version/out"),
        r"--out .*(is a file|cannot be created)",
    ),
    E(
        "--resume with nothing to resume",
        estimate(flags=("--resume",)),
        r"--resume: no interrupted run",
    ),
    E("--resume with another --seed", resume_with("--seed", "1"), r"--seed: saved 0, now 1"),
    E(
        "--resume with another --epochs and --lr",
        resume_with("--epochs", "2", "--lr", "0.01"),
        r"--epochs: saved 1, now 2.*--lr: saved 0.001, now 0.01",
    ),
    E(
        "--resume with other data",
        resume_with(prepare=lambda tmp: npz(tmp / "data.npz", n=80)),
        r"--resume: .*(data|train_images)",
    ),
    E(
        "--resume with --no-augment",
        resume_with(flags=("--no-augment",)),
        r"augment.*: saved True, now False",
    ),
    E(
        "--resume loads no code from state.pt",
        resume_with(prepare=_crafted_state),
        r"state.pt",
        unchanged=_crafted_state_unchanged,
    ),
    E("a fresh run over a finished one", fresh_over(lambda tmp: None), r"pass --resume"),
    E(
        "a fresh run over an interrupted one (state.pt only)",
        fresh_over(_drop("constants.json")),
        r"pass --resume",
    ),
    # huge values: refused by name, not run for years or failed in the allocator
    E(
        "--epochs huge",
        estimate("--epochs", str(10**12)),
        r"--epochs 1000000000000 x 4 steps per epoch = .*more than",
    ),
    E(
        "--samples huge",
        estimate("--samples", str(10**6)),
        r"--samples must be an integer in \[2, ",
    ),
    E(
        "--resamples huge",
        estimate("--resamples", str(10**9)),
        r"--resamples must be an integer in \[100, ",
    ),
    E(
        "--batches-per-epoch above the batches",
        estimate("--batches-per-epoch", "5"),
        r"--batches-per-epoch \(5\) must be <= the 4 full batches",
    ),
    E(
        "--lr x --weight-decay >= 1",
        estimate("--lr", "0.1", "--weight-decay", "10"),
        r"--lr x --weight-decay .* < 1",
    ),
    E(
        "--data a .txt file",
        lambda tmp: (
            (tmp / "d.txt").write_text("x"),
            remember(tmp),
            _cli(*_est_argv(tmp, ["--data", str(tmp / "d.txt")])),
        ),
        r"d.txt: expected an .npz file",
    ),
    E(
        "--data a folder named .npz",
        lambda tmp: (
            (tmp / "d.npz").mkdir(),
            remember(tmp),
            _cli(*_est_argv(tmp, ["--data", str(tmp / "d.npz")])),
        ),
        r"d.npz holds no CIFAR data",
    ),
]

# -- lpcheck rates ---------------------------------------------------------------------------------

RATES = [
    "--problem",
    "weak",
    "--optimizer",
    "sgd",
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
    "--threads",
    "1",
    "--epochs",
    "4",
]


def _rates_argv(tmp, options):
    argv = with_options(RATES, options)
    if "--out" not in argv:
        argv += ["--out", str(tmp / "out")]
    return ["rates", *argv]


def rates(*options):
    def run(tmp):
        argv = _rates_argv(tmp, list(options))
        remember(tmp)
        _cli(*argv)

    return run


def R(name, run, match, unchanged=same_tree, **kw):
    return Case("cli", f"rates {name}", run, match, unchanged=unchanged, **kw)


def _rates_numeric(option, values, match):
    return [R(f"{option} {v!r}", rates(option, v), match) for v in values]


def _rates_out_empty(tmp):
    argv = _rates_argv(tmp, ["--out", ""])
    remember(tmp)
    _cli(*argv)


def _rates_out_file(tmp):
    (tmp / "out").write_text("a file\n")
    argv = _rates_argv(tmp, [])
    remember(tmp)
    _cli(*argv)


def _render_only(content):
    def run(tmp):
        (tmp / "out").mkdir()
        (tmp / "out" / "rates.json").write_text(content)
        remember(tmp)
        _cli("rates", "--render-only", "--out", str(tmp / "out"))

    return run


def _no_report(tmp):
    remember(tmp)
    _cli("rates", "--render-only", "--out", str(tmp / "nothing"))


RATES_CASES = [
    *_rates_numeric(
        "--eps", ["0", "nan", "-1e-8", "inf"], r"--eps must be a (finite )?real number > 0"
    ),
    R(
        "--eps rounds to 0 in float32",
        rates("--eps", "1e-50", "--dtype", "float32"),
        r"--eps = 1e-50 rounds to 0",
    ),
    *_rates_numeric("--boot", ["0", "50", "-1"], r"--boot must be an integer in \[100, "),
    *_rates_numeric(
        "--T", ["", ",", "100", "100,50,200", "100,100", "0,10", "-5,10", "10,1.5", "10,x"], r"--T "
    ),
    R("--T huge", rates("--T", "10," + "9" * 20), r"--T .*<= "),
    R(
        "--T below --epochs",
        rates("--T", "2,40", "--epochs", "4"),
        r"--epochs \(4\) must be <= the smallest T \(2\)",
    ),
    *_rates_numeric("--seeds", ["0", "1", "-1"], r"--seeds must be an integer in \[2, "),
    R("--seeds huge", rates("--seeds", "1000000000000"), r"--seeds must be an integer in \[2, "),
    *_rates_numeric("--K", ["0", "1", "-4"], r"--K must be an integer in \[2, "),
    R("--K huge", rates("--K", "1000000000000"), r"--K must be an integer in \[2, "),
    *_rates_numeric("--pilot-T", ["0", "-1"], r"--pilot-T must be an integer in \[1, "),
    *_rates_numeric("--pilot-seeds", ["0", "-1"], r"--pilot-seeds must be an integer in \[1, "),
    *_rates_numeric(
        "--p-max", ["1.5", "nan", "inf"], r"--p-max must be a (finite )?real number >= 2"
    ),
    *_rates_numeric(
        "--p", ["1.5", "nan", "-inf"], r"--p must be a real number (>= 2|in \[2, inf\])"
    ),
    *_rates_numeric(
        "--momentum",
        ["1", "-0.1", "nan"],
        r"--momentum must be a (finite )?real number in \[0, 1\)",
    ),
    R(
        "--momentum rounds to 1 in float32",
        rates("--momentum", "0.99999999999", "--dtype", "float32"),
        r"--momentum = 0.99999999999 .*1 in torch.float32",
    ),
    *_rates_numeric("--lr", ["0", "-1", "nan", "inf"], r"--lr must be a (finite )?real number > 0"),
    *_rates_numeric(
        "--tolerance",
        ["-0.1", "nan", "inf", "0.5", "3"],
        r"--tolerance must be a (finite )?real number in \[0, 0.5\)",
    ),
    *_rates_numeric("--threads", ["0", "-1", "1000"], r"--threads must be an integer in \[1, "),
    *_rates_numeric("--epochs", ["0", "-1"], r"--epochs must be an integer (>= 1|in \[1, )"),
    *_rates_numeric("--seed", ["-1", str(2**64)], r"--seed must be an integer in \[0, "),
    *_rates_numeric(
        "--device", ["tpu", "", "cuda:x", "meta"], r"--device must be cpu, cuda, cuda:N or auto"
    ),
    R(
        "--device cuda:7",
        rates("--device", "cuda:7"),
        r"--device cuda:7: (CUDA is not available|only \d+ CUDA)",
    ),
    R("--problem ''", rates("--problem", ""), r"--problem is empty"),
    R("--optimizer ''", rates("--optimizer", ""), r"--optimizer is empty"),
    R("--step ''", rates("--step", ""), r"--step is empty"),
    R(
        "--problem unknown module",
        rates("--problem", "no_such_module_xyz:P"),
        r"cannot load problem 'no_such_module_xyz:P'",
    ),
    R("--out ''", _in_cwd(_rates_out_empty), r"--out is empty"),
    R("--out is a file", _rates_out_file, r"--out .*is a file"),
    R("--render-only without a report", _no_report, r"no report at .*rates.json"),
    R(
        "--render-only on a report without problems",
        _render_only("{}\n"),
        r"rates.json.*(problems|not a rates report)",
    ),
    R("--render-only on a JSON list", _render_only("[]\n"), r"rates.json.*not a rates report"),
]


def _render_study_without_keys(tmp):
    out = tmp / "out"
    out.mkdir()
    (out / "rates.json").write_text(
        '{"config": {}, "problems": {"weak": {"info": {}, "studies": [{}], "plot": '
        '"rates_weak.png"}}}\n'
    )
    remember(tmp)
    _cli("rates", "--render-only", "--out", str(out))


RATES_CASES += [
    R(
        "--optimizer with an empty rule",
        rates("--optimizer", "sgd@"),
        r"unknown step rule '' in 'sgd@'",
    ),
    *[
        R(f"--problem {v!r}", rates("--problem", v), r"--problem .* must be a name or module:Class")
        for v in (":", "x:", ":P")
    ],
    R("--boot huge", rates("--boot", str(10**12)), r"--boot must be an integer in \[100, "),
    R("--pilot-T huge", rates("--pilot-T", str(10**12)), r"--pilot-T must be an integer in \[1, "),
    R(
        "--pilot-seeds huge",
        rates("--pilot-seeds", str(10**12)),
        r"--pilot-seeds must be an integer in \[1, ",
    ),
    R(
        "--seeds past memory",
        rates("--seeds", str(10**9), "--problem", "logistic"),
        r"--seeds = 1000000000 needs about",
    ),
    R(
        "--K past memory",
        rates("--K", str(10**8), "--problem", "logistic"),
        r"--K = 100000000 needs about",
    ),
    R(
        "--render-only on a study without its fields",
        _render_study_without_keys,
        r"not a complete rates report",
    ),
]

# estimate: user model, data, loss, optimizer
# ---------------------------------------------------------- A user's module (plain torch) written
# into the case's folder and named by its path, or imported from the current directory; every
# refusal comes before any file is written (the finished-run cases: nothing changes).

USER_EST = """
import torch


def build():
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)


def other_data():
    x, y = data()
    return x + 1, y


NOT_CALLABLE = 3


def returns_int():
    return 3


def raises():
    raise RuntimeError("the user's factory failed")


def no_params():
    return torch.nn.Tanh()


def three():
    return 1, 2, 3


def mismatched():
    return torch.randn(20, 4), torch.zeros(19, dtype=torch.long)


def wrong_features():
    return torch.randn(32, 7), torch.zeros(32, dtype=torch.long)


def per_example(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs, targets, reduction="none")


def negative(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs, targets) - 10.0


class Singles(torch.utils.data.Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        return torch.zeros(4)


def singles():
    return Singles()


def error_rate(outputs, targets):
    return (outputs.argmax(1) != targets).float().mean()


def plus_one(outputs, targets):
    return torch.nn.functional.cross_entropy(outputs, targets) + 1.0


class Signum(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01, beta=0.9):
        if not 0 <= beta < 1:
            raise ValueError(f"Invalid beta: {beta}")
        super().__init__(params, dict(lr=lr, beta=beta))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    m = self.state[p].setdefault("m", torch.zeros_like(p))
                    m.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                    p.add_(m.sign(), alpha=-group["lr"])


class NoLr(torch.optim.Optimizer):
    def __init__(self, params, step_size=0.1):
        super().__init__(params, dict(step_size=step_size))

    def step(self, closure=None):
        pass


class NotAnOptimizer:
    pass
"""

USER_ARGV = [
    "--lr",
    "0.01",
    "--batch-size",
    "8",
    "--epochs",
    "1",
    "--checkpoints",
    "1",
    "--samples",
    "2",
    "--resamples",
    "100",
    "--threads",
    "1",
    "--quiet",
]


def _user_est_module(folder, name="usermod"):
    path = pathlib.Path(folder) / f"{name}.py"
    path.write_text(USER_EST)
    return str(path)


def _user_argv(tmp, mod, options, drop=()):
    """The tiny user-model estimate command: MOD's build and data, USER_ARGV, `options` replacing or
    adding (a '{mod}' or '{tmp}' in a value is the module's path or the case folder), `drop` options
    left out."""
    argv = with_options(
        ["--model", f"{mod}:build", "--data", f"{mod}:data", *USER_ARGV, "--out", str(tmp / "out")],
        [o.replace("{mod}", mod).replace("{tmp}", str(tmp)) for o in options],
    )
    for name in drop:
        i = argv.index(name)
        del argv[i : i + 2]
    return ["estimate", *argv]


def user(*options, drop=()):
    def run(tmp):
        mod = _user_est_module(tmp)
        argv = _user_argv(tmp, mod, list(options), drop)
        remember(tmp)
        _cli(*argv)

    return run


def _finished_user_run(folder):
    mod = _user_est_module(folder)
    quietly(
        _cli,
        *_user_argv(
            folder, mod, ["--optimizer", f"{mod}:Signum", "--optimizer-args", '{"beta": 0.8}']
        ),
    )


def user_resume_with(*options):
    """--resume the finished tiny user-model run (its module where it was) with some options
    changed."""

    def run(tmp):
        src = cached("estimate-user-run", _finished_user_run)
        shutil.copytree(src / "out", tmp / "out")
        mod = str(src / "usermod.py")
        _user_est_module(tmp, "othermod")  # the same code in another file
        base = ["--optimizer", f"{mod}:Signum", "--optimizer-args", '{"beta": 0.8}']
        argv = _user_argv(
            tmp, mod, base + [o.replace("{other}", str(tmp / "othermod.py")) for o in options]
        )
        remember(tmp)
        _cli(*argv, "--resume")

    return run


def _user_npz(arrays):
    def run(tmp):
        mod = _user_est_module(tmp)
        np.savez(tmp / "d.npz", **arrays)
        argv = _user_argv(tmp, mod, ["--data", str(tmp / "d.npz")])
        remember(tmp)
        _cli(*argv)

    return run


def _from_cwd(model):
    def run(tmp):
        _user_est_module(tmp, "cwdest")
        with cwd(tmp):
            argv = _user_argv(tmp, "cwdest", ["--model", f"cwdest:{model}"])
            remember(tmp)
            _cli(*argv)

    return run


def U(name, run, match, unchanged=same_tree, **kw):
    return Case("cli", f"estimate (user) {name}", run, match, unchanged=unchanged, **kw)


USER_CASES = [
    U(
        "--model an unknown name",
        user("--model", "resnet19"),
        r"--model must be one of resnet18, resnet50, vgg11 or "
        r"MODULE:FACTORY",
    ),
    U(
        "--model a module that does not exist",
        user("--model", "no_such_module_xyz:build"),
        r"--model: no module named 'no_such_module_xyz' in the current directory",
    ),
    U(
        "--model a .py file that does not exist",
        user("--model", "{tmp}/nothere.py:build"),
        r"--model: no Python file",
    ),
    U(
        "--model a missing function",
        user("--model", "{mod}:missing"),
        r"--model: module .* has no attribute 'missing'",
    ),
    U(
        "--model not callable",
        user("--model", "{mod}:NOT_CALLABLE"),
        r"--model: .*NOT_CALLABLE must be a function",
    ),
    U(
        "--model returns no nn.Module",
        user("--model", "{mod}:returns_int"),
        r"--model: .* must return a torch.nn.Module",
    ),
    U(
        "--model factory raises",
        user("--model", "{mod}:raises"),
        r"--model: .*raises\(\) raised RuntimeError",
    ),
    U(
        "--model without parameters",
        user("--model", "{mod}:no_params"),
        r"--model: .* has no trainable parameters",
    ),
    U(
        "--model from the current directory returns no nn.Module",
        _from_cwd("returns_int"),
        r"--model: cwdest:returns_int\(\) must return a torch.nn.Module",
    ),
    U(
        "--width for a user's model",
        user("--width", "0.5"),
        r"--width applies to the built-in models",
    ),
    U(
        "--num-classes for a factory without it",
        user("--num-classes", "3"),
        r"--num-classes: .* takes no num_classes",
    ),
    U(
        "--num-classes missing for a built-in model on other data",
        user("--model", "resnet18"),
        r"--num-classes is required for resnet18 on data that is not CIFAR",
    ),
    U(
        "--data returns three things",
        user("--data", "{mod}:three"),
        r"--data: .*three\(\) must return \(x_train, y_train\)",
    ),
    U(
        "--data x and y of different lengths",
        user("--data", "{mod}:mismatched"),
        r"--data: .* same number",
    ),
    U(
        "--data that does not fit the model",
        user("--data", "{mod}:wrong_features"),
        r"--model / --data: the model's forward on 8 examples",
    ),
    U(
        "--data an .npz without x_train or x",
        _user_npz({"a": np.arange(3)}),
        r"--data .* must hold arrays x_train and "
        r"y_train",
    ),
    U(
        "--data a Dataset whose items are not pairs",
        user("--data", "{mod}:singles"),
        r"--data: reading a first batch of 8 examples \(each an \(input, target\) pair\) raised",
    ),
    U("--data with --dataset", user("--dataset", "cifar10"), r"--dataset applies to CIFAR data"),
    U(
        "--batch-size above the examples",
        user("--batch-size", "64"),
        r"--batch-size \(64\) must be <= the 32 "
        r"training examples",
    ),
    U("--loss not MODULE:FUNCTION", user("--loss", "mse"), r"--loss must be MODULE:FUNCTION"),
    U(
        "--loss returns one value per example",
        user("--loss", "{mod}:per_example"),
        r"--loss: .*per_example must return a real scalar tensor",
    ),
    U(
        "--loss without a gradient",
        user("--loss", "{mod}:error_rate"),
        r"--loss: .*error_rate has no gradient with respect to the model's parameters",
    ),
    U(
        "--loss negative without --loss-lower-bound",
        user("--loss", "{mod}:negative"),
        r"--loss: .*negative is negative on the first batch .*: pass --loss-lower-bound",
    ),
    U(
        "--lr missing for a user's model",
        user(drop=("--lr",)),
        r"--lr is required for the model .*build",
    ),
    U("--optimizer ''", user("--optimizer", ""), r"--optimizer is empty"),
    U(
        "--optimizer an unknown name",
        user("--optimizer", "adamx"),
        r"--optimizer must be one of lpsgdm, lpsgd, sgd",
    ),
    U(
        "--optimizer NAME:key=value",
        user("--optimizer", "adam:eps=1e-6"),
        r"give the optimizer's arguments with --optimizer-args",
    ),
    U(
        "--optimizer a function",
        user("--optimizer", "{mod}:data"),
        r"--optimizer: .*:data must be a class",
    ),
    U(
        "--optimizer a class that is no optimizer",
        user("--optimizer", "{mod}:NotAnOptimizer"),
        r"must be a torch.optim.Optimizer subclass",
    ),
    U(
        "--optimizer whose step needs a closure",
        user("--optimizer", "torch.optim:LBFGS"),
        r"its step needs a closure",
    ),
    U(
        "--optimizer without lr",
        user("--optimizer", "{mod}:NoLr"),
        r"--lr does not apply to --optimizer .*NoLr",
    ),
    U(
        "--optimizer-args not JSON",
        user("--optimizer-args", "{beta: 0.8"),
        r"--optimizer-args must be a JSON object",
    ),
    U(
        "--optimizer-args a list",
        user("--optimizer-args", "[1, 2]"),
        r"--optimizer-args must be a JSON object of keyword arguments, got list",
    ),
    U(
        "--optimizer-args an argument the class does not take",
        user("--optimizer", "{mod}:Signum", "--optimizer-args", '{"gamma": 1}'),
        r"--optimizer-args: --optimizer .*Signum takes no argument 'gamma'",
    ),
    U(
        "--optimizer-args lr",
        user("--optimizer-args", '{"lr": 0.1}'),
        r"--optimizer-args: give lr with --lr",
    ),
    U(
        "--optimizer-args and its option both",
        user("--optimizer", "sgd", "--momentum", "0.9", "--optimizer-args", '{"momentum": 0.5}'),
        r"momentum is given twice",
    ),
    U(
        "--optimizer-args a value the class refuses",
        user("--optimizer", "{mod}:Signum", "--optimizer-args", '{"beta": 2}'),
        r"--optimizer .*Signum refused --optimizer-args .*Invalid beta: 2",
    ),
    U(
        "--optimizer steepest without p",
        user("--optimizer", "steepest"),
        r"--optimizer steepest refused .*needs p",
    ),
    U(
        "--momentum for Adam",
        user("--optimizer", "adam", "--momentum", "0.9"),
        r"--momentum does not apply to --optimizer adam",
    ),
    U("--norm unknown", user("--norm", "l3"), r"--norm: norm must be one of"),
    U("--norm lp below 1", user("--norm", "lp:0.5"), r"--norm: norm 'lp:0.5'"),
    *[
        U(
            f"--dist-timeout {v}",
            user("--dist-timeout", v),
            r"--dist-timeout must be a (finite )?real number",
        )
        for v in ("0", "nan", "-5")
    ],
    U(
        "--resume with another --model file",
        user_resume_with("--model", "{other}:build"),
        r"--model: saved '.*usermod.py:"
        r"build', now '.*othermod.py:build'",
    ),
    U(
        "--resume with other tensors",
        user_resume_with("--data", "{other}:other_data"),
        r"--data: the examples or labels in .*othermod.py:other_data differ from the saved run's",
    ),
    U(
        "--resume with other --optimizer-args",
        user_resume_with("--optimizer-args", '{"beta": 0.7}'),
        r"--optimizer-args: saved \{'beta': 0.8\}, now \{'beta': 0.7\}",
    ),
    U(
        "--resume with --loss",
        user_resume_with("--loss", "{other}:plus_one"),
        r"--loss: saved None, now",
    ),
]

ESTIMATE += [
    E(
        "--lr missing for Adam",
        estimate("--optimizer", "adam"),
        r"--lr is required for the optimizer adam",
    ),
    E(
        "--weight-decay for LPSGD",
        estimate("--optimizer", "lpsgd", "--weight-decay", "0.01"),
        r"--weight-decay does not apply to --optimizer lpsgd",
    ),
]


# rates: methods, metric, rate, p-schedule ---------------------------------------------------------


def _user_module(name, text):
    """A case body: NAME.py with `text` in the case's folder, imported from there (the current
    folder) by the bad call; no bytecode is written (the folder must stay as it was) and the module
    is forgotten afterwards."""

    def wrap(*options):
        def run(tmp):
            (tmp / f"{name}.py").write_text(text)
            argv = _rates_argv(tmp, list(options))
            remember(tmp)
            saved = sys.dont_write_bytecode
            sys.dont_write_bytecode = True
            try:
                with cwd(tmp):
                    _cli(*argv)
            finally:
                sys.dont_write_bytecode = saved
                sys.modules.pop(name, None)

        return run

    return wrap


_SCHEDULES = """
def low(epoch, epochs):
    return 1.5 if epoch == epochs else 4.0


def raises(epoch, epochs):
    if epoch == 3:
        raise RuntimeError("no p for epoch 3")
    return 4.0


def fine(epoch, epochs):
    return 4.0
"""

RATES_CASES += [
    R(
        "--optimizer unknown name",
        rates("--optimizer", "rosenbrock"),
        r"unknown optimizer 'rosenbrock'; choose from",
    ),
    R(
        "--optimizer a layer method's bad hyperparameter",
        rates("--optimizer", "adam:eps=-1"),
        r"--optimizer adam:eps=-1: eps must be",
    ),
    R(
        "--optimizer a hyperparameter without a value",
        rates("--optimizer", "adam:foo"),
        r"--optimizer adam:foo: hyperparameters must be key=value",
    ),
    R(
        "--optimizer a paper method's unknown setting",
        rates("--optimizer", "lpsgd:beta=2"),
        r"lpsgd has no setting beta in lpcheck rates",
    ),
    R(
        "--optimizer a key=value with no spec before it",
        rates("--optimizer", "sgd,momentum=0.9"),
        r"'momentum=0.9' is a key=value with no NAME:key=value spec before it",
    ),
    R(
        "--optimizer a module that does not exist",
        rates("--optimizer", "no_such_module_xyz:Opt"),
        r"--optimizer no_such_module_xyz:Opt: cannot import module 'no_such_module_xyz'",
    ),
    R(
        "--optimizer a name that is not a class",
        rates("--optimizer", "math:pi"),
        r"neither a lpcheck.methods.Method subclass nor a torch.optim.Optimizer subclass",
    ),
    R(
        "--optimizer a class that is not an optimizer",
        rates("--optimizer", "torch.nn:Linear"),
        r"neither a lpcheck.methods.Method subclass nor a torch.optim.Optimizer subclass",
    ),
    R(
        "--optimizer a class the module lacks",
        rates("--optimizer", "torch.optim:NoSuchOpt"),
        r"module 'torch.optim' has no attribute 'NoSuchOpt'",
    ),
    R(
        "--optimizer a class with lr in its spec",
        rates("--optimizer", "torch.optim:SGD:lr=0.1"),
        r"lr is set by the step rule",
    ),
    R(
        "--optimizer a class with an unknown keyword",
        rates("--optimizer", "torch.optim:SGD:mommentum=0.9"),
        r"SGD\(params, lr=..., \*\*\{'mommentum': 0.9\}\) failed: TypeError",
    ),
    R(
        "--optimizer a class with a malformed value",
        rates("--optimizer", "torch.optim:Adam:betas=(0.9"),
        r"Adam\(params, lr=..., \*\*\{'betas': '\(0.9'\}\) failed",
    ),
    R(
        "--optimizer a class whose step needs a closure",
        rates("--optimizer", "torch.optim:LBFGS"),
        r"LBFGS.step\(\) failed without a closure",
    ),
    R(
        "--optimizer a user module that fails on import",
        _user_module("rates_broken_opt", "raise RuntimeError('broken on purpose')\n")(
            "--optimizer", "rates_broken_opt:X"
        ),
        r"--optimizer rates_broken_opt:X: cannot load it \(RuntimeError: broken on purpose\)",
    ),
    *_rates_numeric(
        "--rate", ["0", "0.5", "nan", "inf", "-inf"], r"--rate must be a (finite )?real number < 0"
    ),
    R(
        "--rate a fraction over 0",
        rates("--rate", "-1/0"),
        r"--rate must be a number or a fraction such as -0.5 or "
        r"-1/4, got '-1/0'",
    ),
    R("--rate not a number", rates("--rate", "fast"), r"--rate must be a number or a fraction"),
    R(
        "--rate a positive fraction",
        rates("--rate", "1/4"),
        r"--rate must be a finite real number < 0, got 0.25",
    ),
    R(
        "--rate below --tolerance",
        rates("--rate", "-0.05"),
        r"--tolerance must be a finite real number in \[0, 0.05\)",
    ),
    R(
        "--metric unknown",
        rates("--metric", "l2"),
        r"--metric must be one of grad_l2_sq, grad_l2, grad_q_sq, dual_sq, dual",
    ),
    R("--metric ''", rates("--metric", ""), r"--metric must be one of"),
    R(
        "--metric dual for a method without a norm of its own",
        rates("--optimizer", "adam", "--metric", "dual"),
        r"--metric dual is not defined for --optimizer adam: adam has no norm of its own",
    ),
    R(
        "--metric grad_q_sq for a torch class",
        rates("--optimizer", "torch.optim:SGD", "--metric", "grad_q_sq"),
        r"--metric grad_q_sq is not defined for --optimizer torch.optim:SGD",
    ),
    R(
        "--metric grad_q_sq for a scaled layerwise norm",
        rates("--optimizer", "scion:vector=rms", "--metric", "grad_q_sq"),
        r"is not an lp norm",
    ),
    R(
        "--p-schedule returns p < 2",
        _user_module("rates_sched_low", _SCHEDULES)(
            "--optimizer", "lpsgd", "--p-schedule", "rates_sched_low:low"
        ),
        r"--p-schedule rates_sched_low:low at epoch 4 of 4 must be a real number .*, got 1.5",
    ),
    R(
        "--p-schedule raises",
        _user_module("rates_sched_raise", _SCHEDULES)(
            "--optimizer", "lpsgd", "--p-schedule", "rates_sched_raise:raises"
        ),
        r"--p-schedule rates_sched_raise:raises raised RuntimeError at epoch 3 of 4: no p for "
        r"epoch 3",
    ),
    R(
        "--p-schedule for no lp method",
        _user_module("rates_sched_fine", _SCHEDULES)(
            "--optimizer", "sgd", "--p-schedule", "rates_sched_fine:fine"
        ),
        r"--p-schedule sets p for lpsgd, lpsgdm and steepest .* none of the optimizers planned "
        r"uses it",
    ),
    R(
        "--p-schedule not a function",
        rates("--optimizer", "lpsgd", "--p-schedule", "math:pi"),
        r"--p-schedule math:pi is not a function",
    ),
    R(
        "--p-schedule a name the module lacks",
        rates("--optimizer", "lpsgd", "--p-schedule", "math:nope"),
        r"--p-schedule math:nope: module 'math' has no 'nope'",
    ),
    R(
        "--p-schedule not MODULE:FUNCTION",
        rates("--optimizer", "lpsgd", "--p-schedule", "cosine"),
        r"--p-schedule must be MODULE:FUNCTION, got 'cosine'",
    ),
    R(
        "--p-schedule with --p",
        rates("--optimizer", "lpsgd", "--p-schedule", "math:floor", "--p", "4"),
        r"--p and --p-schedule both fix p",
    ),
    R(
        "--p-schedule from a missing module",
        rates("--optimizer", "lpsgd", "--p-schedule", "no_such_sched_xyz:f"),
        r"--p-schedule no_such_sched_xyz:f: cannot import module",
    ),
]

CASES = ESTIMATE + RATES_CASES + USER_CASES


# -- lpcheck report
# ----------------------------------------------------------------------------------------


def _report(*dirs, out="page.html", prepare=None, extra=()):
    def run(tmp):
        if prepare is not None:
            prepare(tmp)
        remember(tmp)
        _cli(
            "report", *[str(tmp / d) for d in dirs], "--out", str(tmp / out) if out else "", *extra
        )

    return run


def _verify_folder(tmp):
    (tmp / "v").mkdir()
    (tmp / "v" / "verify.json").write_text('{"obligations": [], "findings": [], "summary": {}}\n')


def _unknown_folder(tmp):
    _verify_folder(tmp)
    (tmp / "other").mkdir()
    (tmp / "other" / "fig3.json").write_text("{}\n")


def _wrong_json(tmp):
    (tmp / "e").mkdir()
    (tmp / "e" / "constants.json").write_text('{"config": {}}\n')


def P(name, run, match):
    return Case("cli", f"report {name}", run, match, unchanged=same_tree)


REPORT_CASES = [
    P(
        "a missing folder",
        _report("v", "nowhere", prepare=_verify_folder),
        r"DIR .*nowhere: no such folder",
    ),
    P(
        "a folder of unknown kind",
        _report("v", "other", prepare=_unknown_folder),
        r"DIR .*other is of no known kind: it holds none of verify.json",
    ),
    P(
        "a file as DIR",
        _report("v", "v/verify.json", prepare=_verify_folder),
        r"DIR .*verify.json is a file",
    ),
    P("a folder given twice", _report("v", "v", prepare=_verify_folder), r"DIR .*v is given twice"),
    P(
        "constants.json without records",
        _report("e", prepare=_wrong_json),
        r"DIR .*e: constants.json is not an estimate report \(it has no 'records'\)",
    ),
    P("--out ''", _report("v", out="", prepare=_verify_folder), r"--out is empty"),
    P(
        "--out .html with --format md",
        _report("v", prepare=_verify_folder, extra=("--format", "md")),
        r"--out .*page.html ends in .html but --format is md",
    ),
]

CASES += REPORT_CASES
