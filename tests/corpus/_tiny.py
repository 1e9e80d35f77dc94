"""Small inputs the corpus cases share: tiny CIFAR-shaped files, tiny finished runs, and the checks
that nothing changed on disk after a refusal.

The finished runs (an `lpcheck estimate` run, a `cifar_train.py` run) are made once per process, by
the lpcheck under test, and copied into each case's folder: a case that resumes one costs a copy,
not a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np


def images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def npz(path, n=64, n_test=16, **override) -> Path:
    """A CIFAR-10-shaped .npz (labels 0..9 cycling); `override` replaces or adds entries."""
    arrays = {
        "x_train": images(n),
        "y_train": np.arange(n) % 10,
        "x_test": images(n_test, 1),
        "y_test": np.arange(n_test) % 10,
    }
    arrays.update(override)
    path = Path(path)
    np.savez(path, **arrays)
    return path


def batch(path, x, labels, key=b"labels"):
    """One CIFAR python batch (a pickled dict with b'data' rows of R, G, B planes)."""
    rows = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), 3072)
    with open(path, "wb") as f:
        pickle.dump({b"data": rows, key: list(labels)}, f)


def cifar10_batches(folder, labels=None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(5):
        batch(
            folder / f"data_batch_{i + 1}",
            images(4, i),
            labels if labels is not None and i == 0 else [i, 1, 2, 3],
        )
    batch(folder / "test_batch", images(4, 9), [9, 8, 7, 6])
    return folder


def cifar100_batches(folder) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    batch(folder / "train", images(4), [99, 0, 5, 50], b"fine_labels")
    batch(folder / "test", images(4, 1), [1, 2, 3, 4], b"fine_labels")
    return folder


def with_options(base, options):
    """`base` (an argv) with `options` (name, value pairs) replacing or adding values. A value that
    starts with '-' is given as --name=value, the one way argparse takes it (-1e-8 would read as
    an option)."""
    argv = list(base)
    for name, value in zip(options[::2], options[1::2]):
        if name in argv:
            del argv[argv.index(name) : argv.index(name) + 2]
        argv += [f"{name}={value}"] if value.startswith("-") else [name, value]
    return argv


# -- nothing changed -------------------------------------------------------------------------------


def tree(folder) -> dict:
    """Every file and folder under `folder`: path -> (sha256 of the bytes or 'dir', mode)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root, name)
            st = p.lstat()
            kind = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(folder))] = (kind, st.st_mode & 0o7777)
    return out


_BEFORE: dict = {}


def remember(tmp) -> None:
    """Take the picture that `same_tree` compares with (call it right before the bad call)."""
    _BEFORE[str(tmp)] = tree(tmp)


def same_tree(tmp) -> None:
    """unchanged=: no file or folder under the case's folder was created, changed or removed."""
    before, after = _BEFORE.pop(str(tmp)), tree(tmp)
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (created or removed or changed), (
        f"created {created}, removed {removed}, changed {changed}"
    )


@contextlib.contextmanager
def cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# -- finished runs, made once ----------------------------------------------------------------------

_CACHE: dict = {}
_ROOT = None


def _scratch() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="lpcheck-corpus-"))
    return _ROOT


def cached(key, make):
    """make(folder) once per process; returns that folder (copy it before changing anything)."""
    if key not in _CACHE:
        folder = _scratch() / key
        folder.mkdir()
        make(folder)
        _CACHE[key] = folder
    return _CACHE[key]


def quietly(fn, *args, **kwargs):
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


@contextlib.contextmanager
def isolated():
    """Whatever the call under test does to torch's thread count stays inside it: a case that
    (wrongly) accepts --threads 1000 must not leave the next thousand cases running on 1000
    threads."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def experiments_dir() -> Path:
    """experiments/ of the checkout whose lpcheck is under test: beside the imported package when it
    runs from a checkout (the corpus script's --checkout), else this test tree's own (a `pip
    install .` puts the package in site-packages, without experiments/)."""
    import lpcheck

    beside = Path(lpcheck.__file__).resolve().parent.parent / "experiments"
    return beside if beside.is_dir() else Path(__file__).resolve().parents[2] / "experiments"


def script(name: str):
    """The module experiments/NAME.py of the checkout under test (imported once)."""
    import importlib

    folder = str(experiments_dir())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)
