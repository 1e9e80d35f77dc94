"""Coverage of lpcheck's intervals, measured on data with known means (issue 12, item 4).

    PYTHONPATH=. python experiments/coverage.py [--quick] [--part estimate|rates|all]

Part 1, the estimators' per-checkpoint intervals (`lpcheck.estimate.fit.intervals`). fit_run asks
for one interval per statistic and checkpoint at level 1 - 0.05/N (Bonferroni over N checkpoints)
and claims that a statistic's N intervals all hold at once with probability >= 95 %. A simulated run
draws K values at each of N checkpoints from a law with a known mean; its coverage is the fraction
of runs in which all N intervals contain the mean, with Monte-Carlo standard error sqrt(c(1 -
c)/trials).
Laws: normal; Student-t(3) (heavy tails, no fourth moment); gamma(4) and gamma(2) (skewness 1.0 and
1.41: the committed CPU run's per-batch statistics reach a sample skewness of 1.3); log-normal(0,
0.5) and log-normal(0, 1) (skewness 1.75 and 6.2). Every method is equivariant under x -> -x, so a
law's mirror image (left skew: the alignment ratios) has the same coverage with lower and upper ends
swapped. Methods, all on the same draws:
- percentile bootstrap (lpcheck before this issue), BCa, bootstrap-t: `--resamples` resamplings of
  the K values, shared by the rows of a batch of simulated runs;
- Student t; Johnson's (1978) skewness-shifted t; Hall's (1992) transformation, alone, with g1 or G1
  as the skewness; t joined with bootstrap-t; t joined with Hall (G1): lpcheck's `t_hall`.
Table 1: coverage and mean width relative to the percentile bootstrap at (N, K) = (12, 24) (the
committed run) and (20, 32) (lpcheck estimate's defaults). Table 2: one-sided ends, the question of
whether fit_run should ask for one-sided bounds: for each law the fraction of runs where all N upper
(lower) ends hold, for the two-sided interval at 1 - 0.05/N and for one-sided bounds at 1 - 0.05/N.
Table 3: the analytic methods over K and N, with more runs.

Part 2, the rates' slope intervals (`lpcheck.rates.fit.fit_slope`): values[s, j] = 3 T_j^-1/2 X[s,
j] with mean-one noise X (normal with sd 0.2, folded at 0; log-normal with log-sd 0.5 and 1,
independent across T or sharing a per-seed factor, correlation 0.5 of the logs), so the seed mean's
log-log slope is -1/2 exactly in expectation; coverage of -1/2 at 95 % for the default grid and
seeds (T = 100 ... 30000, 256 seeds), its tail (the verdict's fit), 32 seeds, and --quick's grid (T
= 100, 200, 400) with 32, 16 and 8 seeds.
Methods: the percentile bootstrap (before), jackknife t, the studentized bootstrap (jackknife se
within each resampling), and their union (fit_slope now).

Output (rewritten after every row): experiments/results/coverage/coverage.json and .md (part 1),
slopes.json and .md (part 2).
"""

from __future__ import annotations

import argparse
import math
import time

# experiments/_common.py: this checkout's lpcheck first on sys.path
import _common  # noqa: F401,E402
import numpy as np
from scipy.special import ndtr, ndtri, stdtrit

from lpcheck import report  # noqa: E402
from lpcheck.estimate.fit import (  # noqa: E402
    INTERVAL_METHOD,
    REFERENCE_LAWS,
    simulated_coverage,
    t_hall,
)
from lpcheck.rates.fit import _jackknife_se, _slopes, fit_slope  # noqa: E402

ALPHA = 0.05
CHOSEN = "t + Hall (G1): lpcheck"
OLD = "percentile bootstrap (old)"

LAWS = {  # name: (draw(rng, shape), mean, skewness)
    "normal": (*REFERENCE_LAWS["normal"], 0.0),
    "student_t3": (*REFERENCE_LAWS["student_t3"], 0.0),
    "gamma4": (lambda rng, shape: rng.gamma(4.0, 1.0, shape), 4.0, 1.0),
    "gamma2": (*REFERENCE_LAWS["gamma2"], math.sqrt(2)),
    "lognormal_0.5": (
        lambda rng, shape: rng.lognormal(0, 0.5, shape),
        math.exp(0.125),
        (math.exp(0.25) + 2) * math.sqrt(math.exp(0.25) - 1),
    ),
    "lognormal_1": (
        lambda rng, shape: rng.lognormal(0, 1.0, shape),
        math.exp(0.5),
        (math.e + 2) * math.sqrt(math.e - 1),
    ),
}
TABLE1_LAWS = ("normal", "student_t3", "gamma2", "lognormal_0.5", "lognormal_1")


