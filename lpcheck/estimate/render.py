"""constants.md and the plots of `lpcheck estimate`, rendered from constants.json only."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from lpcheck import report

__all__ = ["markdown", "plots"]


def _g(v, digits=4):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _or_none(v, reason):
    """The number, or 'none (reason)' where there is none: never a placeholder that reads as a
    value."""
    return _g(v) if v is not None else f"none ({reason})"


def _iv(s):
    return f"{_g(s['mean'])} [{_g(s['lo'])}, {_g(s['hi'])}]"


def _pair(a):
    if a["c2"] is None:
        return f"none ({a['pair_reason']})"
    c3 = "0 (the limit c3 -> 0)" if a.get("c3_is_limit") else _g(a["c3"])
    return f"({_g(a['c2'])}, {c3})"


def _lr_check(a):
    if a["lr_within_cap"] is not None:
        return _g(a["lr_within_cap"])
    if a.get("c3_is_limit"):  # no cap exists: every lr is within it
        return f"no cap ({a['step_cap_reason']})"
    return f"not compared ({a['lr_within_cap_reason']})"


def _assumption_rows(a, tilde):
    t = "~" if tilde else ""
    if a is None:
        return []
    e, eq, thm = a["estimate"], "eq. 46-47" if tilde else "eq. 31-32", 2 if tilde else 1
    step = (
        f"none ({a['pair_reason']})"
        if a["eta"] is None
        else f"{_g(a['eta'])} ({a['branch']}{', no cap' if a['step_cap'] is None else ''})"
    )
    return [
        [f"c{t}1 (lower confidence bound)", _g(a["c1"]), f"point estimate {_g(e['c1'])}"],
        [f"holds (c{t}1 > 0 at every checkpoint)", _g(a["holds"]), ""],
        [f"(c{t}2, c{t}3), best pair for this T", _pair(a), f"point estimate {_pair(e)}"],
        [
            f"step cap c{t}1/(L c{t}3) (eq. 30)",
            _or_none(a["step_cap"], a.get("step_cap_reason")),
            "point estimate "
            + (
                "none (the same)"
                if e["step_cap"] is None
                and a["step_cap"] is None
                and e.get("step_cap_reason") == a.get("step_cap_reason")
                else _or_none(e["step_cap"], e.get("step_cap_reason"))
            ),
        ],
        [f"Theorem {thm} step", step, f"bound {_or_none(a['bound'], a.get('pair_reason'))} ({eq})"],
        ["peak lr of the run <= step cap", _lr_check(a), ""],
    ]


def _delta_text(f):
    src = f["delta_from"]
    return (
        f"delta = f(theta_0) - f* = {_g(f['delta'])} (f(theta_0) = {_g(src['f_theta0'])}, the loss "
        f"at step {src['f_theta0_step']}; f* >= {_g(src['loss_lower_bound'])}: {src['source']})."
    )


def _lr_text(f):
    peak = _or_none(f["lr_max"], f["lr_source"]) + (
        f" ({f['lr_source']})" if f["lr_max"] is not None else ""
    )
    return f"Peak lr of the run: {peak}." + (f" Note: {f['lr_note']}." if f.get("lr_note") else "")


def _coverage(iv):
    """The intervals' coverage measured at this run's N, K and level (fit.interval_check), and its
    verdict."""
    got = ", ".join(f"{law} {c['coverage']:.1%}" for law, c in iv["coverage"].items())
    verdict = (
        f"adequate (each >= {iv['floor']:.1%})"
        if iv["adequate"]
        else f"**not adequate**: {iv['note']}"
    )
    runs = iv["trials"]
    return (
        "Measured coverage of these intervals at this N, K and level "
        f"({runs} simulated runs): {got}; {verdict}."
    )


def _geometry(d):
    """The fit's geometry (a method in its own norm), or the records' when there is no fit yet;
    None: the paper's."""
    f = d.get("fit") or {}
    if f.get("geometry"):
        return f["geometry"]
    recs = [r for r in d.get("records", []) if r.get("phi") == "dual"]
    if not recs:
        return None
    return {
        "method": recs[0]["method"],
        "optimizer": recs[0].get("optimizer"),
        "source": recs[0].get("source"),
        "norms": list(dict.fromkeys(r["norm"] for r in recs)),
        "norm_from": recs[0].get("norm_from"),
        "directions": recs[0].get("directions"),
    }


