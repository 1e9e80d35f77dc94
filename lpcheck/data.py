"""CIFAR-10/100 as arrays, and on a device as tensors with device-side batching and augmentation.

Sources (`load_cifar(path, dataset=None)`):
- the standard python-batch folder: `cifar-10-batches-py/` (data_batch_1..5, test_batch; 'labels')
  or `cifar-100-python/` (train, test; 'fine_labels'), or a folder that contains one of them;
- an `.npz` file with x_train, y_train, x_test, y_test, images NHWC uint8 of 32 x 32 x 3 (like
  `../shared/data/cifar10_subset.npz`), and optionally a declaration: a `dataset` entry ('cifar10'
  or 'cifar100') and/or a `num_classes` entry (10 or 100).

Which dataset it is (and with it the number of classes, the normalisation and Table 4 or Table 5 of
the paper) comes from what the source declares (the folder's format, the .npz's entries) or from the
caller's `dataset=` (`--dataset` on the command line), never from the largest label: an .npz without
a declaration is CIFAR-10 when every label is below 10, and a label of 10 or more there is an error
that asks for `--dataset cifar100`. A declaration and `dataset=` that disagree are an error, as is a
label outside the declared range (naming the file, the array and the range). A missing path raises
FileNotFoundError and a malformed file ValueError, each naming the path and what is wrong. The
python-batch files are pickles: unpickling runs code a crafted file carries, so load only files you
trust (as with torchvision).

On a device (`DeviceCifar`), the images are stored once as uint8 NCHW; a batch is gathered by an
index tensor, augmented (random crop with 4 pixels of zero padding, horizontal flip: the standard
CIFAR recipe) and normalised with the dataset's per-channel mean and std, all with torch ops on that
device and random numbers from a torch.Generator on it: no per-step host transfer and no host sync.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Cifar", "load_cifar", "DeviceCifar", "augment", "MEAN", "STD", "DATASETS"]

# per-channel statistics of the full training sets (RGB, pixel values in [0, 1])
MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
_CLASSES = {"cifar10": 10, "cifar100": 100}
DATASETS = tuple(_CLASSES)
_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Cifar:
    """Images NHWC uint8 (N, 32, 32, 3) and labels int64 (N,), train and test, plus where they came
    from."""

    name: str  # "cifar10" or "cifar100"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def num_classes(self) -> int:
        return _CLASSES[self.name]

    def fingerprint(self) -> str:
        """sha256 of the dataset's name and arrays as loaded: the same images and labels give the
        same value from an .npz and from python batches; any changed pixel or label changes it."""
        import hashlib

        h = hashlib.sha256(self.name.encode())
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
        return h.hexdigest()

    def subset(self, n_train, name: str = "n_train") -> Cifar:
        """The first n_train training images (the test set is kept whole). `name` is the argument's
        name in the error (e.g. '--train-subset')."""
        from lpcheck.checks import integer

        n = integer(name, n_train, low=1, high=len(self.y_train))
        return Cifar(
            self.name, self.x_train[:n], self.y_train[:n], self.x_test, self.y_test, self.source
        )


def check_dataset(dataset, name: str = "dataset"):
    """None (decide from the source) or one of DATASETS, else ValueError naming `name`."""
    if dataset is not None and (not isinstance(dataset, str) or dataset not in _CLASSES):
        raise ValueError(f"{name} must be one of {list(_CLASSES)}, got {dataset!r}")
    return dataset


def load_cifar(path, dataset: str | None = None) -> Cifar:
    """CIFAR-10 or CIFAR-100 from a python-batch folder or an .npz file (see the module docstring).

    `dataset` ('cifar10' / 'cifar100', or None: what the source declares) must agree with the
    source.
    """
    check_dataset(dataset)
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a file or folder name, got {path!r}")
    if str(path) == "":
        raise ValueError("path is empty: give a CIFAR .npz file or python-batch folder")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no CIFAR dataset at {path} (give an .npz file or a cifar-10-batches-py / "
            "cifar-100-python folder)"
        )
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(f"{path}: expected an .npz file or a CIFAR python-batch folder")
        return _from_npz(path, dataset)
    return _from_folder(path, dataset)


def _from_folder(path: Path, dataset) -> Cifar:
    found = []
    for folder in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if (folder / "data_batch_1").exists() or (folder / "test_batch").exists():
            found.append(("cifar10", folder))
        elif (folder / "train").exists() or (folder / "test").exists():
            found.append(("cifar100", folder))
    if not found:
        raise FileNotFoundError(
            f"{path} holds no CIFAR data: expected data_batch_1..5 and test_batch "
            "(cifar-10-batches-py) or train and test (cifar-100-python)"
        )
    if dataset is not None:
        chosen = [f for f in found if f[0] == dataset]
        if not chosen:
            kind = "CIFAR-10" if found[0][0] == "cifar10" else "CIFAR-100"
            raise ValueError(
                f"{found[0][1]} is {kind} (python batches), but the dataset was given as "
                f"{dataset!r}"
            )
        found = chosen
    elif len(found) > 1:
        raise ValueError(
            f"{path} holds both CIFAR-10 and CIFAR-100 python batches: pass --dataset "
            "(dataset=) cifar10 or cifar100, or give the folder itself"
        )
    name, folder = found[0]
    return _from_batches10(folder) if name == "cifar10" else _from_batches100(folder)


def _check(path, x, y, xkey, ykey, name=None):
    """Images and labels of one split; errors name the file, the array and the allowed values.
    Without `name` only the structure is checked (the label range needs to know the dataset)."""
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise ValueError(
            f"{path} ({xkey}): images must be uint8 of shape (N, 32, 32, 3) (NHWC), "
            f"got {x.dtype} {tuple(x.shape)}"
        )
    if len(x) == 0:
        raise ValueError(f"{path} ({xkey}): no images")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"{path} ({ykey}): labels must be a 1-D array with one label per image ({len(x)}), "
            f"got shape {tuple(y.shape)}"
        )
    if y.dtype.kind not in "iu":
        raise ValueError(f"{path} ({ykey}): labels must be integers, got dtype {y.dtype}")
    if name is None:
        return x, y
    n = _CLASSES[name]
    if y.min() < 0 or y.max() >= n:
        raise ValueError(
            f"{path} ({ykey}): labels must be integers in [0, {n}) ({name}), "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return np.ascontiguousarray(x), y.astype(np.int64)


def _declared(path: Path, z) -> str | None:
    """The dataset an .npz declares by its 'dataset' and/or 'num_classes' entries, or None."""
    names = []
    if "dataset" in z.files:
        d = z["dataset"]
        value = d.item() if d.size == 1 else None
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if value not in _CLASSES:
            raise ValueError(
                f"{path}: 'dataset' must be one of {list(_CLASSES)}, got {d.tolist()!r}"
            )
        names.append(value)
    if "num_classes" in z.files:
        k = z["num_classes"]
        value = k.item() if k.size == 1 and k.dtype.kind in "iuf" else None
        by_classes = {v: n for n, v in _CLASSES.items()}
        if value not in by_classes or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{path}: 'num_classes' must be 10 or 100, got {k.tolist()!r}")
        names.append(by_classes[int(value)])
    if len(set(names)) > 1:
        raise ValueError(
            f"{path}: its 'dataset' ({names[0]}) and 'num_classes' ({_CLASSES[names[1]]}) disagree"
        )
    return names[0] if names else None


def _from_npz(path: Path, dataset) -> Cifar:
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # not a zip archive, truncated, unreadable, ...
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if not hasattr(z, "files"):
        raise ValueError(f"{path}: not an .npz archive (np.load returned a {type(z).__name__})")
    with z:
        twice = sorted({k for k in z.files if z.files.count(k) > 1})
        if twice:
            raise ValueError(f"{path}: the archive holds {twice} twice (which one is meant?)")
        missing = [k for k in _KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing} (has {sorted(z.files)})")
        try:
            arrays = {k: z[k] for k in _KEYS}
            declared = _declared(path, z)
        except ValueError:
            raise
        except Exception as e:  # object arrays (need pickle), corrupt members
            raise ValueError(f"{path}: unreadable array ({type(e).__name__}: {e})") from None
    if declared is not None and dataset is not None and declared != dataset:
        raise ValueError(f"{path} declares {declared}, but the dataset was given as {dataset!r}")
    for split in ("train", "test"):  # shapes and dtypes first: they do not depend on the dataset
        _check(path, arrays[f"x_{split}"], arrays[f"y_{split}"], f"x_{split}", f"y_{split}")
    name = dataset or declared
    if (
        name is None
    ):  # no declaration: CIFAR-10, unless a label says otherwise (then ask, do not guess)
        name = "cifar10"
        for key in ("y_train", "y_test"):
            y = arrays[key]
            if y.max() >= 10:
                raise ValueError(
                    f"{path} ({key}): a label {y.max()} >= 10, and the file declares no dataset: "
                    "pass --dataset cifar100 (dataset='cifar100'), or add a 'dataset' entry to "
                    "the .npz"
                )
    x_train, y_train = _check(
        path, arrays["x_train"], arrays["y_train"], "x_train", "y_train", name
    )
    x_test, y_test = _check(path, arrays["x_test"], arrays["y_test"], "x_test", "y_test", name)
    return Cifar(name, x_train, y_train, x_test, y_test, str(path))


def _unpickle(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"missing CIFAR batch file {path}")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:
        raise ValueError(
            f"{path}: not a CIFAR python batch (unpickling failed: {type(e).__name__}: {e})"
        ) from None
    if not isinstance(d, dict):
        raise ValueError(
            f"{path}: not a CIFAR python batch (expected a dict, got {type(d).__name__})"
        )
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _images(path, d, label_key):
    if "data" not in d or label_key not in d:
        raise ValueError(
            f"{path}: not a CIFAR python batch (needs 'data' and '{label_key}', has {sorted(d)})"
        )
    data = np.asarray(d["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(
            f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} {tuple(data.shape)}"
        )
    # rows are 1024 red, 1024 green, 1024 blue values, each 32 x 32 row-major: CHW -> HWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(d[label_key])


def _from_batches10(folder: Path) -> Cifar:
    parts = [
        _images(folder / f"data_batch_{i}", _unpickle(folder / f"data_batch_{i}"), "labels")
        for i in range(1, 6)
    ]
    x_test, y_test = _images(folder / "test_batch", _unpickle(folder / "test_batch"), "labels")
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    x_train, y_train = _check(
        folder, x_train, y_train, "data_batch_1..5", "data_batch_1..5 labels", "cifar10"
    )
    x_test, y_test = _check(folder, x_test, y_test, "test_batch", "test_batch labels", "cifar10")
    return Cifar("cifar10", x_train, y_train, x_test, y_test, str(folder))


def _from_batches100(folder: Path) -> Cifar:
    x_train, y_train = _images(folder / "train", _unpickle(folder / "train"), "fine_labels")
    x_test, y_test = _images(folder / "test", _unpickle(folder / "test"), "fine_labels")
    x_train, y_train = _check(folder / "train", x_train, y_train, "data", "fine_labels", "cifar100")
    x_test, y_test = _check(folder / "test", x_test, y_test, "data", "fine_labels", "cifar100")
    return Cifar("cifar100", x_train, y_train, x_test, y_test, str(folder))


# ---------------------------------------------------------------------------------------------
# on a device


def augment(x, generator=None, padding: int = 4):
    """Random crop with `padding` zero pixels on each side, then a random horizontal flip, per
    image.

    x is a float batch (B, C, H, W) before normalisation (zero padding = black, as in torchvision's
    RandomCrop(32, padding=4)); offsets and flips come from `generator` on x's device.
    """
    import torch

    b, _, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (b, 1), device=dev, generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (b, 1), device=dev, generator=generator)
    rows = (oy + torch.arange(h, device=dev)).unsqueeze(2)  # (B, H, 1)
    cols = (ox + torch.arange(w, device=dev)).unsqueeze(1)  # (B, 1, W)
    crop = padded[torch.arange(b, device=dev).view(b, 1, 1), :, rows, cols]  # (B, H, W, C)
    crop = crop.permute(0, 3, 1, 2)
    flip = torch.rand(b, device=dev, generator=generator) < 0.5
    return torch.where(flip.view(b, 1, 1, 1), crop.flip(3), crop).contiguous()


_augment = augment  # DeviceCifar.batch's flag shadows the name


class DeviceCifar:
    """One split of a Cifar on a torch device: uint8 NCHW images and int64 labels, stored once.

    `batch(idx, augment=False, generator=None)` returns (normalised float32 images, labels) for an
    index tensor on the same device. `len()` is the number of images.
    """

    def __init__(self, images, labels, name: str, device="cpu"):
        import torch

        if name not in MEAN:
            raise ValueError(f"name must be one of {sorted(MEAN)}, got {name!r}")
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}"
            ) from None
        # checked here, on the host, once: a bad label would otherwise surface deep in cross_entropy
        # (on CUDA as a device-side assert that poisons the context)
        images, labels = _check(
            "DeviceCifar", np.asarray(images), np.asarray(labels), "images", "labels", name
        )
        self.name = name
        self.device = dev
        self.x = torch.as_tensor(images).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.y = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        self.mean = torch.tensor(MEAN[name], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD[name], device=self.device).view(1, 3, 1, 1)

    @classmethod
    def train(cls, data: Cifar, device="cpu") -> DeviceCifar:
        return cls(data.x_train, data.y_train, data.name, device)

    @classmethod
    def test(cls, data: Cifar, device="cpu") -> DeviceCifar:
        return cls(data.x_test, data.y_test, data.name, device)

    def __len__(self) -> int:
        return self.y.shape[0]

    def batch(self, idx, augment: bool = False, generator=None):
        x = self.x[idx].float().div_(255.0)
        if augment:
            x = _augment(x, generator)
        return (x - self.mean) / self.std, self.y[idx]
