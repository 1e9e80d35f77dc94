"""CIFAR-10/100 as arrays, and on a device as tensors with device-side batching and augmentation.

Sources (`load_cifar(path)`):
- the standard python-batch folder: `cifar-10-batches-py/` (data_batch_1..5, test_batch) or
  `cifar-100-python/` (train, test), or a folder that contains one of them;
- an `.npz` file with x_train, y_train, x_test, y_test, images NHWC uint8 of 32 x 32 x 3
  (like `../shared/data/cifar10_subset.npz`).
A missing path raises FileNotFoundError and a malformed file ValueError, each naming the path and
what is wrong. The python-batch files are pickles: load only files you trust (as with torchvision).

On a device (`DeviceCifar`), the images are stored once as uint8 NCHW; a batch is gathered by an index
tensor, augmented (random crop with 4 pixels of zero padding, horizontal flip: the standard CIFAR
recipe) and normalised with the dataset's per-channel mean and std, all with torch ops on that
device and random numbers from a torch.Generator on it: no per-step host transfer and no host sync.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Cifar", "load_cifar", "DeviceCifar", "augment", "MEAN", "STD"]

# per-channel statistics of the full training sets (RGB, pixel values in [0, 1])
MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
_CLASSES = {"cifar10": 10, "cifar100": 100}


@dataclass(frozen=True)
class Cifar:
    """Images NHWC uint8 (N, 32, 32, 3) and labels int64 (N,), train and test, plus where they came from."""

    name: str  # "cifar10" or "cifar100"
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def num_classes(self) -> int:
        return _CLASSES[self.name]

    def subset(self, n_train: int) -> "Cifar":
        """The first n_train training images (the test set is kept whole)."""
        if isinstance(n_train, bool) or not isinstance(n_train, int) or not 1 <= n_train <= len(self.y_train):
            raise ValueError(f"train subset must be an integer in [1, {len(self.y_train)}], got {n_train!r}")
        return Cifar(self.name, self.x_train[:n_train], self.y_train[:n_train], self.x_test, self.y_test, self.source)


def load_cifar(path) -> Cifar:
    """CIFAR-10 or CIFAR-100 from a python-batch folder or an .npz file (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no CIFAR dataset at {path} (give an .npz file or a cifar-10-batches-py / "
                                "cifar-100-python folder)")
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(f"{path}: expected an .npz file or a CIFAR python-batch folder")
        return _from_npz(path)
    for folder in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if (folder / "data_batch_1").exists() or (folder / "test_batch").exists():
            return _from_batches10(folder)
        if (folder / "train").exists() or (folder / "test").exists():
            return _from_batches100(folder)
    raise FileNotFoundError(f"{path} holds no CIFAR data: expected data_batch_1..5 and test_batch "
                            "(cifar-10-batches-py) or train and test (cifar-100-python)")


def _check(path, x, y, split, name):
    where = f"{path} ({split})"
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise ValueError(f"{where}: images must be uint8 of shape (N, 32, 32, 3) (NHWC), "
                         f"got {x.dtype} {tuple(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{where}: labels must be a 1-D array with one label per image ({len(x)}), "
                         f"got shape {tuple(y.shape)}")
    if len(x) == 0:
        raise ValueError(f"{where}: no images")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= _CLASSES[name]:
        raise ValueError(f"{where}: labels must be integers in [0, {_CLASSES[name]}), "
                         f"got {y.dtype} in [{y.min()}, {y.max()}]")
    return x, y.astype(np.int64)


def _from_npz(path: Path) -> Cifar:
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # not a zip archive, truncated, ...
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if not hasattr(z, "files"):
        raise ValueError(f"{path}: not an .npz archive (np.load returned a {type(z).__name__})")
    with z:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing} (has {sorted(z.files)})")
        try:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except Exception as e:  # object arrays (need pickle), corrupt members
            raise ValueError(f"{path}: unreadable array ({type(e).__name__}: {e})") from None
    labels = arrays["y_train"]
    name = "cifar10" if labels.size and labels.max() < 10 else "cifar100"
    x_train, y_train = _check(path, arrays["x_train"], arrays["y_train"], "x_train/y_train", name)
    x_test, y_test = _check(path, arrays["x_test"], arrays["y_test"], "x_test/y_test", name)
    return Cifar(name, x_train, y_train, x_test, y_test, str(path))


def _unpickle(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"missing CIFAR batch file {path}")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except Exception as e:
        raise ValueError(f"{path}: not a CIFAR python batch (unpickling failed: {type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR python batch (expected a dict, got {type(d).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _images(path, d, label_key):
    if "data" not in d or label_key not in d:
        raise ValueError(f"{path}: not a CIFAR python batch (needs 'data' and '{label_key}', has {sorted(d)})")
    data = np.asarray(d["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {data.dtype} {tuple(data.shape)}")
    # rows are 1024 red, 1024 green, 1024 blue values, each 32 x 32 row-major: CHW -> HWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(d[label_key])


def _from_batches10(folder: Path) -> Cifar:
    parts = [_images(folder / f"data_batch_{i}", _unpickle(folder / f"data_batch_{i}"), "labels") for i in range(1, 6)]
    x_test, y_test = _images(folder / "test_batch", _unpickle(folder / "test_batch"), "labels")
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    x_train, y_train = _check(folder, x_train, y_train, "data_batch_1..5", "cifar10")
    x_test, y_test = _check(folder, x_test, y_test, "test_batch", "cifar10")
    return Cifar("cifar10", np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(x_test), y_test, str(folder))


def _from_batches100(folder: Path) -> Cifar:
    x_train, y_train = _images(folder / "train", _unpickle(folder / "train"), "fine_labels")
    x_test, y_test = _images(folder / "test", _unpickle(folder / "test"), "fine_labels")
    x_train, y_train = _check(folder / "train", x_train, y_train, "train", "cifar100")
    x_test, y_test = _check(folder / "test", x_test, y_test, "test", "cifar100")
    return Cifar("cifar100", np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(x_test), y_test, str(folder))


# ---------------------------------------------------------------------------------------------
# on a device


def augment(x, generator=None, padding: int = 4):
    """Random crop with `padding` zero pixels on each side, then a random horizontal flip, per image.

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
        self.name = name
        self.device = torch.device(device)
        self.x = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.y = torch.as_tensor(labels, dtype=torch.int64).to(self.device)
        self.mean = torch.tensor(MEAN[name], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD[name], device=self.device).view(1, 3, 1, 1)

    @classmethod
    def train(cls, data: Cifar, device="cpu") -> "DeviceCifar":
        return cls(data.x_train, data.y_train, data.name, device)

    @classmethod
    def test(cls, data: Cifar, device="cpu") -> "DeviceCifar":
        return cls(data.x_test, data.y_test, data.name, device)

    def __len__(self) -> int:
        return self.y.shape[0]

    def batch(self, idx, augment: bool = False, generator=None):
        x = self.x[idx].float().div_(255.0)
        if augment:
            x = _augment(x, generator)
        return (x - self.mean) / self.std, self.y[idx]
