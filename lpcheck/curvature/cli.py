"""Measure the curvature of a model's loss: extreme eigenvalues with residuals, the trace, the
spectral density.

f is the mean loss over the N examples of --data (the first --train-subset of them), taken in
batches of --batch-size (the last may be smaller; each batch is weighted by its size, so f and its
Hessian H do not depend on the batch size in eval mode). The model is a built-in CIFAR model or your
own (--model MODULE:FACTORY, a function returning a torch.nn.Module, imported from the current
directory or a .py file); --checkpoint loads its weights (a state dict, read with
weights_only=True). On H (lpcheck.curvature):
  - the --top largest and --bottom smallest eigenvalues and eigenvectors by Lanczos with full
    reorthogonalisation, each with its residual ||H v - lambda v|| (an eigenvalue of H lies within
    it) and whether it meets --tol (residual <= tol * max |Ritz value|);
  - the trace by Hutchinson and by Hutch++ with --trace-products products each, with standard
    errors;
  - the spectral density by stochastic Lanczos quadrature (--slq-vectors x --slq-steps products).
Products keep each batch's first-backward graph when the graphs fit in memory (--retain auto).

Writes to --out: curvature.json (every number, the command, versions, device), curvature.md and
curvature.png (the density), rewritten after each measurement so an interrupted run keeps what it
measured.

Examples:
  lpcheck curvature --model resnet18 --width 0.125 --data cifar10.npz --train-subset 256 \\
      --out out/curv
  lpcheck curvature --model mymodels:build --checkpoint model.pt --data mydata:load \\
      --loss mylosses:loss --top 5 --bottom 5 --device cuda --out out/mine
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model, data and loss")
    g.add_argument(
        "--model",
        required=True,
        help=(
            "resnet18, resnet50, vgg11 (CIFAR) or MODULE:FACTORY (your function returning an "
            "nn.Module)"
        ),
    )
    g.add_argument(
        "--width",
        type=float,
        default=None,
        help="channel width multiplier of a built-in model (default 1)",
    )
    g.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes of a built-in model (default: the CIFAR dataset's, else 10)",
    )
    g.add_argument(
        "--checkpoint",
        default=None,
        help="a state dict (torch.save(model.state_dict(), PATH)) to load",
    )
    g.add_argument(
        "--data",
        required=True,
        help="CIFAR .npz or folder (training split), an .npz with arrays x and y, "
        "or MODULE:FUNCTION returning (x, y)",
    )
    g.add_argument(
        "--train-subset", type=int, default=None, metavar="N", help="use the first N examples"
    )
    g.add_argument("--batch-size", type=int, default=128, help="examples per batch (default 128)")
    g.add_argument(
        "--loss",
        default=None,
        metavar="MODULE:FUNCTION",
        help="loss(outputs, targets) -> scalar (default: cross-entropy, mean over the batch)",
    )
    g.add_argument(
        "--loss-reduction",
        choices=["mean", "sum"],
        default="mean",
        help=(
            "how --loss reduces a batch: mean (weights n_b / n) or sum (weights 1 / n); default "
            "mean"
        ),
    )
    g.add_argument(
        "--mode",
        choices=["eval", "train"],
        default="eval",
        help="eval (default, as PyHessian; f independent of the batching) or train (BatchNorm with "
        "batch statistics, f depends on the batching)",
    )
    m = p.add_argument_group("measurements")
    m.add_argument("--top", type=int, default=3, help="largest eigenvalues (default 3; 0 for none)")
    m.add_argument(
        "--bottom", type=int, default=3, help="smallest eigenvalues (default 3; 0 for none)"
    )
    m.add_argument(
        "--tol",
        type=float,
        default=1e-3,
        help="residual tolerance relative to ||H|| (default 1e-3)",
    )
    m.add_argument(
        "--lanczos-steps",
        type=int,
        default=None,
        help="first Lanczos steps (default max(2k + 20, 40))",
    )
    m.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="Lanczos steps at most (default 3x --lanczos-steps)",
    )
    m.add_argument(
        "--trace-products",
        type=int,
        default=60,
        help="products for each trace estimator (default 60; 0 skips the trace)",
    )
    m.add_argument(
        "--slq-vectors",
        type=int,
        default=2,
        help="SLQ random starts (default 2; 0 skips the density)",
    )
    m.add_argument(
        "--slq-steps", type=int, default=40, help="Lanczos steps per SLQ start (default 40)"
    )
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="output folder (curvature.json, .md, .png)")
    r.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")
    r.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="model and data dtype"
    )
    r.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    r.add_argument(
        "--seed", type=int, default=0, help="seeds the random vectors and dropout masks (default 0)"
    )
    r.add_argument(
        "--retain",
        choices=["auto", "yes", "no"],
        default="auto",
        help="keep each batch's first-backward graph for all products: auto (when they fit in "
        "--memory-budget), yes, no (recompute, memory-light)",
    )
    r.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="GiB",
        help="memory the kept graphs may take (default: half of what is free)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress")


def check(args) -> None:
    """Every option's range and every path, before anything is imported, built or written."""
    _check_model(args)
    _check_counts(args)
    _check_measurements(args)
    _check_paths(args)
    _check_out(args.out)


