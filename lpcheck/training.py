"""The CIFAR training loop shared by `lpcheck estimate` and the experiments, and the paper's settings.

- `PAPER_HYPERPARAMETERS`: Appendix A, Tables 4 (CIFAR-10) and 5 (CIFAR-100), for SGD with momentum,
  AdamW, Lion and LPSGDM; `paper_hyperparameters(dataset, model, optimizer)`.
- `make_optimizer(name, params, hp, total_epochs)`: the four optimizers (and LPSGD) from those rows.
- `lr_at(step, T, warmup_steps, lr)`: the per-step "warmup cosine decay" schedule.
- `Training`: one model, optimizer and training split on one device. Batches are gathered by a
  device-side permutation, augmented and normalised there (`lpcheck.data.DeviceCifar`); the lr is
  set every step, p every epoch (eq. 19, for LPSGD/LPSGDM); the loss is summed on the device and
  read once per epoch: no per-step host transfer or sync. Its state (step, permutation, generator,
  loss sum) round-trips through `state_dict`, so a resumed run continues exactly.
- `evaluate(model, data)`: top-1 accuracy and mean NLL in eval mode, one host read.
- Option checks shared by `lpcheck estimate` and the experiment scripts, each a ValueError naming the
  option before any work: `torch_device`, `check_threads`, `check_seed`, `check_model_size`.
"""

from __future__ import annotations

import math
import os
import sys

import torch

from lpcheck import checks

__all__ = ["PAPER_HYPERPARAMETERS", "paper_hyperparameters", "make_optimizer", "lr_at", "torch_device", "Training",
           "evaluate", "Progress", "OPTIMIZERS", "check_threads", "check_seed", "check_model_size", "check_steps",
           "SEED_MAX", "STEPS_MAX"]

SEED_MAX = 2**63 - 1  # torch generators take [0, 2**64); offsets added to a seed (+1, +7919) stay below that
STEPS_MAX = 10**7  # training steps per run: 25,600 CIFAR-10 epochs of batch 128; past it a typo, not a plan

OPTIMIZERS = ("sgdm", "adamw", "lion", "lpsgdm", "lpsgd")

