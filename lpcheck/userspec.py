"""A user's own code named on the command line as MODULE:NAME: the one loader for every option that
takes one.

    fn = userspec.load("mymodel:build", "--model")           # mymodel.py in the current directory
    fn = userspec.load("path/to/mymodel.py:build", "--model")  # or a .py file anywhere
    cls = userspec.load("myopt:MyOpt", "--optimizer", kind="class")

`lpcheck estimate` (--model, --data, --loss, --optimizer), `lpcheck curvature` (--model, --data,
--loss), `lpcheck rates --problem` and `lpcheck.methods.resolve` all load through here, so a module
next to where lpcheck runs imports the same way everywhere, without PYTHONPATH:
- MODULE is a dotted module name, imported with the current directory first on sys.path (as
  `python -c` finds it) and sys.path restored afterwards; a module of that name cached from another
  directory is imported again from this one (the current directory's file wins, as it would in a
  fresh process);
- or a path to a .py file (`path/to/file.py:NAME`), executed once per resolved path (again if the
  file changed) with its own folder first on sys.path (so it can import its neighbours), as a module
  named after the file.
NAME may be dotted (`module:Outer.Inner`). Every failure is a ValueError naming the option (a
missing .py file a FileNotFoundError): a module that does not exist, one whose import raised (with
the exception), a missing attribute, an object of the wrong kind. Importing runs the module's code:
name only code you trust.

`origin(spec)` is the spec as a path that names the same object from any folder
(`/abs/mymodel.py:build`): what `lpcheck estimate --resume` compares. `load_data(spec, option)`
reads MODULE:FUNCTION's or an .npz's examples into `UserData` (tensors or a map-style Dataset, train
and optional test split)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "is_spec",
    "split",
    "import_module",
    "load",
    "origin",
    "spec_of",
    "call",
    "takes",
    "UserData",
    "load_data",
    "examples",
    "check_finite",
    "check_labels",
    "check_model",
    "npz_is_cifar",
]


def is_spec(value: Any) -> bool:
    """MODULE:NAME rather than a plain name or an existing path."""
    return isinstance(value, str) and ":" in value and not Path(value).exists()


def split(spec: str, option: str) -> tuple[str, str]:
    """(MODULE, NAME) of a MODULE:NAME spec, or a ValueError naming `option`."""
    module, _, name = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    module, name = module.strip(), name.strip()
    if (
        not module
        or not all(part.isidentifier() for part in name.split("."))
        or not _module_ok(module)
    ):
        raise ValueError(
            f"{option} must be MODULE:NAME (a module importable from the current directory, or a "
            f".py file, and a name in it), got {spec!r}"
        )
    return module, name


def _module_ok(module: str) -> bool:
    return module.endswith(".py") or all(part.isidentifier() for part in module.split("."))


def _file_module(path: Path, option: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{option}: no Python file {path} (it does not exist)")
    resolved = path.resolve()
    st = resolved.stat()  # a file changed since it was loaded in this process is loaded again
    key = f"{resolved}:{st.st_mtime_ns}:{st.st_size}"
    name = f"_lpcheck_user_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:  # a .py path always has a source loader
        raise ImportError(f"{option}: cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    saved = list(sys.path)
    try:
        sys.path.insert(0, str(resolved.parent))
        spec.loader.exec_module(mod)
    except Exception as e:
        del sys.modules[name]
        raise ValueError(f"{option}: importing {path} raised {type(e).__name__}: {e}") from e
    finally:
        sys.path[:] = saved
    return mod


def _in(folder: str, module: str) -> Path | None:
    """The file in `folder` that `import module` would find first, if any."""
    top = Path(folder) / module.split(".")[0]
    for candidate in (top.with_suffix(".py"), top / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _forget_if_elsewhere(module: str, cwd: str) -> None:
    """Drop a cached `module` (and its package) imported from another folder than the one `cwd`
    holds."""
    here = _in(cwd, module)
    top = module.split(".")[0]
    cached = sys.modules.get(top)
    if here is None or cached is None:
        return
    where = getattr(cached, "__file__", None)
    if where is not None and Path(where).resolve() == here:
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def import_module(module: str, option: str) -> Any:
    """MODULE: a dotted name (the current directory first on sys.path, for the import only) or a .py
    file."""
    if module.endswith(".py"):
        return _file_module(Path(module), option)
    if not _module_ok(module):
        raise ValueError(
            f"{option} must be MODULE:NAME with MODULE a module name (a.b.c) or a .py file, got "
            f"module {module!r}"
        )
    cwd = os.getcwd()
    saved = list(sys.path)
    try:
        sys.path.insert(
            0, cwd
        )  # the user's own module, from where lpcheck runs, as `python -c` would find it
        _forget_if_elsewhere(module, cwd)
        # a file written since the last import in this process is seen
        importlib.invalidate_caches()
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise ValueError(
                f"{option}: no module named {module!r} in the current directory ({cwd}) or on "
                "sys.path"
            ) from None
        raise ValueError(f"{option}: importing {module} raised {type(e).__name__}: {e}") from e
    except Exception as e:
        raise ValueError(f"{option}: importing {module} raised {type(e).__name__}: {e}") from e
    finally:
        sys.path[:] = saved


def load(spec: str, option: str, kind: str | None = "function") -> Any:
    """The object NAME of MODULE for `spec` = 'MODULE:NAME'. kind: 'function' (any callable),
    'class' (a class) or None (anything)."""
    module, name = split(spec, option)
    obj = import_module(module, option)
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{option}: module {module!r} has no attribute {name!r}")
        obj = getattr(obj, part)
    if kind == "function" and not callable(obj):
        raise ValueError(f"{option}: {spec} must be a function, got {type(obj).__name__}")
    if kind == "class" and not isinstance(obj, type):
        raise ValueError(f"{option}: {spec} must be a class, got {type(obj).__name__}")
    return obj


def origin(spec: str, option: str) -> str:
    """`spec` with MODULE as the absolute path of its file ('/abs/mymodel.py:build'): the same
    object from any folder. A module without a file (built into Python) keeps its dotted name."""
    module, name = split(spec, option)
    mod = import_module(module, option)
    where = getattr(mod, "__file__", None)
    return f"{Path(where).resolve()}:{name}" if where else f"{module}:{name}"


def spec_of(obj: Any) -> str:
    """'MODULE:NAME' for a class or function, readable back by `load`: a .py file loaded here is
    named by its path."""
    module = obj.__module__
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    if module.startswith("_lpcheck_user_") and file:
        module = file
    return f"{module}:{obj.__qualname__}"


def call(fn: Any, spec: str, option: str, *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), its exception turned into a ValueError naming `option` and `spec`."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        raise ValueError(f"{option}: {spec}() raised {type(e).__name__}: {e}") from e


def takes(fn: Any, name: str) -> bool | None:
    """Whether fn accepts the keyword `name`: True, False, or None where its signature cannot tell
    (**kwargs accepts anything, True too)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if name in params and params[name].kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    ):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# -- data ------------------------------------------------------------------------------------------


