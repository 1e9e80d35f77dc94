"""The gate's report for people: a terminal table as results arrive, and verify.md from
verify.json."""

from __future__ import annotations

from lpcheck.report import markdown_table

_MARK = {True: "ok  ", False: "FAIL"}


def line(result) -> str:
    """One terminal line for a finished obligation or finding (a Result/FindingResult or its
    JSON)."""
    r = result if isinstance(result, dict) else result.to_json()
    if "verdict" in r:
        mark = "ok  " if r["status"] == "ok" else "FAIL"
        shown = "reproduced" if r["reproduced"] else "not reproduced"
        return f"{mark} {r['id']:<44} finding/{r['verdict']:<5} {shown:<16} {r['seconds']:6.2f}s"
    status = r["status"] + (" (control)" if r["kind"] == "control" else "")
    eq = f"eq. {r['equation']}" if r["equation"] else ""
    mark = "skip" if r["status"] == "skipped" and r["kind"] != "control" else _MARK[r["ok"]]
    return (
        f"{mark} {r['id']:<44} {eq:<12} {r['engine'] or '-':<18} {status:<18} {r['seconds']:6.2f}s"
    )


def _short(v, n=140):
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def _first_line(text) -> str:
    return next((x.strip() for x in str(text).splitlines() if x.strip()), "")


def _cex(cex) -> str:
    return ", ".join(f"{k}={v}" for k, v in cex.items()) if isinstance(cex, dict) else str(cex)


def why(r: dict) -> str:
    """A failing obligation's reason in one short line: its counterexample, else its detail."""
    if r["kind"] == "control" and r["status"] != "refuted":
        lead = "a negative control must be refuted; "
    else:
        lead = ""
    reason = (
        f"counterexample {_cex(r['counterexample'])}"
        if r.get("counterexample")
        else _first_line(r.get("detail")) or "no detail"
    )
    return _short(lead + reason, 110)


def failure_lines(report: dict) -> list[str]:
    """One line per reason the gate fails: obligation (id, status, why), module, finding, not
    run."""
    s, out = report["summary"], []
    if report.get("state") != "complete":
        out.append(
            f"the run is incomplete ({report.get('state')}"
            + (
                f": {_short(report.get('aborted') or report.get('interrupted'), 100)}"
                if report.get("aborted") or report.get("interrupted")
                else ""
            )
            + ")"
        )
    for m in report.get("modules", []):
        if m["status"] != "ok":
            out.append(
                f"module {m['module']}: {m['status']}: {_short(_first_line(m['detail']), 100)}"
            )
    for r in report["obligations"]:
        if r["id"] in s.get("failing", ()):
            out.append(f"{r['id']}: {r['status']}: {why(r)}")
    for f in report["findings"]:
        if f["status"] != "ok":
            out.append(
                f"finding {f['id']}: {f['status']}: {_short(_first_line(f['explanation']), 100)}"
            )
    for i in (report.get("baseline") or {}).get("new", []) if report.get("strict") else []:
        out.append(f"finding {i}: reproduced, and not in the baseline (--strict)")
    if report.get("strict") and "baseline" not in report:
        out += [
            f"finding {f['id']}: {f['verdict']} reproduced (--strict)"
            for f in report["findings"]
            if f["reproduced"] and f["verdict"] in ("error", "gap")
        ]
    if s.get("not_run"):
        out.append(
            f"not run: {', '.join(s['not_run'][:20])}" + (" …" if len(s["not_run"]) > 20 else "")
        )
    if s["obligations"] + s["findings"] == 0 and report.get("state") == "complete":
        out.append("nothing was checked")
    return out


_STATUSES = (
    "Statuses: `proved` (sympy/z3 proved it), `held` (numeric checks on generated inputs held), "
    "`trivial` (true before any engine ran: the goal is a hypothesis, or was True as built; a pass "
    "only where the obligation says why with `trivial_ok`), `vacuous` (contradictory hypotheses, "
    "or no input generated: proves nothing), `refuted` (a verified counterexample), `failed`, "
    "`error`, `timeout`, `skipped` (could not run here, with the reason: never a pass, listed "
    "below, not a failure). A claim passes when proved or held; a negative control passes only "
    "when refuted. The engine column names the engines that decided; `:trivial` marks one that did "
    "no work.\n"
)


def _skipped(s) -> str:
    return f"; {len(s['skipped'])} skipped, not run here" if s.get("skipped") else ""


def _headline(report) -> str:
    s = report["summary"]
    state = report.get("state", "complete")
    verdict = "PASSES" if report.get("passes") and state == "complete" else "FAILS"
    if state != "complete":
        what = {
            "running": "the run is in progress, or was killed before it finished",
            "interrupted": f"the run was interrupted ({report.get('interrupted', '')})",
            "aborted": f"the run stopped: {report.get('aborted', '')}",
        }.get(state, state)
        return (
            f"**The gate FAILS: incomplete** ({what}). {s['obligations']} obligations and "
            f"{s['findings']} findings finished so far ({s['passing']} obligations hold).\n"
        )
    return (
        "**The gate "
        + verdict
        + "**"
        + (" (strict)" if report.get("strict") else "")
        + f": {s['passing']}/{s['obligations']} obligations hold "
        f"({s['controls']} of them negative controls, "
        f"which pass by being refuted{_skipped(s)}); "
        f"{s['findings']} findings "
        f"({', '.join(f'{k} {v}' for k, v in s['findings_reproduced'].items())} reproduced). "
        f"Time {report.get('seconds', 0)} s.\n"
    )


