"""CPU time of a probe measurement per optimizer: this checkout against another (main), and the
black box's overhead.

    python experiments/probe_methods_cost.py --baseline ../main --rounds 5 \\
        --out experiments/results/probe-methods-cost

Each variant runs in its own fresh process (one torch thread) that imports lpcheck from the checkout
named, builds the same model (CIFAR ResNet-18 at --width, random 32x32 images: the cost does not
depend on the pixels), takes one training step (a real optimizer state), measures once to warm up
and then times --measures measurements with time.process_time (CPU time). Variants are interleaved
round by round so that the load of a shared machine hits them alike (the order reversed every other
round); the report gives every round and the medians.
- lpsgdm@this, lpsgdm@baseline: LPSGDM (the paper's path) in this checkout and in the baseline
  checkout;
- adam/layer, adam/blackbox (this checkout): torch.optim.Adam read as the layer's adam, and the same
  optimizer forced through lpcheck.methods.BlackBox (one optimizer step of a copy per sample). The
  black box's overhead per sample is read from the probe's own host time in directions
  (`direction_seconds`, the same process and load for both paths), beside the whole measurement's
  CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# experiments/_common.py: this checkout's lpcheck first on sys.path
import _common  # noqa: F401,E402
import torch  # noqa: E402

from lpcheck import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
import lpcheck
from lpcheck import models
from lpcheck.estimate.probe import Probe
kind, width = sys.argv[2], float(sys.argv[3])
n, b, K, measures = (int(v) for v in sys.argv[4:8])
assert lpcheck.__file__.startswith(sys.argv[1]), lpcheck.__file__
torch.manual_seed(0)
model = models.build("resnet18", 10, width)
gen = torch.Generator().manual_seed(1)
x, y = torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)
if kind == "lpsgdm":
    from lpcheck.optim import LPSGDM
    opt = LPSGDM(model.parameters(), lr=1e-3, p=6.0, momentum=0.9, weight_decay=0.01)
else:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
torch.nn.functional.cross_entropy(model(x[:b]), y[:b]).backward()
opt.step()
opt.zero_grad(set_to_none=True)
target = opt
if kind == "blackbox":
    from lpcheck.methods import BlackBox
    target = BlackBox(opt)
probe = Probe(model, (x, y), batch_size=b, samples=K, step_pairs=1, seed=0)
probe.measure(target, step=1)
spent = getattr(probe, "direction_seconds", 0.0)
plan_seconds = None
# this checkout: the plan (read the optimizer) and the record's description
if hasattr(probe, "direction_seconds"):
    from lpcheck.estimate import directions
    t0 = time.process_time()
    for _ in range(20):
        pl = directions.plan(target, probe.params)
        probe._describe(0, pl, probe._geometry(pl))
    plan_seconds = (time.process_time() - t0) / 20
t0 = time.process_time()
for i in range(measures):
    rec = probe.measure(target, step=2 + i)
cpu = time.process_time() - t0
print(json.dumps({"cpu_seconds": cpu / measures, "passes": rec["passes"],
                  "method": rec.get("method"),
                  "direction_seconds":
                      (getattr(probe, "direction_seconds", 0.0) - spent) / measures,
                  "plan_seconds": plan_seconds,
                  "parameters": sum(p.numel() for p in probe.params), "lpcheck": lpcheck.__file__}))
"""


