"""The report page: self-contained HTML (CSS inline, figures as base64 PNG, no external resource)
and the same content as Markdown (figures linked by relative path). First the claims with their
verdicts, then one section per source folder with the evidence each verdict links to."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from lpcheck.report import markdown_table
from lpcheck.report_page.claims import (
    _GROUPS,
    CLAIMS,
    FAILS,
    HOLDS,
    UNCHECKED,
    g,
    group_of,
    tally,
    typeset,
)

__all__ = ["to_html", "to_markdown"]

_COLOR = {HOLDS: "#1a7f37", FAILS: "#cf222e", UNCHECKED: "#9a6700"}
_CSS = (
    "\n"
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;"
    "max-width:1240px;\n"
    "padding:16px 20px;color:#1f2328;background:#fff}\n"
    "h1{font-size:24px;margin:4px 0 6px}h2{font-size:20px;border-bottom:1px solid #d0d7de;"
    "padding-bottom:4px;margin-top:32px}\n"
    "h3{font-size:16px;margin-top:22px}\n"
    "table{border-collapse:collapse;width:100%;margin:8px 0 14px;font-size:13px}\n"
    "th,td{border:1px solid #d0d7de;padding:4px 7px;vertical-align:top;text-align:left}\n"
    "th{background:#f6f8fa}tr:target{background:#fff8c5}\n"
    ".v{font-weight:700;white-space:nowrap;border-radius:10px;padding:1px 8px;color:#fff;"
    "font-size:12px}\n"
    ".small{color:#59636e;font-size:12px}.num{font-family:ui-monospace,Menlo,Consolas,monospace;"
    "font-size:12.5px}\n"
    ".tally span{margin-right:14px}img{max-width:100%;border:1px solid #d0d7de;margin:6px 0}\n"
    "code{font-size:12px;background:#f6f8fa;padding:1px 4px;border-radius:4px}a{color:#0969da}\n"
)


def _e(text) -> str:
    return html.escape(str(text))


def _badge(verdict) -> str:
    return f'<span class="v" style="background:{_COLOR[verdict]}">{_e(verdict)}</span>'


def _table(headers, rows, row_ids=None) -> str:
    """rows: cells already HTML."""
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr>"]
    for i, row in enumerate(rows):
        rid = row_ids[i] if row_ids else None
        out.append(
            (f'<tr id="{_e(rid)}">' if rid else "<tr>")
            + "".join(f"<td>{c}</td>" for c in row)
            + "</tr>"
        )
    return "\n".join(out + ["</table>"])


def _provenance(data) -> str:
    p = data.get("provenance") or {}
    git = (p.get("git_commit") or "")[:12]
    return (
        f"command <code>{_e(p.get('command'))}</code>; device {_e(p.get('device'))}; "
        f"time {_e(p.get('time'))}" + (f"; git {_e(git)}" if git else "")
    )


# -- the claims
# -----------------------------------------------------------------------------------------------


def _claim_cells(r) -> list:
    scope = _e(r["scope"])
    if r["error"]:
        scope += f'<br><span class="small">error: {_e(r["error"])}</span>'
    if r["notes"]:
        scope += (
            '<br><span class="small">'
            + "; ".join(f'<a href="#{_e(n["anchor"])}">{_e(n["text"])}</a>' for n in r["notes"])
            + "</span>"
        )
    link = f'<a href="#{_e(r["anchor"])}">{_e(r["source"])} ›</a>' if r["anchor"] else "–"
    return [
        _e(r["title"]),
        _badge(r["verdict"]),
        f'<span class="num">{_e(r["number"])}</span>',
        scope,
        link,
    ]


def _tally_html(rows) -> str:
    t = tally(rows)
    return (
        '<p class="tally">'
        + "".join(f"<span>{_badge(v)} {n} claim{'s' * (n != 1)}</span>" for v, n in t.items())
        + f'<span class="small">of {len(CLAIMS)}; '
        "a claim fails if any source shows it failing</span></p>"
    )


def _claims_table(rows) -> str:
    """The first screen: one row per (claim, source), the claim's title once (rowspan) for its
    rows."""
    out = [
        "<table><tr>"
        + "".join(
            f"<th>{h}</th>" for h in ("claim", "verdict", "deciding number", "scope", "evidence")
        )
        + "</tr>"
    ]
    for i, r in enumerate(rows):
        cells = _claim_cells(r)
        first = i == 0 or rows[i - 1]["claim"] != r["claim"]
        span = sum(1 for x in rows if x["claim"] == r["claim"])
        head = f'<td rowspan="{span}"><b>{cells[0]}</b></td>' if first else ""
        out.append(
            f'<tr id="claim-{_e(r["claim"])}">' * first
            + ("<tr>" if not first else "")
            + head
            + "".join(f"<td>{c}</td>" for c in cells[1:])
            + "</tr>"
        )
    return "\n".join(out + ["</table>"])


# -- per source
# ------------------------------------------------------------------------------------------------


def _verify_html(src, rows) -> str:
    d = src.data
    s = d["summary"]
    state = d.get("state", "not recorded (an older report)")
    out = [
        f"<p>The gate {'PASSES' if d.get('passes') else 'FAILS'}: "
        f"{s['passing']}/{s['obligations']} obligations hold ({s['controls']} negative controls), "
        f"{s['findings']} findings; state {_e(state)}. {_provenance(d)}</p>"
    ]
    for claim in _GROUPS:
        obs = [o for o in d["obligations"] if group_of(o["id"]) == claim]
        if not obs:
            continue
        out.append(f'<h3 id="{_e(src.anchor)}-{claim}">{_e(CLAIMS[claim][0])}</h3>')
        out.append(_obligations(obs))
    rest = [o for o in d["obligations"] if group_of(o["id"]) is None]
    if rest:
        out.append(
            f'<h3 id="{_e(src.anchor)}-other">Other obligations '
            "(eq. 16, 19-20, conformance of lpcheck's code to the formulas)</h3>"
        )
        out.append(_obligations(rest))
    fs = d.get("findings", [])
    if fs:
        out.append(
            f'<h3 id="{_e(src.anchor)}-findings">Findings (where the paper\'s text is loose or '
            "wrong)</h3>"
        )
        out.append(
            _table(
                ["id", "verdict", "claim", "reproduced"],
                [
                    [
                        f"<b>{_e(f['id'])}</b>",
                        _e(f["verdict"]),
                        _e(f["claim"]),
                        _e(f.get("reproduced")),
                    ]
                    for f in fs
                ],
                [f"{src.anchor}-{f['id']}" for f in fs],
            )
        )
    return "\n".join(out)


def _obligations(obs) -> str:
    """The obligations' table, folded when every one holds (a click shows it), open when one does
    not."""
    bad = sum(not o["ok"] for o in obs)
    summary = (
        f"{len(obs)} obligations, {bad} not holding"
        if bad
        else f"{len(obs)} obligations, all holding (controls refuted)"
    )
    return (
        f"<details{' open' if bad else ''}><summary>{_e(summary)}</summary>"
        + _obligation_table(obs)
        + "</details>"
    )


def _obligation_table(obs) -> str:
    return _table(
        ["id", "eq.", "statement", "engine", "status"],
        [
            [
                _e(o["id"]),
                _e(o.get("equation", "")),
                _e(o["statement"]),
                _e(o.get("engine", "")),
                ("<b>" if not o["ok"] else "")
                + _e(o["status"])
                + (" (control)" if o.get("kind") == "control" else ""),
            ]
            for o in obs
        ],
    )


def _estimate_html(src, rows) -> str:
    d = src.data
    c, run = d.get("config", {}), d.get("run", {})
    out = [
        f"<p>{_e(c.get('model'))} (width {_e(c.get('width'))}) on {_e(run.get('dataset'))}, "
        f"{_e(str(c.get('optimizer')).upper())}, {_e(c.get('epochs'))} epochs, T = "
        f"{_e(run.get('T'))} steps, checkpoints at steps {_e(run.get('probe_steps'))}, K = "
        f"{_e(c.get('samples'))} mini-batches each; complete: {_e(d.get('complete'))}. "
        f"{_provenance(d)}</p>"
    ]
    mine = [r for r in rows if r["source"] == src.name and r["kind"] == "estimate"]
    out.append(
        _table(
            ["claim", "verdict", "number", "scope and error"],
            [_claim_cells(r)[:4] for r in mine],
            [r["anchor"] for r in mine],
        )
    )
    f = d.get("fit")
    if f:
        cells = []
        for key, t in (("assumption5", ""), ("assumption6", "~")):
            a = f.get(key)
            if a:
                cells.append([f"c{t}1 (lower bound)", g(a["c1"]), g(a["estimate"]["c1"])])
                cells.append(
                    [
                        f"(c{t}2, c{t}3), best pair",
                        f"({g(a.get('c2'))}, {g(a.get('c3'))})",
                        f"({g(a['estimate'].get('c2'))}, {g(a['estimate'].get('c3'))})",
                    ]
                )
                cells.append(
                    [
                        f"step cap c{t}1/(L c{t}3)",
                        g(a.get("step_cap")),
                        g(a["estimate"].get("step_cap")),
                    ]
                )
                cells.append(
                    [
                        f"Theorem {2 if t else 1} bound",
                        g(a.get("bound")),
                        g(a["estimate"].get("bound")),
                    ]
                )
        cells.append(["L (lower bound)", g(f["smoothness"]["L"]), "–"])
        cells.append(
            [
                "sigma^2 (upper bound)",
                g(f["noise"]["sigma_sq"]),
                g(f["noise"].get("sigma_sq_estimate")),
            ]
        )
        cells.append(["peak lr", g(f.get("lr_max")), "–"])
        out.append(
            _table(
                ["constant", "confidence bound", "point estimate"],
                [[_e(typeset(x)) for x in r] for r in cells],
            )
        )
    out += _figures(src)
    return "\n".join(out)


def _rates_html(src, rows) -> str:
    d = src.data
    cfg = d["config"]
    out = [
        f"<p>T = {_e(cfg['T'])}, {_e(cfg['seeds'])} seeds, step rules {_e(cfg['rules'])}, "
        f"tolerance {_e(cfg['tolerance'])}. {_provenance(d)}</p>"
    ]
    for theorem in (1, 2, None):
        studies = [
            (p, s)
            for p, prob in d["problems"].items()
            for s in prob["studies"]
            if s.get("theorem") == theorem
        ]
        if not studies:
            continue
        title = f"Theorem {theorem} studies" if theorem else "Other methods"
        out.append(f'<h3 id="{_e(src.anchor)}-thm{theorem}">{_e(title)}</h3>')
        body = []
        for p, s in studies:
            f = s.get("tail_fit")
            slope = f"{f['slope']:.3f} [{f['lo']:.3f}, {f['hi']:.3f}]" if f else "n/a"
            body.append(
                [
                    _e(p),
                    _e(s.get("label", s["method"])),
                    _e(s["rule"]) + (" (control)" if s["rule"] == "constant" else ""),
                    f'<span class="num">{_e(slope)}</span>',
                    f"<b>{_e(s['verdict'])}</b>",
                    _e(s.get("regime")),
                    _e(g(s.get("bound_ratio_max"), 3)),
                    _e(s.get("reason", "")),
                ]
            )
        out.append(
            _table(
                [
                    "problem",
                    "method",
                    "step",
                    "tail slope [95%]",
                    "verdict",
                    "regime",
                    "max bound ratio",
                    "why",
                ],
                body,
            )
        )
    out += _figures(src)
    return "\n".join(out)


def _figures(src) -> list:
    out = []
    for path in src.figures:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        out.append(
            f'<figure><img alt="{_e(path.name)}" src="data:image/png;base64,{data}">'
            f'<figcaption class="small">{_e(path.name)}</figcaption></figure>'
        )
    return out


_SECTION = {
    "verify": ("Proof gate", _verify_html),
    "estimate": ("Constants along a training run", _estimate_html),
    "rates": ("Rates on synthetic problems", _rates_html),
}


def _made_by(prov) -> str:
    if not prov:
        return ""
    git = (prov.get("git_commit") or "")[:12]
    return (
        f"Made by `{prov.get('command')}` at {prov.get('time')}"
        + (f", git {git}" if git else "")
        + f", lpcheck {prov.get('versions', {}).get('lpcheck')}."
    )


def to_html(sources, rows, title="lpcheck report", provenance=None) -> str:
    """The whole page as one HTML string with no external resource."""
    head = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
    )
    out = [
        head,
        f"<h1>{_e(title)}: the claims of Xu &amp; Yang (arXiv 2606.02078)</h1>",
        '<p class="small">From '
        + ", ".join(f'<a href="#{_e(s.anchor)}">{_e(s.name)}</a> ({s.kind})' for s in sources)
        + ". Each verdict is read from the JSON the pillar wrote; "
        "its scope says where it was checked.</p>",
        _tally_html(rows),
        _claims_table(rows),
    ]
    for src in sources:
        name, fn = _SECTION[src.kind]
        out.append(f'<h2 id="{_e(src.anchor)}">{_e(name)}: {_e(src.name)}</h2>')
        out.append(fn(src, rows))
    if provenance:
        out.append(f'<hr><p class="small">{_e(_made_by(provenance))}</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# -- Markdown
# -------------------------------------------------------------------------------------------------


def _md_claim(r) -> list:
    scope = (
        r["scope"]
        + (f" *Error: {r['error']}*" if r["error"] else "")
        + (
            " (" + "; ".join(f"[{n['text']}](#{n['anchor']})" for n in r["notes"]) + ")"
            if r["notes"]
            else ""
        )
    )
    link = f"[{r['source']}](#{r['anchor']})" if r["anchor"] else "–"
    return [r["title"], f"**{r['verdict']}**", r["number"], scope, link]


def to_markdown(sources, rows, out_dir, title="lpcheck report", provenance=None) -> str:
    """The same content as Markdown; figures are linked relative to `out_dir` (where the .md is
    written)."""
    t = tally(rows)
    lines = [
        f"# {title}: the claims of Xu & Yang (arXiv 2606.02078)",
        "",
        "From "
        + ", ".join(f"{s.name} ({s.kind})" for s in sources)
        + ". "
        + ", ".join(f"{n} {v}" for v, n in t.items())
        + f" (of {len(CLAIMS)} claims).",
        "",
        markdown_table(
            ["claim", "verdict", "deciding number", "scope", "evidence"],
            [_md_claim(r) for r in rows],
        ),
    ]
    for src in sources:
        name, _ = _SECTION[src.kind]
        lines += [
            f'<a id="{src.anchor}"></a>',
            "",
            f"## {name}: {src.name}",
            "",
            (src.data.get("provenance") or {}).get("command", "")
            and f"Command: `{src.data['provenance']['command']}`",
            "",
        ]
        if src.kind == "verify":
            lines += _verify_md(src)
        mine = [
            r
            for r in rows
            if r["source"] == src.name and r["kind"] == src.kind and r["kind"] != "verify"
        ]
        for r in mine:
            lines.append(f'<a id="{r["anchor"]}"></a>')
        if mine:
            lines += [
                "",
                markdown_table(
                    ["claim", "verdict", "number", "scope"], [_md_claim(r)[:4] for r in mine]
                ),
            ]
        if src.kind == "rates":
            for theorem in (1, 2):
                lines.append(f'<a id="{src.anchor}-thm{theorem}"></a>')
            lines += [
                "",
                f"Full tables: [{src.name}/rates.md]({_rel(src.folder / 'rates.md', out_dir)})",
                "",
            ]
        for path in src.figures:
            lines += [f"![{path.name}]({_rel(path, out_dir)})", ""]
    if provenance:
        lines += ["---", _made_by(provenance)]
    return "\n".join(lines) + "\n"


def _verify_md(src) -> list:
    d = src.data
    lines = []
    for claim in _GROUPS:
        obs = [o for o in d["obligations"] if group_of(o["id"]) == claim]
        if obs:
            lines += [
                f'<a id="{src.anchor}-{claim}"></a>',
                "",
                f"### {CLAIMS[claim][0]}",
                "",
                markdown_table(
                    ["id", "eq.", "statement", "status"],
                    [[o["id"], o.get("equation", ""), o["statement"], o["status"]] for o in obs],
                ),
            ]
    fs = d.get("findings", [])
    if fs:
        lines += [
            f'<a id="{src.anchor}-findings"></a>',
            "",
            "### Findings",
            "",
            markdown_table(
                ["id", "verdict", "claim"], [[f["id"], f["verdict"], f["claim"]] for f in fs]
            ),
        ]
    return lines


def _rel(path, out_dir) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())).as_posix()
