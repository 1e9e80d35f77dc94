"""One verdict per claim of the paper, read from the JSON the pillars wrote (never recomputed).

A row: the claim, its verdict ('holds', 'fails' or 'cannot be checked'), the one number that decides
it, its scope (where it was checked: which checkpoints, which problems, for all values or on
samples), which way the error of a bound goes, the source folder and the anchor of its evidence on
the page. A claim may have one row per source (the proof gate proves the algebra; estimate and rates
test the hypotheses and the bound on data); a claim no source speaks to gets one 'cannot be checked'
row saying which pillar would.

Decisions, each from recorded fields:
- proof gate: 'holds' when every obligation of the claim holds and its negative controls came back
  refuted; 'fails' when a claim obligation is refuted (a verified counterexample); 'cannot be
  checked' when one failed, errored or timed out, or a control was not refuted (the engines could
  not tell a wrong variant from the claim).
- alignment (Assumption 5/6) on a real run: 'holds' when c1 (the least lower end of the simultaneous
  intervals) is > 0; 'fails' when some checkpoint's interval lies wholly below 0 (its upper end <
  0); otherwise 'cannot be checked' (the intervals reach 0 but none lies below it).
- the step cap: the fit's lr_within_cap (True, False, or None with its reason).
- rates: the studies' verdicts (confirmed, refuted, inconclusive; the constant step is the negative
  control and is left out), the bound ratios (observed / eq. 31 at the step used) and the alignment
  measured along the runs (c1, and c1_upper: the least mean + 2 standard errors, < 0 means it
  fails).
"""

from __future__ import annotations

import math

__all__ = ["CLAIMS", "claims", "HOLDS", "FAILS", "UNCHECKED"]

HOLDS, FAILS, UNCHECKED = "holds", "fails", "cannot be checked"

# claim id -> (the paper's claim, the pillars that can speak to it)
CLAIMS = {
    "A1": ("Assumption 1: f is L-smooth in the ℓp norm (eq. 4)", "estimate"),
    "A2": ("Assumption 2: unbiased stochastic gradients (eq. 5)", None),
    "A3": (
        "Assumption 3: bounded gradient noise, E‖g − ∇f‖_q² ≤ σ² (eq. 6)",
        "estimate",
    ),
    "A4": ("Assumption 4: f is bounded below (f* > −∞)", "estimate"),
    "A5": ("Assumption 5: alignment c₁ > 0 and second moment (eq. 27-28)", "estimate, rates"),
    "A6": (
        "Assumption 6: momentum alignment c̃₁ > 0 and second moment (eq. 43-44)",
        "estimate, rates",
    ),
    "eq10": ("eq. 10: the ℓp steepest-descent step solves eq. 9", "verify"),
    "eq11": (
        "eq. 11: LPSGD's rescaled step keeps eq. 10's direction up to a bounded distortion",
        "verify",
    ),
    "thm1.cap": ("Theorem 1, step cap: 0 < η ≤ c₁/(L c₃) (eq. 30)", "verify, estimate"),
    "thm1.bound": (
        "Theorem 1, the bound on the average squared gradient (eq. 31)",
        "verify, rates",
    ),
    "thm1.rate": ("Theorem 1, rate O(T^−1/2) at eq. 32's step (eq. 33)", "verify, rates"),
    "thm2.cap": ("Theorem 2, step cap: η₀ = c̃₁/(L c̃₃) (eq. 47)", "verify, estimate"),
    "thm2.bound": ("Theorem 2, the bound for LPSGDM (eq. 46)", "verify, rates"),
    "thm2.rate": ("Theorem 2, rate O(T^−1/2) at eq. 47's step (eq. 48)", "verify, rates"),
}