def _labels(geo):
    """Column and row labels: the paper's lp names, or the method's norm ‖·‖ and its dual
    ‖·‖_*."""
    if geo is None:
        return {
            "phi": "‖∇f‖₂²",
            "align": "alignment (eq. 27)",
            "moment": "‖u‖ₚ² (eq. 28)",
            "noise": "‖g−∇f‖_q² (Ass. 3)",
            "ratio": "‖Δ∇f‖_q/‖Δθ‖ₚ",
            "dist": "‖Δθ‖ₚ",
            "pairs": "geometry p of the checkpoint",
        }
    return {
        "phi": "‖∇f‖_*²",
        "align": "alignment <∇f,d>/‖∇f‖_*²",
        "moment": "‖d‖²",
        "noise": "‖g−∇f‖_*² (Ass. 3)",
        "ratio": "‖Δ∇f‖_*/‖Δθ‖",
        "dist": "‖Δθ‖",
        "pairs": "the checkpoint's norm ‖·‖ and its dual ‖·‖_*",
    }


def _geometry_text(geo):
    via = {
        "layer": "its layer method (lpcheck.methods)",
        "blackbox": "the black box (one step of a copy per sample)",
    }
    norms = ", ".join(geo["norms"][:3]) + (
        f" (and {len(geo['norms']) - 3} more)" if len(geo["norms"]) > 3 else ""
    )
    text = (
        f"Geometry: {geo['method']} ({geo.get('optimizer') or 'a lpcheck.methods.Method'}, "
        f"directions through {via.get(geo.get('source'), geo.get('source'))}) "
        "in the norm ‖·‖ = "
        f"{norms}{' (--norm)' if geo.get('norm_from') == 'override' else ' (its own)'}: alignment "
        "<∇f,d>/‖∇f‖_*², moment ‖d‖², L and the pairs in ‖·‖, "
        "sigma in the dual ‖·‖_*"
        + (
            "; its directions have bounded norm (an LMO step): no step cap"
            if geo.get("directions") == "bounded"
            else ""
        )
        + "."
    )
    if geo.get("fallback"):
        text += " Black box because " + "; ".join(geo["fallback"]) + "."
    return text


