"""lpcheck.data: CIFAR from python batches or .npz, device-side batches and augmentation."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lpcheck import data

SUBSET = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10_subset.npz"


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _write_npz(path, n=20, **override):
    arrays = {
        "x_train": _images(n),
        "y_train": np.arange(n) % 10,
        "x_test": _images(6, 1),
        "y_test": np.arange(6) % 10,
    }
    arrays.update(override)
    np.savez(path, **arrays)
    return arrays


def _batch(path, x, labels, key):
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)  # the python format: R, G, B planes
    with open(path, "wb") as f:
        pickle.dump({b"data": rows, key: list(labels)}, f)


def test_npz_round_trip(tmp_path):
    a = _write_npz(tmp_path / "c.npz")
    d = data.load_cifar(tmp_path / "c.npz")
    assert d.name == "cifar10" and d.num_classes == 10
    assert np.array_equal(d.x_train, a["x_train"]) and d.y_train.dtype == np.int64
    assert d.subset(7).x_train.shape == (7, 32, 32, 3) and len(d.subset(7).y_test) == 6


def test_python_batches_cifar10_and_100(tmp_path):
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    xs = [_images(4, i) for i in range(6)]
    for i in range(5):
        _batch(c10 / f"data_batch_{i + 1}", xs[i], [i, 1, 2, 3], b"labels")
    _batch(c10 / "test_batch", xs[5], [9, 8, 7, 6], b"labels")
    d = data.load_cifar(tmp_path)  # the parent folder is found too
    assert d.name == "cifar10" and np.array_equal(
        d.x_train, np.concatenate(xs[:5])
    )  # CHW planes -> HWC
    assert list(d.y_train[::4]) == [0, 1, 2, 3, 4] and np.array_equal(d.x_test, xs[5])
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    _batch(c100 / "train", xs[0], [99, 0, 5, 50], b"fine_labels")
    _batch(c100 / "test", xs[1], [1, 2, 3, 4], b"fine_labels")
    d = data.load_cifar(c100)
    assert d.name == "cifar100" and d.num_classes == 100 and d.y_train[0] == 99


@pytest.mark.skipif(not SUBSET.exists(), reason=f"the CIFAR-10 subset is not at {SUBSET}")
def test_the_real_subset():
    d = data.load_cifar(SUBSET)
    assert d.x_train.shape == (10000, 32, 32, 3) and d.x_test.shape == (2000, 32, 32, 3)
    assert np.bincount(d.y_train).tolist() == [1000] * 10
    x, _ = data.DeviceCifar.train(d).batch(torch.arange(10000))
    # normalised with the full training set's statistics: near 0 mean, unit std on this subset
    assert x.mean((0, 2, 3)).abs().max() < 0.05 and (x.std((0, 2, 3)) - 1).abs().max() < 0.05


def test_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR dataset at .*nowhere"):
        data.load_cifar(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no CIFAR data"):
        data.load_cifar(tmp_path / "empty")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"junk.npz: not a readable .npz"):
        data.load_cifar(tmp_path / "junk.npz")
    np.savez(tmp_path / "m.npz", x_train=_images(2))
    with pytest.raises(
        ValueError, match=r"m.npz: missing arrays \['y_train', 'x_test', 'y_test'\]"
    ):
        data.load_cifar(tmp_path / "m.npz")
    _write_npz(tmp_path / "s.npz", x_train=_images(20).transpose(0, 3, 1, 2))
    with pytest.raises(
        ValueError, match=r"s.npz \(x_train\): images must be uint8 of shape \(N, 32, 32, 3\)"
    ):
        data.load_cifar(tmp_path / "s.npz")
    _write_npz(tmp_path / "l.npz", y_train=np.arange(19))
    with pytest.raises(ValueError, match="one label per image"):
        data.load_cifar(tmp_path / "l.npz")
    _write_npz(tmp_path / "r.npz", y_test=np.array([0, 1, 2, 3, 4, 10]))
    with pytest.raises(
        ValueError,
        match=r"r.npz \(y_test\): a label 10 >= 10, and the file declares no dataset: pass "
        r"--dataset cifar100",
    ):
        data.load_cifar(tmp_path / "r.npz")
    with pytest.raises(
        ValueError, match=r"r.npz \(y_test\): labels must be integers in \[0, 10\) \(cifar10\)"
    ):
        data.load_cifar(tmp_path / "r.npz", dataset="cifar10")
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    _batch(c10 / "data_batch_1", _images(2), [0, 1], b"labels")
    with pytest.raises(FileNotFoundError, match="missing CIFAR batch file .*data_batch_2"):
        data.load_cifar(c10)
    (c10 / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="data_batch_1: not a CIFAR python batch"):
        data.load_cifar(c10)


def _reference_crop_flip(x, oy, ox, flip, pad=4):
    out = torch.zeros_like(x)
    p = torch.nn.functional.pad(x, (pad,) * 4)
    for i in range(len(x)):
        c = p[i, :, oy[i] : oy[i] + 32, ox[i] : ox[i] + 32]
        out[i] = c.flip(2) if flip[i] else c
    return out


def test_augment_is_a_zero_padded_crop_and_flip():
    x = torch.rand(16, 3, 32, 32)
    gen = torch.Generator().manual_seed(3)
    out = data.augment(x, gen)
    # the same draws, in the same order, replayed for a loop reference
    gen = torch.Generator().manual_seed(3)
    oy = torch.randint(0, 9, (16, 1), generator=gen)[:, 0]
    ox = torch.randint(0, 9, (16, 1), generator=gen)[:, 0]
    flip = torch.rand(16, generator=gen) < 0.5
    assert torch.equal(out, _reference_crop_flip(x, oy, ox, flip))
    assert 0 < flip.sum() < 16 and len(set(zip(oy.tolist(), ox.tolist()))) > 4


def test_device_batches():
    x, y = _images(10), np.arange(10)
    d = data.DeviceCifar(x, y, "cifar10")
    xb, yb = d.batch(torch.tensor([3, 1]))
    mean, std = (
        torch.tensor(data.MEAN["cifar10"]).view(3, 1, 1),
        torch.tensor(data.STD["cifar10"]).view(3, 1, 1),
    )
    want = (torch.tensor(x[3]).permute(2, 0, 1).float() / 255 - mean) / std
    assert torch.allclose(xb[0], want, atol=1e-6) and yb.tolist() == [3, 1]
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(
        d.batch(torch.arange(10), True, g1)[0], d.batch(torch.arange(10), True, g2)[0]
    )
    with pytest.raises(ValueError, match="name must be one of"):
        data.DeviceCifar(x, y, "mnist")


# -- which dataset: declared by the file or given, never guessed from the largest label ------------


def test_one_label_10_does_not_turn_cifar10_into_cifar100(tmp_path):
    """The issue's example: the old loader called any file with a label >= 10 CIFAR-100 (and lpcheck
    estimate then took Table 5's hyperparameters); now an undeclared file asks which one it is."""
    y = np.arange(20) % 10
    y[7] = 10
    _write_npz(tmp_path / "c.npz", y_train=y)
    with pytest.raises(
        ValueError, match=r"c.npz \(y_train\): a label 10 >= 10.*--dataset cifar100"
    ):
        data.load_cifar(tmp_path / "c.npz")
    assert (
        data.load_cifar(tmp_path / "c.npz", dataset="cifar100").name == "cifar100"
    )  # asked for: fine