# verify: claim id -> obligation-id prefixes (claims, and their controls under 'control.' + prefix)
_GROUPS = {
    "eq10": ("eq10.",),
    "eq11": ("eq11.",),
    "thm1.cap": ("thm1.step_condition", "thm1.step_cap"),
    "thm1.bound": ("lemma1.", "thm1.eq3", "thm1.eq4", "thm1.alignment", "thm1.eq38"),
    "thm1.rate": ("thm1.rate",),
    "thm2.cap": ("thm2.eta0",),
    "thm2.bound": (
        "lemma2.",
        "thm2.momentum",
        "thm2.algorithm",
        "thm2.filtration",
        "thm2.eq49",
        "thm2.eq5",
        "thm2.lower_bound",
        "thm2.eq46",
        "thm2.weight",
    ),
    "thm2.rate": ("thm2.eq47", "thm2.eq48", "thm2.rate"),
}

# a finding's id token (F.<token>.*) -> the claims it is about
_FINDING_CLAIMS = {
    "A1": ("A1",),
    "A2A3": ("A2", "A3"),
    "A5": ("A5",),
    "A6": ("A6",),
    "thm1": ("thm1.bound",),
    "thm2": ("thm2.bound",),
    "thm": ("thm1.bound", "thm2.bound"),
    "eq10": ("eq10",),
    "eq11": ("eq11",),
    "eq32": ("thm1.rate",),
}


_SYMBOLS = [  # ASCII as the pillars write it -> the paper's symbols, for the page
    (r"c~([123])", lambda m: "c̃" + "₁₂₃"[int(m[1]) - 1]),
    (r"\bc([123])\b", lambda m: "c" + "₁₂₃"[int(m[1]) - 1]),
    (r" >= ", " ≥ "),
    (r" <= ", " ≤ "),
    (r"sigma\^2", "σ²"),
    (r"\beta_0\b", "η₀"),
    (r"\beta\b", "η"),
    (r"theta_0", "θ₀"),
    (r"\bdelta\b", "Δ"),
    (r"\|\|", "‖"),
    (r"\bgrad f\b", "∇f"),
    (r"T\^-1/2", "T^−1/2"),
]


def typeset(text: str) -> str:
    """The paper's symbols in a row's text: c̃₁ for c~1, ≤ for <=, σ², η, θ₀,
    Δ, ‖·‖, ∇f."""
    import re

    for pattern, repl in _SYMBOLS:
        text = re.sub(pattern, repl, text)
    return text


def g(v, digits=4) -> str:
    """A number as text; None stays visible as 'none'."""
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _row(claim, verdict, number, scope, source=None, anchor=None, error="", notes=()):
    return {
        "claim": claim,
        "title": CLAIMS[claim][0],
        "verdict": verdict,
        "number": number,
        "scope": scope,
        "error": error,
        "source": source.name if source else None,
        "kind": source.kind if source else None,
        "anchor": anchor,
        "notes": list(notes),
    }


# -- verify
# ------------------------------------------------------------------------------------------------


def group_of(ob_id: str):
    """The claim an obligation (or its negative control) belongs to, or None."""
    bare = ob_id.removeprefix("control.")
    for claim, prefixes in _GROUPS.items():
        if bare.startswith(prefixes):
            return claim
    return None


def findings_for(data) -> dict:
    """claim id -> [(finding id, verdict)] for the reproduced findings of a verify report."""
    out = {}
    for f in data.get("findings", []):
        token = f["id"].split(".")[1] if f["id"].count(".") >= 1 else ""
        for claim in _FINDING_CLAIMS.get(token, ()):
            if f.get("reproduced"):
                out.setdefault(claim, []).append((f["id"], f["verdict"]))
    return out


