"""Obligations and findings: the values the proof gate checks and reports.

An obligation is one claim (one displayed step of a proof, one property, one conformance check):
an id, the paper's statement and equation, and a function that returns one `Check` per engine it
asks (sympy, z3, numeric). Its status is decided from those checks:

  proved   every check holds and at least one symbolic check (sympy, z3) holds non-trivially;
  held     every check holds, and only numeric checks did non-trivial work;
  trivial  every check holds, but only trivially: the goal is one of its hypotheses, or it was
           True before an engine saw it (a pass only with `trivial_ok="reason"`, for an identity
           that holds by definition);
  vacuous  a check's hypotheses contradict each other (or no input was generated): it proves
           nothing, and a negative control that is vacuous is not refuted either;
  refuted  every engine refuted it, each with a verified counterexample;
  failed   an engine could not decide, the engines disagree, or a Check was built by hand;
  error    the check raised (SystemExit included) or its process died;  timeout  it ran out of time;
  skipped  a check could not run here for a stated reason (an optional package missing, e.g. triton
           for the Triton kernel's interpreter): never a pass, listed by the gate with its reason,
           and no failure of the gate for a claim (a skipped negative control fails: it showed no
           teeth).

A claim passes the gate when proved or held; a negative control (expect="refuted": a deliberately
wrong variant) passes only when refuted. A timeout, an exception, a vacuous or (unless declared)
trivial proof is never a pass. Only Checks built by an engine function (lpcheck.verify.engines)
count: a Check made by hand records where it was made and fails the obligation.

A finding is a referee's remark on the paper (verdict error / gap / note) with a witness computed by
code in the gate; it fails the gate only under --strict (errors and gaps that reproduce and are not
in the --baseline of accepted findings).
"""

from __future__ import annotations

import itertools
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field

__all__ = [
    "Check",
    "Obligation",
    "Result",
    "Finding",
    "FindingResult",
    "Witness",
    "obligation",
    "control",
    "finding",
    "CLAIM_PASSES",
    "STATUSES",
    "ENGINE_MODULES",
]

STATUSES = (
    "proved",
    "held",
    "trivial",
    "vacuous",
    "refuted",
    "failed",
    "error",
    "timeout",
    "skipped",
)
CHECK_STATUSES = ("proved", "held", "vacuous", "refuted", "failed", "timeout", "skipped")
CLAIM_PASSES = ("proved", "held")
# a Check counts only when one of these modules built it (an engine function ran); see Check.origin
ENGINE_MODULES = frozenset({"lpcheck.verify.engines"})
_TEXT_CAP = 20_000  # characters kept of any one text a worker sends back (a report is not a dump)
_order = itertools.count()


def _cap(text, n=_TEXT_CAP) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n] + f"... [{len(text) - n} more characters cut]"


def _cap_dict(d, n=500, keys=50):
    if d is None:
        return None
    if not isinstance(d, dict):
        return {"value": _cap(d, n)}

    def small(v):
        if v is None or isinstance(v, (bool, int, float)):
            return v
        return _cap(v, n) if isinstance(v, str) or len(repr(v)) > n else v

    out = {_cap(k, 100): small(v) for k, v in itertools.islice(d.items(), keys)}
    if len(d) > keys:
        out["..."] = f"{len(d) - keys} more entries cut"
    return out


@dataclass
class Check:
    """What one engine established about one statement.

    `decided_by` names what actually settled it ("z3", "sympy simplify", "sympy: True before
    z3"...); `trivial` is the reason it held before any engine worked ("" when an engine did the
    work). `origin` is the module that built the Check: only engine modules (ENGINE_MODULES) count.
    Once built, only `detail` (commentary) can be changed: the verdict is the engine's.
    """

    engine: str  # "sympy", "z3" or "numeric"
    status: str  # one of CHECK_STATUSES
    checked: str  # the exact statement the engine checked, as text
    counterexample: dict | None = None
    detail: str = ""
    decided_by: str = ""
    trivial: str = ""
    origin: str = field(default="", init=False, compare=False)

    def __post_init__(self):
        if self.status not in CHECK_STATUSES:
            raise ValueError(f"Check status must be one of {CHECK_STATUSES}, got {self.status!r}")
        # frame 0 is this method, 1 the dataclass __init__, 2 whoever built the Check
        object.__setattr__(self, "origin", sys._getframe(2).f_globals.get("__name__", "?"))
        if not self.decided_by:
            object.__setattr__(self, "decided_by", self.engine)
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name, value):
        if name != "detail" and self.__dict__.get("_sealed"):
            raise AttributeError(
                f"a Check's {name} is the engine's; only its detail can be annotated"
            )
        object.__setattr__(self, name, value)

    @property
    def by_engine(self) -> bool:
        return self.origin in ENGINE_MODULES

    def summary(self) -> dict:
        return {
            "engine": self.engine,
            "status": self.status,
            "decided_by": self.decided_by,
            "trivial": _cap(self.trivial, 500),
            "detail": _cap(self.detail, 2000),
            "origin": self.origin,
        }


