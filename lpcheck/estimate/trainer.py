"""The run behind `lpcheck estimate`: train a model with an optimizer and probe it N times.

What is trained. By default a CIFAR model (ResNet-18/50, VGG-11) with LPSGDM and the paper's Table
4/5 hyperparameters; any part may be the user's own, named as MODULE:NAME and imported from the
current
directory (`lpcheck.userspec`, no PYTHONPATH): `--model MODULE:FACTORY` (a callable returning an
nn.Module, given num_classes= if it takes it), `--data MODULE:FUNCTION` or a non-CIFAR .npz
(tensors, a map-style Dataset or a (train, test) pair of Datasets), `--loss MODULE:FUNCTION` (a mean
over the batch; default cross-entropy), `--optimizer NAME|MODULE:CLASS` with `--optimizer-args JSON`
(`lpcheck.training.optimizer_choice`). The paper's defaults exist only for its models and optimizers
on CIFAR; elsewhere --lr is required, the batch is 128, p_max 6 for LPSGD/LPSGDM, and every other
hyperparameter is the optimizer's own default. Augmentation (random crop + flip) is for CIFAR images
only.

Everything stays on the chosen device: the training examples are stored there once (CIFAR as uint8),
batches are gathered by a device-side permutation (CIFAR: augmented and normalised there; a
map-style Dataset is read on the host), and the loop reads nothing back per step (the optimizer's
per-step finiteness check is off; a non-finite loss is caught at the end of each epoch and by the
probe). The learning rate follows a per-step linear warm-up from 0.1 lr to lr, then a cosine decay
to 0 (the paper's "warmup cosine decay"; `lr_at`), on every param group's 'lr'; p follows eq. 19 per
epoch (`opt.set_epoch`, for LPSGD/LPSGDM and any optimizer that has it). Batches of b examples, the
last partial batch of an epoch dropped, so an epoch is floor(n / b) steps (or `batches_per_epoch`).

Probes run before steps t_i = floor(i T / N), i = 0..N-1 (t_0 = 0 is the initialisation), with the
optimizer's state at that moment, in the method's own norm or `--norm`'s (`Probe(norm=)`). After
each probe the training state (model, optimizer, data generator, epoch permutation, probe, the
settings) is saved to state.pt, and then constants.json/.md are rewritten beside it, so an
interrupted run keeps what it measured and `resume` continues from the last saved probe to the same
numbers as an uninterrupted run. state.pt is written first, so that a run killed at any moment is
either resumable (state.pt exists: `--resume` continues from it) or restartable (no state.pt yet:
`--resume` starts it again from step 0, which re-measures the same numbers; constants.json can only
lack a state.pt if one was removed, or written by an older lpcheck). state.pt holds only tensors,
numbers, strings, lists and dicts and is loaded with `torch.load(weights_only=True)`: a crafted
state.pt cannot run code. The plots (constants.png, frontier.png) are rendered from constants.json
when the run ends, also when it is interrupted or fails.

Many processes. Under `torchrun` (WORLD_SIZE > 1) the run joins the process group (NCCL on CUDA,
each process on cuda:LOCAL_RANK; gloo on the CPU; collectives time out after --dist-timeout seconds,
so a killed process cannot leave the others waiting forever) and trains a DistributedDataParallel
model: rank r of W takes the slice [r b/W, (r+1) b/W) of each global batch of b, so the global batch
and the mean gradient are one process's (`lpcheck.training.Training`; BatchNorm layers normalise
over the global batch, `GlobalBatchNorm`), and the probe splits its passes over the ranks (`Probe`'s
DDP mode): the constants equal one process's up to the order of float sums
(tests/test_estimate_ddp.py: 1e-6). Rank 0 alone checks --out, reads state.pt (and sends it to the
others) and writes every file; a refusal on any rank is raised on every rank.

Every option is checked (`check_config`) before anything is loaded, built or written (a user's
modules are imported to check that the names exist, and the optimizer's keyword arguments against
its signature); the model, data, loss and optimizer are then built and run once on a first batch
(eval mode, no gradient: nothing changes) before any file is written. `resume` refuses settings that
differ from the saved run's, naming each difference; `data` is compared as a resolved path (a
MODULE:NAME as its file's absolute path) and by the fingerprint of the tensors it holds, so the same
file named differently is the same run and another file at the same path is not; a user's --model,
--loss and --optimizer are compared as their files' absolute paths and names."""

from __future__ import annotations

import dataclasses
import datetime
import gc
import inspect
import json
import os
import sys
import time
from pathlib import Path

import torch

from lpcheck import checks, models, report, userspec
from lpcheck import data as cifar
from lpcheck.estimate import render
from lpcheck.estimate.probe import Probe, checked_loss, too_many_samples
from lpcheck.progress import Progress
from lpcheck.training import (
    DeviceTensors,
    HostDataset,
    Training,
    check_model_size,
    check_seed,
    check_steps,
    check_threads,
    evaluate,
    lr_at,
    optimizer_choice,
    paper_hyperparameters,
    torch_device,
)

__all__ = [
    "Config",
    "defaults_for",
    "lr_at",
    "checkpoint_steps",
    "check_config",
    "run",
    "STATE_FORMAT",
    "PAPER_OPTIMIZERS",
]

STATE_FORMAT = (
    2  # state.pt's layout: 2 = weights_only-loadable, with the settings and the invocations
)
PAPER_OPTIMIZERS = ("lpsgdm", "lpsgd", "sgdm", "adamw", "lion")  # the rows of Tables 4/5
_HP = (
    "lr",
    "weight_decay",
    "momentum",
    "eps",
    "p_max",
)  # options passed to the optimizer, each where it takes it
_PAPER_NOTE = (
    "the paper's Table 4/5 defaults are for its CIFAR models (resnet18, resnet50, vgg11) with "
    f"{', '.join(PAPER_OPTIMIZERS)} on CIFAR data"
)


def defaults_for(dataset: str, model: str, optimizer: str = "lpsgdm") -> dict:
    """Table 4/5's hyperparameters for a dataset ('cifar10'/'cifar100'), model and optimizer, as
    Config fields (those the optimizer takes, and the batch size; LPSGD: LPSGDM's lr, p_max and
    eps)."""
    hp = paper_hyperparameters(dataset, model, optimizer)
    choice = optimizer_choice(optimizer)
    return {
        k: hp[k]
        for k in ("lr", "p_max", "weight_decay", "batch_size", "momentum", "eps")
        if k in hp and (k == "batch_size" or choice.takes(k))
    }