def _verify_rows(src) -> list:
    d = src.data
    state = d.get("state")
    incomplete = state is not None and state != "complete"
    rows = []
    for claim in _GROUPS:
        obs = [o for o in d["obligations"] if group_of(o["id"]) == claim]
        if not obs:
            continue
        claims_ = [o for o in obs if o.get("kind") != "control"]
        controls = [o for o in obs if o.get("kind") == "control"]
        refuted = [o["id"] for o in claims_ if o["status"] == "refuted"]
        undecided = [
            f"{o['id']} ({o['status']})"
            for o in claims_
            if not o["ok"] and o["status"] != "refuted"
        ]
        loose = [f"{o['id']} ({o['status']})" for o in controls if not o["ok"]]
        proved = sum(o["status"] == "proved" for o in claims_)
        held = sum(o["status"] == "held" for o in claims_)
        number = (
            f"{sum(o['ok'] for o in claims_)}/{len(claims_)} obligations hold ({proved} proved, "
            f"{held} held numerically)"
            + (
                f"; {sum(o['ok'] for o in controls)}/{len(controls)} negative controls refuted"
                if controls
                else ""
            )
        )
        if refuted:
            verdict, number = (
                FAILS,
                f"refuted: {', '.join(refuted)} (a verified counterexample); " + number,
            )
        elif undecided or loose:
            verdict = UNCHECKED
            number = (
                "undecided: "
                + ", ".join(undecided + [f"control {c} not refuted" for c in loose])
                + "; "
                + number
            )
        else:
            verdict = HOLDS
        scope = (
            "proved: for every admissible value, by sympy/z3 on the paper's formulas"
            + ("; held: on generated inputs only" if held else "")
            + "; under the theorem's hypotheses, whether or not they hold for a given model"
        )
        if incomplete:
            scope += f"; an incomplete gate run (state {state}): only the obligations that ran"
        rows.append(_row(claim, verdict, number, scope, src, f"{src.anchor}-{claim}"))
    return rows


# -- estimate
# ----------------------------------------------------------------------------------------------


def _estimate_scope(d, f):
    ss = f["sample_sizes"]
    T = ss.get("T", d.get("run", {}).get("T"))
    scope = f"at the {ss['checkpoints']} checkpoints measured (of {T} steps)"
    geo = f.get("geometry")
    if geo:
        scope += f", for {geo['method']} in its own norm ({', '.join(geo['norms'][:2])})"
    if not d.get("complete", True):
        scope += (
            f", an incomplete run ({len(d.get('records', []))} of "
            f"{len(d['run']['probe_steps'])} checkpoints)"
        )
    return scope


def _coverage_note(f):
    iv = f["sample_sizes"].get("interval")
    if iv is None:
        return "interval coverage not recorded (a report from before the coverage check)"
    if iv["adequate"]:
        return f"interval coverage measured at this N, K: adequate (each law >= {iv['floor']:.1%})"
    return f"interval coverage NOT adequate: {iv['note']}"


def _alignment_row(claim, src, f, key, series, tilde):
    a = f[key]
    t = "~" if tilde else ""
    conf = f["sample_sizes"]["confidence"]
    scope = (
        _estimate_scope(src.data, f) + f"; {conf:.0%} simultaneous intervals; " + _coverage_note(f)
    )
    error = (
        f"c{t}1 is a lower confidence bound (the least lower end over the checkpoints): the true "
        "alignment at these checkpoints lies above it; between checkpoints nothing is measured"
    )
    anchor = f"{src.anchor}-{claim}"
    if a["holds"]:
        return _row(
            claim,
            HOLDS,
            f"c{t}1 >= {g(a['c1'])} (point estimate {g(a['estimate']['c1'])})",
            scope,
            src,
            anchor,
            error,
        )
    worst = min(f["checkpoints"], key=lambda c: c[series]["hi"])
    if worst[series]["hi"] < 0:
        return _row(
            claim,
            FAILS,
            f"alignment <= {g(worst[series]['hi'])} < 0 at step {worst['step']} (upper end of "
            f"its interval; c{t}1 >= {g(a['c1'])})",
            scope,
            src,
            anchor,
            "the upper end of a simultaneous interval: the alignment there is below it, so below 0",
        )
    return _row(
        claim,
        UNCHECKED,
        f"c{t}1 >= {g(a['c1'])} <= 0, but no checkpoint's interval lies below 0 (least "
        f"upper end {g(worst[series]['hi'])} at step {worst['step']})",
        scope,
        src,
        anchor,
        error,
    )


