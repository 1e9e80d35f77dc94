"""The docs' results tables, generated from experiments/results/ (never typed by hand).

A page marks a generated table with a pair of comments, and everything between them belongs to this
script:

    <!-- gen:rates.results -->
    ...
    <!-- /gen:rates.results -->

``python docs/gen_tables.py`` rewrites every such block in docs/*.md from the result files; ``python
docs/gen_tables.py --check`` exits 1 naming each block that differs from what the result files give
now (tests/test_docs.py runs it). The mkdocs hook (docs/hooks.py) renders the same blocks at build
time, so a built site always shows the results as they are, even before the pages are rewritten.

Each table ends with the command that produced its numbers and the machine it ran on, both read from
the result file's own provenance."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "experiments" / "results"
BLOCK = re.compile(
    r"(<!-- gen:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /gen:(?P=name) -->)", re.S
)


# ---------------------------------------------------------------------------------------------
# helpers


def _load(results: Path, rel: str):
    path = results / rel
    if not path.is_file():
        raise FileNotFoundError(f"docs/gen_tables.py: result file {path} is missing")
    return json.loads(path.read_text())


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _md(text) -> str:
    """Free text from a result file, shown as written: markdown's emphasis, link and HTML characters
    escaped."""
    text = str(text).replace("\\", "\\\\")
    for ch in "*_[]`":
        text = text.replace(ch, "\\" + ch)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _g(x, digits=3) -> str:
    """x to `digits` significant digits, n/a for a missing value (a JSON null is never printed as a
    number)."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.{digits}g}"


def _f(x, decimals=2) -> str:
    return "n/a" if x is None else f"{x:.{decimals}f}"


def _source(data: dict, rel: str) -> str:
    prov = data.get("provenance", {})
    versions = prov.get("versions", {})
    parts = [f"Source: `experiments/results/{rel}`"]
    if prov.get("command"):
        parts.append(f"command: `{prov['command']}`")
    machine = prov.get("device")
    if machine:
        parts.append(
            f"machine: {machine}" + (f", torch {versions['torch']}" if "torch" in versions else "")
        )
    if prov.get("time"):
        parts.append(f"run {prov['time'][:10]}")
    return "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# verify


def verify_summary(results: Path) -> str:
    rel = "verify/verify.json"
    d = _load(results, rel)
    s = d["summary"]
    by = s["by_status"]
    fr = s["findings_reproduced"]
    rows = [["obligations that hold", f"{s['passing']}/{s['obligations']}"]]
    rows += [[f"status `{k}`", v] for k, v in by.items()]
    rows += [["negative controls (must be refuted)", s["controls"]], ["findings", s["findings"]]]
    rows += [[f"findings reproduced: `{k}`", v] for k, v in fr.items()]
    rows += [
        ["findings broken", len(s["findings_broken"])],
        ["gate passes", _g(d["passes"])],
        ["wall time, s", _f(d["seconds"], 1)],
    ]
    return _table(["", "count"], rows) + "\n\n" + _source(d, rel)


def mutation_summary(results: Path) -> str:
    rel = "mutation/mutation.json"
    d = _load(results, rel)
    t = d["totals"]

    def rate(k):
        r = t[k]
        return f"{r['caught']}/{r['of']} ({100 * r['caught'] / r['of']:.0f} %)"

    rows = [
        ["mutants (single-point bugs)", t["mutants"]],
        ["in the gate's declared scope", t["in_scope"]],
        ["caught by the gate, in scope", rate("gate_in_scope")],
        ["caught by the gate, all", rate("gate_all")],
        ["caught by the tests, all", rate("tests_all")],
        ["caught by neither", ", ".join(t["survivors"]) or "none"],
    ]
    cmds = "; ".join(f"`{c}`" for c in d["commands"])
    return (
        _table(["", "count"], rows) + f"\n\nSource: `experiments/results/{rel}`; commands: {cmds}; "
        f"machine: {d['machine']}; commit {d['commit']}."
    )


