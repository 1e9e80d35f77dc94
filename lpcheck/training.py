"""The training loop shared by `lpcheck estimate` and the experiments, and the paper's settings.

- `PAPER_HYPERPARAMETERS`: Appendix A, Tables 4 (CIFAR-10) and 5 (CIFAR-100), for SGD with momentum,
  AdamW, Lion and LPSGDM; `paper_hyperparameters(dataset, model, optimizer)`.
- `make_optimizer(name, params, hp, total_epochs)`: the four optimizers (and LPSGD) from those rows.
- `lr_at(step, T, warmup_steps, lr)`: the per-step "warmup cosine decay" schedule.
- `Training`: one model, optimizer and training split on one device. Batches are gathered by a
  device-side permutation (augmented and normalised there for CIFAR: `lpcheck.data.DeviceCifar`; a
  user's tensors: `DeviceTensors`; a map-style Dataset: `HostDataset`); the lr is set every step, p
  every epoch (eq. 19, for LPSGD/LPSGDM or any optimizer with `set_epoch`); the loss (cross-entropy
  or the caller's) is summed on the device and read once per epoch: no per-step host transfer or
  sync. Its state (step, permutation, generator, loss sum) round-trips through `state_dict`, so a
  resumed run continues exactly. Under torch.distributed (a DistributedDataParallel model), rank r
  of W trains on the slice [r b/W, (r+1) b/W) of every global batch of b, so the gradient DDP
  averages is the global batch's mean gradient, as in one process (augmentation is drawn for the
  whole batch on every rank, so its random numbers are the one-process run's too), and BatchNorm
  normalises over the global batch (`GlobalBatchNorm`), so the step is one process's up to the order
  of float sums.
- `evaluate(model, data)`: the mean loss, and top-1 accuracy where the outputs are class scores, in
  eval mode, one host read.
- Option checks shared by `lpcheck estimate` and the experiment scripts, each a ValueError naming
  the option before any work: `torch_device`, `check_threads`, `check_seed`, `check_model_size`.
"""

from __future__ import annotations

import math
import os
import sys

import torch

from lpcheck import checks

__all__ = [
    "PAPER_HYPERPARAMETERS",
    "paper_hyperparameters",
    "make_optimizer",
    "lr_at",
    "torch_device",
    "Training",
    "evaluate",
    "Progress",
    "OPTIMIZERS",
    "check_threads",
    "check_seed",
    "check_model_size",
    "check_steps",
    "SEED_MAX",
    "STEPS_MAX",
    "DeviceTensors",
    "HostDataset",
    "OptimizerChoice",
    "optimizer_choice",
    "named_optimizers",
    "GlobalBatchNorm",
]

SEED_MAX = (
    2**63 - 1
)  # torch generators take [0, 2**64); offsets added to a seed (+1, +7919) stay below that
STEPS_MAX = (
    10**7
)  # training steps per run: 25,600 CIFAR-10 epochs of batch 128; past it a typo, not a plan

OPTIMIZERS = ("sgdm", "adamw", "lion", "lpsgdm", "lpsgd")

# Appendix A (batch 128, warm-up cosine lr). SGDM: torch's momentum 0.9 with coupled L2 decay; AdamW
# betas (0.9, 0.999), eps 1e-8; Lion betas (0.9, 0.999) as Table 4/5 list them (Section 6's text
# says beta2 = 0.99: the tables are "the complete hyper-parameter settings", so they win); LPSGDM
# beta 0.9, eps 1e-8. Table 4 lists eps for SGDM too, where it has no role.
_T4 = {
    "vgg11": {
        "sgdm": (0.1, 0.001),
        "adamw": (0.001, 0.1),
        "lion": (0.0001, 0.001),
        "lpsgdm": (0.001, 0.01, 6.0),
    },
    "resnet18": {
        "sgdm": (0.1, 0.001),
        "adamw": (0.001, 0.1),
        "lion": (0.0001, 0.001),
        "lpsgdm": (0.001, 0.01, 6.0),
    },
    "resnet50": {
        "sgdm": (0.05, 0.0005),
        "adamw": (0.001, 0.0001),
        "lion": (0.0001, 0.0005),
        "lpsgdm": (0.002, 0.0001, 6.0),
    },
}
_T5 = {
    "vgg11": {
        "sgdm": (0.1, 0.001),
        "adamw": (0.001, 0.001),
        "lion": (0.0001, 0.0001),
        "lpsgdm": (0.0005, 0.0005, 8.0),
    },
    "resnet18": {
        "sgdm": (0.1, 0.01),
        "adamw": (0.01, 0.1),
        "lion": (0.001, 0.1),
        "lpsgdm": (0.01, 0.1, 6.0),
    },
    "resnet50": {
        "sgdm": (0.1, 1e-5),
        "adamw": (0.001, 0.1),
        "lion": (0.001, 1e-5),
        "lpsgdm": (0.001, 0.1, 6.0),
    },
}