def _cap_row(claim, src, f, key, tilde):
    a = f[key]
    t = "~" if tilde else ""
    T = f["sample_sizes"].get("T")
    anchor = f"{src.anchor}-{claim}"
    scope = (
        f"for the (c{t}2, c{t}3) pair that minimises the Theorem {2 if tilde else 1} bound at T = "
        f"{T}"
        + (f" ({g(a['c2'])}, {g(a['c3'])})" if a.get("c2") is not None else "")
        + f": a pair with a smaller c{t}3 has a larger cap and a larger c{t}2; "
        + _estimate_scope(src.data, f)
    )
    lr = f.get("lr_max")
    if a.get("lr_within_cap") is None:
        why = (
            a.get("lr_within_cap_reason")
            or a.get("step_cap_reason")
            or a.get("pair_reason")
            or (f"c{t}1 <= 0 gives no cap" if not a["holds"] else "the fit recorded no comparison")
        )
        return _row(claim, UNCHECKED, f"no comparison: {why}", scope, src, anchor)
    e = a.get("estimate", {})
    point = (
        f"; with the point estimates the cap is {g(e.get('step_cap'))}"
        if e.get("step_cap") is not None
        else ""
    )
    error = (
        "L is a lower bound of Assumption 1's L, so this cap is an upper bound of the cap with "
        f"the true L (optimistic); c{t}1 is a lower confidence bound (conservative){point}"
    )
    verdict = HOLDS if a["lr_within_cap"] else FAILS
    rel = "<=" if a["lr_within_cap"] else ">"
    return _row(
        claim,
        verdict,
        f"peak lr {g(lr)} {rel} cap c{t}1/(L c{t}3) = {g(a['step_cap'])}",
        scope,
        src,
        anchor,
        error,
    )


def _estimate_rows(src) -> list:
    d = src.data
    f = d.get("fit")
    if not f:
        why = "no checkpoint fitted yet (the run stopped before its first probe finished)"
        return [
            _row(c, UNCHECKED, why, "", src, src.anchor)
            for c in ("A1", "A3", "A4", "A5", "A6", "thm1.cap")
        ]
    rows = []
    s = f["smoothness"]
    scope = f"over the {s.get('pairs', 0)} pairs of points measured; " + _estimate_scope(d, f)
    rows.append(
        _row(
            "A1",
            UNCHECKED,
            (
                f"L >= {g(s['L'])} (eq. 4's quadratic form; gradient form {g(s.get('L_grad'))})"
                if s["L"] is not None
                else f"L: none ({s.get('L_reason')})"
            ),
            scope + "; a supremum over all pairs cannot be confirmed from finitely many",
            src,
            f"{src.anchor}-A1",
            "a lower bound of the supremum Assumption 1 asks for: the true L is at "
            "least this, so every step cap computed from it is optimistic",
        )
    )
    n = f["noise"]
    rows.append(
        _row(
            "A3",
            HOLDS,
            f"sigma^2 <= {g(n['sigma_sq'])} (point estimate {g(n.get('sigma_sq_estimate'))})",
            _estimate_scope(d, f) + "; " + _coverage_note(f),
            src,
            f"{src.anchor}-A3",
            "an upper confidence bound at each checkpoint measured: other iterates are not "
            "measured",
        )
    )
    dl = f.get("delta_from")
    if not dl:
        rows.append(
            _row(
                "A4",
                UNCHECKED,
                f"delta = {g(f.get('delta'))}: the lower bound on f* it used is not "
                "recorded (a report from before delta_from)",
                _estimate_scope(d, f),
                src,
                f"{src.anchor}-A4",
            )
        )
    else:
        rows.append(
            _row(
                "A4",
                HOLDS,
                f"f* >= {g(dl['loss_lower_bound'])} ({dl['source']})",
                "stated, not measured; every loss measured was above it (the fit refuses a bound "
                f"above a measured loss); delta = f(theta_0) - f* <= {g(f['delta'])}",
                src,
                f"{src.anchor}-A4",
                "a lower bound on f* over-estimates delta, which only loosens eq. 31-32",
            )
        )
    rows.append(_alignment_row("A5", src, f, "assumption5", "align", False))
    rows.append(_cap_row("thm1.cap", src, f, "assumption5", False))
    if f.get("assumption6"):
        rows.append(_alignment_row("A6", src, f, "assumption6", "align_m", True))
        rows.append(_cap_row("thm2.cap", src, f, "assumption6", True))
    return rows


