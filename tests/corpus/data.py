"""Bad data: CIFAR files that declare one thing and hold another, malformed arrays, bad arguments to
`lpcheck.data` (load_cifar, Cifar.subset, DeviceCifar).

Each case writes a small bad .npz or python-batch folder into the folder it gets. The dataset
(CIFAR-10 or CIFAR-100, and with it the number of classes and Table 4 or 5's hyperparameters) comes
from what the file declares or from the caller's `dataset=`, never from the largest label.
"""

from __future__ import annotations

import io
import warnings
import zipfile

import numpy as np

from corpus import Case
from corpus._tiny import cifar10_batches, cifar100_batches, images, npz


def _load(path, **kw):
    from lpcheck.data import load_cifar

    return load_cifar(path, **kw)


def load_npz(flag=None, **override):
    """load_cifar(d.npz, dataset=flag) on a small .npz with `override` entries (dataset=,
    num_classes=, ...)."""

    def run(tmp):
        kw = {} if flag is None else {"dataset": flag}
        return _load(npz(tmp / "d.npz", n=20, n_test=6, **override), **kw)

    return run


def _missing_arrays(tmp):
    np.savez(tmp / "d.npz", x_train=images(2))
    return _load(tmp / "d.npz")


def _broken_batch(name, how):
    def run(tmp):
        folder = cifar10_batches(tmp / "c")
        if how == "missing":
            (folder / name).unlink()
        else:
            (folder / name).write_bytes(b"junk")
        return _load(folder)

    return run


def _labels(n, top):
    y = np.arange(n) % 10
    y[3] = top
    return y


def _dup_npz(tmp):
    def arr(a):
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        with zipfile.ZipFile(tmp / "d.npz", "w") as z:
            z.writestr("x_train.npy", arr(images(4)))
            z.writestr("y_train.npy", arr(np.array([0, 1, 2, 3])))
            z.writestr("x_test.npy", arr(images(2, 1)))
            z.writestr("y_test.npy", arr(np.array([0, 1])))
            z.writestr("y_train.npy", arr(np.array([50, 60, 70, 80])))
    return _load(tmp / "d.npz")


def _both_folders(tmp):
    cifar10_batches(tmp / "cifar-10-batches-py")
    cifar100_batches(tmp / "cifar-100-python")
    return _load(tmp)


def _subset(n):
    def run(tmp):
        return _load(npz(tmp / "d.npz", n=20, n_test=6)).subset(n)

    return run


def _device(images_, labels, name="cifar10", device="cpu"):
    def run(tmp):
        from lpcheck.data import DeviceCifar

        return DeviceCifar(images_, labels, name, device)

    return run


def D(name, run, match, raises=(ValueError,), **kw):
    return Case("data", name, run, match, raises=raises, **kw)


_NAMED = r"(x|y)_(train|test)"  # the split named in the message