# --- part 1: interval methods for the mean of K values (rows of x), vectorised ------------------


def student_t(x, level, rng=None):
    k = x.shape[-1]
    m, se = x.mean(-1), x.std(-1, ddof=1) / math.sqrt(k)
    q = stdtrit(k - 1, (1 + level) / 2)
    return m, m - q * se, m + q * se


def johnson(x, level, rng=None):
    """Johnson (1978): the t interval shifted by G1 s/(6K), the first-order skewness bias of the t
    pivot."""
    k = x.shape[-1]
    m, s = x.mean(-1), x.std(-1, ddof=1)
    dev = x - m[:, None]
    m2, m3 = (dev**2).mean(-1), (dev**3).mean(-1)
    g = np.where(m2 > 0, m3 / np.where(m2 > 0, m2, 1) ** 1.5, 0) * math.sqrt(k * (k - 1)) / (k - 2)
    q = stdtrit(k - 1, (1 + level) / 2)
    c = m + g * s / (6 * k)
    return m, c - q * s / math.sqrt(k), c + q * s / math.sqrt(k)


def _sorted_quantile(srt, p):
    """Linear-interpolation quantiles of each sorted row of srt at p (a scalar or one per row)."""
    b = srt.shape[1]
    pos = np.clip(np.broadcast_to(p, srt.shape[:1]) * (b - 1), 0, b - 1)
    i = np.minimum(np.floor(pos).astype(int), b - 2)
    f = pos - i
    r = np.arange(srt.shape[0])
    return srt[r, i] * (1 - f) + srt[r, i + 1] * f