def markdown(report: dict) -> str:
    """verify.md: the verdict and why, then one section per kind of result, each a small step
    below."""
    out = ["# lpcheck verify: the proof gate\n", _headline(report), _STATUSES]
    for section in (
        _md_why,
        _md_failing,
        _md_baseline,
        _md_skipped,
        _md_obligations,
        _md_trivial,
        _md_controls,
        _md_findings,
        _md_engines,
    ):
        out += section(report)
    return "\n".join(out) + "\n"


def _md_why(report: dict) -> list:
    fails = failure_lines(report) if not report.get("passes") else []
    if not fails:
        return []
    return ["## Why it fails\n", *(f"- {_short(x, 300)}" for x in fails), ""]


def _md_failing(report: dict) -> list:
    s = report["summary"]
    if not (s["failing"] or s["findings_broken"] or s.get("modules_broken")):
        return []
    out = ["## Failing\n"]
    out += [
        f"- module **{m['module']}** ({m['status']}): {_short(m['detail'], 600)}\n"
        for m in report.get("modules", [])
        if m["status"] != "ok"
    ]
    out += [
        f"- **{r['id']}** ({r['status']}): {r['statement']}  \n  counterexample: "
        f"`{r['counterexample']}`  \n  {_short(r['detail'], 400)}\n"
        for r in report["obligations"]
        if r["id"] in s["failing"]
    ]
    out += [
        f"- finding **{f['id']}** {f['status']}: {_short(f['explanation'], 400)}\n"
        for f in report["findings"]
        if f["status"] != "ok"
    ]
    return out


def _md_baseline(report: dict) -> list:
    base = report.get("baseline")
    if not base:
        return []
    return [
        f"Baseline ({base.get('source')}): {len(base['accepted'])} accepted findings; new: "
        f"{', '.join(base['new']) or 'none'}; accepted but no longer reproduced: "
        f"{', '.join(base['stale']) or 'none'}.\n"
    ]


def _md_skipped(report: dict) -> list:
    skipped = report["summary"].get("skipped")
    if not skipped:
        return []
    return [
        "## Skipped (not run here: never a pass)\n",
        *(f"- **{i}**: {_short(why_, 300)}" for i, why_ in skipped.items()),
        "",
    ]


def _md_obligations(report: dict) -> list:
    rows = [
        [
            r["id"],
            r["equation"] or "",
            _short(r["statement"], 120),
            r["engine"],
            r["status"] + (" (control)" if r["kind"] == "control" else ""),
            "yes" if r["ok"] else "**no**",
            f"{r['seconds']:.2f}",
        ]
        for r in report["obligations"]
    ]
    return [
        "## Obligations\n",
        markdown_table(["id", "eq.", "statement", "engine", "status", "holds", "s"], rows),
    ]


def _md_trivial(report: dict) -> list:
    if not report["summary"].get("trivial"):
        return []
    out = [
        "\n## Trivial checks\n",
        "Checks that held before any engine did work (they prove nothing by themselves):\n",
    ]
    for r in report["obligations"]:
        accepted = f" — accepted: {r['trivial_ok']}" if r.get("trivial_ok") else ""
        out += [
            f"- **{r['id']}** ({c['engine']}): {_short(c['trivial'], 300)}{accepted}"
            for c in r.get("checks", [])
            if c.get("trivial")
        ]
    return [*out, ""]


def _md_controls(report: dict) -> list:
    controls = [r for r in report["obligations"] if r["kind"] == "control"]
    if not controls:
        return []
    rows = [
        [r["id"], _short(r["statement"], 100), r["status"], _short(r["counterexample"], 160)]
        for r in controls
    ]
    return [
        "\n## Negative controls and their counterexamples\n",
        markdown_table(["id", "wrong variant", "status", "counterexample"], rows),
    ]


def _md_findings(report: dict) -> list:
    if not report["findings"]:
        return []
    out = ["\n## Findings\n"]
    for f in report["findings"]:
        shown = "reproduced" if f["reproduced"] else "not reproduced"
        out.append(
            f"### {f['id']} — {f['verdict']} ({shown})\n\n**Claim** ({f['section'] or 'paper'}): "
            f"{f['claim']}\n\n{f['explanation']}\n\nWitness:\n"
        )
        out.append(
            markdown_table(
                ["quantity", "value"], [[k, _short(v, 200)] for k, v in f["witness"].items()]
            )
        )
        out.append("")
    return out


def _md_engines(report: dict) -> list:
    out = ["\n## What each engine checked, and what decided it\n"]
    for r in report["obligations"]:
        checks = r.get("checks") or [{}] * len(r["checked"])
        parts = [f"`{text}` ({_decided(c)})" for text, c in zip(r["checked"], checks)]
        out.append(f"- **{r['id']}**: " + " ".join(parts) if parts else f"- **{r['id']}**: —")
    return out


def _decided(c: dict) -> str:
    if not c:
        return "decided by: not recorded"
    text = f"{c['status']}, decided by {c['decided_by']}"
    if c.get("trivial"):
        text += ", trivial"
    if c.get("origin") and c["origin"] != "lpcheck.verify.engines":
        text += f", built in {c['origin']}"
    return text