CASES = [
    # which dataset: declared, or passed, never guessed from one label
    D(
        "npz: a label 10, no declaration",
        load_npz(y_train=_labels(20, 10)),
        r"d.npz.*label.* 10.*--dataset",
    ),
    D(
        "npz: a label 57 in the test split, no declaration",
        load_npz(y_test=_labels(6, 57)),
        r"d.npz.*label.* 57.*--dataset",
    ),
    D(
        "npz: declares cifar10, holds a label 10",
        load_npz(y_train=_labels(20, 10), dataset=np.array("cifar10")),
        r"d.npz \(y_train\): labels must be integers in \[0, 10\)",
    ),
    D(
        "npz: declares num_classes 10, holds a label 99",
        load_npz(y_test=_labels(6, 99), num_classes=np.array(10)),
        r"d.npz \(y_test\): labels must be integers in \[0, 10\)",
    ),
    D(
        "npz: declares an unknown dataset",
        load_npz(dataset=np.array("mnist")),
        r"d.npz: 'dataset' .*cifar10",
    ),
    D(
        "npz: declares 37 classes",
        load_npz(num_classes=np.array(37)),
        r"d.npz: 'num_classes' .*10 or 100",
    ),
    D(
        "npz: declares 10.5 classes",
        load_npz(num_classes=np.array(10.5)),
        r"d.npz: 'num_classes' .*10 or 100",
    ),
    D(
        "npz: dataset and num_classes disagree",
        load_npz(num_classes=np.array(100), dataset=np.array("cifar10")),
        r"d.npz: .*disagree",
    ),
    D(
        "npz: two dataset names",
        load_npz(dataset=np.array(["cifar10", "cifar100"])),
        r"d.npz: 'dataset' ",
    ),
    D(
        "npz: declares cifar10, caller says cifar100",
        load_npz("cifar100", dataset=np.array("cifar10")),
        r"d.npz declares cifar10.*cifar100",
    ),
    D(
        "dataset= unknown",
        load_npz("imagenet"),
        r"dataset must be one of \['cifar10', 'cifar100'\]",
    ),
    D("dataset= not a string", load_npz(10), r"dataset must be one of"),
    D(
        "dataset= cifar10 on a label 10",
        load_npz("cifar10", y_train=_labels(20, 10)),
        r"d.npz \(y_train\): labels must be integers in \[0, 10\)",
    ),
    D(
        "batches: cifar-10 folder, caller says cifar100",
        lambda tmp: _load(cifar10_batches(tmp / "c"), dataset="cifar100"),
        r"is CIFAR-10 .*cifar100",
    ),
    D(
        "batches: cifar-100 folder, caller says cifar10",
        lambda tmp: _load(cifar100_batches(tmp / "c"), dataset="cifar10"),
        r"is CIFAR-100 .*cifar10",
    ),
    D(
        "batches: cifar-10 with a label 10",
        lambda tmp: _load(cifar10_batches(tmp / "c", labels=[0, 1, 10, 3])),
        r"data_batch_1..5.*labels must be integers in \[0, 10\)",
    ),
    D("folder with both CIFAR-10 and CIFAR-100", _both_folders, r"both .*--dataset"),
    # malformed arrays
    D(
        "npz: float labels",
        load_npz(y_train=(np.arange(20) % 10).astype(float)),
        r"\(y_train\): labels must be integers",
    ),
    D(
        "npz: bool labels",
        load_npz(y_test=np.ones(6, bool)),
        r"\(y_test\): labels must be integers",
    ),
    D(
        "npz: negative label",
        load_npz(y_train=_labels(20, -1)),
        r"\(y_train\): labels must be integers in \[0, 10\)",
    ),
    D(
        "npz: labels (N, 1)",
        load_npz(y_train=(np.arange(20) % 10)[:, None]),
        r"\(y_train\): labels must be a 1-D",
    ),
    D(
        "npz: empty test split",
        load_npz(x_test=images(0), y_test=np.zeros(0, int)),
        r"\(x_test.*\): no images",
    ),
    D(
        "npz: empty train split",
        load_npz(x_train=images(0), y_train=np.zeros(0, int)),
        r"train.*: no images",
    ),
    D(
        "npz: NCHW images",
        load_npz(x_train=images(20).transpose(0, 3, 1, 2)),
        r"\(x_train.*\): images must be uint8 of shape",
    ),
    D(
        "npz: float images",
        load_npz(x_test=images(6, 1).astype(np.float32)),
        r"\(x_test.*\): images must be uint8",
    ),
    D(
        "npz: one label short",
        load_npz(y_train=np.arange(19) % 10),
        r"\(y_train.*\): .*one label per image",
    ),
    D("npz: a duplicated member", _dup_npz, r"d.npz: .*y_train.* twice"),
    D("npz: missing arrays", _missing_arrays, r"d.npz: missing arrays"),
    D(
        "npz: not a zip",
        lambda tmp: (tmp / "d.npz").write_bytes(b"junk") and _load(tmp / "d.npz"),
        r"d.npz: not a readable",
    ),
    D(
        "path: a .txt file",
        lambda tmp: (tmp / "d.txt").write_text("x") and _load(tmp / "d.txt"),
        r"d.txt: expected an .npz",
    ),
    D(
        "path: missing",
        lambda tmp: _load(tmp / "none.npz"),
        r"no CIFAR dataset at",
        raises=(FileNotFoundError,),
    ),
    D(
        "path: an empty folder",
        lambda tmp: (tmp / "e").mkdir() or _load(tmp / "e"),
        r"holds no CIFAR data",
        raises=(FileNotFoundError,),
    ),
    D("path: ''", lambda tmp: _load(""), r"path is empty"),
    D("path: None", lambda tmp: _load(None), r"path must be a file or folder name, got None"),
    D(
        "batches: a missing batch",
        _broken_batch("data_batch_3", "missing"),
        r"missing CIFAR batch file .*data_batch_3",
        raises=(FileNotFoundError,),
    ),
    D(
        "batches: not a pickle",
        _broken_batch("test_batch", "junk"),
        r"test_batch: not a CIFAR python batch",
    ),
    # Cifar.subset
    *[
        D(f"subset({n!r})", _subset(n), r"n_train must be an integer in \[1, 20\]")
        for n in (0, -1, 21, 2.5, True, "5")
    ],
    # DeviceCifar
    D(
        "DeviceCifar: a label 10 for cifar10",
        _device(images(4), np.array([0, 1, 2, 10])),
        r"labels must be integers in \[0, 10\)",
    ),
    D(
        "DeviceCifar: NCHW images",
        _device(images(4).transpose(0, 3, 1, 2), np.arange(4)),
        r"images must be uint8 of shape",
    ),
    D(
        "DeviceCifar: float images",
        _device(images(4).astype(np.float32), np.arange(4)),
        r"images must be uint8",
    ),
    D(
        "DeviceCifar: labels of another length",
        _device(images(4), np.arange(3)),
        r"one label per image",
    ),
    D(
        "DeviceCifar: an unknown device",
        _device(images(4), np.arange(4), device="tpu"),
        r"device must be",
    ),
    D(
        "DeviceCifar: an unknown name",
        _device(images(4), np.arange(4), name="mnist"),
        r"name must be one of",
    ),
    D("path: bytes", lambda tmp: _load(b"/tmp/x.npz"), r"path must be a file or folder name"),
    D(
        "npz: declares True classes",
        load_npz(num_classes=np.array(True)),
        r"'num_classes' must be 10 or 100",
    ),
    D("npz: 0-d labels", load_npz(y_test=np.array(3)), r"\(y_test\): labels must be a 1-D array"),
    D(
        "npz: declares an empty dataset name",
        load_npz(dataset=np.array("")),
        r"'dataset' must be one of",
    ),
]