def markdown(d: dict) -> str:
    c, r = d["config"], d["run"]
    f = d.get("fit")
    geo = _geometry(d)
    width = (
        f" (width {c['width']})" if c.get("width") is not None else ""
    )  # a user's model has none
    opt = str(c["optimizer"])
    title = (
        f"# lpcheck estimate: {c['model']}{width} on {r['dataset']}, "
        f"{opt if ':' in opt else opt.upper()}"
    )
    lines = [title, ""]
    if not d["complete"]:
        lines += [
            f"**Incomplete run**: {len(d['records'])} of {len(r['probe_steps'])} checkpoints "
            "measured so far.",
            "",
        ]
    hp = ", ".join(
        f"{label} {c[k]}"
        for k, label in (
            ("p_max", "p_max"),
            ("momentum", "beta"),
            ("weight_decay", "weight decay"),
            ("eps", "eps"),
        )
        if c.get(k) is not None
    )
    lines += [
        f"{r['train_images']} training images, {r['steps_per_epoch']} steps/epoch, {c['epochs']} "
        f"epochs, T = {r['T']} steps; lr {c['lr']} (warm-up {r['warmup_steps']} steps, cosine), "
        f"{hp + ', ' if hp else ''}batch {c['batch_size']}; probe mode {c['mode']}, K = "
        f"{c['samples']} mini-batches per checkpoint, full gradient over {r['probe_blocks']} "
        f"blocks of {c['batch_size']}.",
        "",
    ]
    if geo:
        lines += [_geometry_text(geo), ""]
    if d.get("test_accuracy") is not None:
        lines += [
            f"Test accuracy at the end: {d['test_accuracy']:.4f}; training loss per epoch: "
            + ", ".join(f"{v:.3f}" for v in d["epoch_losses"]),
            "",
        ]
    if f:
        ss = f["sample_sizes"]
        lines += [
            "## Constants",
            "",
            f"{ss['confidence']:.0%} bounds (each constant; a statistic's intervals at all "
            "checkpoints at once): "
            f"{ss['interval']['method'] if 'interval' in ss else 'percentile bootstrap'} over the "
            f"K mini-batches at level {ss['per_checkpoint_level']:.4f} per checkpoint (Bonferroni "
            f"over {ss['checkpoints']} checkpoints). L from {ss['pairs']} pairs of points (a lower "
            f"bound on Assumption 1's L, so the step caps are optimistic). {_delta_text(f)} "
            + _lr_text(f),
            "",
        ]
        lines += [_coverage(ss["interval"]), ""] if "interval" in ss else []
        lab = _labels(geo)
        rows = _assumption_rows(f["assumption5"], False) + _assumption_rows(f["assumption6"], True)
        s = f["smoothness"]
        rows += [
            [
                "L (eq. 4: largest quadratic-form ratio)",
                _or_none(s["L"], s.get("L_reason")),
                f"gradient form {lab['ratio']}: {_or_none(s['L_grad'], s.get('L_reason'))}",
            ],
            [
                "sigma (Assumption 3, dual norm, upper bound)",
                _g(f["noise"]["sigma"]),
                f"sigma^2 {_g(f['noise']['sigma_sq'])}, point estimate "
                f"{_g(f['noise']['sigma_sq_estimate'])}",
            ],
        ]
        lines += [report.markdown_table(["constant", "value", "note"], rows)]
        if s["l0_l1_frontier"]:
            lines += [
                "(L0, L1) frontier vertices (L1, L0): "
                + ", ".join(
                    f"({_or_none(a, 'beyond the float range')}, {_g(b)})"
                    for a, b in s["l0_l1_frontier"]
                ),
                "",
            ]
        has_m = f["assumption6"] is not None
        head = ["step", "epoch", "p", "lr", "f", lab["phi"], lab["align"], lab["moment"]]
        head += ["alignment (eq. 43)", "‖v‖ₚ² (eq. 44)"] if has_m else []
        head += [lab["noise"]]
        rows = []
        for k in f["checkpoints"]:
            phi = k.get(
                "grad_dual_sq", k["grad_sq"]
            )  # the frontier's x: ||grad f||_*^2, or the paper's ||grad f||_2^2
            row = [
                k["step"],
                k["epoch"],
                _g(k["p"]),
                _g(k["lr"]),
                _g(k["loss"]),
                _g(phi),
                _iv(k["align"]),
                _iv(k["moment"]),
            ]
            row += [_iv(k["align_m"]), _iv(k["moment_m"])] if has_m else []
            rows.append(row + [_iv(k["noise"])])
        lines += [
            "## Per checkpoint (mean [simultaneous interval])",
            "",
            report.markdown_table(head, rows),
        ]
    pair_rows = [
        [
            rec["step"],
            pr["kind"],
            _g(pr["dist_p"]),
            _g(pr["grad_ratio"]),
            _g(pr["quad_xy"]),
            _g(pr["quad_yx"]),
        ]
        for rec in d["records"]
        for pr in rec["pairs"]
    ]
    if pair_rows:
        lab = _labels(geo)
        lines += [
            f"## Smoothness pairs ({lab['pairs']})",
            "",
            report.markdown_table(
                [
                    "step",
                    "pair",
                    lab["dist"],
                    lab["ratio"],
                    "quadratic (base x)",
                    "quadratic (base y)",
                ],
                pair_rows,
            ),
        ]
    lines += [
        "Plots: constants.png (the measured quantities over training), frontier.png (the (c2, c3) "
        "frontier and the chosen pair)."
    ]
    return "\n".join(lines)