# Appendix A (batch 128, warm-up cosine lr). SGDM: torch's momentum 0.9 with coupled L2 decay; AdamW
# betas (0.9, 0.999), eps 1e-8; Lion betas (0.9, 0.999) as Table 4/5 list them (Section 6's text says
# beta2 = 0.99: the tables are "the complete hyper-parameter settings", so they win); LPSGDM beta 0.9,
# eps 1e-8. Table 4 lists eps for SGDM too, where it has no role.
_T4 = {
    "vgg11": {"sgdm": (0.1, 0.001), "adamw": (0.001, 0.1), "lion": (0.0001, 0.001), "lpsgdm": (0.001, 0.01, 6.0)},
    "resnet18": {"sgdm": (0.1, 0.001), "adamw": (0.001, 0.1), "lion": (0.0001, 0.001), "lpsgdm": (0.001, 0.01, 6.0)},
    "resnet50": {"sgdm": (0.05, 0.0005), "adamw": (0.001, 0.0001), "lion": (0.0001, 0.0005), "lpsgdm": (0.002, 0.0001, 6.0)},
}
_T5 = {
    "vgg11": {"sgdm": (0.1, 0.001), "adamw": (0.001, 0.001), "lion": (0.0001, 0.0001), "lpsgdm": (0.0005, 0.0005, 8.0)},
    "resnet18": {"sgdm": (0.1, 0.01), "adamw": (0.01, 0.1), "lion": (0.001, 0.1), "lpsgdm": (0.01, 0.1, 6.0)},
    "resnet50": {"sgdm": (0.1, 1e-5), "adamw": (0.001, 0.1), "lion": (0.001, 1e-5), "lpsgdm": (0.001, 0.1, 6.0)},
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
        raise ValueError(f"no paper hyperparameters for {optimizer} / {model} / {dataset}; datasets "
                         f"{sorted(PAPER_HYPERPARAMETERS)}, models {sorted(_T4)}, optimizers {list(OPTIMIZERS)}")
    return dict(PAPER_HYPERPARAMETERS[dataset][key])


def make_optimizer(name: str, params, hp: dict, total_epochs: int, check_finite: bool = False, **options):
    """The optimizer `name` with hyperparameters `hp` (a paper row, possibly overridden).

    check_finite (LPSGD/LPSGDM) is off by default in training loops: a non-finite loss is caught once
    per epoch instead of one host sync per step. `options` go to the constructor (foreach=, fused=).
    """
    from lpcheck.baselines import Lion
    from lpcheck.optim import LPSGD, LPSGDM

    if name == "sgdm":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"], **options)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"],
                                 **options)
    if name == "lion":
        return Lion(params, lr=hp["lr"], betas=hp["betas"], weight_decay=hp["weight_decay"], **options)
    if name == "lpsgdm":
        return LPSGDM(params, lr=hp["lr"], p_max=hp["p_max"], total_epochs=total_epochs, momentum=hp["momentum"],
                      weight_decay=hp["weight_decay"], eps=hp["eps"], check_finite=check_finite, **options)
    if name == "lpsgd":
        return LPSGD(params, lr=hp["lr"], p_max=hp["p_max"], total_epochs=total_epochs, eps=hp["eps"],
                     check_finite=check_finite, **options)
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")


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
            raise ValueError(f"{option} {name}: CUDA is not available here (torch {torch.__version__}, "
                             f"built with CUDA {torch.version.cuda}); use {option} cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{option} {name}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"{option} must be cpu or cuda[:i], got {name!r}")
    return dev


def check_threads(value, option: str = "--threads"):
    """None (torch's choice) or an integer in [1, the CPUs here]: torch.set_num_threads(0) raises deep
    inside torch, and a huge count spawns that many OpenMP threads (10^6 crashes the process)."""
    if value is None:
        return None
    return checks.integer(option, value, low=1, high=os.cpu_count() or 1)


def check_seed(value, option: str = "--seed") -> int:
    """An integer in [0, 2**63 - 1]: numpy's generators refuse negative seeds, torch's overflow at 2**64."""
    v = checks.as_number(option, value, kind="integer", what="an integer in [0, 2**63 - 1]")
    if not 0 <= v <= SEED_MAX:
        raise ValueError(f"{option} must be an integer in [0, 2**63 - 1], got {v}")
    return v


def check_steps(epochs: int, steps_per_epoch: int, option: str = "--epochs") -> int:
    """T = epochs x steps_per_epoch, refused (naming `option`) past STEPS_MAX."""
    T = epochs * steps_per_epoch
    if T > STEPS_MAX:
        raise ValueError(f"{option} {epochs} x {steps_per_epoch} steps per epoch = {T:.3g} steps, more than "
                         f"{STEPS_MAX:.0e}")
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


def check_model_size(model_name: str, num_classes: int, width: float, device, copies: int = 4,
                     option: str = "--width") -> int:
    """The model's parameter count, built on the meta device (no memory); ValueError naming `option` when
    `copies` float32 copies of its parameters (weights, gradients, optimizer state, ...) cannot fit in the
    device's available memory: a huge --width must be refused, not fail inside the allocator."""
    from lpcheck import models

    try:
        with torch.device("meta"):
            n = sum(p.numel() for p in models.build(model_name, num_classes=num_classes, width=width).parameters())
    except (RuntimeError, OverflowError):  # a tensor size past int64
        raise ValueError(f"{option} {width:g} gives {model_name} more parameters than a tensor can hold") from None
    except ValueError as e:  # lpcheck.models' own refusal, named as the option the user gave
        raise ValueError(f"{option} {width:g}: {e}") from None
    need, have = 4 * copies * n, _available_bytes(torch.device(device))
    if have is not None and need > have:
        raise ValueError(f"{option} {width:g} gives {model_name} {n:.3g} parameters: {copies} float32 copies need "
                         f"{need / 2**30:.3g} GiB, {torch.device(device)} has {have / 2**30:.3g} GiB available")
    return n


class Training:
    """Train `model` with `opt` on a DeviceCifar split, one step at a time (see the module docstring).

    epochs x steps_per_epoch steps of batch_size images (the last partial batch of an epoch dropped);
    `warmup_steps` of linear warm-up then cosine decay from `lr`. `autocast` (e.g. torch.bfloat16)
    runs forward and backward under torch.autocast on the device.
    """

    def __init__(self, model, opt, train, *, batch_size, epochs, steps_per_epoch, warmup_steps, lr, augment=True,
                 seed=0, autocast=None):
        if steps_per_epoch < 1 or steps_per_epoch * batch_size > len(train):
            raise ValueError(f"steps_per_epoch must be in [1, {len(train) // batch_size}] for {len(train)} images "
                             f"in batches of {batch_size}, got {steps_per_epoch}")
        self.model, self.opt, self.train = model, opt, train
        self.batch_size, self.epochs, self.steps_per_epoch = batch_size, epochs, steps_per_epoch
        self.warmup_steps, self.lr, self.augment, self.autocast = warmup_steps, lr, augment, autocast
        self.T = epochs * steps_per_epoch
        self.device = train.device
        self.generator = torch.Generator(self.device).manual_seed(seed + 1)
        self.step_index, self.perm, self.perm_epoch = 0, None, 0
        self.loss_sum = torch.zeros((), device=self.device)
        self.epoch_losses = []

    @property
    def epoch(self) -> int:
        """The 1-based epoch of the next step."""
        return self.step_index // self.steps_per_epoch + 1

    def begin_step(self):
        """Set up the next step: eq. 19's p and a fresh permutation at an epoch's start, the step's lr.
        Idempotent; `step` calls it, and so does code that inspects the optimizer before a step."""
        if self.step_index >= self.T:
            raise ValueError(f"training is complete ({self.T} steps)")
        epoch = self.epoch
        if self.perm_epoch != epoch:  # a new epoch (not a resumed one)
            if hasattr(self.opt, "set_epoch"):
                self.opt.set_epoch(epoch)
            self.perm, self.perm_epoch = torch.randperm(len(self.train), generator=self.generator, device=self.device), epoch
            self.loss_sum.zero_()
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step_index, self.T, self.warmup_steps, self.lr)

    def step(self):
        """One optimizer step; at the end of an epoch its mean loss is read back (the one sync) and checked."""
        self.begin_step()
        epoch = self.epoch
        i = self.step_index % self.steps_per_epoch
        x, y = self.train.batch(self.perm[i * self.batch_size:(i + 1) * self.batch_size], augment=self.augment,
                                generator=self.generator)
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.loss_sum += loss.detach().float()
        self.step_index += 1
        if self.step_index % self.steps_per_epoch == 0:
            mean = self.loss_sum.item() / self.steps_per_epoch  # one host read per epoch
            if not math.isfinite(mean):
                raise ValueError(f"training diverged: the mean loss of epoch {epoch} is {mean}")
            self.epoch_losses.append(mean)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": None if self.perm is None else self.perm.cpu(),
                "perm_epoch": self.perm_epoch, "step": self.step_index, "loss_sum": self.loss_sum.cpu(),
                "epoch_losses": list(self.epoch_losses)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.perm_epoch, self.step_index = state["perm_epoch"], state["step"]
        self.loss_sum.copy_(state["loss_sum"])
        self.epoch_losses = list(state["epoch_losses"])
        if self.perm_epoch and hasattr(self.opt, "set_epoch"):
            self.opt.set_epoch(self.perm_epoch)


def evaluate(model, data, batch_size=512, autocast=None) -> dict:
    """Top-1 accuracy and mean cross-entropy of `model` on a DeviceCifar split, in eval mode (restored)."""
    was = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=data.device)
    nll = torch.zeros((), dtype=torch.float64, device=data.device)
    with torch.no_grad(), torch.autocast(data.device.type, dtype=autocast, enabled=autocast is not None):
        for i in range(0, len(data), batch_size):
            x, y = data.batch(torch.arange(i, min(i + batch_size, len(data)), device=data.device))
            logits = model(x).float()
            correct += (logits.argmax(1) == y).sum()
            nll += torch.nn.functional.cross_entropy(logits, y, reduction="sum").double()
    model.train(was)
    out = torch.stack([correct.double(), nll]).cpu()  # one host read
    return {"accuracy": float(out[0]) / len(data), "nll": float(out[1]) / len(data)}


class Progress:
    """A tqdm bar on stderr when it is a terminal (and not quiet); otherwise silent."""

    def __init__(self, total, initial=0, quiet=False, unit="step"):
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update(self, n=1):
        if self.bar is not None:
            self.bar.update(n)

    def note(self, text):
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def close(self):
        if self.bar is not None:
            self.bar.close()
