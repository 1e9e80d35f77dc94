"""Time one Hessian-vector product over a fixed dataset: lpcheck's operator against PyHessian's way.

Four products of the same Hessian (eval mode, the mean loss over --images training images in batches
of --batch-size), taking turns one product each per round so that a machine whose load changes slows
all of them alike:
  - "lpcheck before": the product as lpcheck computed it before kept graphs (commit 9aecfd9): per
    batch a forward, a backward with create_graph=True and the double backward, every product;
  - "PyHessian-style, kept graphs": written here from PyHessian's description (not its code): each
    batch's first backward is done once with create_graph=True and its gradients kept; a product is
    autograd.grad(gradients, params, grad_outputs=v, retain_graph=True) per batch on lists of
    tensors, weighted by batch size;
  - "lpcheck, kept graphs" (HessianOperator(retain=True): what retain="auto" picks when they fit);
  - "lpcheck, recomputed" (HessianOperator(retain=False): the memory-light way).
Time is CPU time (time.process_time) at --threads threads (default 1) on CPU, or CUDA events on a
GPU. Ratios are the median over rounds of each round's time divided by that round's PyHessian-style
time.

    # ResNet-18 width 1/8, 256 images
    python experiments/bench_curvature.py
    python experiments/bench_curvature.py --device cuda --width 1 --images 1024 --rounds 10

Writes experiments/results/bench_curvature/<device kind>.json and .md (lpcheck.report).

    python experiments/bench_curvature.py --trace-study

measures instead the RMS error of Hutchinson and Hutch++ at equal products over --seeds seeds on two
known traces: one eigenvalue 100 over 299 uniform in [0, 1) (a spectrum led by one outlier), and the
explicit Hessian of a small tanh MLP at initialisation (tests/test_curvature.py's split_mlp), and
writes trace.json and trace.md beside.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (experiments/_common.py: this checkout's lpcheck first on sys.path)
import torch

from lpcheck import curvature, models, report
from lpcheck import data as cifar
from lpcheck.training import torch_device

ROOT = Path(__file__).resolve().parent


def loss_fn(model, batch):
    return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])


def before(model, batches):
    """lpcheck's product before kept graphs: recompute each batch's graph, batches averaged
    equally."""
    params = [p for p in model.parameters() if p.requires_grad]
    dim = sum(p.numel() for p in params)

    def product(v):
        vs = [t.view_as(p) for t, p in zip(torch.split(v, [p.numel() for p in params]), params)]
        total = torch.zeros(dim, device=v.device, dtype=v.dtype)
        for batch in batches:
            grads = torch.autograd.grad(loss_fn(model, batch), params, create_graph=True)
            hv = torch.autograd.grad(grads, params, grad_outputs=vs)
            total += torch.cat([h.reshape(-1) for h in hv])
        return total / len(batches)

    return product


def kept_graphs(model, batches):
    """The kept-graph product on lists of tensors (PyHessian's way, for several batches)."""
    params = [p for p in model.parameters() if p.requires_grad]
    n = sum(len(b[1]) for b in batches)
    kept = [
        (len(b[1]) / n, torch.autograd.grad(loss_fn(model, b), params, create_graph=True))
        for b in batches
    ]

    def product(vs):
        total = [torch.zeros_like(p) for p in params]
        for w, grads in kept:
            hv = torch.autograd.grad(grads, params, grad_outputs=vs, retain_graph=True)
            total = [t + w * h for t, h in zip(total, hv)]
        return total

    return product


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, arg):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(arg)
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3
        t = time.process_time()
        fn(arg)
        return time.process_time() - t


