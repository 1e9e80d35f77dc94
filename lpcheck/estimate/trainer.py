"""The run behind `lpcheck estimate`: train a CIFAR model with LPSGD/LPSGDM and probe it N times.

Everything stays on the chosen device: the training images are stored there once (uint8), batches
are gathered by a device-side permutation, augmented and normalised there (`lpcheck.data`), and the
loop reads nothing back per step (the optimizer's per-step finiteness check is off; a non-finite
loss is caught at the end of each epoch and by the probe). The learning rate follows a per-step
linear warm-up from 0.1 lr to lr, then a cosine decay to 0 (the paper's "warmup cosine decay";
`lr_at`); p follows eq. 19 per epoch (`opt.set_epoch`). Batches of b images, the last partial batch of
an epoch dropped, so an epoch is floor(n / b) steps (or `batches_per_epoch`).

Probes run before steps t_i = floor(i T / N), i = 0..N-1 (t_0 = 0 is the initialisation), with the
optimizer's state at that moment. After each probe, constants.json/.md are rewritten
and the training state (model, optimizer, data generator, epoch permutation, probe) is saved to
state.pt beside them, so an interrupted run keeps what it measured and `resume` continues from the
last probe to the same numbers as an uninterrupted run. The plots (constants.png, frontier.png) are
rendered from constants.json when the run ends, also when it is interrupted or fails.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import torch

from lpcheck import data as cifar
from lpcheck import models, report
from lpcheck.estimate import render
from lpcheck.estimate.probe import Probe
from lpcheck.optim import LPSGD, LPSGDM, NonFiniteGradientError

__all__ = ["Config", "PAPER_DEFAULTS", "defaults_for", "lr_at", "checkpoint_steps", "run"]

# The paper's Appendix A, LPSGDM rows: Table 4 (CIFAR-10) and Table 5 (CIFAR-100). All: batch 128,
# beta 0.9, eps 1e-8, warm-up + cosine learning-rate schedule.
PAPER_DEFAULTS = {
    ("cifar10", "resnet18"): {"lr": 0.001, "p_max": 6.0, "weight_decay": 0.01},
    ("cifar10", "resnet50"): {"lr": 0.002, "p_max": 6.0, "weight_decay": 0.0001},
    ("cifar10", "vgg11"): {"lr": 0.001, "p_max": 6.0, "weight_decay": 0.01},
    ("cifar100", "resnet18"): {"lr": 0.01, "p_max": 6.0, "weight_decay": 0.1},
    ("cifar100", "resnet50"): {"lr": 0.001, "p_max": 6.0, "weight_decay": 0.1},
    ("cifar100", "vgg11"): {"lr": 0.0005, "p_max": 8.0, "weight_decay": 0.0005},
}
COMMON_DEFAULTS = {"batch_size": 128, "momentum": 0.9, "eps": 1e-8}


def defaults_for(dataset: str, model: str) -> dict:
    """Table 4/5's LPSGDM hyperparameters for a dataset ('cifar10'/'cifar100') and model."""
    if (dataset, model) not in PAPER_DEFAULTS:
        raise ValueError(f"no paper defaults for {model} on {dataset}; models: {sorted(models.MODELS)}")
    return {**COMMON_DEFAULTS, **PAPER_DEFAULTS[(dataset, model)]}


@dataclasses.dataclass
class Config:
    """One run; every field is in constants.json and must match for `resume`. None = paper default."""

    model: str
    data: str
    out: str
    optimizer: str = "lpsgdm"
    epochs: int = 200
    checkpoints: int = 20
    samples: int = 32
    device: str = "cpu"
    width: float = 1.0
    train_subset: int | None = None
    batches_per_epoch: int | None = None
    seed: int = 0
    mode: str = "train"
    p_max: float | None = None
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    eps: float | None = None
    batch_size: int | None = None
    warmup_epochs: float | None = None
    step_pairs: int = 1
    augment: bool = True
    resamples: int = 4000
    confidence: float = 0.95
    threads: int | None = None

    def resolved(self, dataset: str) -> "Config":
        """The config with every None replaced by the paper's value for this dataset and model."""
        d = defaults_for(dataset, self.model)
        c = dataclasses.replace(self, **{k: v for k, v in d.items() if getattr(self, k) is None})
        if c.warmup_epochs is None:
            c.warmup_epochs = 0.025 * c.epochs  # 5 of 200 epochs, the schedule in the README
        return c


