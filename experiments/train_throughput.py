"""Training throughput (images/s) of a CIFAR model with LPSGDM against the same loop with torch's
SGD.

The loop is lpcheck.training.Training (device-side batches and augmentation, per-step lr, one host
read per epoch), identical for every optimizer; only the optimizer changes:
  - torch.optim.SGD(momentum=0.9, foreach=True), the paper's SGDM row,
  - lpcheck's LPSGDM (foreach; and fused: by default on CUDA, on CPU only with --fused on, since its
    first step compiles for minutes there).
Each is warmed up, then timed over --steps steps (a synchronize before and after on CUDA), repeated
--repeats times interleaved across optimizers; the median is reported, with the ratio to SGD. Writes
OUT/throughput.json and .md.

    python experiments/train_throughput.py --device cuda --amp bf16 --channels-last
    python experiments/train_throughput.py --width 0.0625 --train-subset 512 --steps 3 \\
        --repeats 2 --out /tmp/tp
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from _common import (  # experiments/_common.py: first, sets sys.path
    ROOT,
    command,
    out_dir,
    parser,
    run_main,
    setup,
)

from lpcheck import checks, models, report
from lpcheck import data as cifar
from lpcheck.training import Training, make_optimizer, paper_hyperparameters


def parse(argv=None):
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument(
        "--fused",
        choices=["auto", "on", "off"],
        default="auto",
        help="include LPSGDM's fused step (auto: on CUDA only)",
    )
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "throughput"))
    args = ap.parse_args(argv)
    args.steps = checks.integer("--steps", args.steps, low=1, high=1_000_000_000)
    args.repeats = checks.integer("--repeats", args.repeats, low=1, high=1_000_000_000)
    args.warmup = checks.integer("--warmup", args.warmup, low=0, high=1_000_000_000)
    out_dir(args.out)
    return args


def _variants(device, fused):
    out = {"torch SGD momentum=0.9 (foreach)": ("sgdm", {"foreach": True})}
    out["LPSGDM (foreach)"] = ("lpsgdm", {"foreach": True})
    if fused == "off" or (fused == "auto" and device.type != "cuda"):
        return out
    try:
        from lpcheck.optim import LPSGDM

        LPSGDM([torch.nn.Parameter(torch.zeros(2, device=device))], lr=1e-3, p=4.0, fused=True)
        out["LPSGDM (fused)"] = ("lpsgdm", {"fused": True})
    except (ValueError, RuntimeError, ImportError):
        pass  # no fused path on this device or in this version
    return out


def main(argv=None):
    args = parse(argv)
    device, dataset, amp = setup(
        args, copies=4 * 3
    )  # three variants' models and optimizers live at once
    train = cifar.DeviceCifar.train(dataset, device)
    runs = {}
    for name, (opt_name, extra) in _variants(device, args.fused).items():
        torch.manual_seed(0)
        model = models.build(args.model, num_classes=dataset.num_classes, width=args.width).to(
            device
        )
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        hp = paper_hyperparameters(dataset.name, args.model, opt_name)
        steps = len(train) // hp["batch_size"]
        total = args.warmup + args.steps * args.repeats
        epochs = -(-total // steps)
        opt = make_optimizer(opt_name, model.parameters(), hp, epochs, **extra)
        runs[name] = Training(
            model,
            opt,
            train,
            batch_size=hp["batch_size"],
            epochs=epochs,
            steps_per_epoch=steps,
            warmup_steps=0,
            lr=hp["lr"],
            seed=0,
            autocast=amp,
        )
        for _ in range(args.warmup):
            runs[name].step()
    times = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so load drift hits every variant alike
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                run.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - t0)
    batch = next(iter(runs.values())).batch_size
    result = {
        name: {"seconds": t, "images_per_second": args.steps * batch / statistics.median(t)}
        for name, t in times.items()
    }
    base = result["torch SGD momentum=0.9 (foreach)"]["images_per_second"]
    for r in result.values():
        r["relative_to_sgd"] = r["images_per_second"] / base
    data = {
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "threads")},
        "batch_size": batch,
        "parameters": sum(p.numel() for p in next(iter(runs.values())).model.parameters()),
        "results": result,
        "provenance": report.provenance(device, command=command("train_throughput.py", argv)),
    }

    def render(d):
        rows = [
            [n, f"{r['images_per_second']:.0f}", f"{r['relative_to_sgd']:.3f}"]
            for n, r in d["results"].items()
        ]
        return (
            f"# Training throughput: {d['config']['model']} (width {d['config']['width']}), batch "
            f"{d['batch_size']}, amp {d['config']['amp']}\n\nMedian of {d['config']['repeats']} "
            f"interleaved repeats of {d['config']['steps']} steps.\n\n"
            + report.markdown_table(["loop", "images/s", "x SGD"], rows)
        )

    report.write_report(args.out, "throughput", data, render)
    for n, r in result.items():
        print(
            f"{n}: {r['images_per_second']:.0f} images/s ({r['relative_to_sgd']:.3f} x SGD)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    run_main(main, "train_throughput.py")
