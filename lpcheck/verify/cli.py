"""Run the proof gate: every claim of the paper's method and analysis as a checked obligation.

Each obligation is one displayed step or property of Xu & Yang (arXiv 2606.02078): the closed-form
minimiser eq. 10, eq. 11/16/19/20, Lemmas 1-2, Theorems 1-2 (eq. 30-40, 46-48) and their rate
constants. sympy and, for every inequality, z3 discharge them; numeric conformance checks
(hypothesis inputs, float64) confirm that lpcheck's own lp/schedule/optim/bounds code computes what
the formulas state. Negative controls (deliberately wrong variants) must come back refuted. Findings
report where the paper's text is loose or wrong, each with a witness computed here.

Prints one line per result, writes OUT/verify.json and OUT/verify.md, and exits 0 only when every
obligation holds (exit 1 otherwise, with one line per failure saying why; 2 for bad arguments; 130
or 143 when interrupted). While it runs, and after an interruption, the report in OUT says FAILS
(incomplete): a stale PASS never survives a new run. Proof modules are imported and run in a
separate process the gate watches. Add your own obligations with --proofs DIR (see the README,
"Adding an obligation").

examples:
  lpcheck verify                        # the paper's claims, report in ./lpcheck-out/
  lpcheck verify --only 'thm1.*'        # Theorem 1's steps only
  # fail on any finding not accepted in the shipped baseline
  lpcheck verify --strict --baseline builtin
  lpcheck verify --proofs my_proofs/ --strict --baseline accepted.json --out reports/
  lpcheck verify --write-baseline accepted.json         # accept the findings that reproduce today
  # the proof packs: lpsgd (the default), lmo, scion, ...
  lpcheck verify --list-packs
  # other methods' packs instead of the paper's
  lpcheck verify --pack scion --pack l0l1
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path


def add_arguments(parser):
    parser.add_argument(
        "--out",
        default="lpcheck-out",
        metavar="DIR",
        help="where verify.json and verify.md go (default: ./lpcheck-out)",
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        action="append",  # given twice, both count: the last alone would drop the first silently
        help=(
            "run only obligations/findings whose id matches these comma-separated globs, e.g. "
            "'eq10.*,thm1.*' (given more than once, any of them)"
        ),
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a finding of verdict 'error' or 'gap' reproduces (unless --baseline "
        "accepts it)",
    )
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="with --strict: finding ids accepted as known (a JSON list, or one id a line); "
        "'builtin' is the shipped baseline of the built-in pack. Only new findings fail; "
        "accepted ones that no longer reproduce are reported",
    )
    parser.add_argument(
        "--write-baseline",
        metavar="FILE",
        help="after a complete run, write the reproduced error/gap findings to FILE (JSON), "
        "for --baseline",
    )
    parser.add_argument(
        "--proofs",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of your own obligation modules (*.py); repeatable",
    )
    parser.add_argument(
        "--no-builtin", action="store_true", help="run only the --proofs obligations"
    )
    parser.add_argument(
        "--pack",
        action="append",
        default=[],
        metavar="NAME",
        help=(
            "run the built-in proof pack NAME instead of the default lpsgd (the paper's); "
            "repeatable"
        ),
    )
    parser.add_argument(
        "--list-packs",
        action="store_true",
        help="list the proof packs (name, what it checks), run nothing",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="obligations run in parallel, each in its own process (default: CPU count; 0 = one "
        "after another in the gate's worker process, which the gate restarts after an overrun)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds per obligation, and per proof module's import, before it counts as a timeout "
        "(default 60)",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the obligations and findings, run nothing"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def _only(only):
    """Every --only given (argparse's append), as one comma-separated selection."""
    if isinstance(only, list):
        only = ",".join(only)
    if only is not None and not [p for p in only.split(",") if p.strip()]:
        raise ValueError(
            f"--only {only!r} names no pattern: give comma-separated globs, e.g. 'thm1.*', "
            "or leave --only out to run everything"
        )
    return only


def _check_arguments(args):
    """Every argument error before anything is imported, run or written."""
    from lpcheck.verify.runner import TIMEOUT_MAX

    if args.jobs is not None and args.jobs < 0:
        raise ValueError(f"--jobs must be >= 0, got {args.jobs}")
    if not 0 < args.timeout <= TIMEOUT_MAX:  # NaN fails both comparisons
        raise ValueError(
            f"--timeout must be a number of seconds in (0, {TIMEOUT_MAX:.0e}], got {args.timeout}"
        )
    args.only = _only(args.only)
    listing = "--list-packs" if args.list_packs else "--list" if args.list else None
    if listing and (args.write_baseline is not None or args.strict):
        option = "--write-baseline" if args.write_baseline is not None else "--strict"
        raise ValueError(f"{listing} runs nothing, so {option} would do nothing: drop one of them")
    if args.no_builtin and not args.proofs:
        raise ValueError("--no-builtin needs at least one --proofs DIR")
    if args.no_builtin and args.pack:
        raise ValueError(
            "--no-builtin and --pack exclude each other (--pack chooses the built-in obligations)"
        )
    if args.baseline is not None and not args.strict:
        raise ValueError(
            "--baseline applies only with --strict (it lists the findings --strict accepts)"
        )
    if not args.out.strip():  # Path('') is '.': the report would land wherever the shell stands
        raise ValueError("--out is empty: give the folder for verify.json and verify.md")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a directory")
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ValueError(f"--out: {out} cannot be made: {blocked} is a file, not a directory")
    if args.write_baseline is not None:
        if args.only:
            raise ValueError("--write-baseline needs a run of every finding: drop --only")
        target = Path(args.write_baseline)
        if target.is_dir() or not target.parent.is_dir():
            raise ValueError(f"--write-baseline: {target} must be a file in an existing directory")
        reports = {(out / f"verify.{ext}").resolve() for ext in ("json", "md")}
        if target.resolve() in reports:
            raise ValueError(
                f"--write-baseline: {target} is the gate's own report in --out: the baseline "
                "would replace it; name another file, e.g. accepted.json"
            )
    from lpcheck.verify.gate import read_baseline, specs_of

    baseline = read_baseline(args.baseline) if args.baseline is not None else None
    specs_of(
        args.proofs, not args.no_builtin, args.pack
    )  # an unknown pack, a missing or empty --proofs directory
    return baseline


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so the gate can stop its workers and say so in its
    report."""


def _list(args) -> int:
    from lpcheck.verify.gate import select, specs_of
    from lpcheck.verify.host import Host, preload

    specs = specs_of(args.proofs, not args.no_builtin, args.pack)
    preload(specs)
    with Host(specs, timeout=args.timeout) as host:
        host.load()
    chosen = select(host.items, args.only)
    if args.only and not chosen and not host.broken():
        raise ValueError(f"--only {args.only!r} matches no obligation or finding")
    for item in chosen:
        kind = "finding" if hasattr(item, "verdict") else item.kind
        print(
            f"{item.id:<44} {kind:<12} "
            f"{getattr(item, 'statement', getattr(item, 'claim', ''))[:90]}"
        )
    for m in host.broken():
        print(f"BROKEN {m.module}: {m.status}: {m.detail.splitlines()[0] if m.detail else ''}")
    return 1 if host.broken() else 0


class _Writer:
    """The report in --out, kept true while the gate runs: written before anything runs (FAILS,
    incomplete), then at most once a second as results arrive, then once at the end."""

    def __init__(self, args):
        from lpcheck.report import provenance

        self.out, self.args, self.last, self.written = args.out, args, None, 0.0
        self.provenance = provenance()

    def write(self, report, state=None, force=True):
        from lpcheck.report import write_report
        from lpcheck.verify import render

        report = dict(report, strict=self.args.strict, provenance=self.provenance)
        if state:
            report["state"] = state
        report.setdefault("passes", False)
        self.last = report
        now = time.monotonic()
        if force or now - self.written >= 1.0:
            self.written = now
            return write_report(self.out, "verify", report, render.markdown)
        return None


def run(args) -> int:
    from lpcheck.verify import gate, render
    from lpcheck.verify.host import HostError

    baseline = _check_arguments(args)
    if args.list_packs:
        from lpcheck.proofs.packs import list_packs

        for name, what in list_packs():
            print(f"{name:<14} {what}")
        return 0
    if args.list:
        try:
            return _list(args)
        except KeyboardInterrupt:
            print("lpcheck verify --list: interrupted; nothing was written", file=sys.stderr)
            return 130
        except HostError as e:
            print(
                f"lpcheck verify --list: the proof modules could not be loaded: {e}",
                file=sys.stderr,
            )
            return 1
    writer = _Writer(args)
    writer.write(
        {
            "state": "running",
            "summary": gate.summarize([], []),
            "obligations": [],
            "findings": [],
            "modules": [],
            "seconds": 0,
        }
    )
    echo = (lambda r: None) if args.quiet else (lambda r: print(render.line(r), flush=True))
    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        report = gate.run_gate(
            only=args.only,
            proofs=args.proofs,
            builtin=not args.no_builtin,
            jobs=args.jobs,
            timeout=args.timeout,
            on_result=echo,
            packs=args.pack,
            on_progress=lambda r: writer.write(r, force=False),
        )
    except (KeyboardInterrupt, _Terminated) as e:
        return _interrupted(
            writer,
            "SIGTERM" if isinstance(e, _Terminated) else "SIGINT (Ctrl-C)",
            143 if isinstance(e, _Terminated) else 130,
        )
    except (ValueError, HostError) as e:
        writer.write(dict(writer.last, state="aborted", aborted=str(e)))
        if isinstance(e, ValueError):
            raise
        print(f"lpcheck verify: the gate could not run: {e}", file=sys.stderr)
        return 1
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
    report["strict"], report["provenance"] = args.strict, writer.provenance
    if args.strict:
        report["baseline"] = gate._baseline_view(report["findings"], baseline or [], not args.only)
        report["baseline"]["source"] = args.baseline
    report["passes"] = gate.gate_passes(report, args.strict, baseline)
    paths = writer.write(report)
    _summary(report, paths)
    if args.write_baseline is not None:
        _write_baseline(args.write_baseline, report)
    return 0 if report["passes"] else 1


def _raise_terminated(signum, frame):
    raise _Terminated()


def _interrupted(writer, what, code) -> int:
    in_main = threading.current_thread() is threading.main_thread()
    old = (
        signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    )  # a second Ctrl-C must not cut it short
    try:
        report = writer.last
        paths = writer.write(dict(report, state="interrupted", interrupted=what))
        s = report["summary"]
        print(
            f"\nlpcheck verify: interrupted ({what}) after {s['obligations']} obligations and "
            f"{s['findings']} findings finished; the workers were stopped. {paths['json']} says "
            "FAILS (interrupted), with the results that finished.",
            file=sys.stderr,
        )
    finally:
        if in_main:
            signal.signal(signal.SIGINT, old)
    return code


def _summary(report, paths):
    from lpcheck.verify import render

    s = report["summary"]
    skipped = f", {len(s['skipped'])} skipped" if s.get("skipped") else ""
    print(
        f"\n{s['passing']}/{s['obligations']} obligations hold ({s['controls']} "
        f"controls{skipped}), {s['findings']} findings "
        f"({', '.join(f'{k} {v}' for k, v in s['findings_reproduced'].items())} reproduced) in "
        f"{report['seconds']} s."
    )
    if s["trivial"]:
        print(
            "trivial checks (the goal held before any engine ran; see verify.md): "
            + ", ".join(s["trivial"])
        )
    if s.get("skipped"):
        print(
            "skipped (not run here, never a pass): "
            + "; ".join(f"{i}: {why}" for i, why in s["skipped"].items())
        )
    stale = (report.get("baseline") or {}).get("stale")
    if stale:
        print("baseline entries that no longer reproduce (remove them): " + ", ".join(stale))
    if report["passes"]:
        print(f"gate PASSES; report: {paths['json']} and {paths['md']}")
        return
    print("gate FAILS:")
    for line in render.failure_lines(report):
        print("  " + line)
    print(f"report: {paths['json']} and {paths['md']}")


def _write_baseline(path, report):
    from lpcheck.report import write_json
    from lpcheck.verify import gate

    if report.get("state") != "complete" or report["summary"]["findings_broken"]:
        print("--write-baseline: not written: the run did not complete with every witness run")
        return
    ids = gate.baseline_entries(report["findings"])
    write_json(
        path,
        {
            "accepted": ids,
            "written_by": report["provenance"]["command"],
            "note": "findings of verdict error/gap accepted under --strict --baseline",
        },
    )
    print(f"baseline of {len(ids)} accepted findings written to {path}")