@dataclass
class UserData:
    """A user's examples: `train` and `test` are (x, y) tensors on the CPU or map-style Datasets
    (test may be None); `source` says where they came from; `fingerprint` is the sha256 of the
    tensors (None for a Dataset, whose items lpcheck does not read ahead)."""

    train: object
    test: object
    source: str
    fingerprint: str | None

    @property
    def is_tensors(self) -> bool:
        return isinstance(self.train, tuple)


def _as_tensor(t: Any, what: Any, option: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(t, np.ndarray):
        if t.dtype == object:
            raise ValueError(f"{option}: {what} is an array of Python objects; give numbers")
        t = torch.from_numpy(np.ascontiguousarray(t))
    if not isinstance(t, torch.Tensor) or t.ndim == 0:
        got = "a 0-d tensor" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(
            f"{option}: {what} must be a tensor or array with one row per example, got {got}"
        )
    return t.detach().cpu()


def examples(x: Any, y: Any, what: Any, option: Any) -> Any:
    """(x, y) on the CPU from a user's tensors or arrays: one row per example, as many of each (at
    least one), finite; a ValueError naming `option` and `what` otherwise."""
    x, y = _as_tensor(x, f"{what} x", option), _as_tensor(y, f"{what} y", option)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"{option}: {what} must give x and y with the same number (>= 1) of examples, got "
            f"{len(x)} and {len(y)}"
        )
    for name, t in (("x", x), ("y", y)):
        check_finite(t, f"{what} {name}", option)
    return x, y


def check_finite(t: Any, what: Any, option: Any) -> None:
    """Refuse inf or nan in a user's floating examples (one row each) now: they would surface as a
    non-finite loss deep inside training, the probe or a Hessian product, after work was done, and
    only when their batch is drawn."""
    import torch

    if not (t.is_floating_point() or t.is_complex()):
        return
    finite = torch.isfinite(t)
    bad = ~(finite.flatten(1).all(1) if t.ndim > 1 else finite)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{option}: {what} must be finite, got inf or nan in {int(bad.sum())} example(s), the "
            f"first at index {first}"
        )