def _witness(w) -> str:
    if isinstance(w, dict):
        return "; ".join(f"{_md(k)}: {_witness(v)}" for k, v in w.items())
    if isinstance(w, (list, tuple)):
        return "(" + ", ".join(_witness(v) for v in w) + ")"
    if isinstance(w, float):
        return _g(w, 4)
    return _md(w)


def verify_findings(results: Path) -> str:
    rel = "verify/verify.json"
    d = _load(results, rel)
    fs = d["findings"]
    summary = _table(
        ["id", "verdict", "where"],
        [
            [f["id"], f["verdict"] + ("" if f["reproduced"] else " (not reproduced)"), f["section"]]
            for f in fs
        ],
    )
    parts = [summary]
    for f in fs:
        w = f["witness"]
        rows = (
            [[_md(k), _witness(v)] for k, v in w.items()]
            if isinstance(w, dict)
            else [["witness", _witness(w)]]
        )
        parts.append(
            f"### {f['id']}\n\n**{f['verdict']}** ({_md(f['section'])}). {_md(f['claim'])}\n\n"
            + _table(["witness (computed by the gate)", "value"], rows)
            + (f"\n\n{_md(f['explanation'])}" if f.get("explanation") else "")
        )
    return "\n\n".join(parts) + "\n\n" + _source(d, rel)


def verify_packs(results: Path) -> str:
    base = results / "verify-packs"
    rows, src = [], None
    for path in sorted(base.glob("*/verify.json")):
        d = json.loads(path.read_text())
        name = path.parent.name
        # one command per pack: the table names it once, with the pack's name as a placeholder
        prov = d.get("provenance", {})
        prov["command"] = (
            prov.get("command", "")
            .replace(f"--pack {name}", "--pack <pack>")
            .replace(f"verify-packs/{name}", "verify-packs/<pack>")
        )
        s = d["summary"]
        cpu = sum(o["seconds"] for o in d["obligations"])
        rows.append(
            [
                f"`{name}`",
                f"{s['passing']}/{s['obligations']}",
                s["controls"],
                _f(d["seconds"], 1),
                _f(cpu, 1),
            ]
        )
        src = d
    if not rows:
        raise FileNotFoundError(f"docs/gen_tables.py: no {base}/*/verify.json")
    return (
        _table(
            [
                "pack",
                "obligations that hold",
                "controls (refuted)",
                "gate wall s",
                "sum of obligation s",
            ],
            rows,
        )
        + "\n\n"
        + _source(src, "verify-packs/<pack>/verify.json")
    )


# ---------------------------------------------------------------------------------------------
# optimizer step speed (bench_optim_step)


def _paired(r) -> str:
    p = r["paired_x_sgdm_foreach"]
    return f"{p['median']:.2f} ({p['min']:.2f}–{p['max']:.2f})"


def _step_table(results: Path, rel: str) -> str:
    d = _load(results, rel)
    models = list(d["models"])
    names = []
    for m in models:
        names += [n for n in d["models"][m]["results"] if n not in names]
    rows = []
    for n in names:
        row = [n]
        for m in models:
            r = d["models"][m]["results"].get(n)
            row.append("—" if r is None else _paired(r))
        for m in models:
            r = d["models"][m]["results"].get(n)
            row.append("—" if r is None else _f(r["first_step_s"], 1))
        rows.append(row)
    header = (
        ["× torch SGD-momentum foreach, paired median (range)"]
        + models
        + [f"first step s, {m}" for m in models]
    )
    sizes = "; ".join(
        f"{m}: {d['models'][m]['parameters'] / 1e6:.1f}M parameters in {d['models'][m]['tensors']} "
        "tensors"
        for m in models
    )
    return (
        f"{d['device']}. {d['timing']}. {sizes}.\n\n"
        + _table(header, rows)
        + "\n\n"
        + _source(d, rel)
    )


def step_cpu(results: Path) -> str:
    return _step_table(results, "bench_optim_step/cpu.json")


def step_cpu_avx2(results: Path) -> str:
    return _step_table(results, "bench_optim_step/cpu-avx2.json")