def _rows(table):
    out = {}
    for model, row in table.items():
        for opt, values in row.items():
            hp = {"lr": values[0], "weight_decay": values[1], "batch_size": 128}
            if opt == "sgdm":
                hp |= {"momentum": 0.9}
            elif opt == "adamw":
                hp |= {"betas": (0.9, 0.999), "eps": 1e-8}
            elif opt == "lion":
                hp |= {"betas": (0.9, 0.999)}
            else:
                hp |= {"p_max": values[2], "momentum": 0.9, "eps": 1e-8}
            out[(model, opt)] = hp
    return out


PAPER_HYPERPARAMETERS = {"cifar10": _rows(_T4), "cifar100": _rows(_T5)}


def paper_hyperparameters(dataset: str, model: str, optimizer: str) -> dict:
    """Appendix A's row for (dataset, model, optimizer); LPSGD takes LPSGDM's lr, p_max and eps."""
    key = (model, "lpsgdm" if optimizer == "lpsgd" else optimizer)
    if dataset not in PAPER_HYPERPARAMETERS or key not in PAPER_HYPERPARAMETERS[dataset]:
        raise ValueError(
            f"no paper hyperparameters for {optimizer} / {model} / {dataset}; datasets "
            f"{sorted(PAPER_HYPERPARAMETERS)}, models {sorted(_T4)}, optimizers {list(OPTIMIZERS)}"
        )
    return dict(PAPER_HYPERPARAMETERS[dataset][key])


def make_optimizer(
    name: str, params, hp: dict, total_epochs: int, check_finite: bool = False, **options
):
    """The optimizer `name` with hyperparameters `hp` (a paper row, possibly overridden).

    check_finite (LPSGD/LPSGDM) is off by default in training loops: a non-finite loss is caught
    once per epoch instead of one host sync per step. `options` go to the constructor (foreach=,
    fused=).
    """
    from lpcheck.baselines import Lion
    from lpcheck.optim import LPSGD, LPSGDM

    if name == "sgdm":
        return torch.optim.SGD(
            params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"], **options
        )
    if name == "adamw":
        return torch.optim.AdamW(
            params,
            lr=hp["lr"],
            betas=hp["betas"],
            eps=hp["eps"],
            weight_decay=hp["weight_decay"],
            **options,
        )
    if name == "lion":
        return Lion(
            params, lr=hp["lr"], betas=hp["betas"], weight_decay=hp["weight_decay"], **options
        )
    if name == "lpsgdm":
        return LPSGDM(
            params,
            lr=hp["lr"],
            p_max=hp["p_max"],
            total_epochs=total_epochs,
            momentum=hp["momentum"],
            weight_decay=hp["weight_decay"],
            eps=hp["eps"],
            check_finite=check_finite,
            **options,
        )
    if name == "lpsgd":
        return LPSGD(
            params,
            lr=hp["lr"],
            p_max=hp["p_max"],
            total_epochs=total_epochs,
            eps=hp["eps"],
            check_finite=check_finite,
            **options,
        )
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")


