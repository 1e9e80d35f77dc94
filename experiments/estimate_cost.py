"""Cost of a probe checkpoint against plain training, in images per second, on one machine.

    PYTHONPATH=. python experiments/estimate_cost.py --width 0.125 --threads 1 \\
        --train-subset 1280 --samples 10 --rounds 9 --out experiments/results/estimate-cost

A probe checkpoint (`lpcheck.estimate.Probe.measure`) runs n_b + K + step_pairs * n_b
forward-backward passes of one batch each (n_b = the blocks of the training set); plain training
runs forward, backward and an LPSGDM step on an augmented batch. Both are timed on the same model,
data, batch size and device, interleaved round by round (train S steps, then one probe) so that
drifts in the load of a shared machine hit both alike; the report gives each round and the medians.
Target (issue 5): probe throughput >= 80 % of training throughput. On CUDA the timings end with a
synchronize. """

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import (  # experiments/_common.py: first, it puts this checkout's lpcheck on sys.path
    out_dir,
    run_main,
)

from lpcheck import checks, models, report  # noqa: E402
from lpcheck import data as cifar  # noqa: E402
from lpcheck.estimate.probe import Probe  # noqa: E402
from lpcheck.estimate.trainer import defaults_for  # noqa: E402
from lpcheck.optim import LPSGDM  # noqa: E402
from lpcheck.training import check_model_size, check_threads, torch_device  # noqa: E402

TARGET = 0.8


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_subset.npz"),
    )
    ap.add_argument("--model", default="resnet18", choices=sorted(models.MODELS))
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument(
        "--train-subset", type=int, default=2560, help="images the probe's full pass covers"
    )
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--step-pairs", type=int, default=1)
    ap.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="training steps per round (default: the probe's passes)",
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="experiments/results/estimate-cost")
    args = ap.parse_args(argv)
    width = checks.real("--width", args.width, low=0, low_open=True)
    train_subset = checks.integer("--train-subset", args.train_subset, low=1)
    samples = checks.integer("--samples", args.samples, low=2, high=10**5)
    step_pairs = checks.integer("--step-pairs", args.step_pairs, low=0, high=samples)
    if args.train_steps is not None:
        checks.integer("--train-steps", args.train_steps, low=1, high=1_000_000_000)
    rounds = checks.integer("--rounds", args.rounds, low=1, high=1_000_000_000)
    threads = check_threads(args.threads, "--threads")
    device = torch_device(args.device, "--device")
    if not args.data:
        raise ValueError("--data is empty: give a CIFAR .npz file or python-batch folder")
    out_dir(args.out)
    ds = cifar.load_cifar(args.data).subset(train_subset, "--train-subset")
    hp = defaults_for(ds.name, args.model)
    b = hp["batch_size"]
    if len(ds.y_train) < b:
        raise ValueError(f"--train-subset ({len(ds.y_train)} images) must be >= one batch of {b}")
    check_model_size(args.model, ds.num_classes, width, device, copies=6)
    if threads:
        torch.set_num_threads(threads)
    args.width, args.samples, args.step_pairs, args.rounds = width, samples, step_pairs, rounds
    torch.manual_seed(0)
    model = models.build(args.model, ds.num_classes, args.width).to(device)
    opt = LPSGDM(
        model.parameters(),
        lr=hp["lr"],
        p_max=hp["p_max"],
        total_epochs=200,
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
        eps=hp["eps"],
        check_finite=False,
    )
    train = cifar.DeviceCifar.train(ds, device)
    probe = Probe(
        model, train, batch_size=b, samples=args.samples, step_pairs=args.step_pairs, seed=0
    )
    gen = torch.Generator(device).manual_seed(1)
    step = 0

    def train_steps(n):
        nonlocal step
        for _ in range(n):
            idx = torch.randint(len(train), (b,), device=device, generator=gen)
            x, y = train.batch(idx, augment=True, generator=gen)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1

    train_steps(3)  # warm-up: allocator, first-step state
    n_train = args.train_steps or probe.n_blocks * (1 + args.step_pairs) + args.samples
    rounds = []
    for r in range(args.rounds):
        _sync(device)
        t0 = time.perf_counter()
        train_steps(n_train)
        _sync(device)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        rec = probe.measure(opt, step=step)
        _sync(device)
        t_probe = time.perf_counter() - t0
        rounds.append(
            {
                "train_images_per_s": n_train * b / t_train,
                "probe_images_per_s": rec["passes"] * b / t_probe,
                "probe_seconds": t_probe,
                "probe_passes": rec["passes"],
                "train_seconds": t_train,
            }
        )
        print(
            f"round {r + 1}: train {rounds[-1]['train_images_per_s']:.0f} img/s, "
            f"probe {rounds[-1]['probe_images_per_s']:.0f} img/s",
            file=sys.stderr,
        )
    med = {
        k: statistics.median(x[k] for x in rounds)
        for k in ("train_images_per_s", "probe_images_per_s")
    }
    per_round = [x["probe_images_per_s"] / x["train_images_per_s"] for x in rounds]
    ratio = statistics.median(per_round)
    result = {
        "model": args.model,
        "width": args.width,
        "parameters": sum(p.numel() for p in probe.params),
        "batch_size": b,
        "samples": args.samples,
        "step_pairs": args.step_pairs,
        "blocks": probe.n_blocks,
        "train_steps_per_round": n_train,
        "rounds": rounds,
        "median": med,
        "ratio_probe_over_train": ratio,
        "per_round_ratios": per_round,
        "ratio_of_medians": med["probe_images_per_s"] / med["train_images_per_s"],
        "target": TARGET,
        "meets_target": ratio >= TARGET,
        "threads": torch.get_num_threads(),
        "provenance": report.provenance(device),
    }

    def md(d):
        rows = [
            [
                i + 1,
                f"{x['train_images_per_s']:.0f}",
                f"{x['probe_images_per_s']:.0f}",
                f"{x['probe_images_per_s'] / x['train_images_per_s']:.2f}",
            ]
            for i, x in enumerate(d["rounds"])
        ]
        return (
            f"# Probe cost: {d['model']} width {d['width']} ({d['parameters']} parameters), batch "
            f"{d['batch_size']}\n\nA probe checkpoint = {d['rounds'][0]['probe_passes']} "
            f"forward-backward passes ({d['blocks']} blocks full pass, K = {d['samples']}, "
            f"{d['step_pairs']} step pair(s)); training = forward, backward, LPSGDM step on "
            f"augmented batches. {d['threads']} torch thread(s).\n\n"
            + report.markdown_table(["round", "train img/s", "probe img/s", "probe / train"], rows)
            + f"\nMedian per-round ratio probe/train: {d['ratio_probe_over_train']:.2f} "
            f"(target >= {d['target']}: "
            f"{'met' if d['meets_target'] else 'NOT met'}). Medians: train "
            f"{d['median']['train_images_per_s']:.0f} img/s, probe "
            f"{d['median']['probe_images_per_s']:.0f} img/s (ratio {d['ratio_of_medians']:.2f}). "
            "Shared 2-core machine: rounds vary with the load of other processes.\n"
        )

    report.write_report(args.out, "cost", result, md)
    print(
        f"probe/train throughput {ratio:.2f} (target >= {TARGET}); wrote {args.out}/cost.json",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    run_main(main, "estimate_cost.py")
