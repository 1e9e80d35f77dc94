"""Candidates for the fused CPU step's power (|m| + eps)^-rho: speed through inductor and accuracy.

    # -> experiments/results/bench_optim_step/pow_cpu_avx512.*
    python benchmarks/pow_candidates.py
    ATEN_CPU_CAPABILITY=avx2 TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-avx2 \\
        python benchmarks/pow_candidates.py

The second line measures AVX2 code on an AVX-512 CPU. Give it its own inductor cache: torch 2.13's
cache served it AVX-512 kernels built against AVX2 headers, which computed half the lanes wrong.

Speed: each candidate is compiled (torch.compile, lpcheck.fused's inductor options) into the whole
fused LPSGDM step (lerp, decay, power, update) over one flat float32 tensor of --numel elements, and
timed in CPU time (time.process_time) at one thread, in interleaved rounds with torch's foreach
SGD-momentum on a tensor of the same size; the figure is the median over rounds of the per-round
ratio to SGD-momentum. "none" (the factor 1: the step without its power) gives the power's share.

Accuracy: the largest relative error against float64 (x^-rho of the float32 x, in float64) over
400,001 log-spaced x covering every binade of normal float32 (2^-126 to 2^128), and over the range
optimizers meet, x = |m| + eps in [1e-8, 1e4], at rho = 0.25, 0.5, 0.8, 0.99.

Candidates:
  bits-horner   lpcheck.fused.pow_neg_f32: exponent and mantissa from the float's bits, log2 and
                exp2 as polynomials (Horner's rule), -rho log2 x split into an exact head and a
                tail
  bits-estrin   the same with Estrin's scheme (lpcheck.fused.poly_scheme picks one of the two per
                ISA)
  exp2-log2     torch.exp2(-rho * torch.log2(x)) (inductor: Sleef's vectorised log2f/exp2f, 1 ulp)
  exp-log       torch.exp(-rho * torch.log(x)), as the foreach path computes it
  sleef-split   no bit casts: e = round(log2 x), x 2^-e, log2 of that, the head/tail split, exp2
                twice
  bits-sleef    the bits' exponent and mantissa, polynomial log2, Sleef exp2 for 2^r and 2^k
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lpcheck import fused, report  # noqa: E402
from lpcheck.fused import LOG2_COEFS, SQRT_HALF_BITS, _horner  # noqa: E402


def _bits_log2(x, poly):
    bits = x.view(torch.int32)
    e = (bits - SQRT_HALF_BITS) >> 23
    u = (bits - (e << 23)).view(torch.float32) - 1.0
    return e.to(torch.float32), u * poly(u, LOG2_COEFS)


def _split_exp2(e, log2_m, neg_rho, exp2_r, exp2_k):
    head = torch.floor(neg_rho * 4096.0) * (1.0 / 4096.0)
    head_e = e * head
    tail = (neg_rho - head) * e + neg_rho * log2_m
    k = torch.round(head_e + tail)
    return exp2_r((head_e - k) + tail) * exp2_k(k)


def _bits_pow2(k):
    k = k.to(torch.int32)
    half = k >> 1
    return ((half + 127) << 23).view(torch.float32) * ((k - half + 127) << 23).view(torch.float32)


def sleef_split(x, neg_rho):
    e = torch.round(torch.log2(x))
    return _split_exp2(e, torch.log2(x * torch.exp2(-e)), neg_rho, torch.exp2, torch.exp2)


def bits_sleef(x, neg_rho):
    e, log2_m = _bits_log2(x, _horner)
    return _split_exp2(e, log2_m, neg_rho, torch.exp2, torch.exp2)


CANDIDATES = {
    "bits-horner": lambda x, neg_rho: fused.pow_neg_f32(x, neg_rho, scheme="horner"),
    "bits-estrin": lambda x, neg_rho: fused.pow_neg_f32(x, neg_rho, scheme="estrin"),
    "exp2-log2": lambda x, neg_rho: torch.exp2(neg_rho * torch.log2(x)),
    "exp-log": lambda x, neg_rho: torch.exp(neg_rho * torch.log(x)),
    "sleef-split": sleef_split,
    "bits-sleef": bits_sleef,
    "none": None,
}


def _compile(fn):
    return torch.compile(fn, backend=fused._counting_backend, fullgraph=True, dynamic=False)


def step_with(power):
    def step(theta, g, m, scalars):
        w, decay, neg_lr, neg_rho, eps = scalars.unbind(0)
        m.copy_(torch.lerp(m, g, w))
        factor = 1.0 if power is None else power(m.abs() + eps, neg_rho)
        theta.copy_((theta * decay) + (neg_lr * m) * factor)

    return step


def max_errors(power) -> dict:
    x = torch.logspace(-126, 127.99, 400_001, base=2.0, dtype=torch.float64).float()
    practical = (x >= 1e-8) & (x <= 1e4)
    f = _compile(lambda x, r: power(x, r))
    worst_all = worst_practical = 0.0
    for rho in (0.25, 0.5, 0.8, 0.99):
        neg_rho = torch.tensor(-rho)
        exact = x.double() ** neg_rho.double()
        rel = (f(x, neg_rho).double() - exact).abs() / exact
        worst_all, worst_practical = (
            max(worst_all, rel.max().item()),
            max(worst_practical, rel[practical].max().item()),
        )
    return {"max_rel_err_normal_range": worst_all, "max_rel_err_1e-8_to_1e4": worst_practical}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument(
        "--numel", type=int, default=1 << 22, help="elements of the flat tensor (default 4M)"
    )
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per turn")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_optim_step"))
    args = ap.parse_args(argv)
    names = [c for c in args.candidates.split(",") if c]
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown or args.numel < 1 or args.rounds < 1 or args.steps < 1:
        raise ValueError(
            f"--candidates from {list(CANDIDATES)} (unknown {unknown}); --numel, --rounds, --steps "
            ">= 1"
        )
    torch.set_num_threads(1)
    torch.manual_seed(0)
    runs = {}
    for name in names:
        theta, g, m = (
            torch.randn(args.numel),
            torch.randn(args.numel),
            torch.randn(args.numel) * 1e-3,
        )
        f = _compile(step_with(CANDIDATES[name]))
        scalars = torch.tensor([0.1, 1 - 1e-5, -1e-3, -0.8, 1e-8])
        f(theta, g, m, scalars)
        runs[name] = lambda f=f, a=(theta, g, m, scalars): f(*a)
    p = torch.nn.Parameter(torch.randn(args.numel))
    p.grad = torch.randn(args.numel)
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9, foreach=True)
    sgd.step()
    runs["torch SGD momentum foreach"] = sgd.step
    turns = {k: [] for k in runs}
    for _ in range(args.rounds):  # interleaved: load changes hit every candidate alike
        for k, fn in runs.items():
            t = time.process_time()
            for _ in range(args.steps):
                fn()
            turns[k].append((time.process_time() - t) / args.steps)
    base = turns["torch SGD momentum foreach"]
    results = {}
    for k, ts in turns.items():
        ratios = [a / b for a, b in zip(ts, base)]
        results[k] = {
            "median_ms": statistics.median(ts) * 1e3,
            "x_sgdm_median": statistics.median(ratios),
            "x_sgdm_min": min(ratios),
            "x_sgdm_max": max(ratios),
        }
        if CANDIDATES.get(k) is not None:
            results[k].update(max_errors(CANDIDATES[k]))
        print(k, results[k], file=sys.stderr, flush=True)
    data = {
        "device": report.device_name("cpu")
        + f", {torch.backends.cpu.get_cpu_capability()}, 1 thread",
        "default_scheme": fused.poly_scheme(),
        "numel": args.numel,
        "rounds": args.rounds,
        "steps": args.steps,
        "results": results,
        "provenance": report.provenance(
            "cpu",
            command=[
                "python",
                "benchmarks/pow_candidates.py",
                *(sys.argv[1:] if argv is None else argv),
            ],
        ),
    }

    def render(d):
        rows = [
            [
                k,
                f"{r['median_ms']:.2f}",
                f"{r['x_sgdm_median']:.2f} ({r['x_sgdm_min']:.2f}-{r['x_sgdm_max']:.2f})",
                f"{r['max_rel_err_normal_range']:.2g}" if "max_rel_err_normal_range" in r else "",
                f"{r['max_rel_err_1e-8_to_1e4']:.2g}" if "max_rel_err_normal_range" in r else "",
            ]
            for k, r in d["results"].items()
        ]
        return (
            f"# The fused step's power on CPU: {d['device']}\n\nThe whole fused LPSGDM step over "
            f"one flat float32 tensor of {d['numel']} elements, CPU time per step (median of "
            f"{d['rounds']} interleaved rounds of {d['steps']} steps), and the ratio to torch's "
            "foreach SGD-momentum on the same size, per round (median, range). Errors: largest "
            f"relative error against float64, rho in {{0.25, 0.5, 0.8, 0.99}}.\n\n"
            + report.markdown_table(
                [
                    "power",
                    "ms/step",
                    "x SGDM foreach",
                    "max rel. err (all normal x)",
                    "max rel. err (x in [1e-8, 1e4])",
                ],
                rows,
            )
        )

    report.write_report(
        args.out, f"pow_cpu_{torch.backends.cpu.get_cpu_capability().lower()}", data, render
    )
    print(render(data))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ValueError as e:
        print(f"pow_candidates.py: error: {e}", file=sys.stderr)
        sys.exit(2)