def _pow_table(results: Path, rel: str) -> str:
    d = _load(results, rel)
    rows = [
        [
            n,
            _f(r["median_ms"]),
            f"{r['x_sgdm_median']:.2f} ({r['x_sgdm_min']:.2f}–{r['x_sgdm_max']:.2f})",
            _g(r.get("max_rel_err_normal_range"), 2) if "max_rel_err_normal_range" in r else "",
            _g(r.get("max_rel_err_1e-8_to_1e4"), 2) if "max_rel_err_1e-8_to_1e4" in r else "",
        ]
        for n, r in d["results"].items()
    ]
    return (
        f"{d['device']}; the whole fused step over one float32 tensor of {d['numel']:,} elements, "
        "median of "
        f"{d['rounds']} interleaved rounds of {d['steps']} steps; the default scheme here: "
        f"`{d['default_scheme']}`.\n\n"
        + _table(
            [
                "power",
                "ms/step",
                "× SGD-momentum foreach (range)",
                "max rel. error, all normal x",
                "max rel. error, x in [1e-8, 1e4]",
            ],
            rows,
        )
        + "\n\n"
        + _source(d, rel)
    )


def pow_avx512(results: Path) -> str:
    return _pow_table(results, "bench_optim_step/pow_cpu_avx512.json")


def pow_avx2(results: Path) -> str:
    return _pow_table(results, "bench_optim_step/pow_cpu_avx2.json")


# ---------------------------------------------------------------------------------------------
# estimate


def estimate_constants(results: Path) -> str:
    rel = "estimate-cpu/constants.json"
    d = _load(results, rel)
    fit, run = d["fit"], d["run"]
    a5, a6, sm, nz = fit["assumption5"], fit["assumption6"], fit["smoothness"], fit["noise"]
    est = a5.get("estimate", {})
    frontier = ", ".join(f"({c3:.4g}, {c2:.4g})" for c3, c2 in a5["frontier"])
    l0l1 = ", ".join(f"({a:.4g}, {b:.4g})" for a, b in sm["l0_l1_frontier"])
    rows = [
        [
            "c1 (Assumption 5, eq. 27), lower bound",
            _g(a5["c1"], 4),
            f"point estimate {_g(est.get('c1'), 4)}",
        ],
        ["c1 > 0 at every checkpoint", _g(a5["holds"]), ""],
        ["(c3, c2) frontier vertices (eq. 28)", frontier, ""],
        [
            f"(c2, c3) minimising Theorem 1's bound at T = {run['T']}",
            f"({_g(a5['c2'], 4)}, {_g(a5['c3'], 4)})",
            f"point estimate ({_g(est.get('c2'), 4)}, {_g(est.get('c3'), 4)})",
        ],
        [
            "step cap c1/(L c3) (eq. 30)",
            _g(a5["step_cap"], 4),
            f"largest lr used {_g(fit['lr_max'], 4)}",
        ],
        ["largest lr within the cap", _g(a5.get("lr_within_cap")), ""],
        [
            "c̃1 (Assumption 6, eq. 43), lower bound",
            _g(a6["c1"], 4),
            f"point estimate {_g(a6.get('estimate', {}).get('c1'), 4)}",
        ],
        ["c̃1 > 0 at every checkpoint", _g(a6["holds"]), ""],
        ["L (eq. 4, largest ratio: a lower bound)", _g(sm["L"], 4), f"{sm['pairs']} pairs"],
        ["L, gradient form ‖Δ∇f‖_q/‖Δθ‖ₚ", _g(sm["L_grad"], 4), ""],
        ["(L1, L0) frontier vertices", l0l1, ""],
        [
            "σ (Assumption 3, dual norm, upper bound)",
            _g(nz["sigma"], 4),
            f"σ² {_g(nz['sigma_sq'], 4)}",
        ],
        ["test accuracy at the end", _g(d.get("test_accuracy"), 3), ""],
        ["training loss per epoch", ", ".join(_f(x, 3) for x in d.get("epoch_losses", [])), ""],
        ["training wall s", _f(d.get("train_seconds"), 0), f"T = {run['T']} steps"],
    ]
    recs = d.get("records", [])
    if recs and all("passes" in r and "seconds" in r for r in recs):
        rows.append(
            [
                "probes: forward-backward passes, wall s",
                f"{sum(r['passes'] for r in recs):,}",
                f"{sum(r['seconds'] for r in recs):.0f} s over {len(recs)} checkpoints",
            ]
        )
    ss = fit["sample_sizes"]
    head = (
        f"{d['config']['model']} (width {d['config'].get('width')}, "
        f"{run['parameters']:,} parameters), "
        f"{run['train_images']:,} training images, {d['config']['optimizer']}, "
        f"{ss['checkpoints']} checkpoints, simultaneous confidence {ss['confidence']:.0%}."
    )
    return head + "\n\n" + _table(["constant", "value", "note"], rows) + "\n\n" + _source(d, rel)


