"""The rates plot of one problem: per step rule, log-log seed means against T, each study's fitted
tail slope in the legend, the claimed rate as gray guide lines, and the eq. 31/46 bound at the
measured constants."""

from __future__ import annotations

import math

from lpcheck.report import new_figure, save_figure

__all__ = ["plot_problem"]

_LABEL = {  # the metric on the y axis, in the paper's symbols (mathtext)
    "grad_l2_sq": r"$\frac{1}{T}\sum_{t<T}\|\nabla f(\theta_t)\|_2^2$",
    "grad_l2": r"$\frac{1}{T}\sum_{t<T}\|\nabla f(\theta_t)\|_2$",
    "grad_q_sq": r"$\frac{1}{T}\sum_{t<T}\|\nabla f(\theta_t)\|_q^2$",
    "dual_sq": r"$\frac{1}{T}\sum_{t<T}\|\nabla f(\theta_t)\|_*^2$",
    "dual": r"$\frac{1}{T}\sum_{t<T}\|\nabla f(\theta_t)\|_*$",
}


def _rate_tex(rate: float) -> str:
    from lpcheck.rates.fit import rate_text

    return f"$T^{{{rate_text(rate)}}}$"


def _guides(ax, rate):
    """Gray T^rate lines a decade apart across the panel as drawn (its limits kept): the slope to
    compare by eye."""
    (t0, t1), (lo, hi) = ax.get_xlim(), ax.get_ylim()
    drop = (t1 / t0) ** rate  # how far a guide falls across the panel
    start = math.floor(math.log10(lo)) + 1
    stop = math.ceil(math.log10(hi / drop))
    for k in range(start, stop + 1):
        y0 = 10.0**k
        ax.plot(
            [t0, t1],
            [y0, y0 * drop],
            "-",
            color="0.8",
            lw=0.8,
            zorder=0,
            label=f"guides: {_rate_tex(rate)}" if k == start else None,
        )
    ax.set_xlim(t0, t1)
    ax.set_ylim(lo, hi)


def plot_problem(prob: dict, path, rate=-0.5, metric="grad_l2_sq") -> None:
    """One panel per step rule: seed means with 95 % error bars, the tail fit (thick, its slope and
    interval in the
    legend: the fit the verdict reads), the fit over all T (thin dashed), the eq. 31/46 bound at the
    measured constants (dotted) and gray guide lines of the claimed rate (a study's own `rate` where
    it records one)."""
    rules = list(dict.fromkeys(s["rule"] for s in prob["studies"]))
    fig, axes = new_figure(
        1, len(rules), figsize=(5.6 * len(rules), 5.0), layout="constrained", squeeze=False
    )
    colors = {}
    for ax, rule in zip(axes[0], rules):
        drawn = [
            s
            for s in prob["studies"]
            if s["rule"] == rule and any(r.get("mean") for r in s["runs"])
        ]
        if not drawn:
            ax.text(0.5, 0.5, "no finite runs", ha="center", va="center", transform=ax.transAxes)
            continue
        claimed = drawn[0].get("rate", rate)
        for s in drawn:
            color = colors.setdefault(s["method"], f"C{len(colors) % 10}")
            runs = [r for r in s["runs"] if r.get("mean")]
            T = [r["T"] for r in runs]
            tail = s.get("tail_fit")
            slope = (
                f"{tail['slope']:.3f} [{tail['lo']:.3f}, {tail['hi']:.3f}]" if tail else "no fit"
            )
            ax.errorbar(
                T,
                [r["mean"] for r in runs],
                yerr=[1.96 * (r.get("sem") or 0.0) for r in runs],
                fmt="o",
                ms=4,
                color=color,
                label=f"{s['method']}: slope {slope}, {s['verdict']}",
            )
            if s.get("fit"):
                f = s["fit"]
                ax.plot(
                    T,
                    [math.exp(f["intercept"]) * t ** f["slope"] for t in T],
                    "--",
                    color=color,
                    lw=0.7,
                    alpha=0.6,
                )
            if tail:
                ax.plot(
                    s["tail_T"],
                    [math.exp(tail["intercept"]) * t ** tail["slope"] for t in s["tail_T"]],
                    "-",
                    color=color,
                    lw=2.2,
                    alpha=0.75,
                )
            bound = [
                (r["T"], r["bound"]["rhs"]) for r in s["runs"] if (r.get("bound") or {}).get("rhs")
            ]
            if bound:
                ax.plot(*zip(*bound), ":", color=color, lw=1.0, alpha=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _guides(ax, claimed)
        ax.set_xlabel("T (steps)")
        ax.set_ylabel(_LABEL.get(metric, metric) + ", seed mean")
        control = " (the negative control)" if rule == "constant" else ""
        ax.set_title(f"{prob['info']['name']}: step {rule}{control}", fontsize=10)
        ax.legend(
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.13),
            title="tail slope [95 %] (thick line)",
            title_fontsize=7,
            frameon=False,
        )
    fig.suptitle(
        "dashed: fit over all T; dotted: the eq. 31/46 bound at the measured constants", fontsize=8
    )
    save_figure(fig, path)
