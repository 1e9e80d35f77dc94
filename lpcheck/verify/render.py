"""The gate's report for people: a terminal table as results arrive, and verify.md from verify.json."""

from __future__ import annotations

from lpcheck.report import markdown_table

_MARK = {True: "ok  ", False: "FAIL"}


def line(result) -> str:
    """One terminal line for a finished obligation or finding (a Result/FindingResult or its JSON)."""
    r = result if isinstance(result, dict) else result.to_json()
    if "verdict" in r:
        mark = "ok  " if r["status"] == "ok" else "FAIL"
        shown = "reproduced" if r["reproduced"] else "not reproduced"
        return f"{mark} {r['id']:<44} finding/{r['verdict']:<5} {shown:<16} {r['seconds']:6.2f}s"
    status = r["status"] + (" (control)" if r["kind"] == "control" else "")
    eq = f"eq. {r['equation']}" if r["equation"] else ""
    return f"{_MARK[r['ok']]} {r['id']:<44} {eq:<12} {r['engine']:<14} {status:<18} {r['seconds']:6.2f}s"


def _short(v, n=140):
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def markdown(report: dict) -> str:
    s = report["summary"]
    verdict = "PASSES" if report.get("passes") else "FAILS"
    out = [
        "# lpcheck verify: the proof gate\n",
        f"**The gate {verdict}**" + (" (strict)" if report.get("strict") else "") +
        f": {s['passing']}/{s['obligations']} obligations hold ({s['controls']} of them negative controls, "
        f"which pass by being refuted); {s['findings']} findings "
        f"({', '.join(f'{k} {v}' for k, v in s['findings_reproduced'].items())} reproduced). "
        f"Time {report.get('seconds', 0)} s.\n",
        "Statuses: `proved` (sympy/z3 proved it), `held` (numeric checks on generated inputs held), "
        "`refuted` (a verified counterexample), `failed`, `error`, `timeout`. A claim passes when proved or "
        "held; a negative control passes only when refuted.\n",
    ]
    if s["failing"] or s["findings_broken"]:
        out.append("## Failing\n")
        for r in report["obligations"]:
            if not r["ok"]:
                out.append(f"- **{r['id']}** ({r['status']}): {r['statement']}  \n  counterexample: "
                           f"`{r['counterexample']}`  \n  {_short(r['detail'], 400)}\n")
        for f in report["findings"]:
            if f["status"] != "ok":
                out.append(f"- finding **{f['id']}** {f['status']}: {_short(f['explanation'], 400)}\n")
    out.append("## Obligations\n")
    rows = [[r["id"], r["equation"] or "", _short(r["statement"], 120), r["engine"],
             r["status"] + (" (control)" if r["kind"] == "control" else ""), "yes" if r["ok"] else "**no**",
             f"{r['seconds']:.2f}"] for r in report["obligations"]]
    out.append(markdown_table(["id", "eq.", "statement", "engine", "status", "holds", "s"], rows))
    controls = [r for r in report["obligations"] if r["kind"] == "control"]
    if controls:
        out.append("\n## Negative controls and their counterexamples\n")
        out.append(markdown_table(["id", "wrong variant", "status", "counterexample"],
                                  [[r["id"], _short(r["statement"], 100), r["status"], _short(r["counterexample"], 160)]
                                   for r in controls]))
    if report["findings"]:
        out.append("\n## Findings\n")
        for f in report["findings"]:
            shown = "reproduced" if f["reproduced"] else "not reproduced"
            out.append(f"### {f['id']} — {f['verdict']} ({shown})\n\n**Claim** ({f['section'] or 'paper'}): "
                       f"{f['claim']}\n\n{f['explanation']}\n\nWitness:\n")
            out.append(markdown_table(["quantity", "value"], [[k, _short(v, 200)] for k, v in f["witness"].items()]))
            out.append("")
    out.append("\n## What each engine checked\n")
    for r in report["obligations"]:
        out.append(f"- **{r['id']}**: " + " ".join(f"`{c}`" for c in r["checked"]) if r["checked"] else f"- **{r['id']}**: —")
    return "\n".join(out) + "\n"