def estimate_checkpoints(results: Path) -> str:
    rel = "estimate-cpu/constants.json"
    d = _load(results, rel)

    def cell(s):
        return f"{_g(s['mean'])} [{_g(s['lo'])}, {_g(s['hi'])}]" if isinstance(s, dict) else _g(s)

    rows = [
        [
            c["step"],
            c["epoch"],
            _g(c["p"], 3),
            _g(c["lr"], 3),
            cell(c["align"]),
            cell(c["moment"]),
            cell(c["align_m"]),
            cell(c["noise"]),
        ]
        for c in d["fit"]["checkpoints"]
    ]
    return (
        _table(
            [
                "step",
                "epoch",
                "p",
                "lr",
                "alignment (eq. 27)",
                "‖u‖ₚ² (eq. 28)",
                "alignment (eq. 43)",
                "‖g−∇f‖_q² (Ass. 3)",
            ],
            rows,
        )
        + "\n\n"
        + _source(d, rel)
    )


def estimate_cost(results: Path) -> str:
    rel = "estimate-cost/cost.json"
    d = _load(results, rel)
    r = d["per_round_ratios"]
    rows = [
        [i + 1, _f(x["train_images_per_s"], 0), _f(x["probe_images_per_s"], 0), _f(q)]
        for i, (x, q) in enumerate(zip(d["rounds"], r))
    ]
    return (
        f"{d['model']} width {d['width']} ({d['parameters']:,} parameters), "
        f"batch {d['batch_size']}, "
        f"{d['threads']} thread(s). Median per-round ratio probe/train: "
        f"**{d['ratio_probe_over_train']:.2f}** (range {min(r):.2f}–{max(r):.2f}; target ≥ "
        f"{d['target']}: {'met' if d['meets_target'] else 'not met'}).\n\n"
        + _table(["round", "train img/s", "probe img/s", "probe / train"], rows)
        + "\n\n"
        + _source(d, rel)
    )


def coverage(results: Path) -> str:
    rel = "coverage/coverage.json"
    d = _load(results, rel)
    rows3 = [r for r in d["table3"] if r["method"] == d["chosen"]]
    n_main = max({r["N"] for r in rows3}, key=lambda n: sum(r["N"] == n for r in rows3))
    ks = sorted({r["K"] for r in rows3 if r["N"] == n_main})
    laws = list(dict.fromkeys(r["law"] for r in rows3))
    rows = []
    for law in laws:
        by_k = {r["K"]: r for r in rows3 if r["N"] == n_main and r["law"] == law}
        skew = next(iter(by_k.values()))["skewness"]
        rows.append(
            [law, _f(skew)] + [f"{100 * by_k[k]['coverage']:.1f}" if k in by_k else "" for k in ks]
        )
    return (
        f"Simultaneous coverage (%) of the {n_main} intervals of `{d['chosen']}` at nominal "
        f"{1 - d['alpha']:.0%}, by law of the per-batch values and K:\n\n"
        + _table(["law", "skewness"] + [f"K = {k}" for k in ks], rows)
        + "\n\n"
        + _source(d, rel)
    )


