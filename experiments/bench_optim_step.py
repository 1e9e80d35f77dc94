"""Time one optimizer step on ResNet-18/50 parameter sets: torch's SGD-momentum and AdamW against
LPSGDM (per-tensor, foreach, fused), beside the memory floor of one fused pass.

On CUDA each step is timed with CUDA events (after warm-up steps; the median of many); on CPU with
perf_counter around the step (which waits for its result). The optimizers take turns, one round of
steps each, so that a machine whose load changes during the run slows all of them alike. The floor
is the time to move the bytes one fused LPSGDM pass must move (read theta, g, m; write theta, m) at
the copy bandwidth measured here (a large tensor copy, read + write).

    python experiments/bench_optim_step.py                       # CUDA if available, else CPU
    python experiments/bench_optim_step.py --device cpu --threads 2 --models resnet18

Writes experiments/results/bench_optim_step/<device kind>.json and .md (lpcheck.report), rewritten
after every model, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from _common import names as name_list, out_dir, run_main  # experiments/_common.py: first, it sets sys.path

from lpcheck import checks, models, report
from lpcheck.optim import LPSGDM
from lpcheck.training import check_threads, torch_device

ROOT = Path(__file__).resolve().parent
LPSGDM_KW = dict(lr=1e-3, p_max=6.0, total_epochs=200, momentum=0.9, weight_decay=0.01)  # paper, Table 4


def optimizers(device: torch.device, names=None) -> dict:
    """name -> factory(params); torch's fused optimizers where this torch supports them on `device`."""
    table = {
        "torch SGD momentum foreach": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, foreach=True),
        "torch SGD momentum fused": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, fused=True),
        "torch AdamW fused": lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.01, fused=True),
        "LPSGDM per-tensor": lambda ps: LPSGDM(ps, **LPSGDM_KW, foreach=False),
        "LPSGDM foreach": lambda ps: LPSGDM(ps, **LPSGDM_KW, foreach=True),
        "LPSGDM fused": lambda ps: LPSGDM(ps, **LPSGDM_KW, fused=True),
        "LPSGDM fused, check_finite=False": lambda ps: LPSGDM(ps, **LPSGDM_KW, fused=True, check_finite=False),
    }
    if names is not None:
        unknown = sorted(set(names) - set(table))
        if unknown:
            raise ValueError(f"unknown optimizer(s) {unknown}; choose from {sorted(table)}")
        table = {k: v for k, v in table.items() if k in names}
    return table


def _triton_version():
    from lpcheck import fused_triton

    return fused_triton.triton.__version__ if fused_triton.available() else None


def make_params(model_name: str, device, dtype, seed=0):
    torch.manual_seed(seed)
    params = [torch.nn.Parameter(p.detach().to(device, dtype)) for p in models.build(model_name).parameters()]
    for p in params:
        p.grad = torch.randn_like(p)
    return params


class _Timer:
    """Seconds per call of fn: CUDA events on CUDA (GPU time of the step), perf_counter on CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, n: int) -> list[float]:
        if not self.cuda:
            out = []
            for _ in range(n):
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
            return out
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize()
        return [start.elapsed_time(end) / 1e3 for start, end in events]


def copy_bandwidth(device, timer, nbytes=1 << 28, reps=20) -> float:
    """Bytes per second of x.copy_(y) for a large float32 tensor, counting the read and the write."""
    n = nbytes // 4
    src, dst = torch.randn(n, device=device), torch.empty(n, device=device)
    timer(lambda: dst.copy_(src), 3)
    return 2 * nbytes / statistics.median(timer(lambda: dst.copy_(src), reps))


def summarize(seconds: list[float]) -> dict:
    q = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else [seconds[0]] * 3
    return {"median_ms": statistics.median(seconds) * 1e3, "q1_ms": q[0] * 1e3, "q3_ms": q[2] * 1e3,
            "min_ms": min(seconds) * 1e3, "samples": len(seconds)}


def bench_model(model_name, device, dtype, names, warmup, rounds, steps, timer, progress=print) -> dict:
    """Median step time of each optimizer on the model's parameters, interleaved round by round."""
    runs = {}
    for name, factory in optimizers(device, names).items():
        params = make_params(model_name, device, dtype)
        try:
            opt = factory(params)
            t = time.perf_counter()
            opt.step()  # state (momentum buffers), compilation, kernel caches
            if device.type == "cuda":
                torch.cuda.synchronize()
            first = time.perf_counter() - t
            timer(opt.step, warmup)
        except (RuntimeError, ValueError) as e:  # e.g. a torch without a fused kernel for this device
            progress(f"{model_name}: {name}: not available ({type(e).__name__}: {str(e).splitlines()[0]})")
            continue
        runs[name] = {"opt": opt, "samples": [], "turns": [], "first_step_s": first}
    for _ in range(rounds):
        for run in runs.values():
            turn = timer(run["opt"].step, steps)
            run["samples"] += turn
            run["turns"].append(statistics.median(turn))
    numel = sum(p.numel() for p in make_params(model_name, "cpu", torch.float32))
    results = {name: dict(summarize(run["samples"]), first_step_s=run["first_step_s"]) for name, run in runs.items()}
    base = runs.get("torch SGD momentum foreach")
    for name, run in runs.items():  # paired: each turn against SGD's turn of the same round (load drifts cancel)
        if base is not None:
            paired = [a / b for a, b in zip(run["turns"], base["turns"])]
            results[name]["paired_x_sgdm_foreach"] = {"median": statistics.median(paired), "min": min(paired),
                                                      "max": max(paired)}
    return {"parameters": numel, "dtype": str(dtype).replace("torch.", ""), "results": results}