@dataclasses.dataclass
class Config:
    """One run; every field is in constants.json and must match for `resume`. None = the default
    (the paper's where it has one)."""

    model: str
    data: str
    out: str
    optimizer: str = "lpsgdm"
    optimizer_args: dict | None = (
        None  # keyword arguments for the optimizer (--optimizer-args, a JSON object)
    )
    loss: str | None = None  # MODULE:FUNCTION; None: cross-entropy
    norm: str | None = None  # the probe's norm; None: each method's own
    num_classes: int | None = None  # None: the CIFAR data's (a user's factory: its own default)
    epochs: int = 200
    checkpoints: int = 20
    samples: int = 32
    device: str = "cpu"
    width: float | None = None  # built-in models; None: 1
    train_subset: int | None = None
    batches_per_epoch: int | None = None
    seed: int = 0
    mode: str = "train"
    dataset: str | None = (
        None  # None: what the data declares (lpcheck.data); None for a user's data
    )
    p_max: float | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    eps: float | None = None
    batch_size: int | None = None
    warmup_epochs: float | None = None
    step_pairs: int = 1
    augment: bool | None = None  # None: on for CIFAR images, off for other data
    resamples: int = 4000
    confidence: float = 0.95
    threads: int | None = None
    loss_lower_bound: float | None = (
        None  # f* or a bound on it; None: 0, as for cross-entropy (>= 0)
    )
    dist_timeout: float = 1800.0  # seconds a collective may wait under torchrun

    def resolved(self, dataset: str | None) -> Config:
        """The config with every default filled in for this data (`dataset`: 'cifar10'/'cifar100',
        None for a user's data), and the paths and user specs absolute (a resumed run is
        recognised however they are written). The paper's values only for its models and
        optimizers on CIFAR (`_needs_lr`)."""
        c = dataclasses.replace(self, optimizer_args=dict(self.optimizer_args or {}))
        choice = optimizer_choice(c.optimizer)
        if _paper_row(c, dataset):
            for k, v in defaults_for(dataset, c.model, c.optimizer).items():
                given = k in c.optimizer_args or (k == "p_max" and "p" in c.optimizer_args)
                if getattr(c, k) is None and not given:
                    setattr(c, k, v)
            betas = paper_hyperparameters(dataset, c.model, c.optimizer).get("betas")
            if betas is not None and choice.takes("betas"):
                c.optimizer_args.setdefault(
                    "betas", list(betas)
                )  # Lion's Table 4/5 betas are not its default
        else:
            if c.lr is None:
                raise ValueError(_needs_lr(c, dataset is None))
            c.batch_size = 128 if c.batch_size is None else c.batch_size
            if (
                c.optimizer in ("lpsgd", "lpsgdm")
                and c.p_max is None
                and "p" not in c.optimizer_args
            ):
                c.p_max = 6.0  # the paper's p_max for every model but VGG-11 on CIFAR-100
        c.optimizer_args = c.optimizer_args or None
        if c.model in models.MODELS and c.width is None:
            c.width = 1.0
        if c.augment is None:
            c.augment = dataset is not None
        c.dataset, c.out = dataset, str(Path(self.out).resolve())
        c.data = (
            userspec.origin(c.data, "--data")
            if userspec.is_spec(c.data)
            else str(Path(c.data).resolve())
        )
        for field in ("model", "loss", "optimizer"):
            value = getattr(c, field)
            if userspec.is_spec(value):
                setattr(c, field, userspec.origin(value, _option(field)))
        if c.warmup_epochs is None:
            c.warmup_epochs = 0.025 * c.epochs  # 5 of 200 epochs, the schedule in the README
        return c


def _paper_row(c: Config, dataset) -> bool:
    return dataset is not None and c.model in models.MODELS and c.optimizer in PAPER_OPTIMIZERS


def _needs_lr(c: Config, user_data: bool) -> str:
    why = (
        ([f"the model {c.model}"] if c.model not in models.MODELS else [])
        + ([f"the optimizer {c.optimizer}"] if c.optimizer not in PAPER_OPTIMIZERS else [])
        + (["data that is not CIFAR"] if user_data else [])
    )
    return (
        f"--lr is required for {' and '.join(why)}: {_PAPER_NOTE} "
        "(give the peak lr after the warm-up)"
    )


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _float32(name, value, why):
    return None if value is None else checks.representable(name, value, torch.float32, why=why)


def user_data(data: str, dataset=None) -> bool:
    """Whether --data is a user's own (MODULE:FUNCTION, or an .npz that is not CIFAR:
    `userspec.npz_is_cifar`) rather than CIFAR (a folder, a CIFAR .npz, or any path with
    --dataset)."""
    if userspec.is_spec(data):
        return True
    path = Path(data)
    return (
        dataset is None
        and path.suffix == ".npz"
        and path.is_file()
        and not userspec.npz_is_cifar(path)
    )


def _parse_args(value) -> dict | None:
    """--optimizer-args: a JSON object (text) or a dict, keys that are Python identifiers."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"--optimizer-args must be a JSON object such as '{{\"betas\": [0.9, 0.99]}}', got "
                f"{value!r} ({e})"
            ) from None
    if not isinstance(value, dict):
        raise ValueError(
            "--optimizer-args must be a JSON object of keyword arguments, got "
            f"{type(value).__name__}"
        )
    bad = [k for k in value if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise ValueError(f"--optimizer-args: keys must be keyword argument names, got {bad}")
    nan = [k for k, v in value.items() if _has_nan(v)]
    if nan:  # Python's json reads NaN; torch's own range checks (momentum < 0) let it through
        raise ValueError(
            f"--optimizer-args: {', '.join(nan)} is or holds NaN, which no hyperparameter can be "
            "(the run would diverge after it started)"
        )
    return dict(value)


def _has_nan(v) -> bool:
    if isinstance(v, float):
        return v != v
    if isinstance(v, (list, tuple)):
        return any(_has_nan(x) for x in v)
    if isinstance(v, dict):
        return any(_has_nan(x) for x in v.values())
    return False


def _tuples(v):
    """JSON lists as tuples (betas=(0.9, 0.99)): what optimizers' signatures expect."""
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v