def _check_model(args) -> None:
    """--model is built-in or MODULE:FACTORY; --width and --num-classes only for a built-in one."""
    from lpcheck import checks
    from lpcheck.curvature import inputs

    builtin = args.model in inputs.BUILTIN_MODELS
    if not builtin and not inputs.is_spec(args.model):
        raise ValueError(
            f"--model must be one of {', '.join(inputs.BUILTIN_MODELS)} or MODULE:FACTORY, got "
            f"{args.model!r}"
        )
    if not builtin and (args.width is not None or args.num_classes is not None):
        raise ValueError(
            "--width and --num-classes apply to the built-in models only (your factory builds "
            "yours)"
        )
    if args.width is not None:
        checks.real("--width", args.width, low=0.0, low_open=True)
    if args.num_classes is not None:
        checks.integer("--num-classes", args.num_classes, low=2)


def _check_counts(args) -> None:
    """The integer options, each against its own lower bound."""
    from lpcheck import checks

    for name, low in (
        ("train_subset", 1),
        ("batch_size", 1),
        ("top", 0),
        ("bottom", 0),
        ("trace_products", 0),
        ("slq_vectors", 0),
        ("slq_steps", 1),
        ("threads", 1),
        ("lanczos_steps", 1),
        ("max_steps", 1),
        ("seed", 0),
    ):
        if getattr(args, name) is not None:
            checks.integer("--" + name.replace("_", "-"), getattr(args, name), low=low)
    if 0 < args.trace_products < 4:
        raise ValueError(
            "--trace-products must be 0 (no trace) or an integer >= 4 (Hutch++ needs a sketch and "
            f"2 samples), got {args.trace_products}"
        )
    if args.seed > 2**63 - 1:
        raise ValueError(f"--seed must be an integer in [0, {2**63 - 1}], got {args.seed}")


def _check_measurements(args) -> None:
    """Lanczos' steps cover the eigenvalues asked for, and something is asked for at all."""
    from lpcheck import checks

    k = args.top + args.bottom
    if k > 0:
        checks.real("--tol", args.tol, low=0.0, high=1.0, low_open=True, high_open=True)
        if args.lanczos_steps is not None and args.lanczos_steps < k:
            raise ValueError(
                f"--lanczos-steps must be >= --top + --bottom = {k}, got {args.lanczos_steps}"
            )
        if args.max_steps is not None and args.max_steps < (args.lanczos_steps or k):
            raise ValueError(
                f"--max-steps must be >= --lanczos-steps ({args.lanczos_steps or k}), got "
                f"{args.max_steps}"
            )
    if k == 0 and args.trace_products == 0 and args.slq_vectors == 0:
        raise ValueError(
            "nothing to measure: --top, --bottom, --trace-products and --slq-vectors are all 0"
        )
    if args.memory_budget is not None:
        checks.real("--memory-budget", args.memory_budget, low=0.0)


def _check_paths(args) -> None:
    """--data and --checkpoint exist; --loss is a MODULE:FUNCTION spec."""
    from lpcheck.curvature import inputs

    if not inputs.is_spec(args.data) and not Path(args.data).exists():
        raise FileNotFoundError(f"--data: no file or folder {args.data}")
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"--checkpoint: no file {args.checkpoint}")
    if args.loss is not None and not inputs.is_spec(args.loss):
        raise ValueError(
            f"--loss must be MODULE:FUNCTION (loss(outputs, targets) -> scalar), got {args.loss!r}"
        )