@dataclass
class Result:
    id: str
    statement: str
    equation: str | None
    kind: str  # "claim", "control" or "conformance"
    expect: str  # "hold" or "refuted"
    engine: str  # the engines that decided, "+"-joined; ":trivial" marks one that did no work
    status: str
    ok: bool
    counterexample: dict | None
    checked: list
    detail: str
    seconds: float
    uses: list
    module: str
    checks: list = field(default_factory=list)  # Check.summary() of each check, in order
    trivial_ok: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _why(c: Check) -> str:
    return f"{c.engine}: {c.status}" + (f" ({c.detail})" if c.detail else "")


def _combine(checks: list[Check]) -> tuple[str, dict | None, str]:
    """The obligation's status from its checks (see the module docstring)."""
    if not checks:
        return "error", None, "the obligation returned no check"
    by_hand = [c for c in checks if not c.by_engine]
    if by_hand:
        return (
            "failed",
            None,
            "; ".join(
                f"a {c.engine} Check with status {c.status!r} was built by hand in {c.origin}, not "
                "by an engine function: a status set by hand is not a proof"
                for c in by_hand
            ),
        )
    statuses = [c.status for c in checks]
    if "skipped" in statuses and all(st in ("proved", "held", "skipped") for st in statuses):
        return (
            "skipped",
            None,
            "; ".join(f"{c.engine}: {c.detail}" for c in checks if c.status == "skipped"),
        )
    if "vacuous" in statuses:  # one step proved from contradictory hypotheses proves nothing
        return (
            "vacuous",
            None,
            "; ".join(f"{c.engine}: {c.detail}" for c in checks if c.status == "vacuous"),
        )
    if all(s in ("proved", "held") for s in statuses):
        real = [c for c in checks if not c.trivial]
        trivial = "; ".join(dict.fromkeys(f"{c.engine}: {c.trivial}" for c in checks if c.trivial))
        if not real:
            return (
                "trivial",
                None,
                (
                    f"{trivial}; no engine did any work (a claim that holds by definition or by "
                    f"substitution says so with trivial_ok='why')"
                ),
            )
        return ("proved" if any(c.engine != "numeric" for c in real) else "held"), None, ""
    if all(s == "refuted" for s in statuses):
        return "refuted", checks[0].counterexample, ""
    if "timeout" in statuses:
        return (
            "timeout",
            None,
            "; ".join(f"{c.engine}: {c.detail}" for c in checks if c.status == "timeout"),
        )
    why = "; ".join(_why(c) for c in checks)
    cex = next((c.counterexample for c in checks if c.counterexample), None)
    return "failed", cex, ("engines disagree: " if len(set(statuses)) > 1 else "") + why


def _as_checks(out, oid) -> list[Check]:
    if isinstance(out, Check):
        return [out]
    if out is None:
        raise TypeError(
            f"obligation {oid} returned None (a missing `return`?): it must return Check objects"
        )
    if isinstance(out, (str, bytes, dict)) or not hasattr(out, "__iter__"):
        raise TypeError(
            f"obligation {oid} must return a Check or a list of Checks, got {type(out).__name__}"
        )
    checks = list(out)
    if not all(isinstance(c, Check) for c in checks):
        raise TypeError(
            f"obligation {oid} must return Check objects, got {[type(c).__name__ for c in checks]}"
        )
    return checks