def optimizer_kwargs(c: Config, choice=None) -> dict:
    """The keyword arguments `lpcheck estimate` builds c.optimizer with: the options it takes (--lr,
    --weight-decay, --momentum, --eps, --p-max; one it does not take is a ValueError) and
    --optimizer-args (a key it does not take, lr (--lr's), or a key also given by its option is a
    ValueError)."""
    choice = choice or optimizer_choice(c.optimizer)
    takes = (
        "any keyword" if choice.keywords is None else ", ".join(sorted(choice.keywords)) or "none"
    )
    kwargs = {}
    for k in _HP:
        v = getattr(c, k)
        if v is None:
            continue
        if not choice.takes(k):
            raise ValueError(
                f"{_option(k)} does not apply to --optimizer {c.optimizer} (its keyword arguments: "
                f"{takes})"
            )
        kwargs[k] = v
    for k, v in (c.optimizer_args or {}).items():
        if k == "lr":
            raise ValueError(
                "--optimizer-args: give lr with --lr (the peak of lpcheck's warm-up + cosine "
                "schedule)"
            )
        if k in _HP and getattr(c, k) is not None:
            raise ValueError(f"--optimizer-args: {k} is given twice, here and with {_option(k)}")
        if k in ("params", "total_epochs", "check_finite"):
            raise ValueError(f"--optimizer-args: {k} is set by lpcheck estimate")
        if not choice.takes(k):
            raise ValueError(
                f"--optimizer-args: --optimizer {c.optimizer} takes no argument {k!r} (its keyword "
                f"arguments: {takes})"
            )
        kwargs[k] = _tuples(v)
    return kwargs


def _check_user_specs(c: Config, data_is_user: bool) -> None:
    """The user's names exist (their modules import), and the options that apply to built-ins are
    not given."""
    builtin = c.model in models.MODELS
    if not isinstance(c.model, str) or not (builtin or userspec.is_spec(c.model)):
        raise ValueError(
            f"--model must be one of {', '.join(sorted(models.MODELS))} or MODULE:FACTORY (a "
            "function returning a torch.nn.Module, imported from the current directory), got "
            f"{c.model!r}"
        )
    if not builtin:
        userspec.load(c.model, "--model")
        if c.width is not None:
            raise ValueError(
                f"--width applies to the built-in models ({', '.join(sorted(models.MODELS))}), not "
                f"to {c.model}"
            )
    if c.loss is not None:
        if not userspec.is_spec(c.loss):
            raise ValueError(
                f"--loss must be MODULE:FUNCTION (loss(outputs, targets) -> the batch's mean), got "
                f"{c.loss!r}"
            )
        userspec.load(c.loss, "--loss")
    if data_is_user:
        if userspec.is_spec(c.data):
            userspec.load(c.data, "--data")
        if c.dataset is not None:
            raise ValueError(f"--dataset applies to CIFAR data, not to {c.data}")
        if c.augment:
            raise ValueError(
                "augmentation (random crop and flip) applies to CIFAR images only; this --data is "
                "not CIFAR"
            )
    if c.norm is not None:
        from lpcheck.methods import parse_norm

        try:
            parse_norm(c.norm)
        except ValueError as e:
            raise ValueError(f"--norm: {e}") from None


def check_config(config: Config) -> Config:
    """`config` with every option checked and made a plain Python value (None kept: a default), or
    ValueError naming the option and its range. Builds and writes nothing; imports a user's
    modules (to check that the names exist) and reads an .npz's header (whether it is CIFAR)."""
    c = dataclasses.replace(config)
    _check_run(c)
    _check_lengths(c)
    _check_hyperparameters(c)
    _check_statistics(c)
    _check_model_and_optimizer(c)
    return c


def _check_run(c: Config) -> None:
    """The mode, the data and the output folder."""
    if c.mode not in ("train", "eval"):
        raise ValueError(f"--mode must be 'train' or 'eval', got {c.mode!r}")
    cifar.check_dataset(c.dataset, "--dataset")
    if c.data is None or str(c.data) == "":
        raise ValueError(
            "--data is empty: give a CIFAR .npz file or python-batch folder, an .npz of tensors, "
            "or MODULE:FUNCTION"
        )
    report.check_out_dir(c.out, "--out")
    if c.augment is not None and not isinstance(c.augment, bool):
        raise ValueError(f"augment must be True or False, got {c.augment!r}")


def _check_lengths(c: Config) -> None:
    """The run's lengths and sizes, made plain ints (in place on the copy `c`)."""
    c.epochs = checks.integer("--epochs", c.epochs, low=1)
    c.checkpoints = checks.integer("--checkpoints", c.checkpoints, low=1)
    # K >= 2: the intervals bootstrap the K mini-batches; K values per statistic go into
    # constants.json
    c.samples = checks.integer("--samples", c.samples, low=2, high=10**5)
    if c.width is not None:
        c.width = checks.real("--width", c.width, low=0, low_open=True)
    if c.num_classes is not None:
        c.num_classes = checks.integer("--num-classes", c.num_classes, low=1)
    if c.train_subset is not None:
        c.train_subset = checks.integer("--train-subset", c.train_subset, low=1)
    if c.batches_per_epoch is not None:
        c.batches_per_epoch = checks.integer("--batches-per-epoch", c.batches_per_epoch, low=1)
    c.seed = check_seed(c.seed, "--seed")
    c.threads = check_threads(c.threads, "--threads")


def _check_hyperparameters(c: Config) -> None:
    """The optimizer's hyperparameters, each representable in the float32 model where that
    matters."""
    if c.p_max is not None:
        c.p_max = checks.real("--p-max", c.p_max, low=2)
    if c.lr is not None:
        c.lr = _float32(
            "--lr",
            checks.real("--lr", c.lr, low=0, low_open=True),
            "the float32 model would not move",
        )
    if c.weight_decay is not None:
        c.weight_decay = _float32(
            "--weight-decay",
            checks.real("--weight-decay", c.weight_decay, low=0),
            "give 0 for no weight decay",
        )
    if c.momentum is not None:
        c.momentum = checks.real("--momentum", c.momentum, low=0, high=1, high_open=True)
        if float(torch.tensor(c.momentum, dtype=torch.float32)) >= 1:
            raise ValueError(
                f"--momentum = {c.momentum!r} rounds to 1 in torch.float32: the momentum of eq. 23 "
                "would never take in a gradient"
            )
    if c.eps is not None:
        c.eps = _float32(
            "--eps",
            checks.real("--eps", c.eps, low=0, low_open=True),
            "(|g| + eps)^-rho would be inf at a zero gradient",
        )
    if c.batch_size is not None:
        c.batch_size = checks.integer("--batch-size", c.batch_size, low=1)
    if c.warmup_epochs is not None:
        c.warmup_epochs = checks.real(
            "--warmup-epochs", c.warmup_epochs, low=0, high=c.epochs, high_open=True
        )