class Bootstrap:
    """Percentile, BCa and bootstrap-t intervals from one resampling per batch of rows.

    The resampled means and studentized values of a batch x are kept (holding x, so that its id
    cannot be reused) and every level and kind asked for that batch reads them: the methods compared
    on one batch share their resamplings, as lpcheck's old bootstrap shared one among a checkpoint's
    statistics."""

    def __init__(self, resamples):
        self.resamples = resamples
        self._x = None

    def _prepare(self, x, rng):
        if self._x is x:
            return
        k = x.shape[1]
        w = rng.multinomial(k, np.full(k, 1 / k), size=self.resamples).T / k  # (K, B)
        m = x.mean(1)
        dev = x - m[:, None]
        mc = dev @ w  # resampled mean - mean
        var = np.maximum((dev**2) @ w - mc**2, 0) * k / (k - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            tstar = np.where(
                var > 0, mc / np.sqrt(var / k), 0.0
            )  # a resampling of equal values has no t
        m2, m3 = (dev**2).mean(1), (dev**3).mean(1)
        g1 = np.where(m2 > 0, m3 / np.where(m2 > 0, m2, 1) ** 1.5, 0)
        self._x = x
        self._state = dict(
            m=m,
            se=x.std(1, ddof=1) / math.sqrt(k),
            mc=np.sort(mc, 1),
            t=np.sort(tstar, 1),
            z0=ndtri(
                np.clip(
                    (mc < 0).mean(1) + 0.5 * (mc == 0).mean(1),
                    1 / self.resamples,
                    1 - 1 / self.resamples,
                )
            ),
            acc=g1 / (6 * math.sqrt(k)),
        )  # the jackknife acceleration of the mean

    def method(self, kind):
        def f(x, level, rng):
            self._prepare(x, rng)
            s, a = self._state, (1 - level) / 2
            if kind == "percentile":
                return (
                    s["m"],
                    s["m"] + _sorted_quantile(s["mc"], a),
                    s["m"] + _sorted_quantile(s["mc"], 1 - a),
                )
            if kind == "bca":
                ends = []
                for z in (ndtri(a), ndtri(1 - a)):
                    w = s["z0"] + z
                    ends.append(
                        s["m"] + _sorted_quantile(s["mc"], ndtr(s["z0"] + w / (1 - s["acc"] * w)))
                    )
                return (s["m"], *ends)
            lo = s["m"] - s["se"] * _sorted_quantile(s["t"], 1 - a)
            hi = s["m"] - s["se"] * _sorted_quantile(s["t"], a)
            if kind == "t|bootstrap-t":
                _, tlo, thi = student_t(x, level)
                lo, hi = np.minimum(lo, tlo), np.maximum(hi, thi)
            return s["m"], lo, hi

        return f


def part1_methods(resamples, bootstrap=True):
    methods = {
        "Student t": student_t,
        "Johnson t": johnson,
        "Hall (g1)": lambda x, lv, rng: t_hall(x, lv, adjust=False, floor=False),
        "Hall (G1)": lambda x, lv, rng: t_hall(x, lv, floor=False),
        "t + Hall (g1)": lambda x, lv, rng: t_hall(x, lv, adjust=False),
        CHOSEN: t_hall,
    }
    if bootstrap:
        boot = Bootstrap(resamples)
        methods = {
            OLD: boot.method("percentile"),
            "BCa": boot.method("bca"),
            "bootstrap-t": boot.method("bootstrap-t"),
            "t|bootstrap-t": boot.method("t|bootstrap-t"),
            **methods,
        }
    return methods


def one_sided(f):
    """The same method's ends as one-sided bounds at `level`: its two-sided interval at 2 level -
    1."""
    return lambda x, level, rng: f(x, 2 * level - 1, rng)


def table1_and_2(args, data, save):
    rows1, rows2 = data["table1"], data["table2"]
    for n, k in ((12, 24), (20, 32)):
        for law in TABLE1_LAWS:
            t0 = time.process_time()
            draw, mu, skew = LAWS[law]
            methods = part1_methods(args.resamples)
            for name in (OLD, "Student t", CHOSEN):
                methods[f"{name} one-sided"] = one_sided(methods[name])
            res = simulated_coverage(
                [k] * n,
                1 - ALPHA / n,
                (draw, mu),
                args.boot_trials,
                np.random.default_rng([n, k, TABLE1_LAWS.index(law)]),
                methods,
                chunk=args.chunk,
            )
            ref = res[OLD]["width"]
            for name, r in res.items():
                if not name.endswith("one-sided"):
                    rows1.append(
                        {
                            "method": name,
                            "law": law,
                            "skewness": skew,
                            "N": n,
                            "K": k,
                            "trials": args.boot_trials,
                            **r,
                            "width_vs_percentile": r["width"] / ref,
                        }
                    )
            for name in (OLD, "Student t", CHOSEN):
                two, one = res[name], res[f"{name} one-sided"]
                rows2.append(
                    {
                        "method": name,
                        "law": law,
                        "N": n,
                        "K": k,
                        "trials": args.boot_trials,
                        "two_sided_lower": two["lower"],
                        "two_sided_upper": two["upper"],
                        "one_sided_lower": one["lower"],
                        "one_sided_upper": one["upper"],
                    }
                )
            print(
                f"table 1: N={n} K={k} {law}: "
                + ", ".join(
                    f"{m} {r['coverage']:.3f}"
                    for m, r in res.items()
                    if not m.endswith("one-sided")
                )
                + f" ({time.process_time() - t0:.0f} s)",
                flush=True,
            )
            save()


def table3(args, data, save):
    rows = data["table3"]
    grid = [(20, k) for k in (16, 24, 32, 48, 64, 128)] + [(5, 32), (50, 32), (12, 24)]
    for n, k in grid:
        for law in LAWS:
            draw, mu, skew = LAWS[law]
            methods = {"Student t": student_t, CHOSEN: t_hall}
            res = simulated_coverage(
                [k] * n,
                1 - ALPHA / n,
                (draw, mu),
                args.trials,
                np.random.default_rng([n, k, list(LAWS).index(law), 3]),
                methods,
            )
            for name, r in res.items():
                rows.append(
                    {
                        "method": name,
                        "law": law,
                        "skewness": skew,
                        "N": n,
                        "K": k,
                        "trials": args.trials,
                        **r,
                    }
                )
        print(
            f"table 3: N={n} K={k}: "
            + ", ".join(
                f"{r['law']} {r['coverage']:.3f}"
                for r in rows[-2 * len(LAWS) :]
                if r["method"] == CHOSEN
            ),
            flush=True,
        )
        save()


# --- part 2: slope intervals ----------------------------------------------------------------------


def slope_percentile(T, values, seed, n_boot, level):
    """fit_slope before this issue: percentiles of the resampled slopes."""
    x, n = np.log(T), values.shape[0]
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    boot = _slopes(x, np.log(counts @ values / n))
    return tuple(np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]))