def _check(c: Config, n_train: int) -> tuple[int, int, list[int]]:
    if c.optimizer not in ("lpsgd", "lpsgdm"):
        raise ValueError(f"--optimizer must be 'lpsgd' or 'lpsgdm', got {c.optimizer!r}")
    if c.mode not in ("train", "eval"):
        raise ValueError(f"--mode must be 'train' or 'eval', got {c.mode!r}")
    for name in ("epochs", "checkpoints", "samples", "batch_size"):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
    if c.batches_per_epoch is not None and c.batches_per_epoch < 1:
        raise ValueError(f"--batches-per-epoch must be >= 1, got {c.batches_per_epoch}")
    if not (c.width > 0):
        raise ValueError(f"--width must be > 0, got {c.width}")
    if not (c.lr > 0) or not (c.weight_decay >= 0) or not (c.eps > 0) or not (0 <= c.momentum < 1):
        raise ValueError("need --lr > 0, --weight-decay >= 0, --eps > 0 and --momentum in [0, 1)")
    if not (0 <= c.warmup_epochs < c.epochs):
        raise ValueError(f"--warmup-epochs must be in [0, epochs) = [0, {c.epochs}), got {c.warmup_epochs}")
    full = n_train // c.batch_size
    if full < 1:
        raise ValueError(f"the training set has {n_train} images, fewer than one batch of {c.batch_size}")
    steps_per_epoch = min(full, c.batches_per_epoch or full)
    T = c.epochs * steps_per_epoch
    if c.checkpoints > T:
        raise ValueError(f"--checkpoints ({c.checkpoints}) must be <= the number of steps T = {T}")
    return steps_per_epoch, T, checkpoint_steps(T, c.checkpoints)


def checkpoint_steps(T: int, n: int) -> list[int]:
    """t_i = floor(i T / n), i = 0..n-1: evenly spaced, the first at initialisation."""
    return [i * T // n for i in range(n)]


def lr_at(step: int, T: int, warmup_steps: int, lr: float) -> float:
    """Warm-up (linear, 0.1 lr -> lr over warmup_steps) then cosine decay to 0 at step T."""
    if step < warmup_steps:
        return lr * (0.1 + 0.9 * step / warmup_steps)
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, T - warmup_steps)))


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device must be cpu or cuda[:i], got {name!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
                             f"built with CUDA {torch.version.cuda}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ValueError(f"--device must be cpu or cuda[:i], got {name!r}")
    return dev


def _optimizer(c: Config, model, total_epochs):
    if c.optimizer == "lpsgdm":
        return LPSGDM(model.parameters(), lr=c.lr, p_max=c.p_max, total_epochs=total_epochs, momentum=c.momentum,
                      weight_decay=c.weight_decay, eps=c.eps, check_finite=False)
    return LPSGD(model.parameters(), lr=c.lr, p_max=c.p_max, total_epochs=total_epochs, eps=c.eps, check_finite=False)


def _save_state(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class _Progress:
    def __init__(self, total, initial, quiet):
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True)

    def update(self, n=1):
        if self.bar is not None:
            self.bar.update(n)

    def note(self, text):
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _evaluate(model, test, batch_size):
    was = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=test.device)
    with torch.no_grad():
        for i in range(0, len(test), batch_size):
            x, y = test.batch(torch.arange(i, min(i + batch_size, len(test)), device=test.device))
            correct += (model(x).argmax(1) == y).sum()
    model.train(was)
    return correct.item() / len(test)


def run(config: Config, resume: bool = False, quiet: bool = False, command=None) -> dict:
    """Train with probes; write constants.json/.md, plots and state.pt under config.out. Returns the report."""
    out = Path(config.out)
    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError("lpcheck estimate runs on one device; under torchrun use lpcheck.estimate.Probe "
                         "in your own DDP loop (see the README)")
    device = _device(config.device)
    dataset = cifar.load_cifar(config.data)
    if config.train_subset is not None:
        dataset = dataset.subset(config.train_subset)
    c = config.resolved(dataset.name)
    steps_per_epoch, T, probe_at = _check(c, len(dataset.y_train))
    state_path, json_path = out / "state.pt", out / "constants.json"
    if resume:
        if not json_path.exists() or not state_path.exists():
            raise FileNotFoundError(f"--resume: no interrupted run in {out} (needs constants.json and state.pt)")
        saved = report.read_json(json_path)["config"]
        mine = report.to_jsonable(dataclasses.asdict(c))
        diff = {k: (saved.get(k), v) for k, v in mine.items() if saved.get(k) != v and k not in ("device", "threads")}
        if diff:
            raise ValueError(f"--resume: the options differ from the saved run's (saved, now): {diff}")
    elif json_path.exists():
        raise ValueError(f"{json_path} exists: pass --resume to continue that run, or choose another --out")
    threads = torch.get_num_threads()
    if c.threads:
        torch.set_num_threads(c.threads)
    try:
        return _train_and_probe(c, dataset, device, out, steps_per_epoch, T, probe_at, resume, quiet, command)
    finally:
        torch.set_num_threads(threads)


