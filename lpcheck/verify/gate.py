"""The proof gate: collect obligations and findings, run them, decide, report.

Built-in obligations live in `lpcheck.proofs` (the package lists its modules in the paper's
order in `MODULES`: the default pack, lpsgd; `lpcheck.proofs.packs` names the others, `--pack
NAME`); `--proofs DIR` adds every `*.py` in DIR not starting with '_', loaded as a module of its
own. Anything in a module that is an Obligation or a Finding is collected, in definition order.
`run_gate` imports and runs them all in a host process it watches (host.py), never in its own.

The gate passes only when the run is complete, no module is broken, every obligation holds (every
control is refuted) and every finding's witness ran; with strict, also no reproduced error or gap
finding that the baseline of accepted findings does not list.
"""

from __future__ import annotations

import fnmatch
import importlib.resources
import json
import time
from pathlib import Path

from lpcheck.verify.core import Finding, Obligation
from lpcheck.verify.host import Host, ModuleSpec, import_spec, module_specs, preload
from lpcheck.verify.runner import DEFAULT_TIMEOUT

__all__ = [
    "load_modules",
    "collect",
    "select",
    "run_gate",
    "gate_passes",
    "summarize",
    "read_baseline",
    "baseline_entries",
    "BUILTIN_BASELINE",
    "specs_of",
]

BUILTIN_BASELINE = (
    "builtin"  # --baseline builtin: the accepted findings of the built-in pack, shipped
)


def specs_of(proofs=(), builtin=True, packs=()):
    """The proof modules to run: the built-in packs' (`packs`, default lpsgd; none if
    builtin=False), then every --proofs directory's. An unknown pack or a missing directory is an
    error here, before any import."""
    from lpcheck.proofs.packs import DEFAULT, pack_modules

    chosen = (
        [ModuleSpec("builtin", m) for m in pack_modules(list(packs) or DEFAULT)] if builtin else []
    )
    return chosen + module_specs(proofs, builtin=False)


def load_modules(proofs=(), builtin=True, packs=()):
    """Import the proof modules in this process (the gate itself imports them in a host process)."""
    return [import_spec(s) for s in specs_of(proofs, builtin, packs)]


def collect(modules):
    """(obligations, findings) defined in the modules, each list in definition order; ids unique."""
    obligations, findings, seen = [], [], {}
    for module in modules:
        items = [v for v in vars(module).values() if isinstance(v, (Obligation, Finding))]
        for item in sorted(items, key=lambda x: x.order):
            if item.id in seen and seen[item.id] is not item:
                raise ValueError(
                    f"obligation id {item.id!r} is defined twice ({seen[item.id].module} and "
                    f"{item.module})"
                )
            if item.id in seen:
                continue
            seen[item.id] = item
            (obligations if isinstance(item, Obligation) else findings).append(item)
    return obligations, findings


def select(items, only):
    """Items whose id matches one of the comma-separated glob patterns in `only` (all if None)."""
    if not only:
        return list(items)
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    return [i for i in items if any(fnmatch.fnmatchcase(i.id, pat) for pat in patterns)]


# ---------------------------------------------------------------------------------------------
# the baseline of accepted findings (--strict --baseline FILE)


def read_baseline(source) -> list[str]:
    """Finding ids accepted under --strict: a JSON list, a JSON object with "accepted", or a text
    file of one id a line ('#' starts a comment); `builtin` is the built-in pack's shipped
    baseline."""
    if str(source) == BUILTIN_BASELINE:
        text = (
            importlib.resources.files("lpcheck.verify")
            .joinpath("baseline_builtin.json")
            .read_text()
        )
        where = "the built-in baseline"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"--baseline: no file {path}")
        try:
            # utf-8-sig: a byte-order mark (Notepad's) would make a JSON list read as one odd id
            text, where = path.read_text(encoding="utf-8-sig"), str(path)
        except UnicodeDecodeError as e:  # a binary file, or another encoding
            raise ValueError(
                f"--baseline: {path} is not UTF-8 text ({e.reason} at byte {e.start}): give a JSON "
                "list of finding ids, or one id a line"
            ) from None
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"--baseline: {where} is not valid JSON: {e}") from None
        ids = data.get("accepted") if isinstance(data, dict) else data
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(
                f"--baseline: {where} must hold a list of finding ids (strings), as a JSON list or "
                f'{{"accepted": [...]}}'
            )
    else:
        ids = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        ids = [i for i in ids if i]
    return list(dict.fromkeys(ids))


def baseline_entries(findings) -> list[str]:
    """What --write-baseline writes: the ids of the findings of verdict error or gap that
    reproduced."""
    return [
        f["id"]
        for f in findings
        if f["reproduced"] and f["verdict"] in ("error", "gap") and f["status"] == "ok"
    ]