def trace_study(args):
    """RMS error of the two trace estimators over seeds, at equal products, on two known traces."""
    from lpcheck.curvature import DenseOperator, HessianOperator, hutchinson_trace, hutchpp_trace

    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(300, 300, generator=g, dtype=torch.float64))
    lam = torch.cat(
        [
            torch.tensor([100.0], dtype=torch.float64),
            torch.rand(299, generator=g, dtype=torch.float64),
        ]
    )
    torch.manual_seed(0)  # tests/test_curvature.py's split_mlp()
    mlp = torch.nn.Sequential(
        torch.nn.Linear(10, 12), torch.nn.Tanh(), torch.nn.Linear(12, 4)
    ).double()
    x, y = torch.randn(128, 10, dtype=torch.float64), torch.randint(0, 4, (128,))
    op = HessianOperator(mlp, loss_fn, [(x, y)], mode="eval")
    H = torch.stack([op(e) for e in torch.eye(op.dim, dtype=torch.float64)], 1)
    cases = {
        "one outlier (100 over 299 in [0, 1))": Q @ torch.diag(lam) @ Q.T,
        f"tanh MLP Hessian at initialisation ({op.dim} parameters)": (H + H.T) / 2,
    }
    rows = []
    for name, M in cases.items():
        dense, exact = DenseOperator(M), float(torch.trace(M))
        eig = torch.linalg.eigvalsh(M)
        for m in (30, 60, 99):
            rms = {}
            for label, fn in (("hutchinson", hutchinson_trace), ("hutchpp", hutchpp_trace)):
                errors = torch.tensor(
                    [
                        fn(dense, m, generator=torch.Generator().manual_seed(s))[0] - exact
                        for s in range(args.seeds)
                    ]
                )
                rms[label] = float(errors.square().mean().sqrt())
            rows.append(
                {
                    "operator": name,
                    "trace": exact,
                    "top_eigenvalue": float(eig[-1]),
                    "products": m,
                    "rms_hutchinson": rms["hutchinson"],
                    "rms_hutchpp": rms["hutchpp"],
                    "ratio": rms["hutchinson"] / rms["hutchpp"],
                }
            )
            print(rows[-1], file=sys.stderr)
    data = {
        "seeds": args.seeds,
        "rows": rows,
        "provenance": report.provenance(
            None,
            command=[
                "python",
                "experiments/bench_curvature.py",
                "--trace-study",
                "--seeds",
                str(args.seeds),
            ],
        ),
    }

    def render(d):
        table = [
            [
                r["operator"],
                f"{r['trace']:.4g}",
                f"{r['top_eigenvalue']:.3g}",
                r["products"],
                f"{r['rms_hutchinson']:.3g}",
                f"{r['rms_hutchpp']:.3g}",
                f"{r['ratio']:.2f}",
            ]
            for r in d["rows"]
        ]
        return "\n".join(
            [
                "# Trace estimators: RMS error at equal products\n",
                f"Over {d['seeds']} seeds; ratio = Hutchinson's RMS error / Hutch++'s (> 1: "
                "Hutch++ wins).\n",
                report.markdown_table(
                    [
                        "operator",
                        "trace",
                        "top eigenvalue",
                        "products",
                        "RMS Hutchinson",
                        "RMS Hutch++",
                        "ratio",
                    ],
                    table,
                ),
            ]
        )

    report.write_report(Path(args.out), "trace", data, render)
    print(render(data))
    return 0


