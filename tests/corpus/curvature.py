"""Bad input to `lpcheck curvature`: each case runs the verb with one bad option (or a user module
that does not fit) and expects one line naming the option, exit 2, and no output folder written."""

from __future__ import annotations

import contextlib
import textwrap

from corpus import Case, CliError
from corpus import run_lpcheck as cli

AREA = "curvature"
CASES: list[Case] = []

USER = textwrap.dedent("""
    import numpy as np
    import torch

    def build():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))

    def data():
        g = torch.Generator().manual_seed(0)
        return torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)

    NOT_CALLABLE = 3

    def returns_int():
        return 3

    def raises():
        raise RuntimeError("the user's factory failed")

    def three():
        return 1, 2, 3

    def mismatched():
        return torch.randn(20, 4), torch.zeros(19, dtype=torch.long)

    def wrong_features():
        return torch.randn(20, 7), torch.zeros(20, dtype=torch.long)

    def per_example(outputs, targets):
        return torch.nn.functional.cross_entropy(outputs, targets, reduction="none")
""")


def _write_user(tmp):
    (tmp / "usermod.py").write_text(USER)
    return f"{tmp}/usermod.py"


def _nothing_written(tmp):
    assert not (tmp / "out").exists(), "the output folder was written before the error"


def run(*argv, model="build", data="data", extra=()):
    """`lpcheck curvature` on the tiny user model and data (a .py file in tmp), with `argv`
    changed."""

    def go(tmp):
        mod = _write_user(tmp)
        base = {
            "--model": f"{mod}:{model}" if model else None,
            "--data": f"{mod}:{data}" if data else None,
            "--out": str(tmp / "out"),
            "--top": "1",
            "--bottom": "1",
            "--trace-products": "4",
            "--slq-vectors": "0",
            "--quiet": None,
        }
        args = []
        for k, v in base.items():
            if v is not None or k == "--quiet":
                args += [k] if v is None else [k, v]
        return cli(
            "curvature", *args, *[a.replace("{tmp}", str(tmp)).replace("{mod}", mod) for a in argv]
        )

    return go


def case(name, argv, match, raises=(CliError, SystemExit), **kw):
    CASES.append(
        Case(AREA, name, run(*argv, **kw), match, raises=raises, unchanged=_nothing_written)
    )


for option, value, match in [
    ("--top", "-1", r"--top must be an integer >= 0"),
    ("--bottom", "-2", r"--bottom must be an integer >= 0"),
    ("--tol", "0", r"--tol must be a finite real number in \(0, 1\)"),
    ("--tol", "1", r"--tol must be"),
    ("--tol", "nan", r"--tol must be"),
    ("--batch-size", "0", r"--batch-size must be an integer >= 1"),
    ("--train-subset", "0", r"--train-subset must be an integer >= 1"),
    ("--trace-products", "3", r"--trace-products must be 0 \(no trace\) or an integer >= 4"),
    ("--trace-products", "-1", r"--trace-products must be an integer >= 0"),
    ("--slq-vectors", "-1", r"--slq-vectors must be an integer >= 0"),
    ("--slq-steps", "0", r"--slq-steps must be an integer >= 1"),
    ("--threads", "0", r"--threads must be"),
    ("--seed", "-1", r"--seed must be an integer >= 0"),
    ("--seed", str(2**64), r"--seed must be an integer in"),
    ("--memory-budget", "-1", r"--memory-budget must be"),
    ("--memory-budget", "nan", r"--memory-budget must be"),
    ("--lanczos-steps", "1", r"--lanczos-steps must be >= --top \+ --bottom = 2"),
    ("--max-steps", "0", r"--max-steps must be an integer >= 1"),
    ("--dtype", "float16", r"--dtype"),
    ("--retain", "maybe", r"--retain"),
    ("--mode", "test", r"--mode"),
    ("--top", "x", r"--top"),
    ("--device", "tpu", r"--device must be cpu or cuda"),
]:
    case(f"{option} {value}", [option, value], match)