def _baseline_view(findings, accepted, complete_run):
    """Which reproduced error/gap findings are new (not accepted) and which accepted ones are
    stale."""
    reproduced = set(baseline_entries(findings))
    ran = {f["id"]: f for f in findings}
    new = [i for i in baseline_entries(findings) if i not in set(accepted)]
    stale = [
        i for i in accepted if (i in ran and i not in reproduced) or (complete_run and i not in ran)
    ]
    return {"accepted": list(accepted), "new": new, "stale": stale}


# ---------------------------------------------------------------------------------------------
# decide


def _skip(r) -> bool:
    """A claim skipped for a stated reason: not a pass, not a failure of the gate (a control must be
    refuted)."""
    return r["status"] == "skipped" and r["kind"] != "control"


def summarize(obligations, findings, modules=(), not_run=()) -> dict:
    count = {}
    for r in obligations:
        count[r["status"]] = count.get(r["status"], 0) + 1
    return {
        "obligations": len(obligations),
        "passing": sum(r["ok"] for r in obligations),
        "failing": [r["id"] for r in obligations if not r["ok"] and not _skip(r)],
        "skipped": {r["id"]: r.get("detail", "") for r in obligations if _skip(r)},
        "by_status": count,
        "controls": sum(r["kind"] == "control" for r in obligations),
        "trivial": [
            r["id"] for r in obligations if any(c.get("trivial") for c in r.get("checks", ()))
        ],
        "findings": len(findings),
        "findings_reproduced": {
            v: sum(f["reproduced"] and f["verdict"] == v for f in findings)
            for v in ("error", "gap", "note")
        },
        "findings_broken": [f["id"] for f in findings if f["status"] != "ok"],
        "modules_broken": [m["module"] for m in modules if m["status"] != "ok"],
        "not_run": list(not_run),
    }


def gate_passes(report: dict, strict: bool = False, baseline=None) -> bool:
    """Exit 0 only when the run is complete, no proof module is broken, every obligation holds
    (controls refuted) and every finding's witness ran; with strict, also no reproduced error or
    gap finding outside `baseline` (a list of accepted finding ids)."""
    s = report["summary"]
    if report.get("state") != "complete" or s.get("not_run") or s.get("modules_broken"):
        return False
    if s["failing"] or s["findings_broken"] or s["obligations"] + s["findings"] == 0:
        return False
    if strict:
        accepted = set(baseline or ())
        new = [
            f
            for f in report.get("findings", [])
            if f["reproduced"] and f["verdict"] in ("error", "gap") and f["id"] not in accepted
        ]
        counted = s["findings_reproduced"]["error"] + s["findings_reproduced"]["gap"]
        if new or ("findings" not in report and counted):
            return False
    return True


def _report(items, results, modules, state, seconds, only):
    obs = [
        results[i].to_json()
        for i, it in enumerate(items)
        if isinstance(it, Obligation) and i in results
    ]
    fis = [
        results[i].to_json()
        for i, it in enumerate(items)
        if isinstance(it, Finding) and i in results
    ]
    not_run = [it.id for i, it in enumerate(items) if i not in results]
    mods = [m.to_json() for m in modules]
    return {
        "state": state,
        "summary": summarize(obs, fis, mods, not_run),
        "seconds": round(seconds, 2),
        "only": only,
        "modules": mods,
        "obligations": obs,
        "findings": fis,
    }


def run_gate(
    *,
    only=None,
    proofs=(),
    builtin=True,
    jobs=None,
    timeout=DEFAULT_TIMEOUT,
    on_result=None,
    on_progress=None,
    packs=(),
) -> dict:
    """Run the gate; returns the report data (state, summary, modules, obligations, findings)
    without provenance. `on_result(result)` sees each result as it arrives; `on_progress(report)`
    the report so far (state "running") after each, and once before anything runs."""
    import os

    from lpcheck import checks
    from lpcheck.verify.runner import TIMEOUT_MAX

    timeout = checks.real("timeout", timeout, low=0.0, high=TIMEOUT_MAX, low_open=True)
    jobs = checks.integer("jobs", jobs, low=0) if jobs is not None else (os.cpu_count() or 1)
    specs = specs_of(proofs, builtin, packs)
    preload(specs)
    start = time.perf_counter()
    progress = on_progress or (lambda r: None)
    with Host(specs, timeout=timeout) as host:
        host.load()
        chosen = [i for i, it in enumerate(host.items) if select([it], only)]
        if not chosen and not host.broken():
            raise ValueError(
                f"--only {only!r} matches no obligation or finding"
                if only
                else "the proof modules define no obligation or finding"
            )
        selected = [host.items[i] for i in chosen]
        position = {i: k for k, i in enumerate(chosen)}
        results = {}  # position in `selected` -> result

        def report(state):
            return _report(
                selected, results, host.module_status(), state, time.perf_counter() - start, only
            )

        def arrived(i, res):
            results[position[i]] = res
            if on_result:
                on_result(res)
            progress(report("running"))

        progress(report("running"))
        host.run(chosen, jobs=jobs, on_result=arrived)
        return report("complete")