def _vertices(frontier):
    """A JSON frontier as an (n, 2) float array; vertices with no number (null c3) left out."""
    fr = np.array(
        [[np.nan if v is None else v for v in vertex] for vertex in frontier], dtype=np.float64
    )
    fr = fr.reshape(-1, 2)
    return fr[np.isfinite(fr).all(axis=1)]


def _symlog_threshold(values) -> float:
    """The linear range of a symmetric-log axis: the decade of the smallest nonzero |value|, within
    [1e-3, 1]."""
    small = [abs(v) for v in values if v != 0 and np.isfinite(v)]
    if not small:
        return 1.0
    return float(min(1.0, max(1e-3, 10.0 ** np.floor(np.log10(min(small))))))


def _schedule(d):
    """(steps, lr) of the run's schedule from its config (lpcheck.training.lr_at, what the trainer
    used), or None where the report does not say (a Probe run outside the trainer)."""
    run, c = d.get("run", {}), d.get("config", {})
    if not all(k in run for k in ("T", "warmup_steps")) or c.get("lr") is None:
        return None
    from lpcheck.training import lr_at

    steps = np.arange(run["T"])
    return steps, np.array([lr_at(int(t), run["T"], run["warmup_steps"], c["lr"]) for t in steps])


# the paper's symbols through mathtext: c~1 drawn as a tilde over c, norms and brackets as in print
MATH = {
    "c1": r"$c_1$",
    "c1t": r"$\tilde c_1$",
    "c2": r"$c_2$",
    "c2t": r"$\tilde c_2$",
    "c3": r"$c_3$",
    "c3t": r"$\tilde c_3$",
    "align27": r"eq. 27: $E\langle\nabla f,u\rangle/\|\nabla f\|_2^2$",
    "align43": r"eq. 43: $E\langle\nabla f,v\rangle/\|\nabla f\|_2^2$",
    "align_any": r"$E\langle\nabla f,d\rangle/\|\nabla f\|_*^2$",
    "moment28": r"eq. 28: $E\|u\|_p^2$",
    "moment44": r"eq. 44: $E\|v\|_p^2$",
    "moment_any": r"$E\|d\|^2$",
}


def _alignment_panel(ax, f, cps, steps, band, geo, has_m):
    """eq. 27 (43) over training on a symmetric-log axis (the ratios span decades and cross 0), 0
    marked."""
    band(ax, "align", MATH["align27"] if geo is None else MATH["align_any"], "C0")
    keys = ["align"] + (["align_m"] if has_m else [])
    if has_m:
        band(ax, "align_m", MATH["align43"], "C1")
    ax.axhline(0.0, color="k", lw=1.2, label="0: the alignment fails below")
    ax.axhline(
        f["assumption5"]["c1"],
        color="C0",
        ls="--",
        lw=1,
        label=f"{MATH['c1']} = {f['assumption5']['c1']:.3g}",
    )
    if has_m:
        ax.axhline(
            f["assumption6"]["c1"],
            color="C1",
            ls="--",
            lw=1,
            label=f"{MATH['c1t']} = {f['assumption6']['c1']:.3g}",
        )
    values = [k[key][end] for k in cps for key in keys for end in ("mean", "lo", "hi")]
    ax.set_yscale("symlog", linthresh=_symlog_threshold(values))
    ax.set(
        xlabel="step",
        ylabel="alignment ratio (symmetric log)",
        title="Alignment (simultaneous intervals), lower bounds dashed",
    )
    ax.legend(fontsize=7)