def _engines(checks) -> str:
    return "+".join(
        dict.fromkeys(
            c.engine + (":trivial" if c.trivial else "") + ("" if c.by_engine else ":by-hand")
            for c in checks
        )
    )


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
    trivial_ok: str = (
        ""  # why a trivial proof is what this claim is (a definition); "" = trivial fails
    )
    order: int = field(default_factory=lambda: next(_order))

    def run(self) -> Result:
        """Run in this process (the runner adds the timeout around it)."""
        start = time.perf_counter()
        checks = []
        try:
            checks = _as_checks(self.fn(), self.id)
            status, cex, detail = _combine(checks)
            detail = detail or "; ".join(c.detail for c in checks if c.detail)
        except (Exception, SystemExit) as e:  # an exception, or sys.exit, is never a pass
            checks, status, cex = [], "error", None
            detail = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=6))
        return self.result(
            status,
            cex,
            [f"[{c.engine}] {c.checked}" for c in checks],
            detail,
            time.perf_counter() - start,
            _engines(checks),
            [c.summary() for c in checks],
        )

    def passes(self, status: str) -> bool:
        if (self.expect == "refuted") != (self.kind == "control") or self.expect not in (
            "hold",
            "refuted",
        ):
            # only a declared control passes by being refuted (no claim turned into one later)
            return False
        if self.expect == "refuted":
            return status == "refuted"
        return status in CLAIM_PASSES or (status == "trivial" and bool(self.trivial_ok))

    def result(self, status, cex, checked, detail, seconds, engine="", checks=()) -> Result:
        return Result(
            self.id,
            self.statement,
            self.equation,
            self.kind,
            self.expect,
            engine,
            status,
            self.passes(status),
            _cap_dict(cex),
            [_cap(c) for c in checked[:100]],
            _cap(detail),
            round(seconds, 3),
            list(self.uses),
            self.module,
            list(checks)[:100],
            self.trivial_ok,
        )


def _check_declaration(id, timeout):
    if not isinstance(id, str) or not id or any(ch.isspace() for ch in id):
        raise ValueError(
            f"an obligation or finding id must be a non-empty string without spaces, got {id!r}"
        )
    if timeout is not None:
        from lpcheck import checks

        try:
            checks.real("timeout", timeout, low=0.0, low_open=True)  # numpy numbers too; not True
        except ValueError:
            raise ValueError(
                f"timeout must be a finite number of seconds > 0 (or None for the run's), got "
                f"{timeout!r}"
            ) from None


def _check_text(statement, equation, uses=()):
    """What the report prints: a statement, an equation, the assumptions a step uses."""
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must be a non-empty string, got {statement!r}")
    if equation is not None and not isinstance(equation, str):
        raise ValueError(f"equation must be None or a string such as 'eq. 10', got {equation!r}")
    # a bare string would be read letter by letter: uses="A1" as the assumptions 'A' and '1'
    if isinstance(uses, (str, bytes)) or not all(isinstance(u, str) for u in uses):
        raise ValueError(f"uses must be a tuple of assumption names such as ('A1',), got {uses!r}")


def obligation(id, statement, equation=None, *, uses=(), timeout=None, kind="claim", trivial_ok=""):
    """Declare a claim: the decorated function returns a Check or a list of Checks (one per engine).

    `uses` names the assumptions a proof step relies on (e.g. ("A1", "A5")); the gate reports which
    stated assumptions no step uses. `timeout` (seconds) can only shorten the run's --timeout.
    `trivial_ok="why"` accepts a proof that is trivial (the goal is a hypothesis, or True before any
    engine ran): only for a claim that holds by definition, and say why.
    """
    _check_declaration(id, timeout)
    _check_text(statement, equation, uses)
    if kind not in (
        "claim",
        "conformance",
    ):  # a control is declared with control(): it passes refuted
        raise ValueError(
            f"kind must be 'claim' or 'conformance' (use control() for a negative control), got "
            f"{kind!r}"
        )
    if not isinstance(trivial_ok, str):
        raise ValueError(
            "trivial_ok must be a string giving the reason a trivial proof is enough, got "
            f"{trivial_ok!r}"
        )

    def deco(fn):
        return Obligation(
            id,
            statement,
            equation,
            fn,
            "hold",
            kind,
            tuple(uses),
            timeout,
            fn.__module__,
            trivial_ok.strip(),
        )

    return deco


def control(id, statement, equation=None, *, timeout=None):
    """Declare a negative control: a deliberately wrong variant that must come back refuted."""
    _check_declaration(id, timeout)
    _check_text(statement, equation)

    def deco(fn):
        return Obligation(
            id, statement, equation, fn, "refuted", "control", (), timeout, fn.__module__
        )

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
        except (Exception, SystemExit) as e:
            values, reproduced, status = {}, False, "error"
            expl = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=6))
        return FindingResult(
            self.id,
            self.claim,
            self.verdict,
            self.section,
            reproduced,
            _cap_dict(values, 2000),
            _cap(expl),
            status,
            round(time.perf_counter() - start, 3),
            self.module,
        )


def finding(id, claim, verdict, *, section=None, timeout=None):
    """Declare a finding (verdict "error", "gap" or "note"); the function returns a Witness."""
    if verdict not in ("error", "gap", "note"):
        raise ValueError(f"verdict must be 'error', 'gap' or 'note', got {verdict!r}")
    _check_declaration(id, timeout)

    def deco(fn):
        return Finding(id, claim, verdict, fn, section, timeout, fn.__module__)

    return deco