# the optimizers `lpcheck estimate --optimizer NAME` builds: lpcheck's and torch's by class, the
# rest of the method layer through as_optimizer (sgdm here is the paper's SGDM, torch's heavy-ball
# SGD with momentum 0.9)
_NAMED = {
    "lpsgdm": "lpcheck.optim.LPSGDM (eq. 19's p schedule)",
    "lpsgd": "lpcheck.optim.LPSGD (eq. 19's p schedule)",
    "sgd": "torch.optim.SGD",
    "sgdm": "torch.optim.SGD, momentum 0.9 (the paper's SGDM)",
    "adam": "torch.optim.Adam",
    "adamw": "torch.optim.AdamW",
    "lion": "lpcheck.baselines.Lion",
}


def named_optimizers() -> dict:
    """NAME -> what `optimizer_choice(NAME)` builds: the named classes, then every other
    lpcheck.methods method."""
    from lpcheck.methods import BUILTINS

    return {
        **_NAMED,
        **{n: f"lpcheck.methods '{n}' (as_optimizer)" for n in BUILTINS if n not in _NAMED},
    }


class OptimizerChoice:
    """An optimizer by NAME or a user's class, and the keyword arguments it takes
    (`optimizer_choice`).

    `build(params, **kwargs)` constructs it (LPSGD/LPSGDM also get total_epochs, and
    check_finite=False: a training loop checks the loss once per epoch instead); `takes(key)` says
    whether it accepts `key` (True for any key where its signature has **kwargs); `defaults` are
    what lpcheck passes when the caller does not (sgdm's momentum 0.9); `keywords` lists what it
    takes (None: anything)."""

    def __init__(self, name, build, keywords, defaults=None, fixed=None):
        self.name, self._build, self.keywords = name, build, keywords
        self.defaults, self.fixed = dict(defaults or {}), dict(fixed or {})

    def takes(self, key) -> bool:
        return self.keywords is None or key in self.keywords

    def build(self, params, total_epochs=None, **kwargs):
        extra = {k: (total_epochs if v is None else v) for k, v in self.fixed.items()}
        return self._build(params, **{**self.defaults, **kwargs, **extra})


def _keywords(cls):
    import inspect

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(
        k
        for k, p in list(params.items())[1:]  # the first is params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


def _method_choice(name, method_cls, make):
    from lpcheck.methods import as_optimizer

    return OptimizerChoice(
        name,
        lambda params, lr=1e-3, weight_decay=0.0, **hp: as_optimizer(
            make(), params, lr=lr, weight_decay=weight_decay, **hp
        ),
        frozenset({"lr", "weight_decay"}) | frozenset(method_cls.defaults),
    )


def optimizer_choice(spec: str, option: str = "--optimizer") -> OptimizerChoice:
    """NAME (`named_optimizers()`) or MODULE:CLASS (a torch.optim.Optimizer subclass, or a
    lpcheck.methods.Method subclass, run through as_optimizer), imported from the current
    directory (`lpcheck.userspec`)."""
    from lpcheck import userspec
    from lpcheck.baselines import Lion
    from lpcheck.methods import BUILTINS, Method
    from lpcheck.optim import LPSGD, LPSGDM

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"{option} is empty: give one of {', '.join(named_optimizers())} or MODULE:CLASS"
        )
    classes = {
        "lpsgdm": LPSGDM,
        "lpsgd": LPSGD,
        "sgd": torch.optim.SGD,
        "sgdm": torch.optim.SGD,
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "lion": Lion,
    }
    if spec in classes:
        cls = classes[spec]
        fixed = {"total_epochs": None, "check_finite": False} if spec in ("lpsgd", "lpsgdm") else {}
        keywords = _keywords(cls) - set(fixed)
        return OptimizerChoice(
            spec, cls, keywords, {"momentum": 0.9} if spec == "sgdm" else {}, fixed
        )
    if spec in BUILTINS:
        return _method_choice(spec, BUILTINS[spec], lambda: spec)
    if spec.split(":")[0] in named_optimizers():
        raise ValueError(
            f"{option} {spec!r}: give the optimizer's arguments with --optimizer-args JSON"
        )
    if not userspec.is_spec(spec):
        raise ValueError(
            f"{option} must be one of {', '.join(named_optimizers())} or MODULE:CLASS (a "
            f"torch.optim.Optimizer class in MODULE), got {spec!r}"
        )
    cls = userspec.load(spec, option, kind="class")
    if issubclass(cls, Method):
        return _method_choice(spec, cls, lambda: cls)
    if not issubclass(cls, torch.optim.Optimizer):
        raise ValueError(
            f"{option}: {spec} must be a torch.optim.Optimizer subclass (or a "
            f"lpcheck.methods.Method), got {cls!r}"
        )
    return OptimizerChoice(spec, cls, _keywords(cls))


