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
import os
import time
from pathlib import Path

import torch

from lpcheck import data as cifar
from lpcheck import checks, models, report
from lpcheck.estimate import render
from lpcheck.estimate.probe import Probe
from lpcheck.training import Progress, Training, evaluate, lr_at, make_optimizer, paper_hyperparameters, torch_device

__all__ = ["Config", "defaults_for", "lr_at", "checkpoint_steps", "run"]


def defaults_for(dataset: str, model: str) -> dict:
    """Table 4/5's LPSGDM hyperparameters for a dataset ('cifar10'/'cifar100') and model."""
    hp = paper_hyperparameters(dataset, model, "lpsgdm")
    return {k: hp[k] for k in ("lr", "p_max", "weight_decay", "batch_size", "momentum", "eps")}


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
    loss_lower_bound: float | None = None  # f* or a bound on it; None: 0, as cross-entropy (these runs' loss) is >= 0

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
    if c.samples < 2:
        raise ValueError(f"--samples must be >= 2 (the intervals are a bootstrap over the K mini-batches), got {c.samples}")
    if c.batches_per_epoch is not None and c.batches_per_epoch < 1:
        raise ValueError(f"--batches-per-epoch must be >= 1, got {c.batches_per_epoch}")
    if not (c.width > 0):
        raise ValueError(f"--width must be > 0, got {c.width}")
    if not (c.lr > 0) or not (c.weight_decay >= 0) or not (c.eps > 0) or not (0 <= c.momentum < 1):
        raise ValueError("need --lr > 0, --weight-decay >= 0, --eps > 0 and --momentum in [0, 1)")
    if c.loss_lower_bound is not None:
        checks.real("--loss-lower-bound", c.loss_lower_bound)
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


def _save_state(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run(config: Config, resume: bool = False, quiet: bool = False, command=None) -> dict:
    """Train with probes; write constants.json/.md, plots and state.pt under config.out. Returns the report."""
    out = Path(config.out)
    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError("lpcheck estimate runs on one device; under torchrun use lpcheck.estimate.Probe "
                         "in your own DDP loop (see the README)")
    device = torch_device(config.device)
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
    opt = make_optimizer(c.optimizer, model.parameters(), dataclasses.asdict(c), c.epochs)
    train = cifar.DeviceCifar.train(dataset, device)
    test = cifar.DeviceCifar.test(dataset, device)
    probe = Probe(model, train, batch_size=c.batch_size, samples=c.samples, mode=c.mode,
                  step_pairs=c.step_pairs, seed=c.seed, loss_lower_bound=c.loss_lower_bound)
    warmup = round(c.warmup_epochs * steps_per_epoch)
    training = Training(model, opt, train, batch_size=c.batch_size, epochs=c.epochs, steps_per_epoch=steps_per_epoch,
                        warmup_steps=warmup, lr=c.lr, augment=c.augment, seed=c.seed)
    train_seconds = 0.0
    if resume:
        st = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        probe.load_state_dict(st["probe"])
        training.load_state_dict(st["training"])
        train_seconds = st["train_seconds"]
    data_info = {"dataset": dataset.name, "source": dataset.source, "train_images": len(dataset.y_train),
                 "test_images": len(dataset.y_test), "steps_per_epoch": steps_per_epoch, "T": T,
                 "warmup_steps": warmup, "probe_steps": probe_at, "parameters": sum(p.numel() for p in probe.params),
                 "probe_blocks": probe.n_blocks}
    prov = report.provenance(device, command=command)
    earlier = []  # the provenance of the interrupted invocations this run continues
    if resume:
        saved = report.read_json(json_path)
        earlier = saved.get("earlier_provenance", []) + [saved["provenance"]]
    lrs = [lr_at(t, T, warmup, c.lr) for t in range(T)]  # every step's lr: the fit compares the cap with their peak

    def write(complete, test_acc=None):
        data = {"config": dataclasses.asdict(c), "run": data_info, "complete": complete,
                "epoch_losses": training.epoch_losses, "train_seconds": train_seconds, "test_accuracy": test_acc,
                "records": probe.records, "provenance": prov}
        if earlier:
            data["earlier_provenance"] = earlier
        if probe.records:
            data["fit"] = probe.fit(T, confidence=c.confidence, resamples=c.resamples, seed=c.seed, lr_used=lrs)
        report.write_report(out, "constants", data, render.markdown)
        return data

    def save():
        _save_state(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "probe": probe.state_dict(),
                                 "training": training.state_dict(), "train_seconds": train_seconds})

    progress = Progress(T, training.step_index, quiet)
    try:
        while training.step_index < T:
            step = training.step_index
            if step in probe_at and len(probe.records) == probe_at.index(step):
                training.begin_step()  # the optimizer as the next step will see it: this epoch's p, this step's lr
                progress.note(f"probe {len(probe.records) + 1}/{len(probe_at)}")
                probe.measure(opt, step=step)
                write(False)
                save()
                progress.note(f"probe {len(probe.records)}/{len(probe_at)} done")
            t0 = time.perf_counter()
            training.step()
            train_seconds += time.perf_counter() - t0  # host time; on CUDA the epoch's .item() settles it
            progress.update()
        save()  # the final state: a --resume of a finished run only re-renders its report
        result = write(True, evaluate(model, test, c.batch_size)["accuracy"])
    finally:
        progress.close()
        if json_path.exists():  # also when interrupted: the plots show what was measured
            render.plots(report.read_json(json_path), out)
    return result