# -- rates
# -------------------------------------------------------------------------------------------------


def _studies(d):
    return [(name, s) for name, prob in d["problems"].items() for s in prob["studies"]]


def rate_of(d, s=None) -> float:
    """The rate a study claims: its own, the report's, else eq. 33's -1/2."""
    if s is not None and s.get("rate") is not None:
        return float(s["rate"])
    return float(d["config"].get("rate", -0.5))


def _rates_scope(d, studies):
    cfg = d["config"]
    problems = sorted({p for p, _ in studies})
    scope = (
        f"{len(studies)} studies on {len(problems)} synthetic problems ({', '.join(problems)}), "
        f"T = {min(cfg['T'])}..{max(cfg['T'])}, {cfg['seeds']} seeds"
    )
    if cfg.get("quick"):
        scope += "; a smoke run (--quick): about this short range only"
    if d.get("complete") is False:
        scope += (
            f"; an incomplete run ({d.get('studies_done')} of {d.get('studies_planned')} studies)"
        )
    return scope


def _rate_row(claim, src, theorem):
    d = src.data
    tol = d["config"]["tolerance"]
    studies = [
        (p, s) for p, s in _studies(d) if s.get("theorem") == theorem and s["rule"] != "constant"
    ]
    if not studies:
        return None
    by = {
        v: [(p, s) for p, s in studies if s["verdict"] == v]
        for v in ("confirmed", "refuted", "inconclusive")
    }
    counts = ", ".join(f"{len(v)} {k}" for k, v in by.items() if v)
    scope = (
        _rates_scope(d, studies)
        + f"; {counts}; the constant step (the negative control) is left out"
    )
    outside = [(p, s, _hypothesis(s)) for p, s in studies if _hypothesis(s) != "holds"]
    if outside:
        a = "Assumption 6" if theorem == 2 else "Assumption 5"
        scope += (
            f"; {a} fails or is in doubt on {len(outside)} of {len(studies)} of these studies' own "
            "runs ("
            + ", ".join(f"{p}/{s['method']}/{s['rule']}: {h}" for p, s, h in outside[:3])
            + (", ..." if len(outside) > 3 else "")
            + "): there the rate is observed outside the theorem's "
            "hypotheses"
        )
    anchor = f"{src.anchor}-thm{theorem}"
    error = (
        "the claim is an upper bound: a faster decay confirms it; the slope is the seed mean's "
        "over the measured T, its interval over seeds"
    )

    def where(p, s):
        return f"{p}/{s['method']}/{s['rule']}"

    def slope(s):
        f = s["tail_fit"]
        return f"{f['slope']:.3f} [{f['lo']:.3f}, {f['hi']:.3f}]"

    inside = {v: [(p, s) for p, s in x if _hypothesis(s) == "holds"] for v, x in by.items()}
    if inside["refuted"]:  # a counterexample only where the theorem's hypotheses hold as measured
        p, s = max(inside["refuted"], key=lambda ps: ps[1]["tail_fit"]["lo"])
        edge = rate_of(d, s) + tol
        if d["config"].get(
            "quick"
        ):  # the rates report's own word: a reason to run the full grid, not evidence
            return _row(
                claim,
                UNCHECKED,
                f"a smoke run (--quick, T <= {max(d['config']['T'])}): tail slope {slope(s)} > "
                f"{edge:g} on {where(p, s)}, a reason to run the full grid, not evidence against "
                "the theorem",
                scope,
                src,
                anchor,
                error,
            )
        return _row(
            claim,
            FAILS,
            f"tail slope {slope(s)} > {edge:g} on {where(p, s)} (refuted on "
            f"{len(inside['refuted'])} of the {sum(map(len, inside.values()))} studies within the "
            "hypotheses)",
            scope,
            src,
            anchor,
            error,
        )
    if inside["confirmed"]:
        p, s = max(inside["confirmed"], key=lambda ps: ps[1]["tail_fit"]["hi"])
        return _row(
            claim,
            HOLDS,
            f"flattest tail slope {slope(s)} ({where(p, s)}), every upper end <= "
            f"{rate_of(d, s) + tol:g} within the hypotheses",
            scope,
            src,
            anchor,
            error,
        )
    if not any(inside.values()):
        seen = by["confirmed"] or by["refuted"] or by["inconclusive"]
        p, s = seen[0]
        return _row(
            claim,
            UNCHECKED,
            f"the hypothesis fails or is in doubt on every study; observed anyway: {counts} "
            f"(e.g. {where(p, s)}: tail slope {slope(s) if s.get('tail_fit') else 'none'})",
            scope,
            src,
            anchor,
            error,
        )
    p, s = inside["inconclusive"][0]
    return _row(
        claim,
        UNCHECKED,
        f"inconclusive: {s.get('reason')} ({where(p, s)})",
        scope,
        src,
        anchor,
        error,
    )