def _check_statistics(c: Config) -> None:
    """The estimators' options (pairs, resamples, confidence, f*) and the run's device and
    timeout."""
    c.step_pairs = checks.integer("--step-pairs", c.step_pairs, low=0, high=c.samples)
    c.resamples = checks.integer(
        "--resamples", c.resamples, low=100, high=10**6
    )  # x K draws in memory
    c.confidence = checks.real(
        "--confidence", c.confidence, low=0, high=1, low_open=True, high_open=True
    )
    if c.loss_lower_bound is not None:
        c.loss_lower_bound = checks.real("--loss-lower-bound", c.loss_lower_bound)
    c.dist_timeout = checks.real("--dist-timeout", c.dist_timeout, low=0, low_open=True, high=10**7)
    if not isinstance(c.device, str):
        raise ValueError(f"--device must be cpu or cuda[:i], got {c.device!r}")


def _check_model_and_optimizer(c: Config) -> None:
    """The user's specs, the optimizer and its arguments, and what the model needs from the
    options."""
    c.optimizer_args = _parse_args(c.optimizer_args)
    is_user = user_data(c.data, c.dataset)
    _check_user_specs(c, is_user)
    choice = optimizer_choice(c.optimizer)
    optimizer_kwargs(c, choice)  # the options and --optimizer-args against its signature
    if c.lr is None and not (
        c.model in models.MODELS and c.optimizer in PAPER_OPTIMIZERS and not is_user
    ):
        raise ValueError(_needs_lr(c, is_user))
    if c.model in models.MODELS and c.num_classes is not None and c.num_classes < 2:
        raise ValueError(
            f"--num-classes must be an integer >= 2 for {c.model}, got {c.num_classes}"
        )
    if c.model in models.MODELS and is_user and c.num_classes is None:
        raise ValueError(
            f"--num-classes is required for {c.model} on data that is not CIFAR (its output layer)"
        )


def _sizes(c: Config, n_train: int, world: int, what: str) -> tuple[int, int, list[int]]:
    """(steps per epoch, T, probe steps) for the resolved config and n_train examples, checked."""
    if c.batch_size > n_train:
        raise ValueError(f"--batch-size ({c.batch_size}) must be <= the {n_train} training {what}")
    if c.batch_size % world:
        raise ValueError(
            f"--batch-size ({c.batch_size}) must be a multiple of the {world} processes: each "
            "process trains on an equal slice of every batch (the global batch is --batch-size)"
        )
    full = n_train // c.batch_size
    if c.batches_per_epoch is not None and c.batches_per_epoch > full:
        raise ValueError(
            f"--batches-per-epoch ({c.batches_per_epoch}) must be <= the {full} full batches of "
            f"{c.batch_size} in the {n_train} training {what}"
        )
    if c.samples > full:  # the probe's blocks are the n // b full batches of the training set
        raise ValueError(too_many_samples(c.samples, n_train, c.batch_size, "--samples"))
    steps_per_epoch = min(full, c.batches_per_epoch or full)
    T = check_steps(c.epochs, steps_per_epoch, "--epochs")
    if (
        c.optimizer == "lpsgdm" and c.lr * (c.weight_decay or 0.0) >= 1
    ):  # the decay is (1 - lr lambda) theta
        raise ValueError(
            f"--lr x --weight-decay = {c.lr:g} x {c.weight_decay:g} must be < 1: the decoupled "
            "weight decay (1 - lr lambda) theta would flip or zero the weights"
        )
    if c.checkpoints > T:
        raise ValueError(f"--checkpoints ({c.checkpoints}) must be <= the number of steps T = {T}")
    return steps_per_epoch, T, checkpoint_steps(T, c.checkpoints)


