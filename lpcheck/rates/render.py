"""The rates report: Markdown from rates.json, and one log-log plot per problem (via
lpcheck.report)."""

from __future__ import annotations

import math

from lpcheck.rates.fit import RATE, rate_text, verdict_rule
from lpcheck.report import markdown_table

__all__ = ["render_markdown", "plot_problem", "MEASUREMENT"]

OBSERVED = {  # the metric's words in the report (lpcheck.rates.simulation.METRICS)
    "grad_l2_sq": "(1/T) sum_(t<T) ||grad f(theta_t)||_2^2 (eq. 31/33's left side)",
    "grad_l2": "(1/T) sum_(t<T) ||grad f(theta_t)||_2 (first power)",
    "grad_q_sq": "(1/T) sum_(t<T) ||grad f(theta_t)||_q^2 (q the dual exponent of the active p)",
    "dual_sq": "(1/T) sum_(t<T) ||grad f(theta_t)||_*^2 (the dual norm of each method's own norm)",
    "dual": (
        "(1/T) sum_(t<T) ||grad f(theta_t)||_* (the dual norm of each method's own norm, first "
        "power)"
    ),
}

MEASUREMENT = (
    "Observed: the seed mean of {observed} from {seeds} seeds per T, all seeds of a run in one "
    "(seeds x d) tensor; runs of different T share their random numbers (seed i draws the same "
    "noise in every run). Constants (Assumption 5, or 6 for momentum): at {ck} checkpoints per run "
    "({ck_seeds} seeds x up to {ck_times} iterations, geometrically spaced in [0, T-1]) we draw K "
    "= {K} stochastic gradients from the problem's exact noise model and evaluate eq. 27 and eq. "
    "28 (eq. 43/44 with the momentum buffer m_(t-1) held fixed, i.e. conditioned on F_t) with "
    "lpcheck.estimate; where the alignment ratio's standard error is above 10% of it, 16 K more "
    "draws are taken. c1 = the smallest alignment ratio among checkpoints where it is then "
    "resolved (the others are counted as unresolved: tiny gradients, or ratios too close to zero "
    "to sign); 'c1 <= (95%)' is the least mean + 2 standard errors over all checkpoints: no valid "
    "c1 exceeds it, so a value far below c1 puts Assumption 5/6 in doubt; (c2, c3): for the step "
    "eta that was used, c3 = c1/(L eta) (the largest eq. 30 allows) and c2 = the least value with "
    "moment <= c2 + c3 ||grad f||^2 at every checkpoint (lpcheck.estimate.fit). L: the problem's "
    "lp constant, the largest over the p's the run uses (for the cosine schedule that is p_max). "
    "delta = f(theta_0) - f* (f* a proven lower bound where not closed-form). Bound ratio = "
    "observed / eq. 31 (eq. 46) at the step used: <= 1 means the theorem's bound holds. Steps for "
    "'theorem': eq. 32/47 at each T from constants measured on two pilot rounds ({pilot_seeds} "
    "seeds each; the first round's step from the constants at theta_0, the second's from the first "
    "round's checkpoints), measured along the second round; see lpcheck/rates/study.py. Methods "
    "other than the paper's six are measured in their own geometry (their norm, or l2 where "
    "lpcheck knows none for them: the line under each table says which), with ||grad f||^2 "
    "replaced by ||grad f||_*^2 of that norm and L in that norm; the bound check applies to the "
    "metric eq. 31 bounds (n/a with the reason for another)."
)