@pytest.mark.parametrize(
    "entries, name",
    [
        (dict(dataset=np.array("cifar100")), "cifar100"),
        (dict(dataset=np.array(b"cifar10")), "cifar10"),
        (dict(num_classes=np.array(100)), "cifar100"),
        (dict(num_classes=np.int64(10)), "cifar10"),
        (dict(dataset=np.array(["cifar100"]), num_classes=np.array(100.0)), "cifar100"),
        ({}, "cifar10"),
    ],
)
def test_the_file_declares_its_dataset(tmp_path, entries, name):
    _write_npz(
        tmp_path / "c.npz", **entries
    )  # labels 0..9 only: only the declaration can say cifar100
    d = data.load_cifar(tmp_path / "c.npz")
    assert d.name == name and d.num_classes == data._CLASSES[name]
    assert data.load_cifar(tmp_path / "c.npz", dataset=name).name == name


def test_a_declaration_and_the_caller_must_agree(tmp_path):
    _write_npz(tmp_path / "c.npz", dataset=np.array("cifar100"))
    with pytest.raises(
        ValueError, match=r"c.npz declares cifar100, but the dataset was given as 'cifar10'"
    ):
        data.load_cifar(tmp_path / "c.npz", dataset="cifar10")
    with pytest.raises(
        ValueError, match=r"dataset must be one of \['cifar10', 'cifar100'\], got 'CIFAR10'"
    ):
        data.load_cifar(tmp_path / "c.npz", dataset="CIFAR10")


def test_python_batches_declare_by_their_format(tmp_path):
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for i in range(5):
        _batch(c10 / f"data_batch_{i + 1}", _images(2, i), [0, 1], b"labels")
    _batch(c10 / "test_batch", _images(2, 9), [0, 1], b"labels")
    assert data.load_cifar(tmp_path, dataset="cifar10").name == "cifar10"
    with pytest.raises(
        ValueError, match=r"is CIFAR-10 \(python batches\), but the dataset was given as 'cifar100'"
    ):
        data.load_cifar(tmp_path, dataset="cifar100")
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    _batch(c100 / "train", _images(2), [3, 4], b"fine_labels")
    _batch(c100 / "test", _images(2, 1), [5, 6], b"fine_labels")
    with pytest.raises(
        ValueError, match="holds both CIFAR-10 and CIFAR-100 python batches: pass --dataset"
    ):
        data.load_cifar(tmp_path)
    assert data.load_cifar(tmp_path, dataset="cifar100").name == "cifar100"  # the flag picks one
    assert data.load_cifar(tmp_path, dataset="cifar10").name == "cifar10"


def test_loaded_arrays_are_contiguous_and_fingerprinted(tmp_path):
    a = _write_npz(tmp_path / "c.npz", x_train=np.asfortranarray(_images(20)))
    d = data.load_cifar(tmp_path / "c.npz")
    assert d.x_train.flags["C_CONTIGUOUS"] and np.array_equal(d.x_train, a["x_train"])
    _write_npz(tmp_path / "d.npz")
    assert (
        data.load_cifar(tmp_path / "d.npz").fingerprint() == d.fingerprint()
    )  # same arrays, stored differently
    y = np.arange(20) % 10
    y[0] = 1
    _write_npz(tmp_path / "e.npz", y_train=y)
    assert data.load_cifar(tmp_path / "e.npz").fingerprint() != d.fingerprint()  # one label changed


def test_subset_takes_what_torch_takes(tmp_path):
    _write_npz(tmp_path / "c.npz")
    d = data.load_cifar(tmp_path / "c.npz")
    for n in (np.int64(7), torch.tensor(7), 7.0):
        assert len(d.subset(n).y_train) == 7
    with pytest.raises(ValueError, match=r"--train-subset must be an integer in \[1, 20\], got 21"):
        d.subset(21, "--train-subset")


def test_device_cifar_checks_labels_on_the_host():
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 10\)"):
        data.DeviceCifar(_images(3), np.array([0, 1, 10]), "cifar10")
    assert len(data.DeviceCifar(_images(3), np.array([0, 1, 99]), "cifar100")) == 3
