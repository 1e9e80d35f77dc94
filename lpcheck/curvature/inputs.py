"""What `lpcheck curvature` measures: a model, data and a loss from the command line, built-in or
the user's own.

- `load_callable("MODULE:NAME", option)`: a function from a module importable from the current
  directory (no PYTHONPATH needed) or from a .py file (`path/to/file.py:NAME`), through
  `lpcheck.userspec`.
- `build_model(spec, ...)`: a built-in CIFAR model by name, or MODULE:FACTORY (a function of no
  arguments returning a torch.nn.Module); `load_checkpoint(model, path)` loads a state dict with
  weights_only=True.
- `load_data(spec, ...)`: a CIFAR .npz/folder (the training split, normalised as for training), an
  .npz with arrays x and y, or MODULE:FUNCTION returning (x, y) tensors or arrays.
- `load_loss(spec)`: MODULE:FUNCTION, loss(outputs, targets) -> scalar; default cross-entropy.
Every failure is a ValueError (FileNotFoundError for a missing path) naming the option."""

from __future__ import annotations

from pathlib import Path

from lpcheck import userspec

__all__ = [
    "is_spec",
    "load_callable",
    "build_model",
    "load_checkpoint",
    "load_data",
    "load_loss",
    "BUILTIN_MODELS",
]

BUILTIN_MODELS = ("resnet18", "resnet50", "vgg11")


def is_spec(value: str) -> bool:
    """MODULE:NAME rather than a built-in name or an existing path."""
    return userspec.is_spec(value)


def load_callable(spec: str, option: str):
    """The callable NAME in MODULE for a MODULE:NAME spec (`lpcheck.userspec`, the loader every verb
    shares)."""
    return userspec.load(spec, option, kind="function")


def _call(fn, spec, option, *args):
    return userspec.call(fn, spec, option, *args)


def build_model(spec: str, width=None, num_classes=10):
    """A built-in model (width, num_classes) or the nn.Module returned by the factory
    MODULE:FACTORY."""

    from lpcheck import models

    if spec in BUILTIN_MODELS:
        return models.build(spec, num_classes=num_classes, width=1.0 if width is None else width)
    if not is_spec(spec):
        raise ValueError(
            f"--model must be one of {', '.join(BUILTIN_MODELS)} or MODULE:FACTORY (a function "
            f"returning a torch.nn.Module), got {spec!r}"
        )
    return userspec.check_model(
        _call(load_callable(spec, "--model"), spec, "--model"), spec, "--model"
    )


def load_checkpoint(model, path, device):
    """Load a state dict (or a dict holding one under 'state_dict' or 'model') into model,
    strictly."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--checkpoint: no file {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise ValueError(
            f"--checkpoint {path}: not a state dict that torch.load(weights_only=True) can read "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from e
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"--checkpoint {path} must hold a state dict (parameter names -> tensors), got "
            f"{type(state).__name__}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(
            f"--checkpoint {path} does not fit the model: {' '.join(str(e).split())[:400]}"
        ) from None


def _tensors(x, y, where):
    """(x, y) as estimate's --data reads them (`userspec`): tensors or arrays with one row per
    example, as many of each, finite."""
    return userspec.examples(x, y, f"{where}'s examples", "--data")


def load_data(spec: str, train_subset=None):
    """(x, y, description, num_classes or None): all examples on the CPU (see the module
    docstring)."""
    import numpy as np

    from lpcheck import data as cifar

    path = Path(spec)
    if is_spec(spec):
        result = _call(load_callable(spec, "--data"), spec, "--data")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ValueError(f"--data: {spec}() must return (x, y), got {type(result).__name__}")
        x, y = _tensors(*result, f"{spec}()")
        classes, what = None, f"{spec}()"
    elif not path.exists():
        raise FileNotFoundError(
            f"--data: no file or folder {path} (give a CIFAR .npz or folder, an .npz with x and "
            "y, or MODULE:FUNCTION)"
        )
    elif path.suffix == ".npz" and "x_train" not in _npz_keys(path):
        if not _npz_keys(path) >= {"x", "y"}:
            raise ValueError(
                f"--data {path} must hold arrays x and y (or CIFAR's x_train, y_train, ...), got "
                f"{sorted(_npz_keys(path))}"
            )
        with np.load(path, allow_pickle=False) as f:
            x, y = _tensors(f["x"], f["y"], str(path))
        classes, what = None, str(path)
    else:
        data = cifar.load_cifar(path)
        _check_subset(train_subset, len(data.y_train))
        if train_subset is not None:
            data = data.subset(train_subset)
        x, y = cifar.DeviceCifar.train(data).batch(
            slice(None)
        )  # normalised as for training, no augmentation
        return x, y, f"{data.name} training split of {path}", data.num_classes
    _check_subset(train_subset, len(x))
    if train_subset is not None:
        x, y = x[:train_subset], y[:train_subset]
    return x, y, what, classes


def _check_subset(n, available):
    if n is not None and n > available:
        raise ValueError(
            f"--train-subset must be an integer in [1, {available}] (the examples in --data), got "
            f"{n}"
        )


def _npz_keys(path):
    return userspec.npz_keys(path, "--data")


def load_loss(spec):
    """loss(outputs, targets) -> scalar: cross-entropy (mean) by default, or the function
    MODULE:FUNCTION."""
    import torch

    if spec is None:
        return torch.nn.functional.cross_entropy
    if not is_spec(spec):
        raise ValueError(
            f"--loss must be MODULE:FUNCTION (loss(outputs, targets) -> scalar), got {spec!r}"
        )
    return load_callable(spec, "--loss")