def _check_out(value) -> None:
    """--out names a folder that is, or can become, a directory (no file on its path)."""
    out = Path(value)
    if str(value).strip() == "":
        raise ValueError("--out must name a folder, got ''")
    for parent in (out, *out.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"--out {out}: {parent} is a file, not a folder")
            break


class _Counted:
    """The operator, counting products on a progress bar (a terminal) or in a line every minute (a
    log)."""

    def __init__(self, op, progress, log):
        self.op, self.progress, self.log = op, progress, log
        self.dim, self.device, self.dtype = op.dim, op.device, op.dtype
        self.stage, self.last = "", time.monotonic()

    @property
    def calls(self):
        return self.op.calls

    def __call__(self, v):
        out = self.op(v)
        self.progress.update()
        if self.log and time.monotonic() - self.last > 60:
            self.last = time.monotonic()
            print(
                f"lpcheck curvature: {self.stage}: {self.op.calls} products so far",
                file=sys.stderr,
                flush=True,
            )
        return out


def _setup(args):
    """(operator, description) from the checked options: model, checkpoint, data, loss, batches."""
    import torch

    from lpcheck import userspec
    from lpcheck.curvature import inputs
    from lpcheck.curvature.operators import HessianOperator
    from lpcheck.training import torch_device

    device, dtype = torch_device(args.device), getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    loss = inputs.load_loss(args.loss)
    x, y, source, classes = inputs.load_data(args.data, args.train_subset)
    torch.manual_seed(args.seed)  # a factory's (or built-in model's) initialisation
    model = inputs.build_model(args.model, args.width, args.num_classes or classes or 10).to(
        device, dtype
    )
    if args.checkpoint:
        inputs.load_checkpoint(model, args.checkpoint, device)
    x = x.to(device, dtype) if x.is_floating_point() else x.to(device)
    y = y.to(device, dtype) if y.is_floating_point() else y.to(device)
    n, b = len(x), args.batch_size
    batches = [(x[i : i + b], y[i : i + b]) for i in range(0, n, b)]
    out = _dry_run(model, loss, batches[0], args)
    if args.loss is None:  # every label, where the first batch showed only its own
        userspec.check_labels(y, out, "the labels", "--data")
    op = HessianOperator(
        model,
        lambda m, batch: loss(m(batch[0]), batch[1]),
        batches,
        mode=args.mode,
        weights=None if args.loss_reduction == "mean" else [1 / n] * len(batches),
        retain={"auto": "auto", "yes": True, "no": False}[args.retain],
        memory_budget=None if args.memory_budget is None else args.memory_budget * 2**30,
        seed=args.seed,
    )
    k = args.top + args.bottom
    if k > op.dim:
        raise ValueError(
            f"--top + --bottom must be <= the model's {op.dim} trainable parameters, got {k}"
        )
    about = {
        "model": {"spec": args.model, "parameters": op.dim, "checkpoint": args.checkpoint},
        "data": {
            "source": source,
            "examples": n,
            "batch_sizes": [len(t[1]) for t in batches],
            "f": f"the mean loss over the {n} examples"
            + (
                " (batch losses summed, weights 1/n)"
                if args.loss_reduction == "sum"
                else " (batch means weighted by n_b / n)"
            ),
        },
    }
    return op, about, device