def _cap_panel(ax, d, f, cps):
    """The lr the run used against Theorem 1's step cap c1/(L c3) (and Theorem 2's), over
    training."""
    sched = _schedule(d)
    if sched is not None:
        ax.plot(*sched, "-", color="C2", lw=1.5, label="lr used (the schedule)")
    ax.plot(
        [k["step"] for k in cps],
        [k["lr"] for k in cps],
        "o",
        color="C2",
        ms=4,
        label="lr at the checkpoints",
    )
    for key, name, color in (
        ("assumption5", "Theorem 1: " + MATH["c1"] + r"$/(L c_3)$", "C0"),
        ("assumption6", "Theorem 2: " + MATH["c1t"] + r"$/(L \tilde c_3)$", "C1"),
    ):
        a = f.get(key)
        if not a:
            continue
        if a.get("step_cap") is not None:
            ax.axhline(a["step_cap"], color=color, lw=1.5, label=f"{name} = {a['step_cap']:.3g}")
            e = a["estimate"].get("step_cap")
            if e is not None:
                ax.axhline(e, color=color, lw=1, ls=":", label=f"{name}, point estimates = {e:.3g}")
        else:
            why = a.get("step_cap_reason") or a.get("pair_reason") or "none recorded"
            ax.plot([], [], " ", label=f"{name}: no cap ({textwrap.shorten(why, 60)})")
    lrs = [k["lr"] for k in cps] + ([float(max(sched[1]))] if sched is not None else [])
    caps = [
        f[k]["step_cap"]
        for k in ("assumption5", "assumption6")
        if f.get(k) and f[k].get("step_cap")
    ]
    ax.set_yscale("log")
    lo = min([v for v in lrs if v > 0] + caps) / 3
    ax.set_ylim(lo, max(lrs + caps) * 3)
    if caps:  # above the smallest cap, eq. 30 fails for that theorem's pair
        ax.axhspan(
            min(caps),
            max(lrs + caps) * 3,
            color="C3",
            alpha=0.07,
            label="above a cap: eq. 30 fails",
        )
    ax.set(
        xlabel="step",
        ylabel="step size",
        title="Step cap (eq. 30) against the lr used; L is a lower bound, so the cap is optimistic",
    )
    ax.legend(fontsize=7, loc="lower left")


