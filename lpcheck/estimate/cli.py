"""Measure the constants of the paper's assumptions along a real training run.

Trains a model (by default a CIFAR ResNet-18/50 or VGG-11 with LPSGDM; or your own model, data, loss
and optimizer) and, at N evenly spaced steps (the first at initialisation), probes it: the exact
full gradient over the training set and K fresh mini-batch gradients, from which it estimates
  - Assumption 5 (LPSGD): c1 of eq. 27 (a lower confidence bound) and the (c2, c3) pairs of eq. 28;
  - Assumption 6 (LPSGDM): the same for the momentum direction, conditional on the optimizer's
    actual momentum buffer (eq. 43-44);
  - Assumption 1: lp smoothness L in the active geometry p from pairs of points (the optimizer's
    next step and consecutive checkpoints), and the (L0, L1) frontier;
  - Assumption 3: the gradient noise sigma in the dual norm q.
Any other optimizer is measured the same way in its own geometry (its direction with its state
fixed, in its norm: l2 for SGD, Adam's ellipsoid, linf for sign descent and Lion, ...; the black box
and l2 for a class lpcheck has never seen; --norm for one norm instead). It then reports the step
cap c1/(L c3) of Theorem 1 (c~1/(L c~3) of Theorem 2) next to the learning rate the run used. f is
the mean mini-batch loss over a fixed random partition of the (un-augmented) training set into
batches, in train mode by default (BatchNorm with batch statistics); its full gradient is exact.
Probing leaves training bit for bit as it would be without it. Defaults are the paper's Appendix A
(Table 4 for CIFAR-10, Table 5 for CIFAR-100): batch 128, warm-up + cosine learning rate, and lr,
p_max, beta, weight decay, eps per model.

Your own model, data, loss and optimizer (modules in the current directory, no PYTHONPATH): --model
MODULE:FACTORY (returns an nn.Module; given num_classes= if it takes it), --data MODULE:FUNCTION
(returns (x_train, y_train) or (x_train, y_train, x_test, y_test) tensors, a map-style Dataset or a
pair of them) or an .npz of tensors, --loss MODULE:FUNCTION (loss(outputs, targets), the batch's
mean; a loss that can be negative needs --loss-lower-bound), --optimizer MODULE:CLASS (any
torch.optim.Optimizer) with --optimizer-args JSON. The paper's defaults apply only to its models and
optimizers on CIFAR: give --lr otherwise. The warm-up + cosine lr applies to every optimizer, eq.
19's p to those with set_epoch.

Many processes: `torchrun --nproc-per-node N -m lpcheck estimate ...` trains with
DistributedDataParallel (NCCL on CUDA, gloo on the CPU), each process a slice of every batch of
--batch-size, and gives one process's constants (BatchNorm normalises over the global batch; only
rank 0 writes files).

Writes to --out: constants.json (every measurement, the fit, the command), constants.md and
state.pt, rewritten after every checkpoint, so an interrupted run keeps what it measured and
--resume continues it to the same result (with the same settings: a difference is refused, named);
the plots constants.png and frontier.png are rendered from constants.json when the run ends (also
when it is interrupted). Every option is checked before any work. state.pt is loaded with
torch.load(weights_only=True): it cannot run code.

Examples:
  lpcheck estimate --model resnet18 --data cifar10.npz --width 0.25 --epochs 10 --checkpoints 12 \\
      --samples 32 --device cpu --out out/est
  lpcheck estimate --model resnet18 --data data/cifar-10-batches-py --device cuda --out out/r18
  lpcheck estimate --model mymodel:build --data mydata:load --loss myloss:loss \\
      --optimizer myopt:MyOpt --optimizer-args '{"momentum": 0.9}' --lr 0.01 --epochs 5 \\
      --out out/mine
  torchrun --nproc-per-node 4 -m lpcheck estimate --model resnet50 --data cifar-10-batches-py \\
      --device cuda --out out/r50
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument(
        "--model",
        required=True,
        metavar="NAME|MODULE:FACTORY",
        help=(
            "resnet18, resnet50, vgg11 (CIFAR), or MODULE:FACTORY: a function returning a "
            "torch.nn.Module (called with num_classes= if it takes it), MODULE in the current "
            "directory or a .py file"
        ),
    )
    g.add_argument(
        "--data",
        required=True,
        metavar="PATH|MODULE:FUNCTION",
        help="CIFAR .npz file or cifar-10-batches-py / cifar-100-python folder; an .npz of tensors "
        "(x_train, y_train[, x_test, y_test] or x, y); or MODULE:FUNCTION returning (x_train, "
        "y_train) or (x_train, y_train, x_test, y_test) tensors, a map-style Dataset or a (train, "
        "test) pair",
    )
    g.add_argument(
        "--loss",
        default=None,
        metavar="MODULE:FUNCTION",
        help="loss(outputs, targets) -> the batch's mean (default: cross-entropy)",
    )
    g.add_argument(
        "--dataset",
        default=None,
        choices=["cifar10", "cifar100"],
        help=(
            "which CIFAR the data is (default: what the data declares; an .npz without a 'dataset' "
            "or 'num_classes' entry is cifar10, and a label >= 10 in it asks for --dataset "
            "cifar100)"
        ),
    )
    g.add_argument(
        "--num-classes",
        type=int,
        default=None,
        metavar="C",
        help=(
            "classes of a user's data, for a built-in model's output layer or a factory taking "
            "num_classes"
        ),
    )
    g.add_argument(
        "--out", required=True, help="output folder (constants.json/.md, plots, state.pt)"
    )
    g.add_argument(
        "--optimizer",
        default="lpsgdm",
        metavar="NAME|MODULE:CLASS",
        help=(
            "lpsgdm (default), lpsgd, sgd, sgdm (momentum 0.9), adam, adamw, lion, any "
            "lpcheck.methods name (heavyball, sign, steepest, rmsprop, scion, clipped), or "
            "MODULE:CLASS: a torch.optim.Optimizer or lpcheck.methods.Method subclass"
        ),
    )
    g.add_argument(
        "--optimizer-args",
        default=None,
        metavar="JSON",
        help=(
            "keyword arguments for the optimizer, a JSON object, e.g. '{\"betas\": [0.9, 0.99]}' "
            "(lr, weight_decay, momentum, eps, p_max have their own options)"
        ),
    )
    g.add_argument(
        "--epochs", type=int, default=200, help="training epochs S (default 200, as in the paper)"
    )
    g.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")
    g.add_argument(
        "--width",
        type=float,
        default=None,
        help="channel width multiplier of a built-in model (default 1; e.g. 0.25 for CPU runs)",
    )
    g.add_argument(
        "--train-subset",
        type=int,
        default=None,
        metavar="N",
        help="use the first N training images",
    )
    g.add_argument(
        "--batches-per-epoch",
        type=int,
        default=None,
        metavar="B",
        help="cut every epoch to B steps",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the model, the data order and the probe (default 0)",
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help=(
            "torch CPU threads (default: torch's choice; 1 avoids OpenMP contention on a busy "
            "machine)"
        ),
    )
    g.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        default=None,
        help=(
            "train CIFAR without random crop + flip (default: with; other data is never augmented)"
        ),
    )
    g.add_argument(
        "--dist-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help=(
            "under torchrun: how long a process waits for the others before it gives up (default "
            "1800)"
        ),
    )
    g.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    h = p.add_argument_group(
        "optimizer (default: the paper's Table 4/5 for its models and optimizers on CIFAR; "
        "otherwise --lr is required, the batch is 128, the rest the optimizer's defaults)"
    )
    h.add_argument(
        "--p-max",
        type=float,
        default=None,
        help="p at epoch 1 of eq. 19 (paper: 6; VGG-11/CIFAR-100: 8)",
    )
    h.add_argument("--lr", type=float, default=None, help="peak learning rate after warm-up")
    h.add_argument(
        "--weight-decay", type=float, default=None, help="decoupled weight decay lambda (LPSGDM)"
    )
    h.add_argument("--momentum", type=float, default=None, help="beta of eq. 23 (paper: 0.9)")
    h.add_argument("--eps", type=float, default=None, help="eps of eq. 21 (paper: 1e-8)")
    h.add_argument("--batch-size", type=int, default=None, help="mini-batch size b (paper: 128)")
    h.add_argument(
        "--warmup-epochs",
        type=float,
        default=None,
        help="linear warm-up length (default: 2.5%% of the epochs)",
    )
    e = p.add_argument_group("probe")
    e.add_argument(
        "--checkpoints",
        type=int,
        default=20,
        help="N probes, evenly spaced from step 0 (default 20)",
    )
    e.add_argument(
        "--samples", type=int, default=32, help="K fresh mini-batches per probe (default 32)"
    )
    e.add_argument(
        "--norm",
        default=None,
        metavar="l2|linf|lp:P|spectral",
        help="measure every quantity in this norm and its dual (default: the optimizer's own norm)",
    )
    e.add_argument(
        "--mode",
        default="train",
        choices=["train", "eval"],
        help=(
            "BatchNorm during probes: train = batch statistics, the loss the optimizer sees "
            "(default)"
        ),
    )
    e.add_argument(
        "--step-pairs",
        type=int,
        default=1,
        help=(
            "smoothness pairs along the optimizer's next step per probe, each one more full pass "
            "(default 1)"
        ),
    )
    e.add_argument("--resamples", type=int, default=4000, help="bootstrap resamples (default 4000)")
    e.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="simultaneous confidence level (default 0.95)",
    )
    e.add_argument(
        "--loss-lower-bound",
        type=float,
        default=None,
        metavar="F",
        help="f* or a lower bound on it, for delta = f(theta_0) - f* in Theorems 1-2 (default 0: "
        "cross-entropy is >= 0); a lower bound over-estimates delta, the safe direction",
    )


def run(args) -> int:
    import sys

    from lpcheck.estimate.trainer import Config
    from lpcheck.estimate.trainer import run as train_and_probe

    fields = Config.__dataclass_fields__
    config = Config(**{k: v for k, v in vars(args).items() if k in fields})
    result = train_and_probe(config, resume=args.resume, quiet=args.quiet)
    if not result:  # another process of a torchrun: rank 0 writes
        return 0
    print(
        f"lpcheck estimate: wrote {config.out}/constants.json, constants.md, constants.png, "
        "frontier.png",
        file=sys.stderr,
    )
    if result.get("fit"):
        print("  " + summary(result["fit"]), file=sys.stderr)
    return 0


def _number(v, reason):
    return f"{v:.4g}" if v is not None else f"none ({reason})"


def summary(f: dict) -> str:
    """One line: c1 (c~1), L, each step cap against the run's peak lr; 'none (reason)' where there
    is no number."""
    a5, a6, s = f["assumption5"], f["assumption6"], f["smoothness"]
    parts = [f"c1 >= {a5['c1']:.4g}"] + ([f"c~1 >= {a6['c1']:.4g}"] if a6 else [])
    parts.append(f"L >= {s['L']:.4g}" if s["L"] is not None else f"L none ({s.get('L_reason')})")
    lr = _number(f["lr_max"], f["lr_source"]) + (
        f" ({f['lr_source']})" if f["lr_max"] is not None else ""
    )
    for a, t in ((a5, ""), (a6, "~")):
        if a is None:
            continue
        cap = f"step cap c{t}1/(L c{t}3) {_number(a['step_cap'], a.get('step_cap_reason'))}"
        if a["lr_within_cap"] is not None:
            cap += f": peak lr {'within' if a['lr_within_cap'] else 'ABOVE'} it"
        parts.append(cap)
    return ", ".join(parts) + f"; peak lr {lr}"