def lr_at(step: int, T: int, warmup_steps: int, lr: float) -> float:
    """Warm-up (linear, 0.1 lr -> lr over warmup_steps) then cosine decay to 0 at step T."""
    if step < warmup_steps:
        return lr * (0.1 + 0.9 * step / warmup_steps)
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, T - warmup_steps)))


def torch_device(name: str, option: str = "--device") -> torch.device:
    """A checked torch device: 'cpu' or 'cuda[:i]', with a clear error when CUDA is absent."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{option} must be cpu or cuda[:i], got {name!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{option} {name}: CUDA is not available here (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); use {option} cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{option} {name}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"{option} must be cpu or cuda[:i], got {name!r}")
    return dev


def check_threads(value, option: str = "--threads"):
    """None (torch's choice) or an integer in [1, the CPUs here]: torch.set_num_threads(0) raises
    deep inside torch, and a huge count spawns that many OpenMP threads (10^6 crashes the
    process)."""
    if value is None:
        return None
    return checks.integer(option, value, low=1, high=os.cpu_count() or 1)


def check_seed(value, option: str = "--seed") -> int:
    """An integer in [0, 2**63 - 1]: numpy's generators refuse negative seeds, torch's overflow at
    2**64."""
    v = checks.as_number(option, value, kind="integer", what="an integer in [0, 2**63 - 1]")
    if not 0 <= v <= SEED_MAX:
        raise ValueError(f"{option} must be an integer in [0, 2**63 - 1], got {v}")
    return v


def check_steps(epochs: int, steps_per_epoch: int, option: str = "--epochs") -> int:
    """T = epochs x steps_per_epoch, refused (naming `option`) past STEPS_MAX."""
    T = epochs * steps_per_epoch
    if T > STEPS_MAX:
        raise ValueError(
            f"{option} {epochs} x {steps_per_epoch} steps per epoch = {T:.3g} steps, more than "
            f"{STEPS_MAX:.0e}"
        )
    return T


def _available_bytes(device: torch.device):
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_model_size(
    model_name: str,
    num_classes: int,
    width: float,
    device,
    copies: int = 4,
    option: str = "--width",
) -> int:
    """The model's parameter count, built on the meta device (no memory); ValueError naming `option`
    when `copies` float32 copies of its parameters (weights, gradients, optimizer state, ...)
    cannot fit in the device's available memory: a huge --width must be refused, not fail inside
    the allocator."""
    from lpcheck import models

    try:
        with torch.device("meta"):
            n = sum(
                p.numel()
                for p in models.build(model_name, num_classes=num_classes, width=width).parameters()
            )
    except (RuntimeError, OverflowError):  # a tensor size past int64
        raise ValueError(
            f"{option} {width:g} gives {model_name} more parameters than a tensor can hold"
        ) from None
    except ValueError as e:  # lpcheck.models' own refusal, named as the option the user gave
        raise ValueError(f"{option} {width:g}: {e}") from None
    need, have = 4 * copies * n, _available_bytes(torch.device(device))
    if have is not None and need > have:
        raise ValueError(
            f"{option} {width:g} gives {model_name} {n:.3g} parameters: {copies} float32 copies "
            f"need {need / 2**30:.3g} GiB, {torch.device(device)} has {have / 2**30:.3g} GiB "
            "available"
        )
    return n


class DeviceTensors:
    """A user's (x, y) tensors stored once on `device`, batched by an index tensor there (no
    augmentation: they are not images lpcheck knows)."""

    def __init__(self, x, y, device="cpu"):
        self.device = torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, idx, augment: bool = False, generator=None):
        return self.x[idx], self.y[idx]


class HostDataset:
    """A map-style torch Dataset: items read and collated on the host (torch's default_collate),
    moved to `device`. Indexed by Python ints, so its index tensors live on the CPU
    (`index_device`). `option` names it in errors (the command line's --data)."""

    def __init__(self, dataset, device="cpu", option=None):
        self.dataset, self.device = dataset, torch.device(device)
        self.index_device = torch.device("cpu")
        self.option = option

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, idx, augment: bool = False, generator=None):
        index = idx.tolist() if isinstance(idx, torch.Tensor) else list(range(len(self))[idx])
        try:
            items = torch.utils.data.default_collate([self.dataset[i] for i in index])
        except Exception as e:  # an item past what len() promised, items of other shapes, ...
            raise self._unreadable(index, e) from e
        x, y = collated_pair(items)  # its own ValueError for items that are no pairs
        try:
            return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        except Exception as e:  # targets that collate to no tensor (strings)
            raise self._unreadable(index, e) from e

    def _unreadable(self, index, e) -> ValueError:
        """A ValueError naming the Dataset and the items, where a traceback came mid-run."""
        shown = ", ".join(map(str, sorted(index)[:8])) + (", ..." if len(index) > 8 else "")
        return ValueError(
            (f"{self.option}: " if self.option else "")
            + f"the Dataset {type(self.dataset).__name__} (len() = {len(self)}): reading its "
            f"items [{shown}] as an (inputs, targets) batch of tensors raised "
            f"{type(e).__name__}: {str(e).strip()[:300]}"
        )


def collated_pair(items):
    """A collated batch of a Dataset's items as (inputs, targets), or a ValueError: a dict item
    would unpack to its two keys, strings, and fail deep inside the model."""
    if isinstance(items, (tuple, list)) and len(items) == 2:
        return items
    got = (
        f"a dict with keys {sorted(map(str, items))}"
        if isinstance(items, dict)
        else type(items).__name__
        + (f" of {len(items)}" if isinstance(items, (tuple, list)) else "")
    )
    raise ValueError(
        f"data: the Dataset's items must be (input, target) pairs, got {got}: wrap it so that "
        "__getitem__ returns (input, target), or pass (inputs, targets) tensors"
    )


def _dist():
    """(rank, world size) of torch.distributed, (0, 1) when it is not initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class GlobalBatchNorm:
    """Under torch.distributed, the BatchNorm layers of `model` normalise over the global batch
    while `on`.

    DDP's BatchNorm would normalise each process's slice by the slice's own mean and variance,
    another function than one process's (and SyncBatchNorm runs only on accelerators). Here a
    forward pre-hook all-gathers the layer's input (differentiably: the backward sums each slice's
    gradient over the ranks), the layer runs on the whole batch exactly as in one process (its
    running statistics too, the same on every rank), and a forward hook keeps this rank's rows. The
    cost: every rank holds the global batch's input to each BatchNorm layer. The hooks do nothing
    outside `on` (the probe, which gives whole blocks to single ranks, and evaluation) and in eval
    mode; `remove()` takes them off.
    """

    def __init__(self, model, rank: int, world: int):
        self.rank, self.world, self.on = rank, world, False
        self.layers = [
            m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]
        # a group of its own, so these gathers never interleave with DDP's bucketed all-reduces
        self.group = torch.distributed.new_group() if self.layers else None
        self.handles = [
            h
            for m in self.layers
            for h in (
                m.register_forward_pre_hook(self._gather),
                m.register_forward_hook(self._keep),
            )
        ]

    def _active(self, module) -> bool:
        return self.on and module.training

    def _gather(self, module, args):
        if not self._active(module):
            return None
        import warnings

        from torch.distributed.nn import functional as dist_fn

        with (
            warnings.catch_warnings()
        ):  # deprecated for a private successor; the public one still works
            warnings.simplefilter("ignore", FutureWarning)
            parts = dist_fn.all_gather(args[0].contiguous(), group=self.group)
        return (torch.cat(parts), *args[1:])

    def _keep(self, module, args, out):
        if not self._active(module):
            return None
        n = out.shape[0] // self.world
        return out[self.rank * n : (self.rank + 1) * n]

    def remove(self):
        for h in self.handles:
            h.remove()


class Training:
    """Train `model` with `opt` on a training split, one step at a time (see the module docstring).

    `train`: a DeviceCifar split, `DeviceTensors`, `HostDataset`, or any object with len() and
    batch(idx, augment=, generator=). epochs x steps_per_epoch steps of batch_size examples (the
    last partial batch of an epoch dropped); `warmup_steps` of linear warm-up then cosine decay from
    `lr`. `loss_fn(outputs, targets)`: a mean over the batch (default cross-entropy). `autocast`
    (e.g. torch.bfloat16) runs forward and backward under torch.autocast on the device. Under
    torch.distributed `model` is the DistributedDataParallel one and batch_size (the global batch) a
    multiple of the world size.
    """

    def __init__(
        self,
        model,
        opt,
        train,
        *,
        batch_size,
        epochs,
        steps_per_epoch,
        warmup_steps,
        lr,
        augment=True,
        seed=0,
        autocast=None,
        loss_fn=None,
    ):
        if steps_per_epoch < 1 or steps_per_epoch * batch_size > len(train):
            raise ValueError(
                f"steps_per_epoch must be in [1, {len(train) // batch_size}] for {len(train)} "
                f"images in batches of {batch_size}, got {steps_per_epoch}"
            )
        self.rank, self.world = _dist()
        if batch_size % self.world:
            raise ValueError(
                f"batch_size ({batch_size}) must be a multiple of the {self.world} processes: each "
                "trains on an equal slice of every batch"
            )
        self.model, self.opt, self.train = model, opt, train
        self.batch_size, self.epochs, self.steps_per_epoch = batch_size, epochs, steps_per_epoch
        self.warmup_steps, self.lr, self.augment, self.autocast = (
            warmup_steps,
            lr,
            augment,
            autocast,
        )
        self.loss_fn = loss_fn or torch.nn.functional.cross_entropy
        self.T = epochs * steps_per_epoch
        self.device = train.device
        self.generator = torch.Generator(self.device).manual_seed(seed + 1)
        self.step_index, self.perm, self.perm_epoch = 0, None, 0
        self.loss_sum = torch.zeros((), device=self.device)
        self.epoch_losses = []
        self.batchnorm = GlobalBatchNorm(model, self.rank, self.world) if self.world > 1 else None

    @property
    def epoch(self) -> int:
        """The 1-based epoch of the next step."""
        return self.step_index // self.steps_per_epoch + 1

    def begin_step(self):
        """Set up the next step: eq. 19's p and a fresh permutation at an epoch's start, the step's
        lr. Idempotent; `step` calls it, and so does code that inspects the optimizer before a
        step."""
        if self.step_index >= self.T:
            raise ValueError(f"training is complete ({self.T} steps)")
        epoch = self.epoch
        if self.perm_epoch != epoch:  # a new epoch (not a resumed one)
            if hasattr(self.opt, "set_epoch"):
                self.opt.set_epoch(epoch)
            self.perm, self.perm_epoch = (
                torch.randperm(len(self.train), generator=self.generator, device=self.device),
                epoch,
            )
            self.loss_sum.zero_()
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step_index, self.T, self.warmup_steps, self.lr)

    def step(self):
        """One optimizer step; at the end of an epoch its mean loss is read back (the one sync) and
        checked."""
        self.begin_step()
        epoch = self.epoch
        i = self.step_index % self.steps_per_epoch
        x, y = self._batch(self.perm[i * self.batch_size : (i + 1) * self.batch_size])
        with torch.autocast(
            self.device.type, dtype=self.autocast, enabled=self.autocast is not None
        ):
            loss = self._loss(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.loss_sum += loss.detach().float().reshape(())  # a loss of shape (1,) is one number
        self.step_index += 1
        if self.step_index % self.steps_per_epoch == 0:
            mean = (
                self._global(self.loss_sum).item() / self.steps_per_epoch
            )  # one host read per epoch
            if not math.isfinite(mean):
                raise ValueError(f"training diverged: the mean loss of epoch {epoch} is {mean}")
            self.epoch_losses.append(mean)

    def _loss(self, x, y):
        if self.batchnorm is None:
            return self.loss_fn(self.model(x), y)
        self.batchnorm.on = True
        try:
            return self.loss_fn(self.model(x), y)
        finally:
            self.batchnorm.on = False

    def _batch(self, idx):
        """This process's examples of the global batch `idx`: all of them, or its slice under
        torch.distributed (augmented for the whole batch first, so every rank draws the
        one-process run's random numbers)."""
        if self.world == 1:
            return self.train.batch(idx, augment=self.augment, generator=self.generator)
        part = slice(self.rank * len(idx) // self.world, (self.rank + 1) * len(idx) // self.world)
        if self.augment:
            x, y = self.train.batch(idx, augment=True, generator=self.generator)
            return x[part], y[part]
        return self.train.batch(idx[part], augment=False, generator=self.generator)

    def _global(self, loss_sum):
        """The mean over the ranks of their summed slice losses: the global batches' loss sum."""
        if self.world == 1:
            return loss_sum
        total = loss_sum.clone()
        torch.distributed.all_reduce(total)
        return total / self.world

    def state_dict(self) -> dict:
        """The loop's state; under torch.distributed a collective (every rank calls it): the loss
        sum saved is the global one, which every rank loads back."""
        return {
            "generator": self.generator.get_state(),
            "perm": None if self.perm is None else self.perm.cpu(),
            "perm_epoch": self.perm_epoch,
            "step": self.step_index,
            "loss_sum": self._global(self.loss_sum).cpu(),
            "epoch_losses": list(self.epoch_losses),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.perm_epoch, self.step_index = state["perm_epoch"], state["step"]
        self.loss_sum.copy_(state["loss_sum"])
        self.epoch_losses = list(state["epoch_losses"])
        if self.perm_epoch and hasattr(self.opt, "set_epoch"):
            self.opt.set_epoch(self.perm_epoch)


def evaluate(model, data, batch_size=512, autocast=None, loss_fn=None) -> dict:
    """The mean loss and the top-1 accuracy of `model` on a split, in eval mode (restored).

    Default loss: cross-entropy, reported as 'nll' (and 'loss'). With `loss_fn` (a mean over a
    batch) 'loss' is its mean over the split (batches weighted by their size) and 'nll' is None.
    'accuracy' is None where the outputs are not class scores for integer labels ((n, C) and (n,)).
    """
    was = model.training
    model.eval()
    device = getattr(data, "index_device", data.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.device)
    total = torch.zeros((), dtype=torch.float64, device=data.device)
    classes = True
    with (
        torch.no_grad(),
        torch.autocast(data.device.type, dtype=autocast, enabled=autocast is not None),
    ):
        for i in range(0, len(data), batch_size):
            x, y = data.batch(torch.arange(i, min(i + batch_size, len(data)), device=device))
            out = model(x)
            classes = (
                classes
                and out.ndim == 2
                and y.ndim == 1
                and not y.is_floating_point()
                and not y.is_complex()
            )
            if classes:
                correct += (out.argmax(1) == y).sum()
            if loss_fn is None:
                total += torch.nn.functional.cross_entropy(out.float(), y, reduction="sum").double()
            else:
                total += loss_fn(out, y).detach().double().reshape(()) * len(y)
    model.train(was)
    out = torch.stack([correct.double(), total]).cpu()  # one host read
    loss = float(out[1]) / len(data)
    return {
        "accuracy": float(out[0]) / len(data) if classes else None,
        "loss": loss,
        "nll": loss if loss_fn is None else None,
    }


class Progress:
    """A tqdm bar on stderr when it is a terminal (and not quiet); otherwise silent."""

    def __init__(self, total, initial=0, quiet=False, unit="step"):
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, unit=unit, file=sys.stderr, dynamic_ncols=True
            )

    def update(self, n=1):
        if self.bar is not None:
            self.bar.update(n)

    def note(self, text):
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def close(self):
        if self.bar is not None:
            self.bar.close()