def plots(d: dict, out) -> list:
    """constants.png and frontier.png from a constants.json dict (nothing when no checkpoint is
    fitted)."""
    from matplotlib.figure import Figure

    f = d.get("fit")
    if not f:
        return []
    out = Path(out)
    cps = f["checkpoints"]
    steps = np.array([k["step"] for k in cps])
    has_m = f["assumption6"] is not None
    geo = f.get("geometry")
    lab = _labels(geo)
    fig = Figure(figsize=(11, 11), layout="constrained")
    axd = fig.subplot_mosaic([["align", "moment"], ["noise", "smooth"], ["cap", "cap"]])

    def band(ax, key, label, color):
        m = np.array([k[key]["mean"] for k in cps])
        lo = np.array([k[key]["lo"] for k in cps])
        hi = np.array([k[key]["hi"] for k in cps])
        ax.plot(steps, m, "o-", color=color, label=label)
        ax.fill_between(steps, lo, hi, color=color, alpha=0.2)

    _alignment_panel(axd["align"], f, cps, steps, band, geo, has_m)
    ax = axd["moment"]
    band(ax, "moment", MATH["moment28"] if geo is None else MATH["moment_any"], "C0")
    if has_m:
        band(ax, "moment_m", MATH["moment44"], "C1")
    ax.plot(
        steps,
        [k.get("grad_dual_sq", k["grad_sq"]) for k in cps],
        "s:",
        color="C2",
        label=lab["phi"],
    )
    ax.set(xlabel="step", yscale="log", title=f"Second moments and {lab['phi']}")
    ax.legend(fontsize=7)
    ax = axd["noise"]
    band(ax, "noise", "E" + lab["noise"], "C3")
    f_low = f.get("delta_from", {}).get(
        "loss_lower_bound", 0.0
    )  # a log axis: f minus the bound on f*, >= 0
    ax.plot(
        steps,
        [k["loss"] - f_low for k in cps],
        "s:",
        color="C4",
        label=f"f − f* bound ({f_low:g}), probe",
    )
    ax.set(xlabel="step", yscale="log", title="Noise in the dual norm, loss")
    ax.legend(fontsize=7)
    ax = axd["smooth"]
    pairs = [(rec["step"], pr) for rec in d["records"] for pr in rec["pairs"]]
    for kind, marker in (("step", "o"), ("trajectory", "^")):
        pts = [
            (s, pr["grad_ratio"], max(pr["quad_xy"], pr["quad_yx"]))
            for s, pr in pairs
            if pr["kind"] == kind
        ]
        if pts:
            s, gr, qr = map(np.array, zip(*pts))
            ax.plot(s, gr, marker, color="C0", label=f"{kind}: {lab['ratio']}")
            ax.plot(s, qr, marker, color="C1", mfc="none", label=f"{kind}: quadratic form (eq. 4)")
    L = f["smoothness"]["L"]
    if L is not None:
        ax.axhline(L, color="C1", ls="--", lw=1, label=f"L = {L:.4g} (a lower bound)")
    if geo is None:
        ax2 = ax.twinx()
        ax2.plot(steps, [k["p"] for k in cps], "k--", lw=1, label="p")
        ax2.set_ylabel("p (eq. 19), dashed")
    ax.set(
        xlabel="step",
        title="lp smoothness ratios (active p)"
        if geo is None
        else f"smoothness ratios in {', '.join(geo['norms'][:2])}",
    )
    if pairs:
        ax.legend(fontsize=7)
    _cap_panel(axd["cap"], d, f, cps)
    paths = [report.save_figure(fig, out / "constants.png")]

    fig, axes = report.new_figure(
        1, 2 if has_m else 1, figsize=(11 if has_m else 6, 4.4), layout="constrained"
    )
    axes = np.atleast_1d(axes)
    x = np.array([k["grad_sq"] for k in cps])
    for ax, key, t in zip(axes, ("assumption5", "assumption6"), ("", "t")):
        a = f[key]
        c2, c3 = MATH["c2" + t], MATH["c3" + t]
        fr = _vertices(
            a["frontier"]
        )  # a vertex beyond the float range (null c3) has no number: not drawn
        ax.plot(fr[:, 0], fr[:, 1], "o-", color="C0", label="frontier (upper confidence bounds)")
        last = (
            fr[-1, 0] if len(fr) else 0.0
        )  # past its last vertex c2 stays at the floor: draw that ray too
        ax.plot([last, last * 1.25 if last > 0 else 1.0], [fr[-1, 1]] * 2, "-", color="C0")
        fe = _vertices(a["estimate"]["frontier"])
        ax.plot(fe[:, 0], fe[:, 1], ".:", color="C7", label="frontier (means)")
        if a.get("c2") is not None:
            c3v = "0, the limit: no cap" if a.get("c3_is_limit") else f"{a['c3']:.3g}"
            ax.plot(
                [a["c3"]],
                [a["c2"]],
                "*",
                ms=14,
                color="C3",
                label=f"best for T: ({c3v}, {a['c2']:.3g})",
            )
        else:
            why = (
                a.get("pair_reason") or f"{MATH['c1' + t]} = {a['c1']:.3g} ≤ 0: the alignment fails"
            )
            ax.text(
                0.5,
                0.5,
                f"no Theorem {2 if t else 1} pair:\n{textwrap.fill(why, 50)}",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="C3",
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "C3", "alpha": 0.9},
            )
        norm = r"$E\|\cdot\|_p^2 \leq$" if geo is None else r"$E\|d\|^2 \leq$"
        phi = r"$\|\nabla f\|_2^2$" if geo is None else r"$\|\nabla f\|_*^2$"
        ax.set(
            xlabel=c3,
            ylabel=c2,
            title=(
                f"eq. {'44' if t else '28'}: {norm} {c2} + {c3} {phi} at all {len(x)} checkpoints"
            ),
        )
        ax.legend(fontsize=7)
    paths.append(report.save_figure(fig, out / "frontier.png"))
    return paths