case(
    "--max-steps below --lanczos-steps",
    ["--lanczos-steps", "5", "--max-steps", "4"],
    r"--max-steps must be >= --lanczos-steps \(5\)",
)
case(
    "nothing to measure",
    ["--top", "0", "--bottom", "0", "--trace-products", "0"],
    r"nothing to measure",
)
case(
    "--top + --bottom above the parameters",
    ["--top", "30", "--bottom", "30"],
    r"--top \+ --bottom must be <= the model's 43 trainable parameters",
)
case(
    "--width for a user's model",
    ["--width", "0.5"],
    r"--width and --num-classes apply to the built-in models",
)
case("--num-classes for a user's model", ["--num-classes", "3"], r"--width and --num-classes apply")
case(
    "--width 0 for a built-in model",
    ["--model", "resnet18", "--width", "0"],
    r"--width must be a finite real",
)
case(
    "--num-classes 1 for a built-in model",
    ["--model", "resnet18", "--num-classes", "1"],
    r"--num-classes must be an integer >= 2",
)
case(
    "--model an unknown name",
    ["--model", "resnet19"],
    r"--model must be one of resnet18, resnet50, vgg11 or",
)
case(
    "--model a module that does not exist",
    ["--model", "no_such_module_xyz:build"],
    r"--model: no module named 'no_such_module_xyz' in the current directory",
)
case(
    "--model a .py file that does not exist",
    ["--model", "{tmp}/nothere.py:build"],
    r"--model: no Python file",
    raises=(CliError, SystemExit),
)
case(
    "--model a missing function",
    ["--model", "{mod}:missing"],
    r"--model: module .* has no attribute 'missing'",
)
case(
    "--model not callable",
    ["--model", "{mod}:NOT_CALLABLE"],
    r"--model: .*NOT_CALLABLE must be a function",
)
case(
    "--model returns no nn.Module",
    ["--model", "{mod}:returns_int"],
    r"--model: .* must return a torch.nn.Module",
)
case(
    "--model factory raises",
    ["--model", "{mod}:raises"],
    r"--model: .*raises\(\) raised RuntimeError",
)
case("--model an empty function name", ["--model", "{mod}:"], r"--model must be MODULE:NAME")
case(
    "--model a module name with a space",
    ["--model", "bad module:build"],
    r"--model must be MODULE:NAME",
)
case("--data a missing file", ["--data", "{tmp}/none.npz"], r"--data: no file or folder")
case(
    "--data returns three things",
    ["--data", "{mod}:three"],
    r"--data: .*three\(\) must return \(x, y\)",
)
case(
    "--data x and y of different lengths", ["--data", "{mod}:mismatched"], r"--data: .* same number"
)
case(
    "--data that does not fit the model",
    ["--data", "{mod}:wrong_features"],
    r"--model / --data / --loss: the model's forward",
)
case(
    "--train-subset above the examples",
    ["--train-subset", "21"],
    r"--train-subset must be an integer in \[1, 20\]",
)
case("--checkpoint missing", ["--checkpoint", "{tmp}/none.pt"], r"--checkpoint: no file")
case("--loss not MODULE:FUNCTION", ["--loss", "mse"], r"--loss must be MODULE:FUNCTION")
case(
    "--loss returns one value per example",
    ["--loss", "{mod}:per_example"],
    r"--loss must return a real scalar",
)
case("--out a file", ["--out", "{mod}"], r"--out .* is a file")


def _checkpoint_case(name, content, match):
    def go(tmp):
        import torch

        mod = _write_user(tmp)
        path = tmp / "ck.pt"
        torch.save(content(), path)
        return cli(
            "curvature",
            "--model",
            f"{mod}:build",
            "--data",
            f"{mod}:data",
            "--checkpoint",
            str(path),
            "--out",
            str(tmp / "out"),
            "--quiet",
            "--trace-products",
            "4",
            "--slq-vectors",
            "0",
        )

    CASES.append(Case(AREA, name, go, match, raises=(CliError,), unchanged=_nothing_written))


def _wrong_keys():
    import torch

    return {"weight": torch.zeros(3)}


class _Opaque:  # not a tensor: torch.load(weights_only=True) must refuse to unpickle it
    pass


_checkpoint_case(
    "--checkpoint with other parameter names",
    _wrong_keys,
    r"--checkpoint .* does not fit the model",
)
_checkpoint_case(
    "--checkpoint an arbitrary pickle",
    lambda: {"x": _Opaque()},
    r"--checkpoint .* not a state dict that torch.load\(weights_only=True\) can read",
)


def _npz_case(name, arrays, argv, match):
    def go(tmp):
        import numpy as np

        np.savez(tmp / "d.npz", **arrays)
        return cli(
            "curvature",
            "--model",
            "resnet18",
            "--data",
            str(tmp / "d.npz"),
            "--out",
            str(tmp / "out"),
            "--quiet",
            *argv,
        )

    CASES.append(Case(AREA, name, go, match, raises=(CliError,), unchanged=_nothing_written))


_npz_case(
    "--data an .npz without x and y", {"a": [1, 2]}, [], r"--data .* must hold arrays x and y"
)


def _cwd_case():
    def go(tmp):
        (tmp / "cwdmod.py").write_text(USER)
        with contextlib.chdir(tmp):  # MODULE:NAME resolves from the current directory
            return cli(
                "curvature",
                "--model",
                "cwdmod:returns_int",
                "--data",
                "cwdmod:data",
                "--out",
                str(tmp / "out"),
                "--quiet",
            )

    CASES.append(
        Case(
            AREA,
            "--model from the current directory returns no nn.Module",
            go,
            r"--model: cwdmod:returns_int\(\) must return a torch.nn.Module",
            raises=(CliError,),
            unchanged=_nothing_written,
        )
    )


_cwd_case()