# ---------------------------------------------------------------------------------------------
# rates

_METHOD = {
    "lpsgd": "LPSGD",
    "lpsgdm": "LPSGDM",
    "sgd": "SGD",
    "sgdm": "SGDM",
    "sign": "sign",
    "steepest": "eq. 10",
}
_RULE = {"theorem": "", "constant": ", constant η", "sqrt": ", C/√T"}


def _rates_table(d: dict) -> str:
    problems = list(d["problems"])
    keys, cells = [], {}
    for name in problems:
        for s in d["problems"][name]["studies"]:
            key = _METHOD.get(s["method"], s["method"]) + _RULE.get(s["rule"], f", {s['rule']}")
            if key not in keys:
                keys.append(key)
            verdict = {"refuted": "**refuted**", "inconclusive": "*inconclusive*"}.get(
                s["verdict"], s["verdict"]
            )
            ratio = s.get("bound_ratio_max")
            cells[key, name] = (
                f"{verdict} {s['tail_fit']['slope']:.3f}, "
                f"{_f(ratio) if ratio is not None else 'n/a'}"
            )
    rows = [[k] + [cells.get((k, p), "—") for p in problems] for k in keys]
    cfg = d["config"]
    return (
        f"T = {', '.join(map(str, cfg['T']))}; {cfg['seeds']} seeds; "
        "each cell: verdict, tail slope, largest "
        "observed/bound ratio (n/a where no c1 > 0 exists); the step is eq. 32/47 unless the "
        "row says otherwise."
        + (f" Wall time of the whole run: {d['seconds']:.0f} s." if "seconds" in d else "")
        + "\n\n"
        + _table(["method, step"] + problems, rows)
    )


def rates_results(results: Path) -> str:
    rel = "rates/rates.json"
    d = _load(results, rel)
    return _rates_table(d) + "\n\n" + _source(d, rel)


def rates_quick(results: Path) -> str:
    rel = "rates-quick/rates.json"
    d = _load(results, rel)
    return _rates_table(d) + "\n\n" + _source(d, rel)


def rates_problems(results: Path) -> str:
    rel = "rates/rates.json"
    d = _load(results, rel)
    rows = []
    for name, p in d["problems"].items():
        info = p["info"]
        L = info["L"]
        rows.append(
            [
                name,
                _md(info["description"]),
                _md(info["noise"]),
                info["d"],
                ", ".join(_g(L[k], 4) for k in ("2", "6", "inf") if k in L),
            ]
        )
    return _table(["name", "f", "noise", "d", "L_2, L_6, L_∞"], rows) + "\n\n" + _source(d, rel)


def rates_throughput(results: Path) -> str:
    rel = "rates/throughput.json"
    d = _load(results, rel)
    rates = {b["name"]: b["extra_info"]["seed_steps_per_s"] for b in d["benchmarks"]}
    rows = [[n, f"{v:,.0f}"] for n, v in rates.items()]
    ratio = rates["test_vectorised"] / rates["test_per_seed_loop"]
    cpu = d["machine_info"]["cpu"]["brand_raw"]
    return (
        _table(["benchmark", "seed-steps/s"], rows)
        + f"\n\nVectorised / per-seed loop: **{ratio:.0f}×**.\n\n"
        f"Source: `experiments/results/{rel}`; command: `pytest "
        "benchmarks/test_bench_rates.py -s "
        f"--benchmark-json=experiments/results/rates/throughput.json`; machine: {cpu}, "
        f"{d['machine_info']['cpu']['count']} cores; run {d['datetime'][:10]}."
    )


def rates_epoch_floor(results: Path) -> str:
    rel = "rates/epoch_floor.json"
    d = _load(results, rel)
    rows = [
        [
            r["problem"],
            r["method"],
            f"{r['T']:,}",
            _g(r["eta"]),
            " ".join(_g(v, 2) for v in r["per_epoch_grad_sq"]),
        ]
        for r in d["rows"]
    ]
    return (
        f"Mean ‖∇f‖² per epoch (epochs 1–{d['epochs']}, cosine p from {d['p_max']:g}), "
        f"{d['seeds']} seeds.\n\n"
        + _table(["problem", "method", "T", "η", "per epoch"], rows)
        + "\n\n"
        + _source(d, rel)
    )


