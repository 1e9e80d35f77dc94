"""Throughput of the rates simulator: seed-steps per second, vectorised vs a per-seed Python loop.

    pytest benchmarks/test_bench_rates.py -s --benchmark-columns=median,iqr,rounds

Both do the same work per seed-step on the 'aniso' problem (d = 16), CPU, 1 torch thread: the full
gradient (recorded as ||grad f||^2), a Gaussian stochastic gradient, one LPSGD step (cosine p from
6, lpcheck.optim). The vectorised runner (`lpcheck.rates.simulate`, in lpcheck/rates/simulation.py)
holds all 256 seeds in one
(256, 16) tensor; the loop runs one seed at a time with its own optimizer on a (16,) parameter.
Target (issue 6): >= 50x. The ratio of medians is printed and checked by the last test.
"""

import pytest
import torch

from lpcheck.optim import LPSGD
from lpcheck.rates.problems import make_problem
from lpcheck.rates.simulation import epoch_of, make_method, simulate

TARGET = 50.0
T, SEEDS, LOOP_SEEDS, EPOCHS = 400, 256, 8, 10
RATES = {}


def _per_seed_loop(problem, T, seeds, eta=1e-3):
    """The baseline: for each seed, T steps of lpcheck.optim.LPSGD on one (d,) parameter."""
    out = []
    for s in range(seeds):
        gen = torch.Generator().manual_seed(s)
        theta = problem.x0.clone()
        opt = LPSGD([theta], lr=eta, p_max=6.0, total_epochs=EPOCHS, check_finite=False)
        acc = 0.0
        with torch.no_grad():
            for t in range(T):
                opt.set_epoch(epoch_of(t, T, EPOCHS))
                row = theta[None]
                g_full = problem.grad(row)
                acc += float((g_full * g_full).sum())
                theta.grad = problem.stoch_grad(row, gen, g_full)[0]
                opt.step()
        out.append(acc / T)
    return out


@pytest.fixture(scope="module")
def problem():
    torch.set_num_threads(1)
    return make_problem("aniso")


def test_vectorised(benchmark, problem):
    method = make_method("lpsgd", p_max=6.0)
    simulate(problem, method, 20, 1e-3, SEEDS)  # warm up
    benchmark.group = "rates simulator, seed-steps, CPU 1 thread"
    benchmark.pedantic(
        lambda: simulate(problem, method, T, 1e-3, SEEDS, epochs=EPOCHS), rounds=5, warmup_rounds=1
    )
    RATES["vectorised"] = SEEDS * T / benchmark.stats.stats.median
    benchmark.extra_info["seed_steps_per_s"] = RATES["vectorised"]


def test_per_seed_loop(benchmark, problem):
    _per_seed_loop(problem, 20, 1)  # warm up
    benchmark.group = "rates simulator, seed-steps, CPU 1 thread"
    benchmark.pedantic(lambda: _per_seed_loop(problem, T, LOOP_SEEDS), rounds=3, warmup_rounds=0)
    RATES["per-seed loop"] = LOOP_SEEDS * T / benchmark.stats.stats.median
    benchmark.extra_info["seed_steps_per_s"] = RATES["per-seed loop"]


def test_ratio_target():
    if len(RATES) < 2:
        pytest.skip("run the whole module")
    ratio = RATES["vectorised"] / RATES["per-seed loop"]
    for name, rate in RATES.items():
        print(f"{name}: {rate:,.0f} seed-steps/s")
    print(f"vectorised / per-seed loop: {ratio:.0f}x (target >= {TARGET:.0f}x)")
    assert ratio >= TARGET


def test_loop_and_vectorised_agree(problem):
    """Same numbers from both (seed s of the loop draws from its own generator, so compare one
    seed)."""
    method = make_method("lpsgd", p_max=6.0)
    run = simulate(problem, method, 50, 1e-3, 1, epochs=EPOCHS, seed=0)
    assert float(run.grad_sq_mean[0]) == pytest.approx(_per_seed_loop(problem, 50, 1)[0], rel=1e-12)


# -- a torch.optim.Optimizer class in `lpcheck rates --optimizer MODULE:CLASS` (issue 15, item 5) --
# One optimizer over the (seeds, d) tensor where the class is known to be elementwise, else one copy
# per seed (lpcheck.rates.optimizers). What that costs, on the same problem and step count: run with
#   pytest benchmarks/test_bench_rates.py -k torch_class -s --benchmark-timer time.process_time
CLASS_SEEDS = 64
CLASS_RATES = {}


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "per-seed"])
def test_torch_class(benchmark, problem, batched):
    from dataclasses import replace

    from lpcheck.rates.simulation import resolve_method

    method = replace(
        resolve_method("torch.optim:Adam"), batched=batched
    )  # Adam is elementwise: both are exact
    simulate(problem, method, 20, 1e-3, CLASS_SEEDS, checkpoint_count=1)  # warm up
    benchmark.group = "rates, torch.optim.Adam, seed-steps, CPU 1 thread"
    benchmark.pedantic(
        lambda: simulate(problem, method, T, 1e-3, CLASS_SEEDS, epochs=EPOCHS, checkpoint_count=1),
        rounds=3,
        warmup_rounds=0,
    )
    CLASS_RATES[batched] = CLASS_SEEDS * T / benchmark.stats.stats.median
    benchmark.extra_info["seed_steps_per_s"] = CLASS_RATES[batched]
    if len(CLASS_RATES) == 2:
        print(
            f"\ntorch.optim.Adam: batched {CLASS_RATES[True]:,.0f}, per seed "
            f"{CLASS_RATES[False]:,.0f} seed-steps/s "
            f"({CLASS_RATES[True] / CLASS_RATES[False]:.0f}x)"
        )