def check_labels(y: Any, outputs: Any, what: Any, option: Any) -> None:
    """Class labels `y` (the whole split, 1-D integers) in [0, C) for the default cross-entropy on
    the model's `outputs` (N, C), or -100 (its ignore_index): a first batch alone would leave a
    label out of range to fail inside torch at whichever batch draws it. Float targets (class
    probabilities) and other shapes are the loss's to judge."""
    import torch

    if not (isinstance(outputs, torch.Tensor) and outputs.ndim == 2):
        return
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype == torch.bool:
        return
    if y.is_floating_point() or y.is_complex():
        return
    classes = outputs.shape[1]
    bad = ((y < 0) | (y >= classes)) & (y != -100)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{option}: {what} must be class indices in [0, {classes - 1}] for cross-entropy (the "
            f"default --loss) on the model's {classes} outputs (or -100, its ignore_index), got "
            f"{int(y[first])} at example {first} ({int(bad.sum())} example(s) out of range)"
        )


def check_model(model: Any, spec: str, option: str) -> Any:
    """A factory's result: a torch.nn.Module whose tensors hold values (not on the meta device,
    where .to() raises NotImplementedError deep inside torch)."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f"{option}: {spec}() must return a torch.nn.Module, got {type(model).__name__}"
        )
    if any(t.device.type == "meta" for t in (*model.parameters(), *model.buffers())):
        raise ValueError(
            f"{option}: {spec}() returned a model on the meta device (tensors with a shape and no "
            "values): build it on the CPU, or materialise it (to_empty + initialisation) first"
        )
    return model


def _is_dataset(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, torch.utils.data.Dataset)
        and hasattr(obj, "__len__")
        and hasattr(obj, "__getitem__")
    )


def _fingerprint(*pairs: Any) -> str:
    import torch

    h = hashlib.sha256(b"lpcheck user tensors")
    for pair in pairs:
        for t in pair or ():
            h.update(str((str(t.dtype), tuple(t.shape))).encode())
            h.update(
                memoryview(t.contiguous().reshape(-1).view(torch.uint8).numpy())
            )  # any dtype, bfloat16 too
    return h.hexdigest()


def _from_result(result: Any, where: Any, option: Any) -> UserData:
    if _is_dataset(result):
        return UserData(result, None, where, None)
    if isinstance(result, (tuple, list)):
        if len(result) == 2 and all(_is_dataset(r) for r in result):
            return UserData(result[0], result[1], where, None)
        if len(result) in (2, 4):
            train = examples(result[0], result[1], f"{where}'s training examples", option)
            test = (
                examples(result[2], result[3], f"{where}'s test examples", option)
                if len(result) == 4
                else None
            )
            return UserData(train, test, where, _fingerprint(train, test))
    got = (
        f"a {type(result).__name__} of {len(result)}"
        if isinstance(result, (tuple, list))
        else type(result).__name__
    )
    raise ValueError(
        f"{option}: {where} must return (x_train, y_train), (x_train, y_train, x_test, y_test) "
        "tensors or arrays, a map-style torch Dataset, or a (train, test) pair of Datasets; got "
        f"{got}"
    )


def npz_keys(path: Any, option: Any) -> set:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            return set(f.files)
    except (OSError, ValueError) as e:
        raise ValueError(f"{option} {path}: not a readable .npz file ({e})") from None


def npz_is_cifar(path: Any, option: Any = "--data") -> bool:
    """Whether an .npz is CIFAR as lpcheck.data reads it: it declares a dataset (`dataset` or
    `num_classes`), or its x_train is uint8 images of 32 x 32 x 3 (NHWC). Anything else is a
    user's own tensors."""
    import numpy as np

    keys = npz_keys(path, option)
    if keys & {"dataset", "num_classes"}:
        return True
    if "x_train" not in keys:
        return False
    with np.load(path, allow_pickle=False, mmap_mode="r") as f:
        x = f["x_train"]
        return x.dtype == np.uint8 and x.ndim == 4 and x.shape[1:] == (32, 32, 3)


def load_data(spec: str, option: str = "--data") -> UserData:
    """A user's examples from MODULE:FUNCTION (called with no arguments) or a non-CIFAR .npz
    (x_train, y_train [, x_test, y_test], or x and y). See `UserData`."""
    import numpy as np

    if is_spec(spec):
        fn = load(spec, option)
        return _from_result(call(fn, spec, option), f"{spec}()", option)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{option}: no file or folder {path}")
    keys = npz_keys(path, option)
    with np.load(path, allow_pickle=False) as f:
        if {"x_train", "y_train"} <= keys:
            extra = ("x_test", "y_test") if {"x_test", "y_test"} <= keys else ()
            arrays = [f[k] for k in ("x_train", "y_train", *extra)]
        elif {"x", "y"} <= keys:
            arrays = [f["x"], f["y"]]
        else:
            raise ValueError(
                f"{option} {path} must hold arrays x_train and y_train (and optionally x_test, "
                f"y_test), or x and y; got {sorted(keys)}"
            )
    return _from_result(tuple(arrays), str(path), option)