# ---------------------------------------------------------------------------------------------
# curvature, the paper's figures


def curvature_products(results: Path) -> str:
    rel = "bench_curvature/cpu.json"
    d = _load(results, rel)
    rows = [
        [
            n,
            _f(1000 * m["median_s"], 0),
            f"{1000 * m['min_s']:.0f}–{1000 * m['max_s']:.0f}",
            f"{m['ratio_median']:.2f} ({m['ratio_min']:.2f}–{m['ratio_max']:.2f})",
        ]
        for n, m in d["methods"].items()
    ]
    c = d["config"]
    return (
        f"{c['model']} width {c['width']} ({d['dim']:,} parameters), "
        f"{c['images']} images in batches of "
        f"{c['batch_size']}, {c['dtype']}, {c['rounds']} interleaved rounds, CPU time at "
        f"{c['threads']} thread; kept graphs ~{d['graph_mib']:.0f} MiB; largest relative "
        f"difference between the products {d['max_rel_diff']:.2g}.\n\n"
        + _table(
            [
                "product",
                "median ms",
                "min–max ms",
                "× PyHessian-style, per round: median (range)",
            ],
            rows,
        )
        + "\n\n"
        + _source(d, rel)
    )


def curvature_trace(results: Path) -> str:
    rel = "bench_curvature/trace.json"
    d = _load(results, rel)
    rows = [
        [
            _md(r["operator"]),
            _g(r["trace"], 4),
            _g(r["top_eigenvalue"], 3),
            r["products"],
            _g(r["rms_hutchinson"]),
            _g(r["rms_hutchpp"]),
            _f(r["ratio"]),
        ]
        for r in d["rows"]
    ]
    return (
        f"RMS error over {d['seeds']} seeds; "
        "ratio = Hutchinson's / Hutch++'s (> 1: Hutch++ wins).\n\n"
        + _table(
            [
                "operator",
                "trace",
                "top eigenvalue",
                "products",
                "RMS Hutchinson",
                "RMS Hutch++",
                "ratio",
            ],
            rows,
        )
        + "\n\n"
        + _source(d, rel)
    )


def curvature_example(results: Path) -> str:
    rel = "curvature-cpu/curvature.json"
    d = _load(results, rel)
    return _curvature_summary(d) + "\n\n" + _source(d, rel)


def _curvature_summary(d: dict) -> str:
    rows = []
    for side, e in (d.get("eigenpairs") or {}).items():
        if isinstance(e, dict) and e.get("values"):
            rows.append(
                [
                    f"{side} eigenvalues",
                    ", ".join(_g(v, 3) for v in e["values"]),
                    f"residuals ≤ {_g(max(e['residuals']), 2)}; "
                    f"converged: {_g(all(e['converged']))}",
                ]
            )
    for name, t in (d.get("trace") or {}).items():
        rows.append(
            [
                f"trace ({name})",
                f"{_g(t['estimate'], 3)} ± {_g(t['standard_error'], 2)}",
                f"{t['products']} products",
            ]
        )
    dens = d.get("density")
    if dens:
        note = (
            f"below −1 % of the largest |Ritz value|: {_g(dens['negative_mass_below_1pct'], 3)}; "
            f"{dens['vectors']} vectors × {dens['steps']} steps"
        )
        rows.append(["spectral density (SLQ): negative mass", _g(dens["negative_mass"], 3), note])
        rows.append(
            [
                "Ritz values of the density",
                f"[{_g(dens['min_node'], 4)}, {_g(dens['max_node'], 4)}]",
                "",
            ]
        )
    rows.append(
        [
            "Hessian-vector products",
            d["operator"]["products"],
            f"kept graphs: {_g(d['operator']['retained'])}",
        ]
    )
    for stage, s in d.get("seconds", {}).items():
        rows.append([f"wall s, {stage}", _f(s, 0), ""])
    partial = (
        ""
        if d.get("complete")
        else "**Partial**: the run was interrupted; below is what it measured.\n\n"
    )
    return partial + _table(["", "value", "note"], rows)


