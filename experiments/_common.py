"""What the CIFAR experiment scripts share: their common arguments, the data, and the error exit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# The scripts measure the lpcheck of this checkout (its results land in its experiments/results/ with
# its commit), not whatever copy is installed: every script imports this module before lpcheck.
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

from lpcheck import data as cifar  # noqa: E402
from lpcheck import models  # noqa: E402
from lpcheck.training import torch_device  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10_subset.npz"


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with --model, --data, --width, --train-subset, --device, --amp, --threads."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18", choices=sorted(models.MODELS))
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR .npz or python-batch folder")
    ap.add_argument("--width", type=float, default=1.0, help="channel width multiplier (1 = the published model)")
    ap.add_argument("--train-subset", type=int, default=None, help="use the first N training images")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", choices=["off", "bf16"], default="off", help="bfloat16 autocast for forward/backward")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return ap


def setup(args):
    """(device, dataset, autocast dtype) from the common arguments; applies --threads."""
    device = torch_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = cifar.load_cifar(args.data)
    if args.train_subset:
        dataset = dataset.subset(args.train_subset)
    return device, dataset, (torch.bfloat16 if args.amp == "bf16" else None)


def command(script: str, argv) -> list:
    """The command line that reproduces this run, for the report's provenance."""
    return ["python", f"experiments/{script}", *(argv if argv is not None else sys.argv[1:])]


def run_main(main, script: str):
    """Run main(); bad input (ValueError, FileNotFoundError) is one line on stderr and exit code 2."""
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        sys.exit(2)