def _bound_row(claim, src, theorem):
    d = src.data
    studies = [(p, s) for p, s in _studies(d) if s.get("theorem") == theorem]
    if not studies:
        return None
    checked = [
        tuple(int(x) for x in s["bound_checked"].split("/"))
        for _, s in studies
        if s.get("bound_checked")
    ]
    done, total = sum(a for a, _ in checked), sum(b for _, b in checked)
    ratios = [
        (s["bound_ratio_max"], p, s) for p, s in studies if s.get("bound_ratio_max") is not None
    ]
    scope = _rates_scope(d, studies) + f"; checked at {done} of {total} (study, T) runs"
    anchor = f"{src.anchor}-thm{theorem}"
    error = (
        "the bound uses the problem's exact L and constants measured along each run (c1 the least "
        "resolved alignment: a point estimate, not a confidence bound)"
    )
    if not ratios:
        why = {}
        for _, s in studies:
            for r in s.get("runs", []):
                status = (r.get("bound") or {}).get("status") or "not measured"
                why[status] = why.get(status, 0) + 1
        runs = sum(why.values())
        text = ", ".join(f"{status} at {n} of {runs} runs" for status, n in why.items()) or "no run"
        return _row(claim, UNCHECKED, f"no bound ratio: {text}", scope, src, anchor)
    r, p, s = max(ratios, key=lambda x: x[0])
    verdict = FAILS if r > 1 else HOLDS
    return _row(
        claim,
        verdict,
        f"observed / bound <= {g(r, 3)} (largest, {p}/{s['method']}/{s['rule']})",
        scope,
        src,
        anchor,
        error,
    )


def _hypothesis(s) -> str:
    """'fails', 'in doubt' or 'holds': the alignment (Assumption 5/6) measured along a study's own
    runs.
    fails: a resolved checkpoint (standard error <= 10 % of the ratio) with a ratio <= 0, the rates
    pillar's own test; in doubt: every resolved ratio > 0 but some checkpoint's mean + 2 se <= 0
    (c1_upper) or none resolved."""
    consts = [r["constants"] for r in s.get("runs", []) if r.get("constants")]
    if any(c.get("c1") is not None and c["c1"] <= 0 for c in consts):
        return "fails"
    if not consts or any(
        c.get("c1") is None or (c.get("c1_upper") is not None and c["c1_upper"] <= 0)
        for c in consts
    ):
        return "in doubt"
    return "holds"