def _train_and_probe(c, dataset, device, out, steps_per_epoch, T, probe_at, resume, quiet, command):
    state_path, json_path = out / "state.pt", out / "constants.json"
    torch.manual_seed(c.seed)
    model = models.build(c.model, num_classes=dataset.num_classes, width=c.width).to(device)
    opt = _optimizer(c, model, c.epochs)
    train = cifar.DeviceCifar.train(dataset, device)
    test = cifar.DeviceCifar.test(dataset, device)
    probe = Probe(model, train, batch_size=c.batch_size, samples=c.samples, mode=c.mode,
                  step_pairs=c.step_pairs, seed=c.seed)
    gen = torch.Generator(device).manual_seed(c.seed + 1)
    warmup = round(c.warmup_epochs * steps_per_epoch)
    step, perm, perm_epoch, epoch_losses, train_seconds = 0, None, 0, [], 0.0
    loss_sum = torch.zeros((), device=device)
    if resume:
        st = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        gen.set_state(st["generator"])
        probe.load_state_dict(st["probe"])
        step, perm, perm_epoch = st["step"], st["perm"].to(device), st["perm_epoch"]
        epoch_losses, train_seconds = st["epoch_losses"], st["train_seconds"]
        loss_sum.copy_(st["loss_sum"])
    data_info = {"dataset": dataset.name, "source": dataset.source, "train_images": len(dataset.y_train),
                 "test_images": len(dataset.y_test), "steps_per_epoch": steps_per_epoch, "T": T,
                 "warmup_steps": warmup, "probe_steps": probe_at, "parameters": sum(p.numel() for p in probe.params),
                 "probe_blocks": probe.n_blocks}
    prov = report.provenance(device, command=command)
    earlier = []  # the provenance of the interrupted invocations this run continues
    if resume:
        saved = report.read_json(json_path)
        earlier = saved.get("earlier_provenance", []) + [saved["provenance"]]
    lr_peak = max(lr_at(t, T, warmup, c.lr) for t in range(T))

    def write(complete, test_acc=None):
        data = {"config": dataclasses.asdict(c), "run": data_info, "complete": complete,
                "epoch_losses": epoch_losses, "train_seconds": train_seconds, "test_accuracy": test_acc,
                "records": probe.records, "provenance": prov}
        if earlier:
            data["earlier_provenance"] = earlier
        if probe.records:
            data["fit"] = probe.fit(T, confidence=c.confidence, resamples=c.resamples, seed=c.seed, lr_used=lr_peak)
        report.write_report(out, "constants", data, render.markdown)
        return data

    def save():
        _save_state(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                                 "perm": perm.cpu(), "perm_epoch": perm_epoch, "step": step, "probe": probe.state_dict(),
                                 "epoch_losses": epoch_losses, "train_seconds": train_seconds, "loss_sum": loss_sum.cpu()})

    progress = _Progress(T, step, quiet)
    try:
        while step < T:
            epoch = step // steps_per_epoch + 1
            opt.set_epoch(epoch)
            if perm_epoch != epoch:  # a new epoch (not a resumed one): a fresh permutation
                perm, perm_epoch = torch.randperm(len(train), generator=gen, device=device), epoch
                loss_sum.zero_()
            for g in opt.param_groups:
                g["lr"] = lr_at(step, T, warmup, c.lr)
            if step in probe_at and len(probe.records) == probe_at.index(step):
                progress.note(f"probe {len(probe.records) + 1}/{len(probe_at)}")
                probe.measure(opt, step=step)
                write(False)
                save()
                progress.note(f"probe {len(probe.records)}/{len(probe_at)} done")
            t0 = time.perf_counter()
            i = step % steps_per_epoch
            x, y = train.batch(perm[i * c.batch_size:(i + 1) * c.batch_size], augment=c.augment, generator=gen)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            step += 1
            if step % steps_per_epoch == 0:
                mean = loss_sum.item() / steps_per_epoch  # one host read per epoch
                if not math.isfinite(mean):
                    raise NonFiniteGradientError(f"training diverged: the mean loss of epoch {epoch} is {mean}")
                epoch_losses.append(mean)
            train_seconds += time.perf_counter() - t0  # host time; on CUDA the epoch's .item() settles it
            progress.update()
        save()  # the final state: a --resume of a finished run only re-renders its report
        result = write(True, _evaluate(model, test, c.batch_size))
    except NonFiniteGradientError as e:
        raise ValueError(str(e)) from None
    finally:
        progress.close()
        if json_path.exists():  # also when interrupted: the plots show what was measured
            render.plots(report.read_json(json_path), out)
    return result
