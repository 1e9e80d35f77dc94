"""The run behind `lpcheck estimate`: train a CIFAR model with LPSGD/LPSGDM and probe it N times.

Everything stays on the chosen device: the training images are stored there once (uint8), batches
are gathered by a device-side permutation, augmented and normalised there (`lpcheck.data`), and the
loop reads nothing back per step (the optimizer's per-step finiteness check is off; a non-finite
loss is caught at the end of each epoch and by the probe). The learning rate follows a per-step
linear warm-up from 0.1 lr to lr, then a cosine decay to 0 (the paper's "warmup cosine decay";
`lr_at`); p follows eq. 19 per epoch (`opt.set_epoch`). Batches of b images, the last partial batch of
an epoch dropped, so an epoch is floor(n / b) steps (or `batches_per_epoch`).

Probes run before steps t_i = floor(i T / N), i = 0..N-1 (t_0 = 0 is the initialisation), with the
optimizer's state at that moment. After each probe the training state (model, optimizer, data
generator, epoch permutation, probe, the settings) is saved to state.pt, and then constants.json/.md
are rewritten beside it, so an interrupted run keeps what it measured and `resume` continues from the
last saved probe to the same numbers as an uninterrupted run. state.pt is written first, so that a
run killed at any moment is either resumable (state.pt exists: `--resume` continues from it) or
restartable (no state.pt yet: `--resume` starts it again from step 0, which re-measures the same
numbers; constants.json can only lack a state.pt if one was removed, or written by an older lpcheck).
state.pt holds only tensors, numbers, strings, lists and dicts and is loaded with
`torch.load(weights_only=True)`: a crafted state.pt cannot run code. The plots (constants.png,
frontier.png) are rendered from constants.json when the run ends, also when it is interrupted or fails.

Every option is checked (`check_config`) before anything is loaded, built or written, and `resume`
refuses settings that differ from the saved run's, naming each difference; `data` is compared as a
resolved path and by the fingerprint of the arrays it holds, so the same file named differently is the
same run and another file at the same path is not.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from lpcheck import checks, models, report
from lpcheck import data as cifar
from lpcheck.estimate import render
from lpcheck.estimate.probe import Probe
from lpcheck.progress import Progress
from lpcheck.training import (Training, check_model_size, check_seed, check_steps, check_threads, evaluate,
                              lr_at, make_optimizer, paper_hyperparameters, torch_device)

__all__ = ["Config", "defaults_for", "lr_at", "checkpoint_steps", "check_config", "run", "STATE_FORMAT"]

STATE_FORMAT = 2  # state.pt's layout: 2 = weights_only-loadable, with the settings and the invocations


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
    dataset: str | None = None  # None: what the data declares (lpcheck.data)
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
        """The config with every None replaced by the paper's value for this dataset and model, the
        dataset named and the paths absolute (a resumed run is recognised however its paths are written)."""
        d = defaults_for(dataset, self.model)
        c = dataclasses.replace(self, **{k: v for k, v in d.items() if getattr(self, k) is None})
        c.dataset, c.data, c.out = dataset, str(Path(self.data).resolve()), str(Path(self.out).resolve())
        if c.warmup_epochs is None:
            c.warmup_epochs = 0.025 * c.epochs  # 5 of 200 epochs, the schedule in the README
        return c


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _float32(name, value, why):
    return None if value is None else checks.representable(name, value, torch.float32, why=why)


def check_config(config: Config) -> Config:
    """`config` with every option checked and made a plain Python value (None kept: a paper default), or
    ValueError naming the option and its range. Reads, builds and writes nothing."""
    c = dataclasses.replace(config)
    if c.model not in models.MODELS:
        raise ValueError(f"--model must be one of {sorted(models.MODELS)}, got {c.model!r}")
    if c.optimizer not in ("lpsgd", "lpsgdm"):
        raise ValueError(f"--optimizer must be 'lpsgd' or 'lpsgdm', got {c.optimizer!r}")
    if c.mode not in ("train", "eval"):
        raise ValueError(f"--mode must be 'train' or 'eval', got {c.mode!r}")
    cifar.check_dataset(c.dataset, "--dataset")
    if c.data is None or str(c.data) == "":
        raise ValueError("--data is empty: give a CIFAR .npz file or python-batch folder")
    report.check_out_dir(c.out, "--out")
    if not isinstance(c.augment, bool):
        raise ValueError(f"augment must be True or False, got {c.augment!r}")
    c.epochs = checks.integer("--epochs", c.epochs, low=1)
    c.checkpoints = checks.integer("--checkpoints", c.checkpoints, low=1)
    # K >= 2: the intervals bootstrap the K mini-batches; K values per statistic go into constants.json
    c.samples = checks.integer("--samples", c.samples, low=2, high=10**5)
    c.width = checks.real("--width", c.width, low=0, low_open=True)
    if c.train_subset is not None:
        c.train_subset = checks.integer("--train-subset", c.train_subset, low=1)
    if c.batches_per_epoch is not None:
        c.batches_per_epoch = checks.integer("--batches-per-epoch", c.batches_per_epoch, low=1)
    c.seed = check_seed(c.seed, "--seed")
    c.threads = check_threads(c.threads, "--threads")
    if c.p_max is not None:
        c.p_max = checks.real("--p-max", c.p_max, low=2)
    if c.lr is not None:
        c.lr = _float32("--lr", checks.real("--lr", c.lr, low=0, low_open=True), "the float32 model would not move")
    if c.weight_decay is not None:
        c.weight_decay = _float32("--weight-decay", checks.real("--weight-decay", c.weight_decay, low=0),
                                  "give 0 for no weight decay")
    if c.momentum is not None:
        c.momentum = checks.real("--momentum", c.momentum, low=0, high=1, high_open=True)
        if float(torch.tensor(c.momentum, dtype=torch.float32)) >= 1:
            raise ValueError(f"--momentum = {c.momentum!r} rounds to 1 in torch.float32: the momentum of eq. 23 "
                             "would never take in a gradient")
    if c.eps is not None:
        c.eps = _float32("--eps", checks.real("--eps", c.eps, low=0, low_open=True),
                         "(|g| + eps)^-rho would be inf at a zero gradient")
    if c.batch_size is not None:
        c.batch_size = checks.integer("--batch-size", c.batch_size, low=1)
    if c.warmup_epochs is not None:
        c.warmup_epochs = checks.real("--warmup-epochs", c.warmup_epochs, low=0, high=c.epochs, high_open=True)
    c.step_pairs = checks.integer("--step-pairs", c.step_pairs, low=0, high=c.samples)
    c.resamples = checks.integer("--resamples", c.resamples, low=100, high=10**6)  # x K draws in memory
    c.confidence = checks.real("--confidence", c.confidence, low=0, high=1, low_open=True, high_open=True)
    if c.loss_lower_bound is not None:
        c.loss_lower_bound = checks.real("--loss-lower-bound", c.loss_lower_bound)
    if not isinstance(c.device, str):
        raise ValueError(f"--device must be cpu or cuda[:i], got {c.device!r}")
    return c


def _sizes(c: Config, n_train: int) -> tuple[int, int, list[int]]:
    """(steps per epoch, T, probe steps) for the resolved config and n_train images, checked."""
    if c.batch_size > n_train:
        raise ValueError(f"--batch-size ({c.batch_size}) must be <= the {n_train} training images")
    full = n_train // c.batch_size
    if c.batches_per_epoch is not None and c.batches_per_epoch > full:
        raise ValueError(f"--batches-per-epoch ({c.batches_per_epoch}) must be <= the {full} full batches of "
                         f"{c.batch_size} in the {n_train} training images")
    steps_per_epoch = min(full, c.batches_per_epoch or full)
    T = check_steps(c.epochs, steps_per_epoch, "--epochs")
    if c.optimizer == "lpsgdm" and c.lr * c.weight_decay >= 1:  # the decay is (1 - lr lambda) theta
        raise ValueError(f"--lr x --weight-decay = {c.lr:g} x {c.weight_decay:g} must be < 1: the decoupled weight "
                         "decay (1 - lr lambda) theta would flip or zero the weights")
    if c.checkpoints > T:
        raise ValueError(f"--checkpoints ({c.checkpoints}) must be <= the number of steps T = {T}")
    return steps_per_epoch, T, checkpoint_steps(T, c.checkpoints)


def checkpoint_steps(T: int, n: int) -> list[int]:
    """t_i = floor(i T / n), i = 0..n-1: evenly spaced, the first at initialisation."""
    return [i * T // n for i in range(n)]


def _save_state(path: Path, state: dict) -> None:
    report.atomic_write(path, lambda tmp: torch.save(state, tmp))


def _load_state(path: Path) -> dict:
    """state.pt, loaded with weights_only=True (tensors, numbers, strings, lists, dicts: no code runs)."""
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a crafted pickle, a truncated file, another format
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{path} is not a state.pt that lpcheck estimate can load safely ({type(e).__name__}: "
                         f"{first[:200]}); remove it and pass --resume to restart the run from step 0") from None
    if not isinstance(st, dict) or st.get("format") != STATE_FORMAT or not isinstance(st.get("config"), dict):
        raise ValueError(f"{path} is not a state.pt of this lpcheck estimate (format {STATE_FORMAT}); remove it and "
                         "pass --resume to restart the run from step 0")
    return st


# settings that may change on resume: they decide where and how fast, not what is computed
_RESUMABLE = ("device", "threads", "out")


def _differences(saved: dict, c: Config, fingerprint: str, saved_fingerprint) -> list[str]:
    """The settings of `c` that differ from the saved run's, each as '--option: saved X, now Y'. The data is
    compared by its fingerprint where the run saved one (the same images at another path are the same run),
    else by its resolved path."""
    mine = report.to_jsonable(dataclasses.asdict(c))
    out = []
    for k, v in mine.items():
        if k in _RESUMABLE or (k == "data" and saved_fingerprint is not None):
            continue
        was = saved.get(k)
        if k == "data" and was is not None:
            was = str(Path(was).resolve())  # saved relative by an older lpcheck: read against this folder
        if was != v:
            name = "augment (--no-augment)" if k == "augment" else _option(k)
            out.append(f"{name}: saved {was!r}, now {v!r}" if isinstance(v, str) else f"{name}: saved {was}, now {v}")
    if saved_fingerprint is not None and saved_fingerprint != fingerprint:
        out.append(f"--data: the images or labels in {c.data} differ from the saved run's (sha256 "
                   f"{saved_fingerprint[:12]}..., now {fingerprint[:12]}...)")
    return out


def _previous(out: Path, state_path: Path, json_path: Path, resume: bool):
    """The state (or None) and settings of the run in `out`; refuses a fresh run over an existing one."""
    has_state, has_json = state_path.exists(), json_path.exists()
    if not resume:
        if has_state or has_json:
            names = ", ".join(p.name for p in (state_path, json_path) if p.exists())
            raise ValueError(f"{out} holds a run ({names}): pass --resume to continue it, or choose another --out")
        return None, None
    if has_state:
        st = _load_state(state_path)
        return st, st
    if has_json:  # no state saved yet (or it was removed): the run restarts from step 0
        saved = report.read_json(json_path)
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            raise ValueError(f"{json_path} is not a report of lpcheck estimate (no 'config'); choose another --out")
        return None, saved
    raise FileNotFoundError(f"--resume: no interrupted run in {out} (no state.pt or constants.json); "
                            "run without --resume to start one")


def run(config: Config, resume: bool = False, quiet: bool = False, command=None) -> dict:
    """Train with probes; write constants.json/.md, plots and state.pt under config.out. Returns the report.

    Everything is checked (options, device, data, model size, a previous run's settings) before the model
    is built or anything is written.
    """
    if os.environ.get("WORLD_SIZE", "1") != "1":
        raise ValueError("lpcheck estimate runs on one device; under torchrun use lpcheck.estimate.Probe "
                         "in your own DDP loop (see the README)")
    c = check_config(config)
    device = torch_device(c.device, "--device")
    out = Path(c.out)
    state_path, json_path = out / "state.pt", out / "constants.json"
    dataset = cifar.load_cifar(c.data, dataset=c.dataset)
    if c.train_subset is not None:
        dataset = dataset.subset(c.train_subset, "--train-subset")
    c = c.resolved(dataset.name)
    steps_per_epoch, T, probe_at = _sizes(c, len(dataset.y_train))
    check_model_size(c.model, dataset.num_classes, c.width, device, copies=6)  # + the probe's theta, grad
    fingerprint = dataset.fingerprint()
    state, saved = _previous(out, state_path, json_path, resume)
    if saved is not None:
        saved_fp = (saved.get("run") or {}).get("data_sha256")
        diff = _differences(saved["config"], c, fingerprint, saved_fp)
        if diff:
            raise ValueError(f"--resume: the run in {out} was made with other settings; resume with the saved ones "
                             f"or choose another --out: " + "; ".join(diff))
        if state is None:
            print(f"lpcheck estimate: {out} has no state.pt (the run was stopped before it saved one): restarting it "
                  "from step 0; the probes in constants.json are measured again", file=sys.stderr)
    threads = torch.get_num_threads()
    if c.threads:
        torch.set_num_threads(c.threads)
    try:
        return _train_and_probe(c, dataset, device, out, steps_per_epoch, T, probe_at, state, saved, fingerprint,
                                quiet, command)
    finally:
        torch.set_num_threads(threads)


def _train_and_probe(c, dataset, device, out, steps_per_epoch, T, probe_at, state, saved, fingerprint, quiet, command):
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
    earlier = []  # the provenance of the interrupted invocations this run continues
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            probe.load_state_dict(state["probe"])
            training.load_state_dict(state["training"])
            train_seconds = float(state["train_seconds"])
            earlier = list(state["invocations"])
        except (KeyError, RuntimeError, TypeError, ValueError) as e:  # same settings, so the file was altered
            raise ValueError(f"{state_path} does not fit this run's model and optimizer ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200]}); remove it and pass --resume to restart from step 0") \
                from None
    elif saved is not None:  # restarted: the invocations that wrote constants.json
        earlier = [p for p in saved.get("earlier_provenance", []) + [saved.get("provenance")] if p]
    data_info = {"dataset": dataset.name, "source": dataset.source, "data_sha256": fingerprint,
                 "train_images": len(dataset.y_train), "test_images": len(dataset.y_test),
                 "steps_per_epoch": steps_per_epoch, "T": T, "warmup_steps": warmup, "probe_steps": probe_at,
                 "parameters": sum(p.numel() for p in probe.params), "probe_blocks": probe.n_blocks}
    prov = report.provenance(device, command=command)
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
        # settings, run info and provenance as JSON values: the file loads with weights_only=True
        _save_state(state_path, {"format": STATE_FORMAT, "config": report.to_jsonable(dataclasses.asdict(c)),
                                 "run": report.to_jsonable(data_info), "invocations": earlier + [prov],
                                 "model": model.state_dict(), "optimizer": opt.state_dict(),
                                 "probe": probe.state_dict(), "training": training.state_dict(),
                                 "train_seconds": train_seconds})

    progress = _progress(T, training.step_index, len(probe_at) - len(probe.records), probe, c, quiet)
    try:
        while training.step_index < T:
            step = training.step_index
            if step in probe_at and len(probe.records) == probe_at.index(step):
                training.begin_step()  # the optimizer as the next step will see it: this epoch's p, this step's lr
                progress.note(f"probe {len(probe.records) + 1}/{len(probe_at)}")
                progress.mark()
                probe.measure(opt, step=step)
                save()  # the state first: a run stopped between the two files resumes from it
                write(False)
                progress.advance("probe")  # its cost: measure, save and the fit in write
                progress.milestone(f"checkpoint {len(probe.records)}/{len(probe_at)} (step {step} of {T}) measured")
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


def _progress(T, step, probes, probe, c, quiet):
    """Steps and probes, each kind by its measured cost; until both are timed, a probe is priced as the steps of
    its passes: the full gradient and one more full pass per step pair (n_blocks mini-batches each), and K."""
    return Progress("lpcheck estimate", {"step": T - step, "probe": probes},
                    {"step": 1.0, "probe": probe.n_blocks * (1 + c.step_pairs) + c.samples}, bar="step", initial=step,
                    quiet=quiet)