def _rates_alignment_row(claim, src, theorem):
    d = src.data
    studies = [(p, s) for p, s in _studies(d) if s.get("theorem") == theorem]
    consts = [
        (p, s, r["constants"]) for p, s in studies for r in s.get("runs", []) if r.get("constants")
    ]
    if not consts:
        return None
    t = "~" if theorem == 2 else ""
    n_ck = sum(c.get("checkpoints", 0) for _, _, c in consts)
    resolved = sum(c.get("resolved", 0) for _, _, c in consts)
    K = d["config"].get("K")
    state = {
        v: [(p, s) for p, s in studies if _hypothesis(s) == v]
        for v in ("fails", "in doubt", "holds")
    }
    scope = (
        f"at {n_ck} checkpoints along {len(consts)} runs ({resolved} resolved: standard error <= "
        f"10 % of the ratio), K = {K} draws each; "
        + _rates_scope(d, studies)
        + "; "
        + ", ".join(f"{v} in {len(x)}" for v, x in state.items() if x)
    )
    anchor = f"{src.anchor}-thm{theorem}"
    if state["fails"]:
        c, p, s = min(
            ((c["c1"], p, s) for p, s, c in consts if c.get("c1") is not None and c["c1"] <= 0),
            key=lambda x: x[0],
        )
        return _row(
            claim,
            FAILS,
            f"c{t}1 = {g(c)} <= 0 at a resolved checkpoint ({p}/{s['method']}/{s['rule']})",
            scope,
            src,
            anchor,
            "a resolved ratio: its standard error is at most 10 % of it, so its sign is "
            "certain to about 10 standard errors",
        )
    if state["in doubt"]:
        p, s = state["in doubt"][0]
        uppers = [c.get("c1_upper") for r in s["runs"] for c in [r.get("constants") or {}]]
        u = min((x for x in uppers if x is not None), default=None)
        return _row(
            claim,
            UNCHECKED,
            f"in doubt on {p}/{s['method']}/{s['rule']}: a checkpoint's mean + 2 se = "
            f"{g(u)} <= 0 while every resolved c{t}1 > 0",
            scope,
            src,
            anchor,
            "unresolved checkpoints (ratios near 0) neither confirm nor refute the alignment there",
        )
    c, p, s = min(((c["c1"], p, s) for p, s, c in consts), key=lambda x: x[0])
    return _row(
        claim,
        HOLDS,
        f"c{t}1 = {g(c)} > 0, the least over the runs ({p}/{s['method']}/{s['rule']})",
        scope,
        src,
        anchor,
        "the least resolved alignment ratio: a point estimate at each checkpoint; every "
        "checkpoint's mean + 2 se > 0",
    )


def _rates_rows(src) -> list:
    rows = [
        _rates_alignment_row("A5", src, 1),
        _rates_alignment_row("A6", src, 2),
        _bound_row("thm1.bound", src, 1),
        _rate_row("thm1.rate", src, 1),
        _bound_row("thm2.bound", src, 2),
        _rate_row("thm2.rate", src, 2),
    ]
    return [r for r in rows if r is not None]


_BY_KIND = {"verify": _verify_rows, "estimate": _estimate_rows, "rates": _rates_rows}

_NOBODY = {
    "A2": "no pillar measures it (an unbiased sampler is the user's to show)",
}


def claims(sources) -> list:
    """Every claim of CLAIMS with its rows, in the paper's order; a claim no source speaks to gets
    one 'cannot be checked' row naming the pillar that would."""
    rows = [r for src in sources for r in _BY_KIND[src.kind](src)]
    # the proof gate's findings on a claim: notes on its first row, linked to the finding
    notes = {}
    for src in sources:
        if src.kind == "verify":
            for claim, found in findings_for(src.data).items():
                notes.setdefault(claim, []).extend(
                    {"text": f"finding {fid} ({v})", "anchor": f"{src.anchor}-{fid}"}
                    for fid, v in found
                )
    out = []
    for claim, (_, pillars) in CLAIMS.items():
        mine = [r for r in rows if r["claim"] == claim]
        if not mine:
            why = (
                _NOBODY.get(claim)
                or f"no folder given holds its evidence (it comes from lpcheck {pillars})"
            )
            mine.append(_row(claim, UNCHECKED, "no measurement", why))
        mine[0]["notes"] = mine[0]["notes"] + notes.get(claim, [])
        out.extend(mine)
    for r in out:
        for key in ("title", "number", "scope", "error"):
            r[key] = typeset(r[key])
    return out


def tally(rows) -> dict:
    """How many claims (not rows) hold, fail, cannot be checked: a claim fails if any row fails,
    holds if every row that decides holds and at least one does."""
    verdicts = {}
    for r in rows:
        verdicts.setdefault(r["claim"], []).append(r["verdict"])
    out = {HOLDS: 0, FAILS: 0, UNCHECKED: 0}
    for vs in verdicts.values():
        out[FAILS if FAILS in vs else HOLDS if HOLDS in vs else UNCHECKED] += 1
    return out


def finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
