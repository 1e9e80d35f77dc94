"""Time one optimizer step on ResNet-18/50 (or transformer-like) parameter lists: torch's
SGD-momentum and AdamW against LPSGDM and LPSGD (per-tensor, foreach, fused), beside the memory
floor of one fused pass and the bytes each step must move.

On CUDA each step is timed with CUDA events (after warm-up steps; the median of many). On CPU the
default is CPU time (time.process_time) at one thread, the figure that holds still on a shared
machine where wall time swings with the load of other processes (--timer wall for perf_counter).
The optimizers take turns, one round of steps each, so that a machine whose load changes during the
run slows all of them alike; each optimizer's turn is also divided by SGD-momentum foreach's turn of
the same round (paired ratios: their median and range over rounds are the steady figure).

The floor is the time to move the bytes one fused LPSGDM pass must move (read theta, g, m; write
theta, m) at the copy bandwidth measured here (a large tensor copy, read + write). "bytes/step" is
each optimizer's own count of passes over memory (`PASSES`) times the parameters' bytes.

    python experiments/bench_optim_step.py                       # CUDA if available, else CPU
    python experiments/bench_optim_step.py --device cpu --models resnet18,gpt-small --rounds 30 \\
        --optimizers "torch SGD momentum foreach,LPSGDM fused" \\
        --out experiments/results/bench_optim_step

Models: lpcheck.models' CIFAR models (resnet18, resnet50, vgg11; --width scales them) and the
transformer-like lists gpt-small (12 layers, d = 768: 148 tensors, 85M parameters) and gpt-mini (12
layers, d = 256: many small tensors, 9.6M parameters), each a GPT-2-like list of embeddings,
LayerNorm weights and biases, and attention and MLP matrices with biases.

Writes experiments/results/bench_optim_step/<device kind>[-<dtype>].json and .md (lpcheck.report),
rewritten after every model, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import names as name_list  # experiments/_common.py: first, it sets sys.path
from _common import out_dir, run_main

from lpcheck import checks, models, report
from lpcheck.optim import LPSGD, LPSGDM
from lpcheck.training import check_threads, torch_device

ROOT = Path(__file__).resolve().parent
LPSGDM_KW = dict(
    lr=1e-3, p_max=6.0, total_epochs=200, momentum=0.9, weight_decay=0.01
)  # paper, Table 4
LPSGD_KW = dict(lr=1e-3, p_max=6.0, total_epochs=200)
BASE = "torch SGD momentum foreach"

# Passes over the parameters' bytes that each step must make (reads + writes), as each is written:
# torch SGD foreach: m *= beta; m += g; theta -= lr m (8); torch's fused kernels: one pass (SGD 5:
# theta, g, m read, theta, m written; AdamW 7 with v); LPSGDM fused 5 and LPSGD fused 3, plus one
# read of g for the default non-finite check; LPSGDM foreach: check 1, lerp 3, rescale factor 6 x 2
# (copy, abs, add, log, mul, exp into the workspace), addcmul 4, decay 2 (22).
PASSES = {
    "torch SGD momentum foreach": 8,
    "torch SGD momentum fused": 5,
    "torch AdamW fused": 7,
    "LPSGDM per-tensor": None,
    "LPSGDM foreach": 22,
    "LPSGDM fused": 6,
    "LPSGDM fused (check_finite=False)": 5,
    "LPSGD fused": 4,
    "LPSGD fused (check_finite=False)": 3,
}


def optimizers(device: torch.device, names=None) -> dict:
    """name -> factory(params); torch's fused optimizers where this torch supports them on
    `device`."""
    table = {
        BASE: lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=True),
        "torch SGD momentum fused": lambda ps: torch.optim.SGD(
            ps, lr=0.1, momentum=0.9, fused=True
        ),
        "torch AdamW fused": lambda ps: torch.optim.AdamW(
            ps, lr=1e-3, weight_decay=0.01, fused=True
        ),
        "LPSGDM per-tensor": lambda ps: LPSGDM(ps, **LPSGDM_KW, foreach=False),
        "LPSGDM foreach": lambda ps: LPSGDM(ps, **LPSGDM_KW, foreach=True),
        "LPSGDM fused": lambda ps: LPSGDM(ps, **LPSGDM_KW, fused=True),
        "LPSGDM fused (check_finite=False)": lambda ps: LPSGDM(
            ps, **LPSGDM_KW, fused=True, check_finite=False
        ),
        "LPSGD fused": lambda ps: LPSGD(ps, **LPSGD_KW, fused=True),
        "LPSGD fused (check_finite=False)": lambda ps: LPSGD(
            ps, **LPSGD_KW, fused=True, check_finite=False
        ),
    }
    if names is not None:
        unknown = sorted(set(names) - set(table))
        if unknown:
            raise ValueError(f"--optimizers: unknown {unknown}; choose from {sorted(table)}")
        table = {k: v for k, v in table.items() if k in names}
    return table


def _triton_version():
    from lpcheck import fused_triton

    return fused_triton.triton.__version__ if fused_triton.available() else None


def gpt_shapes(layers: int, d: int, vocab: int, ctx: int) -> list:
    """A GPT-2-like parameter list: token and position embeddings, per layer two LayerNorms (weight,
    bias), attention (qkv, proj) and MLP (fc, proj) matrices with biases, a final LayerNorm; the
    head is tied to the embedding. Many small tensors: 12 per layer, half of them vectors of d or
    4d."""
    shapes = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [
            (d,),
            (d,),
            (3 * d, d),
            (3 * d,),
            (d, d),
            (d,),
            (d,),
            (d,),
            (4 * d, d),
            (4 * d,),
            (d, 4 * d),
            (d,),
        ]
    return shapes + [(d,), (d,)]


TRANSFORMERS = {
    "gpt-mini": dict(layers=12, d=256, vocab=8192, ctx=256),  # 148 tensors, 11.6M parameters
    "gpt-small": dict(layers=12, d=768, vocab=50257, ctx=1024),
}  # GPT-2 small: 148 tensors, 124M


def param_shapes(model_name: str, width: float = 1.0) -> list:
    if model_name in TRANSFORMERS:
        if width != 1.0:
            raise ValueError(f"--width applies to lpcheck.models' CNNs, not to {model_name}")
        return gpt_shapes(**TRANSFORMERS[model_name])
    if model_name not in models.MODELS:
        known = sorted(models.MODELS) + sorted(TRANSFORMERS)
        raise ValueError(f"--models: unknown {model_name!r}; choose from {known}")
    return [tuple(p.shape) for p in models.build(model_name, width=width).parameters()]


def make_params(shapes, device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [
        torch.nn.Parameter((torch.randn(s, generator=g) * 0.05).to(device, dtype)) for s in shapes
    ]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g).to(device, dtype)
    return params


class _Timer:
    """Seconds per call of fn: CUDA events on CUDA (the step's span on the GPU, host gaps included);
    on CPU time.process_time (CPU time of this process: the steady figure at one thread on a shared
    machine) or perf_counter (wall)."""

    def __init__(self, device, kind="auto"):
        self.kind = ("events" if device.type == "cuda" else "cpu") if kind == "auto" else kind
        if self.kind == "events" and device.type != "cuda":
            raise ValueError("--timer events needs --device cuda")

    def describe(self) -> str:
        return {
            "events": "CUDA events around each step",
            "cpu": "CPU time (process_time) of each step",
            "wall": "wall time (perf_counter) of each step",
        }[self.kind]

    def __call__(self, fn, n: int) -> list[float]:
        if self.kind != "events":
            clock = time.process_time if self.kind == "cpu" else time.perf_counter
            out = []
            for _ in range(n):
                t = clock()
                fn()
                out.append(clock() - t)
            return out
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            for _ in range(n)
        ]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        return [start.elapsed_time(end) / 1e3 for start, end in events]


def copy_bandwidth(device, timer, nbytes=1 << 28, reps=20) -> float:
    """Bytes per second of x.copy_(y) for a large float32 tensor, counting the read and the
    write."""
    n = nbytes // 4
    src, dst = torch.randn(n, device=device), torch.empty(n, device=device)
    timer(lambda: dst.copy_(src), 3)
    return 2 * nbytes / statistics.median(timer(lambda: dst.copy_(src), reps))


def summarize(seconds: list[float]) -> dict:
    q = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else [seconds[0]] * 3
    return {
        "median_ms": statistics.median(seconds) * 1e3,
        "q1_ms": q[0] * 1e3,
        "q3_ms": q[2] * 1e3,
        "min_ms": min(seconds) * 1e3,
        "samples": len(seconds),
    }


def bench_model(shapes, device, dtype, names, warmup, rounds, steps, timer, progress=print) -> dict:
    """Median step time of each optimizer on the parameter list, interleaved round by round."""
    runs = {}
    for name, factory in optimizers(device, names).items():
        params = make_params(shapes, device, dtype)
        try:
            opt = factory(params)
            t = time.perf_counter()
            opt.step()  # state (momentum buffers), compilation, kernel caches
            if device.type == "cuda":
                torch.cuda.synchronize()
            first = time.perf_counter() - t
            timer(opt.step, warmup)
        except (
            RuntimeError,
            ValueError,
        ) as e:  # e.g. a torch without a fused kernel for this device
            progress(f"{name}: not available ({type(e).__name__}: {str(e).splitlines()[0]})")
            continue
        runs[name] = {"opt": opt, "samples": [], "turns": [], "first_step_s": first}
    for _ in range(rounds):
        for run in runs.values():
            turn = timer(run["opt"].step, steps)
            run["samples"] += turn
            run["turns"].append(statistics.median(turn))
    numel = sum(torch.Size(s).numel() for s in shapes)
    results = {
        name: dict(summarize(run["samples"]), first_step_s=run["first_step_s"])
        for name, run in runs.items()
    }
    base = runs.get(BASE)
    for (
        name,
        run,
    ) in (
        runs.items()
    ):  # paired: each turn against SGD's turn of the same round (load drifts cancel)
        if base is not None:
            paired = [a / b for a, b in zip(run["turns"], base["turns"])]
            results[name]["paired_x_sgdm_foreach"] = {
                "median": statistics.median(paired),
                "min": min(paired),
                "max": max(paired),
                "rounds": len(paired),
            }
    return {
        "parameters": numel,
        "tensors": len(shapes),
        "dtype": str(dtype).replace("torch.", ""),
        "results": results,
    }


def add_ratios(entry: dict, bandwidth: float, itemsize: int) -> None:
    """Each optimizer's median as a multiple of torch's SGD-momentum (foreach, fused) and of the
    floor, and the bytes its step moves (PASSES) with the bandwidth that implies."""
    bytes_per_pass = entry["parameters"] * itemsize
    floor_s = 5 * bytes_per_pass / bandwidth  # read theta, g, m; write theta, m
    entry["floor_ms"] = floor_s * 1e3
    res = entry["results"]
    for name, r in res.items():
        for base in (BASE, "torch SGD momentum fused"):
            if base in res:
                r[f"x {base}"] = r["median_ms"] / res[base]["median_ms"]
        r["x floor"] = r["median_ms"] / entry["floor_ms"]
        passes = PASSES.get(name)
        r["bytes_per_step"] = passes * bytes_per_pass if passes else None
        r["achieved_GBps"] = (
            passes * bytes_per_pass / (r["median_ms"] * 1e-3) / 1e9 if passes else None
        )


def render(data: dict) -> str:
    lines = [
        f"# One optimizer step, {data['device']}\n",
        f"{data['timing']}; copy bandwidth {data['copy_bandwidth_GBps']:.1f} GB/s (read + write "
        f"of a {data['copy_bytes'] >> 20} MiB tensor). Ratios: of medians over all steps, and "
        "paired (each turn's median over SGD-momentum foreach's in the same round; median and "
        "range over rounds).\n",
    ]
    for model_name, entry in data["models"].items():
        lines.append(
            f"\n## {model_name}: {entry['parameters'] / 1e6:.2f}M {entry['dtype']} parameters in "
            f"{entry.get('tensors', '?')} tensors\n"
        )
        lines.append(
            f"Floor (5 passes of {entry['dtype']} at the copy bandwidth): {entry['floor_ms']:.3f} "
            "ms\n"
        )
        rows = []
        for name, r in entry["results"].items():
            paired = r.get("paired_x_sgdm_foreach")
            mb = r.get("bytes_per_step")
            ratio = {
                k: f"{r[k]:.2f}" if k in r else ""
                for k in ("x " + BASE, "x torch SGD momentum fused")
            }
            rows.append(
                [
                    name,
                    f"{r['median_ms']:.3f}",
                    f"{r['q1_ms']:.3f}-{r['q3_ms']:.3f}",
                    f"{r['min_ms']:.3f}",
                    ratio["x " + BASE],
                    f"{paired['median']:.2f} ({paired['min']:.2f}-{paired['max']:.2f})"
                    if paired
                    else "",
                    ratio["x torch SGD momentum fused"],
                    f"{r['x floor']:.2f}",
                    f"{mb / 2**20:.0f}" if mb else "",
                    f"{r['achieved_GBps']:.0f}" if mb else "",
                    f"{r['first_step_s']:.1f}",
                ]
            )
        lines.append(
            report.markdown_table(
                [
                    "optimizer",
                    "median ms",
                    "IQR ms",
                    "min ms",
                    "x SGDM foreach",
                    "paired x SGDM foreach (range)",
                    "x SGDM fused",
                    "x floor",
                    "MiB/step",
                    "GB/s",
                    "first step s (compile)",
                ],
                rows,
            )
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--models",
        default="resnet18,resnet50",
        help="comma-separated: lpcheck.models names, gpt-mini, gpt-small",
    )
    parser.add_argument(
        "--width", type=float, default=1.0, help="channel width of lpcheck.models' CNNs"
    )
    parser.add_argument(
        "--optimizers", default=None, help="comma-separated subset of the optimizer names"
    )
    parser.add_argument("--dtype", default="float32", help="comma-separated: float32, bfloat16")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads (torch.set_num_threads; default 1)"
    )
    parser.add_argument(
        "--timer",
        choices=["auto", "cpu", "wall", "events"],
        default="auto",
        help="auto: CUDA events on CUDA, CPU time (process_time) on CPU",
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps (default 20 CUDA, 3 CPU)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="turns per optimizer (default 10 CUDA, 5 CPU)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps per turn (default 20 CUDA, 5 CPU)"
    )
    parser.add_argument("--out", default=str(ROOT / "results" / "bench_optim_step"))
    parser.add_argument(
        "--name", default=None, help="stem of the report files (default: cuda or cpu, -dtype)"
    )
    args = parser.parse_args(argv)

    device = torch_device(args.device, "--device")
    cuda = device.type == "cuda"
    threads = check_threads(args.threads, "--threads")
    warmup = checks.integer(
        "--warmup",
        args.warmup if args.warmup is not None else (20 if cuda else 3),
        low=0,
        high=1_000_000_000,
    )
    rounds = checks.integer(
        "--rounds",
        args.rounds if args.rounds is not None else (10 if cuda else 5),
        low=1,
        high=1_000_000_000,
    )
    steps = checks.integer(
        "--steps",
        args.steps if args.steps is not None else (20 if cuda else 5),
        low=1,
        high=1_000_000_000,
    )
    dtypes = name_list(args.dtype, "--dtype", ["float32", "bfloat16"])
    width = checks.real("--width", args.width, low=0, low_open=True)
    model_names = name_list(args.models, "--models", sorted(models.MODELS) + sorted(TRANSFORMERS))
    names = (
        None
        if args.optimizers is None
        else name_list(args.optimizers, "--optimizers", optimizers(device))
    )
    timer = _Timer(device, args.timer)
    out_dir(args.out)
    shapes = {m: param_shapes(m, width) for m in model_names}
    if not cuda:
        torch.set_num_threads(threads)

    bandwidth = copy_bandwidth(device, timer)
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        cpu = (
            ""
            if cuda
            else f", {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} thread(s)"
        )
        data = {
            "device": report.device_name(device) + cpu,
            "timing": timer.describe()
            + f", {warmup} warm-up steps, {rounds} interleaved turns of {steps} steps "
            "per optimizer",
            "copy_bandwidth_GBps": bandwidth / 1e9,
            "copy_bytes": 1 << 28,
            "models": {},
            "width": width,
            "triton": _triton_version(),
            "provenance": report.provenance(
                device,
                command=[
                    "python",
                    "experiments/bench_optim_step.py",
                    *(sys.argv[1:] if argv is None else argv),
                ],
            ),
        }
        stem = (args.name or ("cuda" if cuda else "cpu")) + (
            "" if dtype_name == "float32" else f"-{dtype_name}"
        )
        for model_name, model_shapes in shapes.items():
            entry = bench_model(
                model_shapes,
                device,
                dtype,
                names,
                warmup,
                rounds,
                steps,
                timer,
                progress=lambda s, m=model_name: print(f"{m}: {s}", file=sys.stderr),
            )
            add_ratios(entry, bandwidth, torch.tensor([], dtype=dtype).element_size())
            data["models"][model_name] = entry
            paths = report.write_report(args.out, stem, data, render)
            print(f"{model_name} {dtype_name}: written {paths['md']}", file=sys.stderr)
        print(render(data))
    return 0


if __name__ == "__main__":
    run_main(main, "bench_optim_step.py")