def _run(checkout, kind, args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH="")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            WORKER,
            str(checkout),
            kind,
            str(args.width),
            str(args.images),
            str(args.batch_size),
            str(args.samples),
            str(args.measures),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"worker {kind}@{checkout} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--baseline",
        required=True,
        help="another checkout (its lpcheck/ is imported), e.g. ../main",
    )
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--measures", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="experiments/results/probe-methods-cost")
    args = ap.parse_args(argv)
    torch.set_num_threads(
        1
    )  # the workers run one thread each; the report's provenance says this process's
    baseline = Path(args.baseline).resolve()
    if not (baseline / "lpcheck" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {args.baseline}: no lpcheck/ package there")
    for name in ("width", "images", "batch_size", "samples", "measures", "rounds"):
        if not getattr(args, name) > 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    variants = [
        ("lpsgdm@this", ROOT, "lpsgdm"),
        ("lpsgdm@baseline", baseline, "lpsgdm"),
        ("adam/layer", ROOT, "adam"),
        ("adam/blackbox", ROOT, "blackbox"),
    ]
    rounds = []
    for r in range(args.rounds):
        order = (
            variants if r % 2 == 0 else variants[::-1]
        )  # no variant always first (caches, a machine's drift)
        row = {name: _run(checkout, kind, args) for name, checkout, kind in order}
        row = {name: row[name] for name, _, _ in variants}
        rounds.append(row)
        print(
            f"round {r + 1}: " + ", ".join(f"{k} {v['cpu_seconds']:.2f}s" for k, v in row.items()),
            file=sys.stderr,
        )
    med = {
        name: statistics.median(x[name]["cpu_seconds"] for x in rounds) for name, _, _ in variants
    }
    least = {name: min(x[name]["cpu_seconds"] for x in rounds) for name, _, _ in variants}
    ratio = statistics.median(
        x["lpsgdm@this"]["cpu_seconds"] / x["lpsgdm@baseline"]["cpu_seconds"] for x in rounds
    )
    # the black box's overhead, timed inside the probe (host time in directions, the same process
    # and load)
    overhead = statistics.median(
        (x["adam/blackbox"]["direction_seconds"] - x["adam/layer"]["direction_seconds"])
        / args.samples
        for x in rounds
    )
    passes = rounds[0]["adam/layer"]["passes"]
    per_pass = least["adam/layer"] / passes  # a forward-backward pass of one block, roughly
    result = {
        "worker_threads": 1,
        "width": args.width,
        "parameters": rounds[0]["adam/layer"]["parameters"],
        "images": args.images,
        "batch_size": args.batch_size,
        "samples": args.samples,
        "measures_per_round": args.measures,
        "baseline": str(baseline),
        "rounds": rounds,
        "median_cpu_seconds": med,
        "min_cpu_seconds": least,
        "lpsgdm_this_over_baseline": ratio,
        "lpsgdm_this_over_baseline_min": least["lpsgdm@this"] / least["lpsgdm@baseline"],
        "plan_seconds_lpsgdm": statistics.median(x["lpsgdm@this"]["plan_seconds"] for x in rounds),
        "blackbox_overhead_per_sample_s": overhead,
        "blackbox_overhead_per_sample_in_passes": overhead / per_pass,
        "direction_seconds_per_sample": {
            k: statistics.median(x[k]["direction_seconds"] for x in rounds) / args.samples
            for k in ("adam/layer", "adam/blackbox")
        },
        "provenance": report.provenance(),
    }

    def md(d):
        names = list(d["median_cpu_seconds"])
        rows = [
            [i + 1] + [f"{x[k]['cpu_seconds']:.3f}" for k in names]
            for i, x in enumerate(d["rounds"])
        ]
        return (
            f"# Probe CPU time per measurement, by optimizer: ResNet-18 width {d['width']} "
            f"({d['parameters']} parameters), {d['images']} images in blocks of {d['batch_size']}, "
            f"K = {d['samples']}, one step pair, one thread\n\n"
            + report.markdown_table(["round"] + names, rows)
            + "\nMedians (CPU s per measurement): "
            + ", ".join(f"{k} {v:.3f}" for k, v in d["median_cpu_seconds"].items())
            + ". Least: "
            + ", ".join(f"{k} {v:.3f}" for k, v in d["min_cpu_seconds"].items())
            + f".\n\nLPSGDM, this checkout / baseline ({d['baseline']}): median per-round ratio "
            f"{d['lpsgdm_this_over_baseline']:.3f}, ratio of the least times "
            f"{d['lpsgdm_this_over_baseline_min']:.3f}; what this checkout adds per measurement "
            "(reading the optimizer into a plan, describing the record): "
            f"{d['plan_seconds_lpsgdm'] * 1e3:.2f} ms CPU.\n\nBlack box overhead per sample (torch "
            "Adam through BlackBox vs the layer's adam, host time in directions): "
            f"{d['blackbox_overhead_per_sample_s'] * 1e3:.1f} ms, "
            f"{d['blackbox_overhead_per_sample_in_passes']:.2f} forward-backward passes of one "
            "block; host time in directions per sample: "
            + ", ".join(
                f"{k} {v * 1e3:.2f} ms" for k, v in d["direction_seconds_per_sample"].items()
            )
            + ".\n"
        )

    report.write_report(args.out, "cost", result, md)
    print(
        f"lpsgdm this/baseline {ratio:.3f}; black box +{overhead * 1e3:.1f} ms/sample; wrote "
        f"{args.out}/cost.json",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
