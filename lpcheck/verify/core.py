"""Obligations and findings: the values the proof gate checks and reports.

An obligation is one claim (one displayed step of a proof, one property, one conformance check):
an id, the paper's statement and equation, and a function that returns one `Check` per engine it
asks (sympy, z3, numeric). Its status is decided from those checks:

  proved   every symbolic engine (sympy, z3) proved it (numeric checks, if any, held);
  held     only numeric checks were asked, and they held on every generated input;
  refuted  every engine refuted it, each with a verified counterexample;
  failed   an engine could not decide, or the engines disagree;
  error    the check raised an exception;   timeout  it ran out of time.

A claim passes the gate when proved or held; a negative control (expect="refuted": a deliberately
wrong variant) passes only when refuted. A timeout or an exception is never a pass.

A finding is a referee's remark on the paper (verdict error / gap / note) with a witness computed by
code in the gate; it fails the gate only under --strict (errors and gaps that reproduce).
"""

from __future__ import annotations

import itertools
import time
import traceback
from dataclasses import asdict, dataclass, field

__all__ = ["Check", "Obligation", "Result", "Finding", "FindingResult", "Witness", "obligation", "control",
           "finding", "CLAIM_PASSES", "STATUSES"]

STATUSES = ("proved", "held", "refuted", "failed", "error", "timeout")
CLAIM_PASSES = ("proved", "held")
_order = itertools.count()


@dataclass
class Check:
    """What one engine established about one statement."""

    engine: str  # "sympy", "z3" or "numeric"
    status: str  # "proved", "held", "refuted", "failed" or "timeout"
    checked: str  # the exact statement the engine checked, as text
    counterexample: dict | None = None
    detail: str = ""


@dataclass
class Result:
    id: str
    statement: str
    equation: str | None
    kind: str  # "claim", "control" or "conformance"
    expect: str  # "hold" or "refuted"
    engine: str
    status: str
    ok: bool
    counterexample: dict | None
    checked: list
    detail: str
    seconds: float
    uses: list
    module: str

    def to_json(self) -> dict:
        return asdict(self)


def _combine(checks: list[Check]) -> tuple[str, dict | None, str]:
    statuses = [c.status for c in checks]
    if not checks:
        return "error", None, "the obligation returned no check"
    symbolic = [c for c in checks if c.engine != "numeric"]
    if all(s in ("proved", "held") for s in statuses):
        return ("proved" if symbolic else "held"), None, ""
    if all(s == "refuted" for s in statuses):
        return "refuted", checks[0].counterexample, ""
    if "timeout" in statuses:
        return "timeout", None, "; ".join(f"{c.engine}: {c.detail}" for c in checks if c.status == "timeout")
    why = "; ".join(f"{c.engine}: {c.status}" + (f" ({c.detail})" if c.detail else "") for c in checks)
    cex = next((c.counterexample for c in checks if c.counterexample), None)
    return "failed", cex, ("engines disagree: " if len(set(statuses)) > 1 else "") + why


@dataclass
class Obligation:
    id: str
    statement: str
    equation: str | None
    fn: object
    expect: str = "hold"
    kind: str = "claim"
    uses: tuple = ()
    timeout: float | None = None
    module: str = ""
    order: int = field(default_factory=lambda: next(_order))

    def run(self) -> Result:
        """Run in this process (the runner adds the timeout around it)."""
        start = time.perf_counter()
        try:
            out = self.fn()
            checks = [out] if isinstance(out, Check) else list(out)
            if not all(isinstance(c, Check) for c in checks):
                raise TypeError(f"obligation {self.id} must return Check objects, got {[type(c).__name__ for c in checks]}")
            status, cex, detail = _combine(checks)
            details = [c.detail for c in checks if c.detail]
            detail = detail or "; ".join(details)
        except Exception as e:  # an exception is never a pass
            checks, status, cex = [], "error", None
            detail = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=6))
        return self.result(status, cex, [f"[{c.engine}] {c.checked}" for c in checks], detail,
                           time.perf_counter() - start, "+".join(dict.fromkeys(c.engine for c in checks)))

    def result(self, status, cex, checked, detail, seconds, engine="") -> Result:
        ok = status in CLAIM_PASSES if self.expect == "hold" else status == "refuted"
        return Result(self.id, self.statement, self.equation, self.kind, self.expect, engine, status, ok, cex,
                      checked, detail, round(seconds, 3), list(self.uses), self.module)


def obligation(id, statement, equation=None, *, uses=(), timeout=None, kind="claim"):
    """Declare a claim: the decorated function returns a Check or a list of Checks (one per engine).

    `uses` names the assumptions a proof step relies on (e.g. ("A1", "A5")); the gate reports which
    stated assumptions no step uses.
    """
    def deco(fn):
        return Obligation(id, statement, equation, fn, "hold", kind, tuple(uses), timeout, fn.__module__)
    return deco


def control(id, statement, equation=None, *, timeout=None):
    """Declare a negative control: a deliberately wrong variant that must come back refuted."""
    def deco(fn):
        return Obligation(id, statement, equation, fn, "refuted", "control", (), timeout, fn.__module__)
    return deco


@dataclass
class Witness:
    """A finding's evidence, computed by code: the numbers, and whether they exhibit the claim."""

    values: dict
    reproduced: bool
    explanation: str


@dataclass
class FindingResult:
    id: str
    claim: str
    verdict: str
    section: str | None
    reproduced: bool
    witness: dict
    explanation: str
    status: str  # "ok" or "error" (the witness code raised) or "timeout"
    seconds: float
    module: str

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Finding:
    id: str
    claim: str
    verdict: str
    fn: object
    section: str | None = None
    timeout: float | None = None
    module: str = ""
    order: int = field(default_factory=lambda: next(_order))

    def run(self) -> FindingResult:
        start = time.perf_counter()
        try:
            w = self.fn()
            if not isinstance(w, Witness):
                raise TypeError(f"finding {self.id} must return a Witness, got {type(w).__name__}")
            values, reproduced, expl, status = w.values, bool(w.reproduced), w.explanation, "ok"
        except Exception as e:
            values, reproduced, status = {}, False, "error"
            expl = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=6))
        return FindingResult(self.id, self.claim, self.verdict, self.section, reproduced, values, expl, status,
                             round(time.perf_counter() - start, 3), self.module)


def finding(id, claim, verdict, *, section=None, timeout=None):
    """Declare a finding (verdict "error", "gap" or "note"); the function returns a Witness."""
    if verdict not in ("error", "gap", "note"):
        raise ValueError(f"verdict must be 'error', 'gap' or 'note', got {verdict!r}")

    def deco(fn):
        return Finding(id, claim, verdict, fn, section, timeout, fn.__module__)
    return deco
