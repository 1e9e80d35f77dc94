"""The proof gate: collect obligations and findings, run them, decide, report.

Built-in obligations live in `lpcheck.proofs` (the package lists its modules in the paper's order in
`MODULES`); `--proofs DIR` adds every `*.py` in DIR not starting with '_', loaded as a module of its
own. Anything in a module that is an Obligation or a Finding is collected, in definition order.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.util
import sys
import time
from pathlib import Path

from lpcheck.verify.core import Finding, Obligation
from lpcheck.verify.runner import DEFAULT_TIMEOUT, run_items

__all__ = ["load_modules", "collect", "select", "run_gate", "gate_passes", "summarize"]


def _load_file(path: Path):
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"lpcheck_user_proofs_{digest}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # forked workers find it; pickled references resolve
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ValueError(f"--proofs: could not import {path}: {type(e).__name__}: {e}") from e
    return module


def load_modules(proofs=(), builtin=True):
    """The built-in proof modules (unless builtin=False) and those in each `proofs` directory."""
    modules = []
    if builtin:
        package = importlib.import_module("lpcheck.proofs")
        modules += [importlib.import_module(f"lpcheck.proofs.{m}") for m in package.MODULES]
    for directory in proofs:
        directory = Path(directory)
        if not directory.is_dir():
            raise NotADirectoryError(f"--proofs: {directory} is not a directory")
        files = sorted(f for f in directory.glob("*.py") if not f.name.startswith("_"))
        if not files:
            raise ValueError(f"--proofs: {directory} holds no *.py obligation modules")
        modules += [_load_file(f) for f in files]
    return modules


def collect(modules):
    """(obligations, findings) defined in the modules, each list in definition order; ids unique."""
    obligations, findings, seen = [], [], {}
    for module in modules:
        items = [v for v in vars(module).values() if isinstance(v, (Obligation, Finding))]
        for item in sorted(items, key=lambda x: x.order):
            if item.id in seen and seen[item.id] is not item:
                raise ValueError(f"obligation id {item.id!r} is defined twice ({seen[item.id].module} and {item.module})")
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


def summarize(obligations, findings) -> dict:
    count = {}
    for r in obligations:
        count[r["status"]] = count.get(r["status"], 0) + 1
    return {
        "obligations": len(obligations),
        "passing": sum(r["ok"] for r in obligations),
        "failing": [r["id"] for r in obligations if not r["ok"]],
        "by_status": count,
        "controls": sum(r["kind"] == "control" for r in obligations),
        "findings": len(findings),
        "findings_reproduced": {v: sum(f["reproduced"] and f["verdict"] == v for f in findings)
                                for v in ("error", "gap", "note")},
        "findings_broken": [f["id"] for f in findings if f["status"] != "ok"],
    }


def gate_passes(report: dict, strict: bool = False) -> bool:
    """Exit 0 only when every obligation holds (controls refuted) and every finding's witness ran;
    with strict, also no reproduced error or gap finding."""
    s = report["summary"]
    if s["failing"] or s["findings_broken"] or s["obligations"] + s["findings"] == 0:
        return False
    if strict and (s["findings_reproduced"]["error"] or s["findings_reproduced"]["gap"]):
        return False
    return True


def run_gate(*, only=None, proofs=(), builtin=True, jobs=None, timeout=DEFAULT_TIMEOUT, on_result=None) -> dict:
    """Run the gate; returns the report data (obligations, findings, summary) without provenance."""
    obligations, findings = collect(load_modules(proofs, builtin))
    obligations, findings = select(obligations, only), select(findings, only)
    if not obligations and not findings:
        raise ValueError(f"--only {only!r} matches no obligation or finding")
    start = time.perf_counter()
    results = run_items(obligations + findings, jobs=jobs, timeout=timeout, on_result=on_result)
    obs = [r.to_json() for r in results[: len(obligations)]]
    fis = [r.to_json() for r in results[len(obligations):]]
    return {
        "summary": summarize(obs, fis),
        "seconds": round(time.perf_counter() - start, 2),
        "obligations": obs,
        "findings": fis,
    }