def checkpoint_steps(T: int, n: int) -> list[int]:
    """t_i = floor(i T / n), i = 0..n-1: evenly spaced, the first at initialisation."""
    return [i * T // n for i in range(n)]


def _save_state(path: Path, state: dict) -> None:
    report.atomic_write(path, lambda tmp: torch.save(state, tmp))


def _load_state(path: Path) -> dict:
    """state.pt, loaded with weights_only=True (tensors, numbers, strings, lists, dicts: no code
    runs)."""
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a crafted pickle, a truncated file, another format
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(
            f"{path} is not a state.pt that lpcheck estimate can load safely ({type(e).__name__}: "
            f"{first[:200]}); remove it and pass --resume to restart the run from step 0"
        ) from None
    if (
        not isinstance(st, dict)
        or st.get("format") != STATE_FORMAT
        or not isinstance(st.get("config"), dict)
    ):
        raise ValueError(
            f"{path} is not a state.pt of this lpcheck estimate (format {STATE_FORMAT}); remove it "
            "and pass --resume to restart the run from step 0"
        )
    return st


# settings that may change on resume: they decide where and how fast, not what is computed; the
# loss's lower bound only enters the fit, which is redone over every record (so a run stopped by a
# negative loss continues)
_RESUMABLE = ("device", "threads", "out", "dist_timeout", "loss_lower_bound")


def _differences(saved: dict, c: Config, fingerprint, saved_fingerprint) -> list[str]:
    """The settings of `c` that differ from the saved run's, each as '--option: saved X, now Y'. The
    data is compared by its fingerprint where the run saved one (the same examples at another
    path are the same run), else by its resolved path or spec."""
    mine = report.to_jsonable(dataclasses.asdict(c))
    out = []
    for k, v in mine.items():
        if k in _RESUMABLE or (k == "data" and saved_fingerprint is not None):
            continue
        was = saved.get(k)
        if k == "data" and was is not None and not userspec.is_spec(was):
            was = str(
                Path(was).resolve()
            )  # saved relative by an older lpcheck: read against this folder
        if was != v:
            name = "augment (--no-augment)" if k == "augment" else _option(k)
            out.append(
                f"{name}: saved {was!r}, now {v!r}"
                if isinstance(v, str)
                else f"{name}: saved {was}, now {v}"
            )
    if saved_fingerprint is not None and saved_fingerprint != fingerprint:
        what = "images" if c.dataset is not None else "examples"
        out.append(
            f"--data: the {what} or labels in {c.data} differ from the saved run's (sha256 "
            f"{saved_fingerprint[:12]}..., now "
            f"{fingerprint[:12] if fingerprint else 'none: a Dataset'}...)"
        )
    return out


def _previous(out: Path, state_path: Path, json_path: Path, resume: bool):
    """The state (or None) and settings of the run in `out`; refuses a fresh run over an existing
    one."""
    has_state, has_json = state_path.exists(), json_path.exists()
    if not resume:
        if has_state or has_json:
            names = ", ".join(p.name for p in (state_path, json_path) if p.exists())
            raise ValueError(
                f"{out} holds a run ({names}): pass --resume to continue it, or choose another "
                "--out"
            )
        return None, None
    if has_state:
        st = _load_state(state_path)
        return st, st
    if has_json:  # no state saved yet (or it was removed): the run restarts from step 0
        saved = report.read_json(json_path)
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            raise ValueError(
                f"{json_path} is not a report of lpcheck estimate (no 'config'); choose another "
                "--out"
            )
        return None, saved
    raise FileNotFoundError(
        f"--resume: no interrupted run in {out} (no state.pt or constants.json); "
        "run without --resume to start one"
    )


# -- many processes --------------------------------------------------------------------------------


class _Dist:
    """This process's place under torchrun: rank, world size, and the collectives the run needs
    beyond DDP's."""

    def __init__(self, rank=0, world=1, local_rank=0):
        self.rank, self.world, self.local_rank = rank, world, local_rank

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def start(cls, config: Config) -> _Dist:
        """One process (WORLD_SIZE unset or 1), or the process group joined from torchrun's
        environment."""
        env = {k: os.environ.get(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
        try:
            world = int(env["WORLD_SIZE"] or 1)
            rank, local = int(env["RANK"] or 0), int(env["LOCAL_RANK"] or 0)
        except ValueError:
            raise ValueError(
                "WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them), got "
                f"{env}"
            ) from None
        if world == 1:
            return cls()
        if not 0 <= rank < world or world < 1:
            raise ValueError(
                f"RANK must be in [0, WORLD_SIZE), got RANK={rank}, WORLD_SIZE={world}"
            )
        timeout = checks.real(
            "--dist-timeout", config.dist_timeout, low=0, low_open=True, high=10**7
        )
        cuda = (
            isinstance(config.device, str)
            and config.device.startswith("cuda")
            and torch.cuda.is_available()
        )
        if cuda:
            torch.cuda.set_device(local % torch.cuda.device_count())
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(
                "nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=timeout)
            )
        return cls(rank, world, local)

    def agree(self, fn):
        """fn(); a refusal (ValueError, FileNotFoundError) on any rank is raised on every rank (the
        first rank's)."""
        try:
            result, error = fn(), None
        except (ValueError, FileNotFoundError, NotADirectoryError) as e:
            result, error = None, e
        if self.active:
            errors = [None] * self.world
            torch.distributed.all_gather_object(
                errors, None if error is None else (type(error).__name__, str(error))
            )
            first = next((e for e in errors if e is not None), None)
            if first is not None and error is None:
                kind = {
                    "FileNotFoundError": FileNotFoundError,
                    "NotADirectoryError": NotADirectoryError,
                }
                raise kind.get(first[0], ValueError)(first[1])
        if error is not None:
            raise error
        return result

    def share(self, obj):
        """Rank 0's `obj` on every rank."""
        if not self.active:
            return obj
        box = [obj if self.rank == 0 else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def device(self, name: str) -> torch.device:
        """The checked --device; under torchrun on CUDA each process takes cuda:LOCAL_RANK."""
        dev = torch_device(name, "--device")
        if self.active and dev.type == "cuda":
            if dev.index is not None:
                raise ValueError(
                    f"--device {name}: with {self.world} processes give --device cuda (each "
                    "process takes cuda:LOCAL_RANK)"
                )
            dev = torch_device(f"cuda:{self.local_rank}", "--device")
        return dev

    def close(self, finished: bool = False):
        if self.active and torch.distributed.is_initialized():
            if finished:
                # every rank past its last collective before any tears the group down: a rank that
                # destroyed it while another's gloo threads still ran aborted that one ("terminate
                # called without an active exception", seen under load). Not after an error: the
                # other ranks may be waiting in another collective, and torchrun stops them
                torch.distributed.barrier()
            # a DDP wrapper left in a reference cycle holds the group past destroy, and its gloo
            # threads then end at interpreter exit, where they abort the process
            gc.collect()
            torch.distributed.destroy_process_group()


# -- the run ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Prepared:
    """Everything a run needs, built and checked before any file is written."""

    c: Config
    device: torch.device
    train: object
    test: object
    info: dict  # dataset, source, sha256, counts
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    choice: object  # lpcheck.training.OptimizerChoice
    loss_fn: object
    steps_per_epoch: int
    T: int
    probe_at: list
    state: dict | None = None
    saved: dict | None = None


def _load(c: Config, device, is_user):
    """(train, test, info, resolved dataset name or None) for --data."""
    if not is_user:
        dataset = cifar.load_cifar(c.data, dataset=c.dataset)
        if c.train_subset is not None:
            dataset = dataset.subset(c.train_subset, "--train-subset")
        info = {
            "dataset": dataset.name,
            "source": dataset.source,
            "data_sha256": dataset.fingerprint(),
            "train_images": len(dataset.y_train),
            "test_images": len(dataset.y_test),
            "num_classes": dataset.num_classes,
        }
        return (
            cifar.DeviceCifar.train(dataset, device),
            cifar.DeviceCifar.test(dataset, device),
            info,
            dataset.name,
        )
    data = userspec.load_data(c.data, "--data")
    train, test = data.train, data.test
    if c.train_subset is not None:
        n = checks.integer(
            "--train-subset",
            c.train_subset,
            low=1,
            high=len(train[0]) if data.is_tensors else len(train),
        )
        train = (
            (train[0][:n], train[1][:n])
            if data.is_tensors
            else torch.utils.data.Subset(train, range(n))
        )

    def source(split):
        if split is None:
            return None
        return (
            DeviceTensors(*split, device=device)
            if isinstance(split, tuple)
            else HostDataset(split, device, option="--data")
        )

    info = {
        "dataset": data.source,
        "source": data.source,
        "data_sha256": data.fingerprint,
        "train_images": len(train[0]) if data.is_tensors else len(train),
        "test_images": 0
        if test is None
        else (len(test[0]) if isinstance(test, tuple) else len(test)),
        "num_classes": None,
        "kind": "tensors" if data.is_tensors else "Dataset",
    }
    return source(train), source(test), info, None


def _build_model(c: Config, spec: str, num_classes, device):
    """The model (`spec`: --model as given, and named so in errors; c.model is its origin), seeded
    with --seed."""
    torch.manual_seed(c.seed)
    if spec in models.MODELS:
        return models.build(spec, num_classes=num_classes, width=c.width).to(device)
    factory = userspec.load(spec, "--model")
    kwargs = {}
    if num_classes is not None:
        if userspec.takes(factory, "num_classes"):
            kwargs["num_classes"] = num_classes
        elif c.num_classes is not None:
            raise ValueError(f"--num-classes: {spec} takes no num_classes argument")
    model = userspec.check_model(userspec.call(factory, spec, "--model", **kwargs), spec, "--model")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"--model: {spec}() has no trainable parameters")
    return model.to(device)


def _check_forward(model, train, loss_fn, c: Config, test=None) -> torch.Tensor:
    """loss(model(x), y) on a first batch of the training data, in eval mode and with no backward
    pass (nothing changes: no BatchNorm statistics, no random numbers, no .grad): a mismatch is
    named before any work, and so is a loss with no gradient to follow. Returns that loss with its
    graph, for `_check_step`'s one gradient."""
    n = min(c.batch_size, len(train))
    try:  # a Dataset's items are read here first
        x, y = train.batch(torch.arange(n, device=getattr(train, "index_device", train.device)))
    except Exception as e:
        e = e.__cause__ or e  # the Dataset's own exception, under HostDataset's ValueError
        raise ValueError(
            f"--data: reading a first batch of {n} examples (each an (input, target) pair) raised "
            f"{type(e).__name__}: {checks.first_line(e)}"
        ) from None
    loss_name = c.loss or "cross-entropy (the default --loss)"
    was = model.training
    model.eval()
    try:
        with torch.enable_grad():
            try:
                out = model(x)
            except Exception as e:
                raise ValueError(
                    f"--model / --data: the model's forward on {n} examples of --data (inputs "
                    f"{tuple(x.shape)}, {x.dtype}) raised {type(e).__name__}: "
                    f"{checks.first_line(e)}"
                ) from None
            loss = _first_loss(loss_fn, out, y, loss_name)
    finally:
        model.train(was)
    _check_reads({"training": train, "test": test}, c.batch_size)
    if c.loss is None:
        _check_labels(out, {"training": train, "test": test})
    if not (isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point()):
        got = (
            f"a tensor of shape {tuple(loss.shape)}"
            if isinstance(loss, torch.Tensor)
            else type(loss).__name__
        )
        raise ValueError(
            f"--loss: {loss_name} must return a real scalar tensor (the mean over the batch), got "
            f"{got}"
        )
    if not loss.requires_grad:
        raise ValueError(
            f"--loss: {loss_name} has no gradient with respect to the model's parameters (computed "
            "through argmax, a comparison or .detach()?): training and the probe need one"
        )
    value = float(loss.detach())
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(
            f"--loss / --data: {loss_name} is {value} on the first batch of {n} examples of "
            "--data, before any step: there is no gradient to follow or measure (inf or nan in the "
            "inputs, or in the loss's own arithmetic?)"
        )
    if (
        c.loss_lower_bound is None and value < 0
    ):  # (a batch below a stated bound refutes nothing: f* is f's)
        raise ValueError(
            f"--loss: {loss_name} is negative on the first batch ({value:.6g}), so the "
            "default lower bound f* >= 0 is not justified: pass --loss-lower-bound F (f* or a "
            "lower bound on it; Theorems 1-2 need delta = f(theta_0) - f*)"
        )
    return loss


def _check_reads(splits: dict, batch_size: int) -> None:
    """A Dataset's last item, and the test split's first batch, read now: a len() that promises
    more items than __getitem__ gives (an off-by-one) failed only when its batch was drawn, and the
    test split only at the end of the run. (Reading every item would cost an epoch of loading.)"""
    for split, source in splits.items():
        if source is None or not hasattr(source, "dataset"):  # tensors: checked whole when loaded
            continue
        n = len(source)
        first = range(min(batch_size, n)) if split == "test" else range(0)
        index = torch.tensor([*first, n - 1])
        try:
            source.batch(index)
        except ValueError as e:  # HostDataset's own words, naming --data
            raise ValueError(f"{e} (read from its {split} split before the run)") from None


def _check_labels(out, splits: dict) -> None:
    """Every label of the user's tensors (train and test) for the default cross-entropy
    (`userspec.check_labels`); a Dataset's items are not read ahead."""
    for split, source in splits.items():
        y = getattr(source, "y", None)  # tensors (DeviceTensors); a Dataset has none
        if y is not None:
            userspec.check_labels(y, out, f"the {split} labels", "--data")


def _first_loss(loss_fn, out, y, loss_name):
    """loss(outputs, targets) on the first batch, checked as the Probe checks its first
    (`probe.checked_loss`), the ValueError naming --loss / --data."""
    try:
        return checked_loss(loss_fn, out, y, loss_name, "--loss ")
    except ValueError as e:
        raise ValueError(f"--loss / --data: {e}") from None


def _check_step(opt, loss: torch.Tensor, c: Config, spec: str) -> None:
    """One step of the optimizer on a copy (the black box: the model, the optimizer and their
    state stay as they are), with the gradient of `loss` (the first batch's, from
    `_check_forward`): an optimizer that cannot step on this model (SparseAdam on dense gradients,
    a user's step that raises, a weight decay declared decoupled that its step ignores) is refused
    by name before any work."""
    from lpcheck.methods import BlackBox

    params = [p for g in opt.param_groups for p in g["params"]]
    parts = torch.autograd.grad(loss, params, allow_unused=True)
    # as training gives them (sparse from Embedding(sparse=True): Adam refuses those), then dense,
    # as the probe reads every gradient (SparseAdam could train but not be measured)
    dense = tuple(t.to_dense() if t is not None and t.is_sparse else t for t in parts)
    if all(t is None or not bool(t.any()) for t in dense):
        raise ValueError(
            f"--loss / --model: the gradient of {c.loss or 'cross-entropy (the default --loss)'} "
            "on the first batch is exactly 0 for every trainable parameter (cross-entropy on a "
            "model with one output, a loss that ignores the outputs?): there is nothing to train "
            "or measure"
        )
    try:
        sparse = any(a is not b for a, b in zip(parts, dense))
        for gs in (parts, dense) if sparse else (parts,):
            BlackBox(opt, dtype=None).update(list(gs))
        # weight decay declared decoupled but not applied so (the probe's plan checks it too)
        BlackBox(opt).check_decay([None if t is None else t.double() for t in dense])
    except ValueError as e:  # the black box's own words: the class and what its step raised
        raise ValueError(
            f"--optimizer {spec}: one step on the model's first batch (on a copy) failed: {e}"
        ) from None
    except Exception as e:
        raise ValueError(
            f"--optimizer {spec}: one step on the model's first batch (on a copy) raised "
            f"{type(e).__name__}: {checks.first_line(e)}"
        ) from None


def _build_optimizer(c: Config, spec: str, model):
    choice = optimizer_choice(spec)
    kwargs = optimizer_kwargs(c, choice)
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        opt = choice.build(params, total_epochs=c.epochs, **kwargs)
    except Exception as e:
        named = "--optimizer-args" if c.optimizer_args else "the options"
        raise ValueError(
            f"--optimizer {spec} refused {named} ({kwargs}): {type(e).__name__}: "
            f"{checks.first_line(e)}"
        ) from None
    if not isinstance(opt, torch.optim.Optimizer):
        raise ValueError(
            f"--optimizer {spec} built a {type(opt).__name__}, not a torch.optim.Optimizer"
        )
    closure = inspect.signature(opt.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise ValueError(
            f"--optimizer {spec}: its step needs a closure (as LBFGS's does); lpcheck estimate "
            "trains and probes with step()"
        )
    for i, group in enumerate(opt.param_groups):
        if not isinstance(group.get("lr"), (int, float, torch.Tensor)) or isinstance(
            group.get("lr"), bool
        ):
            raise ValueError(
                f"--optimizer {spec}: param group {i} has no numeric 'lr' (got "
                f"{group.get('lr')!r}); lpcheck sets each step's lr there and the probe reads the "
                "step from it"
            )
    return opt, choice


def _prepare(config: Config, resume: bool, dist: _Dist) -> _Prepared:
    """Check every option, load the data, build and try the model, loss and optimizer, and (rank 0)
    read a previous run, before anything is written."""
    given = check_config(config)  # the user's specs as written: what is imported (once) and built
    device = dist.device(given.device)
    is_user = user_data(given.data, given.dataset)
    train, test, info, dataset = _load(given, device, is_user)
    c = given.resolved(dataset)
    what = "examples" if is_user else "images"
    steps_per_epoch, T, probe_at = _sizes(c, len(train), dist.world, what)
    num_classes = c.num_classes if is_user else info["num_classes"]
    if not is_user and c.num_classes is not None and c.num_classes != num_classes:
        raise ValueError(
            f"--num-classes {c.num_classes}: the data is {dataset} ({num_classes} classes)"
        )
    if c.model in models.MODELS:
        check_model_size(
            c.model, num_classes, c.width, device, copies=6
        )  # + the probe's theta, grad
    loss_fn = (
        userspec.load(given.loss, "--loss") if given.loss else torch.nn.functional.cross_entropy
    )
    model = _build_model(c, given.model, num_classes, device)
    first_loss = _check_forward(model, train, loss_fn, c, test)
    opt, choice = _build_optimizer(c, given.optimizer, model)
    _check_step(opt, first_loss, c, given.optimizer)
    p = _Prepared(
        c, device, train, test, info, model, opt, choice, loss_fn, steps_per_epoch, T, probe_at
    )
    if dist.rank == 0:
        out = Path(c.out)
        p.state, p.saved = _previous(out, out / "state.pt", out / "constants.json", resume)
        if p.saved is not None:
            saved_fp = (p.saved.get("run") or {}).get("data_sha256")
            diff = _differences(p.saved["config"], c, info["data_sha256"], saved_fp)
            if diff:
                raise ValueError(
                    f"--resume: the run in {out} was made with other settings; resume with the "
                    "saved "
                    "ones or choose another --out: " + "; ".join(diff)
                )
    return p


def run(config: Config, resume: bool = False, quiet: bool = False, command=None) -> dict:
    """Train with probes; write constants.json/.md, plots and state.pt under config.out. Returns the
    report (on rank 0; {} on the other ranks of a torchrun, which write nothing).

    Everything is checked (options, device, data, model, loss and optimizer on a first batch, a
    previous run's settings) before anything is written.
    """
    dist = _Dist.start(config)
    finished = False
    try:
        p = dist.agree(lambda: _prepare(config, resume, dist))
        p.state, p.saved = dist.share((p.state, p.saved))
        if dist.rank == 0 and p.saved is not None and p.state is None:
            print(
                f"lpcheck estimate: {p.c.out} has no state.pt (the run was stopped before it "
                "saved one): restarting it from step 0; the probes in constants.json are "
                "measured again",
                file=sys.stderr,
            )
        threads = torch.get_num_threads()
        if p.c.threads:
            torch.set_num_threads(p.c.threads)
        try:
            result = _train_and_probe(p, dist, quiet, command)
        finally:
            torch.set_num_threads(threads)
        finished = True
        return result
    finally:
        dist.close(finished)


def _restore(state, saved, model, opt, probe, state_path) -> tuple[float, list]:
    """(train seconds, earlier invocations' provenance) after loading a saved state into the model,
    optimizer and probe; (0, the invocations that wrote constants.json) when a run restarts
    without a state."""
    if state is None:
        if saved is None:
            return 0.0, []
        return 0.0, [
            q for q in saved.get("earlier_provenance", []) + [saved.get("provenance")] if q
        ]
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        probe.load_state_dict(state["probe"])
        return float(state["train_seconds"]), list(state["invocations"])
    except (
        KeyError,
        RuntimeError,
        TypeError,
        ValueError,
    ) as e:  # same settings, so the file was altered
        raise ValueError(
            f"{state_path} does not fit this run's model and optimizer ({type(e).__name__}: "
            f"{checks.first_line(e)[:200]}); remove it and pass --resume to restart from step 0"
        ) from None


def _restore_training(training, state, state_path) -> None:
    """The training loop's position (step, shuffles, losses) from a saved state."""
    try:
        training.load_state_dict(state["training"])
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise ValueError(
            f"{state_path} does not fit this run's training loop ({type(e).__name__}: "
            f"{checks.first_line(e)[:200]}); remove it and pass --resume to restart from step 0"
        ) from None


def _train_and_probe(p: _Prepared, dist: _Dist, quiet, command):
    c, model, opt, state, saved = p.c, p.model, p.opt, p.state, p.saved
    writer = dist.rank == 0
    out = Path(c.out)
    state_path, json_path = out / "state.pt", out / "constants.json"
    probe = Probe(
        model,
        p.train,
        batch_size=c.batch_size,
        samples=c.samples,
        mode=c.mode,
        loss_fn=p.loss_fn,
        step_pairs=c.step_pairs,
        seed=c.seed,
        loss_lower_bound=c.loss_lower_bound,
        norm=c.norm,
    )
    warmup = round(c.warmup_epochs * p.steps_per_epoch)
    # earlier: the provenance of the interrupted invocations this run continues
    train_seconds, earlier = _restore(state, saved, model, opt, probe, state_path)
    trained = model
    if dist.active:  # each rank a slice of every batch; DDP averages the slices' gradients
        ids = [p.device.index] if p.device.type == "cuda" else None
        # a user's model may leave a parameter out of some losses (an unused branch): DDP would stop
        # at the next step; it then leaves a globally unused parameter's .grad None, as one process
        # does
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=c.model not in models.MODELS
        )
    training = Training(
        trained,
        opt,
        p.train,
        batch_size=c.batch_size,
        epochs=c.epochs,
        steps_per_epoch=p.steps_per_epoch,
        warmup_steps=warmup,
        lr=c.lr,
        augment=c.augment,
        seed=c.seed,
        loss_fn=p.loss_fn,
    )
    if state is not None:
        _restore_training(training, state, state_path)
    data_info = {
        **p.info,
        "steps_per_epoch": p.steps_per_epoch,
        "T": p.T,
        "warmup_steps": warmup,
        "probe_steps": p.probe_at,
        "parameters": sum(q.numel() for q in probe.params),
        "probe_blocks": probe.n_blocks,
        "optimizer_class": userspec.spec_of(type(opt)),
        "optimizer_kwargs": report.to_jsonable(optimizer_kwargs(c, p.choice)),
        "lr_schedule": "warm-up + cosine on every param group's lr",
        "p_schedule": "eq. 19 (set_epoch)" if hasattr(opt, "set_epoch") else None,
    }
    prov = {**report.provenance(p.device, command=command), "processes": dist.world}
    lrs = [
        lr_at(t, p.T, warmup, c.lr) for t in range(p.T)
    ]  # every step's lr: the fit compares the cap with their peak

    def write(complete, test=None):
        data = {
            "config": dataclasses.asdict(c),
            "run": data_info,
            "complete": complete,
            "epoch_losses": training.epoch_losses,
            "train_seconds": train_seconds,
            "test_accuracy": None if test is None else test["accuracy"],
            "test_loss": None if test is None else test["loss"],
            "records": probe.records,
            "provenance": prov,
        }
        if earlier:
            data["earlier_provenance"] = earlier
        if probe.records:
            data["fit"] = probe.fit(
                p.T, confidence=c.confidence, resamples=c.resamples, seed=c.seed, lr_used=lrs
            )
        report.write_report(out, "constants", data, render.markdown)
        return data

    def save():
        # settings, run info and provenance as JSON values: the file loads with weights_only=True
        st = {
            "format": STATE_FORMAT,
            "config": report.to_jsonable(dataclasses.asdict(c)),
            "run": report.to_jsonable(data_info),
            "invocations": earlier + [prov],
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "probe": probe.state_dict(),
            "training": training.state_dict(),
            "train_seconds": train_seconds,
        }  # training's: a collective
        if writer:
            _save_state(state_path, st)

    result = {}
    progress = _progress(
        p.T,
        training.step_index,
        len(p.probe_at) - len(probe.records),
        probe,
        c,
        quiet or not writer,
    )
    try:
        while training.step_index < p.T:
            step = training.step_index
            if step in p.probe_at and len(probe.records) == p.probe_at.index(step):
                # the optimizer as the next step will see it: this epoch's p, this step's lr
                training.begin_step()
                progress.note(f"probe {len(probe.records) + 1}/{len(p.probe_at)}")
                progress.mark()
                _measure(probe, opt, step)
                save()  # the state first: a run stopped between the two files resumes from it
                if writer:
                    write(False)
                progress.advance("probe")  # its cost: measure, save and the fit in write
                progress.milestone(
                    f"checkpoint {len(probe.records)}/{len(p.probe_at)} (step {step} of {p.T}) "
                    "measured"
                )
            t0 = time.perf_counter()
            training.step()
            train_seconds += (
                time.perf_counter() - t0
            )  # host time; on CUDA the epoch's .item() settles it
            progress.update()
        save()  # the final state: a --resume of a finished run only re-renders its report
        if writer:
            test = (
                None
                if p.test is None
                else evaluate(model, p.test, c.batch_size, loss_fn=p.loss_fn if c.loss else None)
            )
            result = write(True, test)
    finally:
        progress.close()
        if writer and json_path.exists():  # also when interrupted: the plots show what was measured
            render.plots(report.read_json(json_path), out)
    return result


def _measure(probe, opt, step):
    try:
        probe.measure(opt, step=step)
    except ValueError as e:  # the probe's advice in the command line's words
        text = str(e).replace(
            "pass Probe(..., loss_lower_bound=...)",
            "pass --loss-lower-bound F with --resume (the run continues from its last checkpoint)",
        )
        if text != str(e):
            raise ValueError(text) from None
        raise


def _progress(T, step, probes, probe, c, quiet):
    """Steps and probes, each kind by its measured cost; until both are timed, a probe is priced as
    the steps of its passes: the full gradient and one more full pass per step pair (n_blocks
    mini-batches each), and K."""
    return Progress(
        "lpcheck estimate",
        {"step": T - step, "probe": probes},
        {"step": 1.0, "probe": probe.n_blocks * (1 + c.step_pairs) + c.samples},
        bar="step",
        initial=step,
        quiet=quiet,
    )