def parse(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="resnet18", choices=sorted(models.MODELS))
    ap.add_argument("--width", type=float, default=0.125)
    ap.add_argument("--data", default=str(_common.DEFAULT_DATA))
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "results" / "bench_curvature"))
    ap.add_argument(
        "--trace-study",
        action="store_true",
        help="the trace estimators' errors instead (docstring)",
    )
    ap.add_argument("--seeds", type=int, default=300, help="seeds of --trace-study (default 300)")
    args = ap.parse_args(argv)
    for name in ("images", "batch_size", "rounds", "threads", "seeds"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def render(data):
    rows = [
        [
            name,
            f"{r['median_s'] * 1e3:.0f}",
            f"{r['min_s'] * 1e3:.0f}-{r['max_s'] * 1e3:.0f}",
            f"{r['ratio_median']:.3f}",
            f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f}",
        ]
        for name, r in data["methods"].items()
    ]
    c = data["config"]
    cpu = c["device"] == "cpu"
    timing = "CPU time at " + str(c["threads"]) + " thread(s)" if cpu else "CUDA events"
    return "\n".join(
        [
            "# Hessian-vector product: time per product\n",
            f"{c['model']} width {c['width']}, {data['dim']:,} parameters, {c['images']} images "
            f"in batches of {c['batch_size']}, {c['dtype']}, eval mode; {c['rounds']} interleaved "
            "rounds; "
            f"{timing}. "
            f"Kept graphs: ~{data['graph_mib']:.0f} MiB (lpcheck's estimate). Ratio: to "
            "PyHessian-style, per round.\n",
            report.markdown_table(
                ["product", "median ms", "min-max ms", "ratio (median)", "ratio min-max"], rows
            ),
            "",
            f"Largest relative difference between the four products: {data['max_rel_diff']:.2e}.",
        ]
    )


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(args.threads)
    if args.trace_study:
        return trace_study(args)
    device = torch_device(args.device)
    dtype = getattr(torch, args.dtype)
    train = cifar.DeviceCifar.train(cifar.load_cifar(args.data).subset(args.images), device)
    batches = [
        tuple(
            t.to(dtype) if t.is_floating_point() else t
            for t in train.batch(
                torch.arange(i, min(i + args.batch_size, args.images), device=device)
            )
        )
        for i in range(0, args.images, args.batch_size)
    ]
    torch.manual_seed(0)
    model = models.build(args.model, width=args.width).to(device, dtype).eval()
    lp_kept = curvature.HessianOperator(model, loss_fn, batches, mode="eval", retain=True)
    lp_fresh = curvature.HessianOperator(model, loss_fn, batches, mode="eval", retain=False)
    pyh = kept_graphs(model, batches)
    methods = {
        "lpcheck before (recomputed, 9aecfd9)": before(model, batches),
        "PyHessian-style, kept graphs": lambda v: pyh(lp_kept.split(v)),
        "lpcheck, kept graphs (retain=True)": lp_kept,
        "lpcheck, recomputed (retain=False)": lp_fresh,
    }
    v = torch.randn(
        lp_kept.dim, device=device, dtype=dtype, generator=torch.Generator(device).manual_seed(0)
    )
    outs = {
        k: (torch.cat([t.reshape(-1) for t in f(v)]) if k.startswith("PyHessian") else f(v))
        for k, f in methods.items()
    }  # warm-up: builds the kept graphs
    ref = outs["PyHessian-style, kept graphs"]
    # equal-size batches: the old equal average is the size-weighted one, so all four agree
    diff = max(float((o - ref).norm() / ref.norm()) for o in outs.values())
    pyh_args = lp_kept.split(v)
    timer, times = Timer(device), {k: [] for k in methods}
    names = list(methods)
    for r in range(args.rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            times[k].append(
                timer(
                    pyh if k.startswith("PyHessian") else methods[k],
                    pyh_args if k.startswith("PyHessian") else v,
                )
            )
        print(
            f"round {r + 1}/{args.rounds}: " + ", ".join(f"{times[k][-1]:.3f}" for k in names),
            file=sys.stderr,
        )
    base = times["PyHessian-style, kept graphs"]
    data = {
        "config": vars(args),
        "dim": lp_kept.dim,
        "graph_mib": lp_kept.graph_bytes / 2**20,
        "max_rel_diff": diff,
        "methods": {},
        "provenance": report.provenance(
            device,
            command=[
                "python",
                "experiments/bench_curvature.py",
                *(argv if argv is not None else sys.argv[1:]),
            ],
        ),
    }
    for k, ts in times.items():
        ratios = [t / b for t, b in zip(ts, base)]
        data["methods"][k] = {
            "seconds": ts,
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "max_s": max(ts),
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
    kind = "cuda" if device.type == "cuda" else "cpu"
    report.write_report(Path(args.out), kind, data, render)
    print(render(data))
    return 0


if __name__ == "__main__":
    _common.run_main(main, "bench_curvature.py")
