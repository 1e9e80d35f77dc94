"""Table 1 (reduced) and Fig. 4 of the paper: train CIFAR models with SGDM, AdamW, Lion and LPSGDM.

Each run (optimizer, p_max, seed) trains with the paper's Appendix A hyperparameters (override with
--lr etc.), the warm-up + cosine lr schedule and eq. 19's p schedule, entirely on the device
(lpcheck.training). After every epoch it records the mean training loss of the epoch, the test top-1
and test NLL; at the --eval-at fractions of training it also records the training NLL over the whole
(un-augmented) training split in eval mode, the paper's "Training NLL". OUT/NAME.json is rewritten
after every epoch (an interrupted run keeps every epoch it finished; --resume skips finished runs
and restarts unfinished ones, and refuses settings other than the saved report's, naming each
difference; without --resume an existing OUT/NAME.json is never overwritten). OUT/NAME.md holds
mean +- std over seeds at the fractions, beside the paper's Table 1 (ResNet-18/CIFAR-10) when that
is the setting, and NAME.png the test top-1 curves.

    # Table 1, reduced (GPU): 4 optimizers x 3 seeds
    python experiments/cifar_train.py --device cuda --epochs 15 --seeds 0,1,2 --amp bf16 \\
        --name table1
    # Fig. 4: LPSGDM's p_max sweep
    python experiments/cifar_train.py --device cuda --epochs 15 --optimizers lpsgdm \\
        --p-max 2,4,6,9 --name fig4
    # a CPU smoke run
    python experiments/cifar_train.py --width 0.125 --train-subset 1024 --epochs 2 --seeds 0 \\
        --out /tmp/t1
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import (  # first: sets sys.path
    ROOT,
    command,
    names,
    numbers,
    out_dir,
    parser,
    run_main,
    seeds,
    setup,
)

from lpcheck import checks, models, report
from lpcheck import data as cifar
from lpcheck.training import (
    OPTIMIZERS,
    STEPS_MAX,
    Progress,
    Training,
    check_steps,
    evaluate,
    make_optimizer,
    paper_hyperparameters,
)

# The paper's Table 1, ResNet-18 on CIFAR-10 (mean over its seeds): training NLL and test top-1 (%)
# at epochs 50, 100, 200 of 200, i.e. at 1/4, 1/2 and all of training. Inputs from the paper, for
# comparison.
PAPER_TABLE1_RESNET18 = {
    "sgdm": {"nll": (0.1313, 0.0175, 0.0014), "top1": (88.77, 91.70, 93.15)},
    "adamw": {"nll": (0.0618, 0.0107, 0.0001), "top1": (91.78, 93.09, 94.09)},
    "lion": {"nll": (0.1101, 0.0537, 0.0002), "top1": (90.53, 91.58, 94.04)},
    "lpsgdm": {"nll": (0.0498, 0.0021, 0.0004), "top1": (92.12, 93.68, 94.81)},
}
NAMES = {
    "sgdm": "SGD w/ momentum",
    "adamw": "AdamW",
    "lion": "Lion",
    "lpsgdm": "LPSGDM",
    "lpsgd": "LPSGD",
}


@dataclasses.dataclass
class RunKey:
    optimizer: str
    p_max: float | None
    seed: int

    @property
    def id(self):
        return (
            f"{self.optimizer}"
            + (f"-p{self.p_max:g}" if self.p_max is not None else "")
            + f"-s{self.seed}"
        )


def parse(argv=None):
    ap = parser(__doc__)
    ap.add_argument(
        "--optimizers",
        default="sgdm,adamw,lion,lpsgdm",
        help=f"comma-separated, from {list(OPTIMIZERS)}",
    )
    ap.add_argument(
        "--p-max",
        default=None,
        help="comma-separated p_max values for LPSGD/LPSGDM (default: the paper's)",
    )
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument(
        "--eval-at",
        default="0.25,0.5,1",
        help="fractions of training at which the training NLL is measured",
    )
    ap.add_argument(
        "--warmup-epochs", type=float, default=None, help="default: 2.5%% of the epochs (5 of 200)"
    )
    ap.add_argument(
        "--lr", type=float, default=None, help="override the paper's lr for every optimizer"
    )
    ap.add_argument("--batches-per-epoch", type=int, default=None)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "cifar"))
    ap.add_argument("--name", default="table1", help="stem of the report files")
    ap.add_argument(
        "--resume",
        action="store_true",
        help=(
            "skip runs already finished in OUT/NAME.json (the other settings must be the saved "
            "ones)"
        ),
    )
    ap.add_argument("--quiet", action="store_true")
    return check(ap.parse_args(argv))


def check(args):
    """This script's options, checked (names and ranges) and parsed; ValueError on the first bad
    one."""
    args.optimizers = names(args.optimizers, "--optimizers", OPTIMIZERS)
    args.seeds = seeds(args.seeds, "--seeds")
    if args.p_max is not None:
        args.p_max = numbers(args.p_max, "--p-max", lambda o, v: checks.real(o, v, low=2))
        if len(set(args.p_max)) < len(args.p_max):
            raise ValueError(f"--p-max repeats a value: {args.p_max}")
    args.eval_at = sorted(
        set(
            numbers(
                args.eval_at,
                "--eval-at",
                lambda o, v: checks.real(o, v, low=0, high=1, low_open=True),
            )
        )
    )
    args.epochs = checks.integer("--epochs", args.epochs, low=1, high=STEPS_MAX)
    if args.warmup_epochs is not None:
        args.warmup_epochs = checks.real(
            "--warmup-epochs", args.warmup_epochs, low=0, high=args.epochs, high_open=True
        )
    if args.lr is not None:
        args.lr = checks.representable(
            "--lr",
            checks.real("--lr", args.lr, low=0, low_open=True),
            torch.float32,
            why="the float32 model would not move",
        )
    if args.batches_per_epoch is not None:
        args.batches_per_epoch = checks.integer(
            "--batches-per-epoch", args.batches_per_epoch, low=1
        )
    if not args.name or args.name in (".", "..") or "/" in args.name or "\\" in args.name:
        raise ValueError(
            f"--name must be a file name (the stem of OUT/NAME.json), got {args.name!r}"
        )
    out_dir(args.out)
    return args


def run_one(key, args, dataset, device, amp, record):
    """Train one run; `record(epoch_entry)` is called after every epoch."""
    torch.manual_seed(key.seed)
    model = models.build(args.model, num_classes=dataset.num_classes, width=args.width).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    hp = paper_hyperparameters(dataset.name, args.model, key.optimizer)
    if key.p_max is not None:
        hp["p_max"] = key.p_max
    if args.lr is not None:
        hp["lr"] = args.lr
    opt = make_optimizer(key.optimizer, model.parameters(), hp, args.epochs)
    train, test = cifar.DeviceCifar.train(dataset, device), cifar.DeviceCifar.test(dataset, device)
    full = len(train) // hp["batch_size"]
    steps = min(full, args.batches_per_epoch or full)
    warmup = round(
        (args.warmup_epochs if args.warmup_epochs is not None else 0.025 * args.epochs) * steps
    )
    run = Training(
        model,
        opt,
        train,
        batch_size=hp["batch_size"],
        epochs=args.epochs,
        steps_per_epoch=steps,
        warmup_steps=warmup,
        lr=hp["lr"],
        augment=not args.no_augment,
        seed=key.seed,
        autocast=amp,
    )
    marks = {max(1, round(f * args.epochs)) for f in args.eval_at}
    progress = Progress(run.T, quiet=args.quiet)
    seconds = 0.0
    try:
        for epoch in range(1, args.epochs + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                run.step()
                progress.update()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - t0
            t = evaluate(model, test, autocast=amp)
            entry = {
                "epoch": epoch,
                "train_loss": run.epoch_losses[-1],
                "test_top1": 100 * t["accuracy"],
                "test_nll": t["nll"],
                "seconds": seconds,
                "images_per_second": epoch * steps * hp["batch_size"] / seconds,
            }
            if epoch in marks:
                entry["train_nll"] = evaluate(model, train, autocast=amp)["nll"]
            record(entry)
            progress.note(f"{key.id} epoch {epoch}: top-1 {entry['test_top1']:.2f}")
    finally:
        progress.close()
    return hp, steps


def _at(curve, epochs, fractions, field):
    by_epoch = {e["epoch"]: e for e in curve}
    return [by_epoch.get(max(1, round(f * epochs)), {}).get(field) for f in fractions]


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{np.mean(values):.4g} ± {np.std(values, ddof=1):.2g}"


def render(data):
    cfg = data["config"]
    fractions, epochs = cfg["eval_at"], cfg["epochs"]
    groups = {}
    for r in data["runs"]:
        groups.setdefault((r["optimizer"], r["p_max"]), []).append(r)
    head = [f"@{f:g} ({max(1, round(f * epochs))} ep.)" for f in fractions]
    lines = [
        f"# {cfg['model']} on {data['dataset']['name']} ({data['dataset']['train_images']} "
        f"training images): {cfg['epochs']} epochs\n",
        "Mean ± std over seeds (sample std). Training NLL: eval mode over the whole training "
        "split; test top-1 in %. Hyperparameters: the paper's Appendix A row for each optimizer "
        "(see the JSON).\n",
    ]
    rows = []
    for (opt, p_max), runs in groups.items():
        label = NAMES.get(opt, opt) + (f" (p_max {p_max:g})" if p_max is not None else "")
        nll = [
            _mean_std([_at(r["curve"], epochs, fractions, "train_nll")[i] for r in runs])
            for i in range(len(fractions))
        ]
        top1 = [
            _mean_std([_at(r["curve"], epochs, fractions, "test_top1")[i] for r in runs])
            for i in range(len(fractions))
        ]
        done = sum(r["complete"] for r in runs)
        rows.append([label, f"{done}/{len(runs)}", *nll, *top1])
    lines.append(
        report.markdown_table(
            [
                "optimizer",
                "runs done",
                *[f"train NLL {h}" for h in head],
                *[f"test top-1 {h}" for h in head],
            ],
            rows,
        )
    )
    if (
        cfg["model"] == "resnet18"
        and data["dataset"]["name"] == "cifar10"
        and fractions == [0.25, 0.5, 1.0]
    ):
        lines.append(
            "\nThe paper's Table 1 (ResNet-18, full CIFAR-10, 200 epochs; @50/@100/@200 epochs):\n"
        )
        lines.append(
            report.markdown_table(
                ["optimizer", "train NLL @50", "@100", "@200", "test top-1 @50", "@100", "@200"],
                [[NAMES[o], *v["nll"], *v["top1"]] for o, v in PAPER_TABLE1_RESNET18.items()],
            )
        )
    speeds = {
        NAMES.get(r["optimizer"], r["optimizer"]): r["curve"][-1]["images_per_second"]
        for r in data["runs"]
        if r["curve"]
    }
    if speeds:
        lines.append(
            "\nTraining throughput (images/s, training steps only, last run per optimizer): "
            + ", ".join(f"{k} {v:.0f}" for k, v in speeds.items())
            + "\n"
        )
    lines.append(f"\n![test top-1]({data['name']}.png)\n")
    return "\n".join(lines)


def plot(data, out):
    fig, ax = report.new_figure(figsize=(6, 4))
    groups = {}
    for r in data["runs"]:
        groups.setdefault((r["optimizer"], r["p_max"]), []).append(r)
    for (opt, p_max), runs in groups.items():
        curves = [[e["test_top1"] for e in r["curve"]] for r in runs if r["curve"]]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        mean = np.mean([c[:n] for c in curves], axis=0)
        label = NAMES.get(opt, opt) + (f" p_max={p_max:g}" if p_max is not None else "")
        ax.plot(range(1, n + 1), mean, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.legend(fontsize=8)
    report.save_figure(fig, out / f"{data['name']}.png")


# settings that may change on --resume: where the runs go and how fast, not what they compute
_RESUMABLE = ("resume", "quiet", "out", "threads", "device")


def _option(key: str) -> str:
    return "--" + key.replace("_", "-")


def _saved_runs(path: Path, config: dict, fingerprint: str, resume: bool) -> dict:
    """The finished runs of OUT/NAME.json to keep (id -> run), after checking that it was made with
    these settings; without --resume an existing report is refused, not overwritten."""
    if not path.exists():
        return {}
    if not resume:
        raise ValueError(
            f"{path} exists: pass --resume to continue it (its finished runs are kept), or choose "
            "another --name or --out"
        )
    saved = report.read_json(path)
    if not (
        isinstance(saved, dict)
        and isinstance(saved.get("config"), dict)
        and isinstance(saved.get("runs"), list)
    ):
        raise ValueError(
            f"{path} is not a cifar_train.py report (no 'config' and 'runs'); choose another "
            "--name or --out"
        )
    was = dict(saved["config"])
    if was.get("data") is not None:
        was["data"] = str(
            Path(was["data"]).resolve()
        )  # an older report's relative path, read from here
    saved_fp = (saved.get("dataset") or {}).get("sha256")
    skip = _RESUMABLE + (
        ("data",) if saved_fp is not None else ()
    )  # the same images elsewhere: the same data
    diff = [
        f"{_option(k)}: saved {was.get(k)!r}, now {v!r}"
        if isinstance(v, str)
        else f"{_option(k)}: saved {was.get(k)}, now {v}"
        for k, v in report.to_jsonable(config).items()
        if k not in skip and was.get(k) != v
    ]
    if saved_fp is not None and saved_fp != fingerprint:
        diff.append(
            "--data: the images or labels differ from the saved report's (sha256 "
            f"{saved_fp[:12]}..., now {fingerprint[:12]}...)"
        )
    if diff:
        raise ValueError(
            f"--resume: {path} was made with other settings; resume with the saved ones or choose "
            "another --name or --out: " + "; ".join(diff)
        )
    return {r["id"]: r for r in saved["runs"] if isinstance(r, dict) and r.get("complete")}


def main(argv=None):
    args = parse(argv)
    device, dataset, amp = setup(
        args, copies=5
    )  # weights, gradients, up to two optimizer states, a batch
    full = len(dataset.y_train) // 128  # Appendix A's batch, every row
    if args.batches_per_epoch is not None and args.batches_per_epoch > full:
        raise ValueError(
            f"--batches-per-epoch ({args.batches_per_epoch}) must be <= the {full} full batches of "
            f"128 in the {len(dataset.y_train)} training images"
        )
    check_steps(args.epochs, min(full, args.batches_per_epoch or full), "--epochs")
    out = Path(args.out)

    def p_values(o):  # LPSGD/LPSGDM runs name their p_max: the sweep's, or the paper's
        if o not in ("lpsgd", "lpsgdm"):
            return [None]
        return args.p_max or [paper_hyperparameters(dataset.name, args.model, o)["p_max"]]

    keys = [RunKey(o, p, s) for o in args.optimizers for p in p_values(o) for s in args.seeds]
    path = out / f"{args.name}.json"
    cmd = command("cifar_train.py", argv)
    args.data, args.dataset = (
        str(Path(args.data).resolve()),
        dataset.name,
    )  # as saved: a resume compares these
    config = {k: v for k, v in vars(args).items() if k not in ("resume", "quiet", "out", "threads")}
    fingerprint = dataset.fingerprint()
    runs = _saved_runs(path, config, fingerprint, args.resume)
    data = {
        "name": args.name,
        "config": config,
        "runs": list(runs.values()),
        "dataset": {
            "name": dataset.name,
            "source": dataset.source,
            "sha256": fingerprint,
            "train_images": len(dataset.y_train),
            "test_images": len(dataset.y_test),
        },
        "provenance": report.provenance(device, command=cmd),
    }

    def write():
        report.write_report(out, args.name, data, render)

    for key in keys:
        if key.id in runs:
            continue
        entry = {
            "id": key.id,
            "optimizer": key.optimizer,
            "p_max": key.p_max,
            "seed": key.seed,
            "complete": False,
            "curve": [],
        }
        data["runs"] = [r for r in data["runs"] if r["id"] != key.id] + [entry]

        def record(e, entry=entry):
            entry["curve"].append(e)
            write()

        hp, steps = run_one(key, args, dataset, device, amp, record)
        entry.update(complete=True, hyperparameters=hp, steps_per_epoch=steps)
        write()
        plot(data, out)
        print(
            f"{key.id}: test top-1 {entry['curve'][-1]['test_top1']:.2f} after {args.epochs} "
            "epochs",
            file=sys.stderr,
        )
    write()
    plot(data, out)
    return 0


if __name__ == "__main__":
    run_main(main, "cifar_train.py")