def _dry_run(model, loss, batch, args):
    """One forward and loss on the first batch, so a model, data or loss that do not fit together
    fail here with one line naming the options, not deep inside a product."""
    import torch

    from lpcheck.curvature.operators import preserved_buffers

    was = model.training
    try:
        model.train(args.mode == "train")
        with torch.no_grad(), preserved_buffers(model):
            out = model(batch[0])
            value = loss(out, batch[1])
    except Exception as e:
        raise ValueError(
            "--model / --data / --loss: the model's forward on a batch of --data, or the loss on "
            f"its output, raised {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        ) from e
    finally:
        model.train(was)
    if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.is_floating_point():
        got = (
            f"shape {tuple(value.shape)}"
            if isinstance(value, torch.Tensor)
            else type(value).__name__
        )
        raise ValueError(
            f"--loss must return a real scalar tensor (a batch's mean or sum), got {got}"
        )
    if not bool(torch.isfinite(value)):
        raise ValueError(
            f"--model / --checkpoint / --data: the loss on the first batch is {float(value)}, not "
            "finite"
        )
    return out


def run(args) -> int:
    check(args)
    import torch

    from lpcheck import report
    from lpcheck.curvature import krylov, trace
    from lpcheck.training import Progress

    op, about, device = _setup(args)
    k = args.top + args.bottom
    steps = None if args.lanczos_steps is None else min(args.lanczos_steps, op.dim)
    first = min(op.dim, max(2 * k + 20, 40)) if steps is None else steps
    max_steps = min(op.dim, args.max_steps if args.max_steps is not None else 3 * first)
    total = (
        (max_steps + k if k else 0) + 2 * args.trace_products + args.slq_vectors * args.slq_steps
    )
    progress = Progress(total, quiet=args.quiet, unit="product")
    counted = _Counted(op, progress, log=not args.quiet and not sys.stderr.isatty())
    gen = torch.Generator(device).manual_seed(args.seed)
    out = Path(args.out)
    data = {
        "config": {k_: v for k_, v in vars(args).items() if not k_.startswith("_")},
        **about,
        "operator": {},
        "eigenpairs": None,
        "trace": None,
        "density": None,
        "seconds": {},
        "complete": False,
    }

    def stage(name, fn):
        t0 = time.perf_counter()
        progress.note(name)
        counted.stage = name
        result = fn()
        data["seconds"][name] = time.perf_counter() - t0
        data["operator"] = {
            "mode": args.mode,
            "retained": op.retained,
            "reason": op.retain_reason,
            "graph_mib": None if op.graph_bytes is None else op.graph_bytes / 2**20,
            "products": op.calls,
        }
        if not args.quiet:
            print(
                f"lpcheck curvature: {name} done ({data['seconds'][name]:.1f} s, {op.calls} "
                "products so far)",
                file=sys.stderr,
            )
        return result

    try:
        if k:
            data["eigenpairs"] = stage(
                "eigenpairs",
                lambda: krylov.eigenpairs(
                    counted,
                    largest=args.top,
                    smallest=args.bottom,
                    tol=args.tol,
                    steps=steps,
                    max_steps=max_steps,
                    generator=gen,
                ).as_dict(),
            )
            report.write_report(out, "curvature", data, render)
        if args.trace_products:
            data["trace"] = stage(
                "trace",
                lambda: {
                    name: dict(
                        zip(
                            ("estimate", "standard_error", "products"),
                            fn(counted, args.trace_products, gen),
                        )
                    )
                    for name, fn in (
                        ("hutchinson", trace.hutchinson_trace),
                        ("hutchpp", trace.hutchpp_trace),
                    )
                },
            )
            report.write_report(out, "curvature", data, render)
        if args.slq_vectors:
            slq = stage(
                "density",
                lambda: krylov.spectral_density(
                    counted, vectors=args.slq_vectors, steps=args.slq_steps, generator=gen
                ),
            )
            data["density"] = {
                k_: slq[k_]
                for k_ in (
                    "nodes",
                    "weights",
                    "sigma",
                    "negative_mass",
                    "min_node",
                    "max_node",
                    "vectors",
                    "steps",
                )
            }
            # Ritz values near 0 carry either sign by chance: the mass clearly below 0 is the
            # telling number
            scale = max(abs(slq["min_node"]), abs(slq["max_node"]))
            data["density"]["negative_mass_below_1pct"] = (
                sum(
                    w
                    for ns, ws in zip(slq["nodes"], slq["weights"])
                    for n, w in zip(ns, ws)
                    if n < -0.01 * scale
                )
                / slq["vectors"]
            )
        data["complete"] = True
    finally:
        progress.close()
        report.write_report(out, "curvature", data, render)
    if data["density"]:
        plot(data, out / "curvature.png")
    print(summary(data))
    return 0


def summary(data) -> str:
    lines = [
        f"Hessian of {data['data']['f']} ({data['model']['parameters']:,} parameters, "
        f"{data['operator']['products']} products)"
    ]
    e = data["eigenpairs"]
    if e:
        for end in ("largest", "smallest"):
            if e[end]["values"]:
                pairs = ", ".join(
                    f"{v:.4g} (residual {r:.1e}{'' if c else ', NOT converged'})"
                    for v, r, c in zip(e[end]["values"], e[end]["residuals"], e[end]["converged"])
                )
                lines.append(f"  {end}: {pairs}")
    if data["trace"]:
        for name, t in data["trace"].items():
            lines.append(
                f"  trace ({name}, {t['products']} products): {t['estimate']:.5g} "
                f"+- {t['standard_error']:.3g}"
            )
    if data["density"]:
        lines.append(
            f"  density: negative mass {data['density']['negative_mass']:.3f} (below -1% of the "
            f"largest |Ritz value|: {data['density']['negative_mass_below_1pct']:.3f}), Ritz "
            f"values in [{data['density']['min_node']:.4g}, {data['density']['max_node']:.4g}]"
        )
    return "\n".join(lines)


def render(data) -> str:
    from lpcheck import report

    op = data["operator"]
    lines = [
        f"# Curvature of {data['model']['spec']}\n",
        f"H is the Hessian of f = {data['data']['f']} of {data['data']['source']} "
        f"({data['model']['parameters']:,} trainable parameters; "
        f"{len(data['data']['batch_sizes'])} batches; {op.get('mode', data['config']['mode'])} "
        f"mode). Products: {op.get('products')}; {op.get('reason') or ''}.\n",
    ]
    if not data.get("complete"):
        lines.append(
            "**Partial**: the run is still going or was interrupted; what is below was measured.\n"
        )
    e = data["eigenpairs"]
    if e:
        rows = [
            [end, i + 1, f"{v:.6g}", f"{r:.2e}", f"{s:.2e}", "yes" if c else "**no**"]
            for end in ("largest", "smallest")
            for i, (v, r, s, c) in enumerate(
                zip(
                    e[end]["values"],
                    e[end]["residuals"],
                    e[end]["lanczos_estimates"],
                    e[end]["converged"],
                )
            )
        ]
        lines += [
            "## Extreme eigenvalues\n",
            f"Lanczos with full reorthogonalisation, {e['steps']} steps. A pair is converged when "
            f"its residual ||H v - lambda v|| <= tol * scale = {e['tol']:g} * {e['scale']:.4g}; "
            "an eigenvalue of H lies within the residual of each value.\n",
            report.markdown_table(
                ["end", "#", "eigenvalue", "residual", "Lanczos estimate", "converged"], rows
            ),
            "",
        ]
    if data["trace"]:
        rows = [
            [name, f"{t['estimate']:.6g}", f"{t['standard_error']:.3g}", t["products"]]
            for name, t in data["trace"].items()
        ]
        lines += [
            "## Trace\n",
            report.markdown_table(["estimator", "trace", "standard error", "products"], rows),
            "",
        ]
    if data["density"]:
        d = data["density"]
        lines += [
            "## Spectral density (SLQ)\n",
            f"{d['vectors']} starts x {d['steps']} Lanczos steps; negative mass "
            f"{d['negative_mass']:.4f} ({d['negative_mass_below_1pct']:.4f} below -1% of the "
            "largest |Ritz value|: Ritz values near 0 carry either sign by chance); Ritz values "
            f"in [{d['min_node']:.4g}, {d['max_node']:.4g}].\n",
            "![density](curvature.png)",
            "",
        ]
    return "\n".join(lines)


def plot(data, path):
    import numpy as np

    from lpcheck import report

    d = data["density"]
    nodes, weights = np.concatenate(d["nodes"]), np.concatenate(d["weights"]) / d["vectors"]
    span = max(d["max_node"] - d["min_node"], 1e-12)
    grid = np.linspace(d["min_node"] - 0.05 * span, d["max_node"] + 0.05 * span, 800)
    sigma = span / 200
    density = (
        weights[None, :] * np.exp(-0.5 * ((grid[:, None] - nodes[None, :]) / sigma) ** 2)
    ).sum(1) / (sigma * np.sqrt(2 * np.pi))
    fig, ax = report.new_figure(figsize=(6, 4))
    ax.semilogy(grid, np.maximum(density, 1e-12), lw=0.9)
    ax.set_ylim(bottom=max(1e-8, float(density.max()) * 1e-10))
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel(f"density (Gaussian width {sigma:.2g})")
    ax.set_title(f"Hessian spectral density: {data['model']['spec']}")
    report.save_figure(fig, path)