def slope_parts(T, values, seed, n_boot, level):
    """The two halves of fit_slope's union: (jackknife t, studentized bootstrap)."""
    x, n = np.log(T), values.shape[0]
    s = float(_slopes(x, np.log(values.mean(0))[None])[0])
    se = float(_jackknife_se(x, values[None])[0])
    q = stdtrit(n - 1, (1 + level) / 2)
    draws = values[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))]
    boot, se_b = _slopes(x, np.log(draws.mean(1))), _jackknife_se(x, draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se_b > 0, (boot - s) / se_b, 0.0)
    q_lo, q_hi = np.quantile(t, [(1 - level) / 2, (1 + level) / 2])
    return (s - q * se, s + q * se), (s - q_hi * se, s - q_lo * se)


def noise(rng, law, seeds, n_t):
    kind, sd, rho = law
    z = math.sqrt(rho) * rng.standard_normal((seeds, 1)) + math.sqrt(1 - rho) * rng.standard_normal(
        (seeds, n_t)
    )
    return (
        np.abs(1 + sd * z) if kind == "normal" else np.exp(sd * z - sd**2 / 2)
    )  # folded: > 0, mean moved < 1e-6


SLOPE_LAWS = {
    "normal (sd 0.2)": ("normal", 0.2, 0.0),
    "log-normal (0.5)": ("lognormal", 0.5, 0.0),
    "log-normal (1)": ("lognormal", 1.0, 0.0),
    "log-normal (1), seed factor": ("lognormal", 1.0, 0.5),
}
SLOPE_SETS = {
    "default grid, 256 seeds": ([100, 300, 1000, 3000, 10000, 30000], 256),
    "tail of the default grid, 256 seeds": ([3000, 10000, 30000], 256),
    "default grid, 32 seeds": ([100, 300, 1000, 3000, 10000, 30000], 32),
    "--quick grid, 32 seeds": ([100, 200, 400], 32),
    "--quick grid, 16 seeds": ([100, 200, 400], 16),  # --seeds below the defaults
    "--quick grid, 8 seeds": ([100, 200, 400], 8),
}