def _num(v, fmt="{:.3g}"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return fmt.format(v)


def _interval(fit):
    if not fit:
        return "n/a"
    return f"{fit['slope']:.3f} [{fit['lo']:.3f}, {fit['hi']:.3f}]"


def _ratio_cell(study):
    """The largest observed/bound ratio, and why the bound is missing at the T where it is."""
    r = study.get("bound_ratio_max")
    missing = [
        run["bound"].get("status", "n/a")
        for run in study["runs"]
        if run["bound"].get("ratio") is None
    ]
    why = ", ".join(f"{status} at {missing.count(status)} T" for status in dict.fromkeys(missing))
    if r is None:
        return "n/a" + (f" ({why})" if why else "")
    return f"{r:.3g}" + (f" (n/a: {why})" if why else "")


def _c1_cell(study):
    c1 = [run["bound"].get("c1") for run in study["runs"] if run.get("bound")]
    c1 = [c for c in c1 if c is not None and not (isinstance(c, float) and math.isnan(c))]
    if not c1:
        return "n/a"
    return f"{min(c1):.3g} to {max(c1):.3g}"


def _c1_upper_cell(study):
    values = [(run.get("constants") or {}).get("c1_upper") for run in study["runs"]]
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return f"{min(values):.3g}" if values else "n/a"


def _study_row(s):
    note = s.get("pilot", {}).get("note", "")
    return [
        s["label"],
        s["rule"],
        _interval(s.get("fit")),
        _interval(s.get("tail_fit")),
        f"**{s['verdict']}**",
        s.get("regime", ""),
        s.get("reason", ""),
        _ratio_cell(s),
        _c1_cell(s),
        _c1_upper_cell(s),
        _note_cell(s, note),
    ]


def _note_cell(study, note):
    if not note:
        return ""
    if study.get("theorem") is None:
        return "step from the initial state's constants (c~1 <= 0 on the pilot)"
    return "eq. 47 -> eq. 32 step (c~1 <= 0 on the pilot)"


def _detail_rows(s):
    rows = []
    for run in s["runs"]:
        b = run.get("bound") or {}
        c = run.get("constants") or {}
        rows.append(
            [
                s["method"],
                s["rule"],
                run["T"],
                _num(run["eta"]),
                _num(run.get("mean")),
                _num(run.get("sem")),
                _num(b.get("rhs")),
                _num(b.get("ratio")),
                _num(b.get("c1")),
                _num(c.get("c1_upper")),
                _num(b.get("c2")),
                _num(b.get("c3")),
                f"{c.get('resolved', 'n/a')}/{c.get('checkpoints', 'n/a')}",
                run["finite_seeds"],
            ]
        )
    return rows


QUICK_CAVEAT = (
    "**A smoke run (`--quick`)**: T <= {T_max} and {seeds} seeds. The verdicts below are about "
    "this short range only, where the rate is often not yet asymptotic (with S = 10 epochs an "
    "epoch is 10-40 steps): a 'refuted' here is a reason to run the full grid (the default, T up "
    "to 3e4, 256 seeds), not evidence against the theorem."
)


def _how_lines(prob) -> list:
    """How each method other than the paper's six was run (batched or per seed) and measured (its
    geometry)."""
    lines = [
        f"- {s['label']}: {s['execution']}; constants in {s['geometry']}."
        for s in prob["studies"]
        if s.get("theorem") is None and s.get("execution")
    ]
    return list(dict.fromkeys(lines)) + ([""] if lines else [])


def render_markdown(data: dict) -> str:
    cfg = data["config"]
    rate, metric = (
        cfg.get("rate", RATE),
        cfg.get("metric", "grad_l2_sq"),
    )  # reports from before --rate, --metric
    out = [f"# Rate fitting: does the method reach O(T^{rate_text(rate)})? (`lpcheck rates`)", ""]
    schedule = (
        f"p by {cfg['p_schedule']}(epoch, epochs)"
        if cfg.get("p_schedule")
        else f"cosine p from p_max = {cfg['p_max']}"
    )
    out.append(
        f"T grid: {', '.join(str(t) for t in cfg['T'])}; {cfg['seeds']} seeds; step rules: "
        f"{', '.join(cfg['rules'])}; {schedule} over S = {cfg['epochs']} epochs (or fixed p = "
        f"{cfg['p']}); beta = {cfg['momentum']}; eps = {cfg['eps']}; device: {cfg['device']}; "
        f"metric: {metric}; claimed rate: T^{rate_text(rate)}."
    )
    if cfg.get("quick"):
        out += ["", QUICK_CAVEAT.format(T_max=max(cfg["T"]), seeds=cfg["seeds"])]
    out += [
        "",
        "## Verdict rule",
        "",
        verdict_rule(rate, cfg["tolerance"]),
        "",
        f"This report: r = {rate_text(rate)}, tau = {cfg['tolerance']}.",
        "",
        "## How it is measured",
        "",
        MEASUREMENT.format(
            observed=OBSERVED.get(metric, metric),
            seeds=cfg["seeds"],
            ck=cfg["checkpoint_seeds"] * cfg["checkpoint_count"],
            ck_seeds=cfg["checkpoint_seeds"],
            ck_times=cfg["checkpoint_count"],
            K=cfg["K"],
            pilot_seeds=cfg["pilot_seeds"],
        ),
        "",
    ]
    summary = []
    for name, prob in data["problems"].items():
        for s in prob["studies"]:
            summary.append(
                [
                    name,
                    s["label"],
                    s["rule"],
                    _interval(s.get("tail_fit")),
                    f"**{s['verdict']}**",
                    s.get("regime", ""),
                    _num(s.get("bound_ratio_max")),
                ]
            )
    if summary:
        out += [
            "## Summary",
            "",
            markdown_table(
                [
                    "problem",
                    "method",
                    "step",
                    "tail slope [95%]",
                    "verdict",
                    "regime",
                    "max bound ratio",
                ],
                summary,
            ),
        ]
    for name, prob in data["problems"].items():
        info = prob["info"]
        L = ", ".join(f"L_{p} = {v:.4g}" for p, v in info["L"].items())
        out += [
            f"## {name}: {info['description']}",
            "",
            f"d = {info['d']}, delta = f(theta_0) - f* = {info['delta']:.4g}, f* = "
            f"{info['f_star']:.6g}"
            + (f" (lower bound; gap <= {info['f_star_gap']:.3g})" if "f_star_gap" in info else "")
            + f"; noise: {info['noise']}; {L}.",
            "",
        ]
        out.append(
            markdown_table(
                [
                    "method",
                    "step",
                    "slope, all T [95%]",
                    "tail slope [95%]",
                    "verdict",
                    "regime",
                    "why",
                    "max bound ratio",
                    "c1 (per T)",
                    "c1 <= (95%)",
                    "note",
                ],
                [_study_row(s) for s in prob["studies"]],
            )
        )
        out += [""] + _how_lines(prob)
        if prob.get("plot"):
            out += [f"![{name}]({prob['plot']})", ""]
        details = [r for s in prob["studies"] for r in _detail_rows(s)]
        out += [
            "<details><summary>per T</summary>",
            "",
            markdown_table(
                [
                    "method",
                    "step",
                    "T",
                    "eta",
                    "observed mean",
                    "sem",
                    "eq. 31/46 bound",
                    "ratio",
                    "c1",
                    "c1 <= (95%)",
                    "c2",
                    "c3",
                    "resolved",
                    "finite seeds",
                ],
                details,
            ),
            "</details>",
            "",
        ]
    return "\n".join(out)


def plot_problem(prob: dict, path, rate=RATE, metric="grad_l2_sq") -> None:
    """The problem's log-log plot (lpcheck.rates.render_plot: fitted slopes in the legend, T^rate
    guides)."""
    from lpcheck.rates.render_plot import plot_problem as plot

    plot(prob, path, rate=rate, metric=metric)
