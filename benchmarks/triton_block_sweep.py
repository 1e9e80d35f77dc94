"""The fused step's Triton kernels alone, on a model's parameter list, at several block sizes and
warp counts.

    python benchmarks/triton_block_sweep.py --device cuda --model resnet50 \\
        --out experiments/results/gpu/kernel-sweep

For each configuration (bytes of each tensor per program : warps per program) it checks that one
LPSGDM step from the same inputs gives bitwise the same theta and m as the default configuration
(the step is elementwise: tiling must not change a bit), then times the update kernel (unguarded)
and the non-finite check kernel with triton.testing.do_bench (CUDA events, median, L2 flushed
between runs), and reports each as GB/s of the bytes it must move (update: read theta, g, m, write
theta, m; check: read g) and as a fraction of the measured copy bandwidth. Writes OUT/sweep.json and
sweep.md. Without CUDA the kernels run in Triton's interpreter on CPU: that checks the script and
the bitwise agreement, and its timings mean nothing (they are labelled so)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if not torch.cuda.is_available():  # before triton is imported (lpcheck.fused_triton imports it)
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lpcheck import fused_triton, models, report  # noqa: E402

DEFAULT_CONFIGS = (
    "8192:8,4096:4,8192:4,16384:8"  # the default first; 4096:4 was the first kernel's 1024 float32
)


def parse(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="resnet50", choices=sorted(models.MODELS))
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument(
        "--configs", default=DEFAULT_CONFIGS, help="comma-separated BLOCK_BYTES:NUM_WARPS"
    )
    ap.add_argument(
        "--reps", type=int, default=None, help="timed runs per kernel on CPU (CUDA: do_bench's own)"
    )
    ap.add_argument(
        "--max-tensors",
        type=int,
        default=None,
        help="the model's first N tensors only (quick checks)",
    )
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "kernel-sweep"))
    args = ap.parse_args(argv)
    if not fused_triton.available():
        raise ValueError("needs the triton package (pip install triton)")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda but CUDA is not available")
    try:
        args.configs = [tuple(int(v) for v in c.split(":")) for c in args.configs.split(",") if c]
    except ValueError:
        raise ValueError(
            f"--configs takes BLOCK_BYTES:NUM_WARPS,..., got {args.configs!r}"
        ) from None
    for block_bytes, warps in args.configs:
        if block_bytes < 16 or block_bytes & (block_bytes - 1) or warps not in (1, 2, 4, 8, 16, 32):
            raise ValueError(
                f"--configs: block bytes must be a power of two >= 16 and warps a power of two "
                f"<= 32, got {block_bytes}:{warps}"
            )
    if (
        not args.width > 0
        or (args.reps is not None and args.reps < 1)
        or (args.max_tensors or 1) < 1
    ):
        raise ValueError("--width must be > 0, --reps and --max-tensors >= 1")
    return args


def _state(shapes, device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    make = [
        lambda s: torch.randn(s, generator=g) * 0.05,
        lambda s: torch.randn(s, generator=g),
        lambda s: torch.randn(s, generator=g) * 1e-3,
    ]
    return [[f(s).to(device, dtype) for s in shapes] for f in make]  # theta, g, m


def _timer(device, reps):
    if device.type == "cuda":
        import triton.testing

        return lambda fn: (
            triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median") * 1e-3
        )

    def wall(fn):
        fn()
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    return wall


def main(argv=None) -> int:
    args = parse(argv)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    shapes = [tuple(p.shape) for p in models.build(args.model, width=args.width).parameters()][
        : args.max_tensors
    ]
    numel = sum(torch.Size(s).numel() for s in shapes)
    itemsize = torch.tensor([], dtype=dtype).element_size()
    measure = _timer(device, args.reps or 3)
    src, dst = torch.randn(1 << 26, device=device), torch.empty(1 << 26, device=device)
    copy_gbps = 2 * src.numel() * 4 / measure(lambda: dst.copy_(src)) / 1e9
    step = dict(w=0.1, decay=1 - 1e-3 * 0.01, neg_lr=-1e-3, neg_rho=-0.8, eps=1e-8)

    reference = None
    rows = []
    for block_bytes, warps in args.configs:
        theta, g, m = _state(shapes, device, dtype)
        block = fused_triton.block_elements(dtype, block_bytes)
        bucket = fused_triton.Bucket(theta, g, m, block=block, num_warps=warps)
        bucket.step_(**step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        result = [t.clone() for t in theta + m]
        if reference is None:
            reference = result
        same = all(torch.equal(a, b) for a, b in zip(result, reference))
        flag = fused_triton.new_flag(device)
        t_step = measure(lambda b=bucket: b.step_(**step))
        t_check = measure(lambda b=bucket, f=flag: b.nonfinite_(f))
        rows.append(
            {
                "block_bytes": block_bytes,
                "block_elements": bucket.block,
                "num_warps": warps,
                "programs": bucket.tables.n_blocks,
                "bitwise_equal_to_first": same,
                "step_us": t_step * 1e6,
                "step_GBps": 5 * numel * itemsize / t_step / 1e9,
                "check_us": t_check * 1e6,
                "check_GBps": numel * itemsize / t_check / 1e9,
            }
        )
        rows[-1]["step_x_copy_bandwidth"] = rows[-1]["step_GBps"] / copy_gbps
        print(
            f"{block_bytes}:{warps}: step {rows[-1]['step_us']:.1f} us "
            f"({rows[-1]['step_GBps']:.0f} GB/s), check {rows[-1]['check_us']:.1f} us, bitwise "
            f"equal {same}",
            file=sys.stderr,
        )
    data = {
        "model": args.model,
        "width": args.width,
        "dtype": args.dtype,
        "parameters": numel,
        "tensors": len(shapes),
        "copy_GBps": copy_gbps,
        "timing": "triton.testing.do_bench median"
        if device.type == "cuda"
        else "Triton interpreter on CPU: timings are not GPU timings",
        "triton": fused_triton.triton.__version__,
        "default": [fused_triton.BLOCK_BYTES, fused_triton.NUM_WARPS],
        "configs": rows,
        "provenance": report.provenance(
            device,
            command=[
                "python",
                "benchmarks/triton_block_sweep.py",
                *(sys.argv[1:] if argv is None else argv),
            ],
        ),
    }

    def render(d):
        table = report.markdown_table(
            [
                "block bytes",
                "elements",
                "warps",
                "programs",
                "bitwise = first",
                "step us",
                "step GB/s",
                "x copy",
                "check us",
                "check GB/s",
            ],
            [
                [
                    r["block_bytes"],
                    r["block_elements"],
                    r["num_warps"],
                    r["programs"],
                    r["bitwise_equal_to_first"],
                    f"{r['step_us']:.1f}",
                    f"{r['step_GBps']:.0f}",
                    f"{r['step_x_copy_bandwidth']:.2f}",
                    f"{r['check_us']:.1f}",
                    f"{r['check_GBps']:.0f}",
                ]
                for r in d["configs"]
            ],
        )
        return (
            f"# Fused Triton kernel: {d['model']} (width {d['width']}), {d['parameters']} "
            f"{d['dtype']} parameters in {d['tensors']} tensors\n\n{d['timing']}; copy bandwidth "
            f"{d['copy_GBps']:.0f} GB/s; default "
            f"{d['default'][0]} bytes : {d['default'][1]} warps; Triton {d['triton']}.\n\n" + table
        )

    report.write_report(args.out, "sweep", data, render)
    return 0 if all(r["bitwise_equal_to_first"] for r in rows) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as e:
        print(f"triton_block_sweep.py: error: {e}", file=sys.stderr)
        sys.exit(2)