def table4(args, data, save):
    rows = data["table4"]
    for set_name, (T, seeds) in SLOPE_SETS.items():
        T = np.asarray(T, dtype=float)
        trials = (
            args.slope_trials if seeds <= 32 else max(1, args.slope_trials // 4)
        )  # 60 ms a fit at 256
        for law_name, law in SLOPE_LAWS.items():
            t0 = time.process_time()
            rng = np.random.default_rng([len(T), seeds, list(SLOPE_LAWS).index(law_name)])
            hits, widths = {}, {}
            for i in range(trials):
                v = 3.0 * T**-0.5 * noise(rng, law, seeds, T.size)
                jack, stud = slope_parts(T, v, i, args.n_boot, 0.95)
                union = (min(jack[0], stud[0]), max(jack[1], stud[1]))
                # the halves are fit_slope's: its interval is their union (same seed, same draws)
                if i < 5:
                    fit = fit_slope(T, v, seed=i, n_boot=args.n_boot)
                    assert np.allclose((fit.lo, fit.hi), union, rtol=1e-12, atol=1e-15), (
                        fit,
                        union,
                    )
                for name, (lo, hi) in {
                    "percentile bootstrap (old)": slope_percentile(T, v, i, args.n_boot, 0.95),
                    "jackknife t": jack,
                    "studentized bootstrap": stud,
                    "union: fit_slope": union,
                }.items():
                    hits[name] = hits.get(name, 0) + (lo <= -0.5 <= hi)
                    widths[name] = widths.get(name, 0.0) + (hi - lo)
            ref = widths["percentile bootstrap (old)"]
            for name in hits:
                c = hits[name] / trials
                rows.append(
                    {
                        "method": name,
                        "noise": law_name,
                        "set": set_name,
                        "seeds": seeds,
                        "T": T.tolist(),
                        "trials": trials,
                        "coverage": c,
                        "se": math.sqrt(c * (1 - c) / trials),
                        "width_vs_percentile": widths[name] / ref,
                    }
                )
            print(
                f"table 4: {set_name}, {law_name}: "
                + ", ".join(f"{r['method']} {r['coverage']:.3f}" for r in rows[-len(hits) :])
                + f" ({time.process_time() - t0:.0f} s)",
                flush=True,
            )
            save()


# --- report ---------------------------------------------------------------------------------------


def _pct(c, se=None):
    return f"{100 * c:.1f}" + (f" ± {100 * se:.1f}" if se is not None else "")


def _k_needed(rows, n=20, floor=0.93):
    """The smallest K of table 3 at which the chosen intervals hold for all n checkpoints in >=
    floor of runs."""
    ks = sorted({r["K"] for r in rows if r["N"] == n})
    need = {}
    for law in LAWS:
        ok = [
            r["K"]
            for r in rows
            if r["N"] == n and r["law"] == law and r["method"] == CHOSEN and r["coverage"] >= floor
        ]
        need[law] = f"K = {min(ok)}" if ok else f"not reached up to K = {ks[-1]}"
    return (
        f"K needed for {floor:.0%} simultaneous coverage at N = {n} (table 3, of K = "
        + ", ".join(map(str, ks))
        + "): "
        + "; ".join(f"{law} {k}" for law, k in need.items())
        + "."
    )


def markdown(d):
    s = d["settings"]
    lines = [
        "# Coverage of lpcheck's intervals (issue 12, item 4)",
        "",
        "Nominal level 95 %; coverage in % ± its Monte-Carlo standard error; width: mean interval "
        "width relative to the percentile bootstrap on the same draws.",
        "",
    ]
    if d["table1"]:
        lines += [
            f"Per-checkpoint level 1 - {ALPHA}/N. Bootstrap methods: {s['resamples']} "
            f"resamplings. Chosen: **{CHOSEN}** (`lpcheck.estimate.fit.intervals`: "
            f"{INTERVAL_METHOD}).",
            "",
        ]
    if d["table3"]:
        lines += [_k_needed(d["table3"]), ""]
    if d["table1"]:
        lines += [
            "## 1. Simultaneous coverage of N intervals at level 1 - 0.05/N",
            "",
            f"{s['boot_trials']} simulated runs per row.",
            "",
        ]
        rows = [
            [
                r["method"],
                r["law"],
                f"{r['skewness']:.2f}",
                r["N"],
                r["K"],
                _pct(r["coverage"], r["se"]),
                f"{r['width_vs_percentile']:.2f}",
            ]
            for r in d["table1"]
        ]
        lines += [
            report.markdown_table(
                ["method", "law", "skewness", "N", "K", "coverage %", "width"], rows
            )
        ]
    if d["table2"]:
        lines += [
            "## 2. One end at a time: all N upper (lower) ends hold",
            "",
            "Each constant reads one end of one statistic's N intervals (c1 the lower ends of the "
            "alignment, c2/c3 and sigma the upper ends of the moments and the noise). "
            "'two-sided': the ends of the interval at 1 - 0.05/N (each nominally a 1 - 0.025/N "
            "bound; all N: nominal 97.5 %), which fit_run uses; 'one-sided': bounds at 1 - 0.05/N "
            "(all N: nominal 95 %). On right-skewed laws the upper end is the long tail's.",
            "",
        ]
        rows = [
            [
                r["method"],
                r["law"],
                r["N"],
                r["K"],
                _pct(r["two_sided_lower"]),
                _pct(r["two_sided_upper"]),
                _pct(r["one_sided_lower"]),
                _pct(r["one_sided_upper"]),
            ]
            for r in d["table2"]
        ]
        lines += [
            report.markdown_table(
                [
                    "method",
                    "law",
                    "N",
                    "K",
                    "two-sided: lower",
                    "two-sided: upper",
                    "one-sided: lower",
                    "one-sided: upper",
                ],
                rows,
            )
        ]
    if d["table3"]:
        lines += [
            "## 3. The analytic intervals over K and N",
            "",
            f"{s['trials']} simulated runs per cell; "
            "coverage % of all N two-sided intervals at 1 - 0.05/N (MC standard error at most "
            f"{100 * math.sqrt(0.25 / s['trials']):.1f}).",
            "",
        ]
        cells = {}
        for r in d["table3"]:
            cells.setdefault((r["method"], r["N"], r["K"]), {})[r["law"]] = r["coverage"]
        laws = list(LAWS)
        rows = [
            [m, n, k] + [_pct(c[law]) if law in c else "–" for law in laws]
            for (m, n, k), c in cells.items()
        ]
        lines += [report.markdown_table(["method", "N", "K"] + laws, rows)]
    if d["table4"]:
        lines += [
            "## 4. Slopes (lpcheck rates): coverage of the true slope -1/2 at 95 %",
            "",
            f"n_boot = {s['n_boot']}; runs per row in the table.",
            "",
        ]
        rows = [
            [
                r["method"],
                r["noise"],
                r["set"],
                r["trials"],
                _pct(r["coverage"], r["se"]),
                f"{r['width_vs_percentile']:.2f}",
            ]
            for r in d["table4"]
        ]
        lines += [
            report.markdown_table(
                ["method", "noise", "grid and seeds", "runs", "coverage %", "width"], rows
            )
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--part", choices=["estimate", "rates", "all"], default="all")
    ap.add_argument(
        "--boot-trials", type=int, default=2000, help="simulated runs per row of tables 1-2"
    )
    ap.add_argument("--trials", type=int, default=20000, help="simulated runs per cell of table 3")
    ap.add_argument(
        "--slope-trials",
        type=int,
        default=2000,
        help="runs per row of table 4 (a quarter with 256 seeds)",
    )
    ap.add_argument(
        "--resamples",
        type=int,
        default=4000,
        help="bootstrap resamplings (lpcheck estimate's default)",
    )
    ap.add_argument(
        "--n-boot", type=int, default=2000, help="fit_slope's n_boot (lpcheck rates' default)"
    )
    ap.add_argument(
        "--chunk", type=int, default=25, help="simulated runs per batch of the bootstrap methods"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: few trials and resamplings (no measurement)",
    )
    ap.add_argument("--out", default="experiments/results/coverage")
    args = ap.parse_args(argv)
    if args.quick:
        args.boot_trials, args.trials, args.slope_trials, args.resamples, args.n_boot = (
            20,
            100,
            8,
            400,
            200,
        )
    for name, low in (
        ("boot_trials", 1),
        ("trials", 1),
        ("slope_trials", 1),
        ("resamples", 100),
        ("n_boot", 100),
        ("chunk", 1),
    ):
        if getattr(args, name) < low:
            raise ValueError(
                f"--{name.replace('_', '-')} must be an integer >= {low}, got {getattr(args, name)}"
            )
    args.out = str(_common.out_dir(args.out))
    prov = report.provenance(command=_common.command("coverage.py", argv))
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    if args.part in ("estimate", "all"):  # coverage.json / .md
        data = {
            "settings": settings,
            "alpha": ALPHA,
            "chosen": CHOSEN,
            "table1": [],
            "table2": [],
            "table3": [],
            "table4": [],
            "provenance": prov,
        }

        def save():
            report.write_report(args.out, "coverage", data, markdown)

        table1_and_2(args, data, save)
        table3(args, data, save)
        print(f"wrote {args.out}/coverage.json and coverage.md")
    if args.part in ("rates", "all"):  # slopes.json / .md
        data = {
            "settings": settings,
            "alpha": ALPHA,
            "table1": [],
            "table2": [],
            "table3": [],
            "table4": [],
            "provenance": prov,
        }

        def save():
            report.write_report(args.out, "slopes", data, markdown)

        table4(args, data, save)
        print(f"wrote {args.out}/slopes.json and slopes.md")
    return 0


if __name__ == "__main__":
    _common.run_main(main, "coverage.py")
