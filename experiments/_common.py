"""What the CIFAR experiment scripts share: their common arguments, the data, and the error exit.

Every option is checked before any work (`setup` checks the common ones before it reads the data,
and the model size before any model is built), each error naming the option and its range;
`run_main` prints it as one line with exit code 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# The scripts measure the lpcheck of this checkout (its results land in its experiments/results/
# with its commit), not whatever copy is installed: every script imports this module before lpcheck.
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

from lpcheck import (  # noqa: E402
    checks,
    models,  # noqa: E402
    report,
)
from lpcheck import data as cifar  # noqa: E402
from lpcheck.training import check_model_size, check_seed, check_threads, torch_device  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10_subset.npz"


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with --model, --data, --width, --train-subset, --device, --amp,
    --threads."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="resnet18", choices=sorted(models.MODELS))
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR .npz or python-batch folder")
    ap.add_argument(
        "--dataset",
        default=None,
        choices=list(cifar.DATASETS),
        help="which CIFAR the data is (default: what it declares; see lpcheck.data)",
    )
    ap.add_argument(
        "--width",
        type=float,
        default=1.0,
        help="channel width multiplier (1 = the published model)",
    )
    ap.add_argument(
        "--train-subset", type=int, default=None, help="use the first N training images"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--amp",
        choices=["off", "bf16"],
        default="off",
        help="bfloat16 autocast for forward/backward",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return ap


def check_common(args):
    """The common options, checked (names and ranges) and made plain values; reads and writes
    nothing."""
    args.width = checks.real("--width", args.width, low=0, low_open=True)
    if args.train_subset is not None:
        args.train_subset = checks.integer("--train-subset", args.train_subset, low=1)
    args.threads = check_threads(args.threads, "--threads")
    if not args.data:
        raise ValueError("--data is empty: give a CIFAR .npz file or python-batch folder")
    return args


BATCH = 128  # Appendix A's batch size, every row


def setup(args, copies: int = 4):
    """(device, dataset, autocast dtype) from the common arguments, all checked first; applies
    --threads.

    `copies`: float32 copies of the parameters the script holds at once (for the model size
    check)."""
    check_common(args)
    device = torch_device(args.device, "--device")
    dataset = cifar.load_cifar(args.data, dataset=args.dataset)
    if args.train_subset is not None:
        dataset = dataset.subset(args.train_subset, "--train-subset")
    if len(dataset.y_train) < BATCH:
        raise ValueError(
            f"--data/--train-subset: {len(dataset.y_train)} training images, fewer than one batch "
            f"of {BATCH} (the paper's batch size)"
        )
    check_model_size(args.model, dataset.num_classes, args.width, device, copies=copies)
    if args.threads:
        torch.set_num_threads(args.threads)
    return device, dataset, (torch.bfloat16 if args.amp == "bf16" else None)


def names(text: str, option: str, allowed=None) -> list:
    """A comma-separated list of names: not empty, no repeats, each in `allowed` (if given)."""
    items = [v.strip() for v in (text or "").split(",") if v.strip()]
    if not items:
        raise ValueError(f"{option} is empty: give comma-separated names")
    repeated = sorted({v for v in items if items.count(v) > 1})
    if repeated:
        raise ValueError(f"{option} names {repeated} more than once")
    if allowed is not None:
        bad = [v for v in items if v not in allowed]
        if bad:
            raise ValueError(f"{option}: unknown {bad}; choose from {list(allowed)}")
    return items


def numbers(text: str, option: str, check) -> list:
    """A comma-separated list of numbers, each through check(option, value) (lpcheck.checks
    style)."""
    items = [v.strip() for v in (text or "").split(",") if v.strip()]
    if not items:
        raise ValueError(f"{option} is empty: give comma-separated numbers")
    try:
        values = [float(v) for v in items]
    except ValueError:
        raise ValueError(f"{option} takes comma-separated numbers, got {text!r}") from None
    return [check(option, v) for v in values]


def seeds(text: str, option: str = "--seeds") -> list:
    """Comma-separated seeds, each an integer in [0, 2**63 - 1], none repeated."""
    items = [v.strip() for v in (text or "").split(",") if v.strip()]
    if not items:
        raise ValueError(f"{option} is empty: give comma-separated integers")
    try:
        values = [int(v) for v in items]
    except ValueError:
        raise ValueError(f"{option} takes comma-separated integers, got {text!r}") from None
    values = [check_seed(v, option) for v in values]
    if len(set(values)) < len(values):
        raise ValueError(f"{option} repeats a seed: {text!r}")
    return values


def out_dir(path, option: str = "--out"):
    """The output folder, checked: not '', not a file, creatable (lpcheck.report.check_out_dir)."""
    return report.check_out_dir(path, option)


def command(script: str, argv) -> list:
    """The command line that reproduces this run, for the report's provenance."""
    return ["python", f"experiments/{script}", *(argv if argv is not None else sys.argv[1:])]


def run_main(main, script: str):
    """Run main(); bad input (ValueError, FileNotFoundError) is one line on stderr and exit code
    2."""
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        sys.exit(2)