def add_ratios(entry: dict, bandwidth: float, itemsize: int) -> None:
    """Each optimizer's median as a multiple of torch's SGD-momentum (foreach, fused) and of the floor."""
    floor_s = 5 * entry["parameters"] * itemsize / bandwidth  # read theta, g, m; write theta, m
    entry["floor_ms"] = floor_s * 1e3
    res = entry["results"]
    for name, r in res.items():
        for base in ("torch SGD momentum foreach", "torch SGD momentum fused"):
            if base in res:
                r[f"x {base}"] = r["median_ms"] / res[base]["median_ms"]
        r["x floor"] = r["median_ms"] / entry["floor_ms"]


def render(data: dict) -> str:
    lines = [f"# One optimizer step, {data['device']}\n",
             f"{data['timing']}; copy bandwidth {data['copy_bandwidth_GBps']:.1f} GB/s "
             f"(read + write of a {data['copy_bytes'] >> 20} MiB tensor). Ratios: of medians over all steps, "
             "and paired (each turn's median over SGD-momentum foreach's in the same round; median and range "
             "over rounds).\n"]
    for model_name, entry in data["models"].items():
        lines.append(f"\n## {model_name}: {entry['parameters'] / 1e6:.2f}M {entry['dtype']} parameters\n")
        lines.append(f"Floor (5 passes of {entry['dtype']} at the copy bandwidth): {entry['floor_ms']:.3f} ms\n")
        rows = []
        for name, r in entry["results"].items():
            paired = r.get("paired_x_sgdm_foreach")
            rows.append([name, f"{r['median_ms']:.3f}", f"{r['q1_ms']:.3f}-{r['q3_ms']:.3f}", f"{r['min_ms']:.3f}",
                         f"{r.get('x torch SGD momentum foreach', float('nan')):.2f}",
                         f"{paired['median']:.2f} ({paired['min']:.2f}-{paired['max']:.2f})" if paired else "",
                         f"{r.get('x torch SGD momentum fused', float('nan')):.2f}", f"{r['x floor']:.1f}",
                         f"{r['first_step_s']:.1f}"])
        lines.append(report.markdown_table(
            ["optimizer", "median ms", "IQR ms", "min ms", "x SGDM foreach", "paired x SGDM foreach (range)",
             "x SGDM fused", "x floor", "first step s (compile)"], rows))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="resnet18,resnet50", help="comma-separated names from lpcheck.models")
    parser.add_argument("--optimizers", default=None, help="comma-separated subset of the optimizer names")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default 20 CUDA, 3 CPU)")
    parser.add_argument("--rounds", type=int, default=None, help="turns per optimizer (default 10 CUDA, 5 CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per turn (default 20 CUDA, 5 CPU)")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench_optim_step"))
    args = parser.parse_args(argv)

    device = torch_device(args.device, "--device")
    cuda = device.type == "cuda"
    threads = check_threads(args.threads, "--threads")
    warmup = checks.integer("--warmup", args.warmup if args.warmup is not None else (20 if cuda else 3), low=0,
                            high=1_000_000_000)
    rounds = checks.integer("--rounds", args.rounds if args.rounds is not None else (10 if cuda else 5), low=1,
                            high=1_000_000_000)
    steps = checks.integer("--steps", args.steps if args.steps is not None else (20 if cuda else 5), low=1,
                           high=1_000_000_000)
    model_names = name_list(args.models, "--models", sorted(models.MODELS))
    opt_names = None if args.optimizers is None else name_list(args.optimizers, "--optimizers", optimizers(device))
    out_dir(args.out)
    if not cuda:
        torch.set_num_threads(threads)
    dtype = getattr(torch, args.dtype)
    timer = _Timer(device)

    bandwidth = copy_bandwidth(device, timer)
    data = {
        "device": report.device_name(device) + ("" if cuda else f", {torch.get_num_threads()} threads"),
        "timing": ("CUDA events around each step" if cuda else "perf_counter around each step")
        + f", {warmup} warm-up steps, {rounds} interleaved turns of {steps} steps per optimizer",
        "copy_bandwidth_GBps": bandwidth / 1e9, "copy_bytes": 1 << 28, "models": {},
        "triton": _triton_version(),
        "provenance": report.provenance(device, command=["python", *sys.argv]),
    }
    stem = "cuda" if cuda else "cpu"
    for model_name in model_names:
        entry = bench_model(model_name, device, dtype, opt_names, warmup, rounds, steps, timer,
                            progress=lambda s: print(s, file=sys.stderr))
        add_ratios(entry, bandwidth, torch.tensor([], dtype=dtype).element_size())
        data["models"][model_name] = entry
        paths = report.write_report(args.out, stem, data, render)
        print(f"{model_name}: written {paths['md']}", file=sys.stderr)
    print(render(data))
    return 0


if __name__ == "__main__":
    run_main(main, "bench_optim_step.py")