def fig3(results: Path) -> str:
    rel = "fig3/fig3.json"
    d = _load(results, rel)
    out = []
    for prob, methods in d["problems"].items():
        rows = [
            [
                m,
                _g(r["lr"]),
                _g(r["final_f"], 2),
                _g(r["final_distance"], 3),
                _g(r["steps_to_1e-3"]),
            ]
            for m, r in methods.items()
        ]
        out.append(
            f"**{prob}**\n\n"
            + _table(
                ["method", "best lr", "final f", "distance to the minimiser", "steps to f < 1e-3"],
                rows,
            )
        )
    return (
        f"{d['steps']} steps from {tuple(d['start'])}, "
        f"each method at its best lr of {len(d['lr_grid'])} "
        "log-spaced values; n/a: f < 1e-3 never reached.\n\n"
        + "\n\n".join(out)
        + "\n\n"
        + _source(d, rel)
    )


TABLES = {
    "verify.summary": verify_summary,
    "mutation.summary": mutation_summary,
    "verify.findings": verify_findings,
    "verify.packs": verify_packs,
    "step.cpu": step_cpu,
    "step.cpu-avx2": step_cpu_avx2,
    "pow.avx512": pow_avx512,
    "pow.avx2": pow_avx2,
    "estimate.constants": estimate_constants,
    "estimate.checkpoints": estimate_checkpoints,
    "estimate.cost": estimate_cost,
    "estimate.coverage": coverage,
    "rates.results": rates_results,
    "rates.quick": rates_quick,
    "rates.problems": rates_problems,
    "rates.throughput": rates_throughput,
    "rates.epoch-floor": rates_epoch_floor,
    "curvature.products": curvature_products,
    "curvature.trace": curvature_trace,
    "curvature.example": curvature_example,
    "fig3": fig3,
}


# ---------------------------------------------------------------------------------------------
# rendering


def render(text: str, results: Path = RESULTS) -> str:
    """text with every generated block rewritten from the result files under `results`."""

    def one(m):
        name = m["name"]
        if name not in TABLES:
            raise ValueError(
                f"docs/gen_tables.py: unknown table {name!r}; known: {', '.join(TABLES)}"
            )
        return m[1] + TABLES[name](results).rstrip("\n") + "\n" + m[4]

    return BLOCK.sub(one, text)


def blocks(text: str) -> list[str]:
    return [m["name"] for m in BLOCK.finditer(text)]


def stale(docs: Path = DOCS, results: Path = RESULTS) -> list[str]:
    """'page: table' for every generated block whose text differs from what `results` gives now."""
    out = []
    for page in sorted(docs.rglob("*.md")):
        text = page.read_text()
        new = render(text, results)
        old_blocks = {m["name"]: m["body"] for m in BLOCK.finditer(text)}
        new_blocks = {m["name"]: m["body"] for m in BLOCK.finditer(new)}
        out += [
            f"{page.relative_to(docs)}: {n}" for n in old_blocks if old_blocks[n] != new_blocks[n]
        ]
    return out


def write(docs: Path = DOCS, results: Path = RESULTS) -> list[str]:
    changed = []
    for page in sorted(docs.rglob("*.md")):
        text = page.read_text()
        new = render(text, results)
        if new != text:
            page.write_text(new)
            changed.append(str(page.relative_to(docs)))
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a page's table is stale"
    )
    ap.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="the results folder (default experiments/results)",
    )
    ap.add_argument("--docs", type=Path, default=DOCS, help="the docs folder (default docs/)")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale(args.docs, args.results)
        for b in bad:
            print(f"stale: {b} (run python docs/gen_tables.py)")
        return 1 if bad else 0
    for page in write(args.docs, args.results):
        print(f"rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
