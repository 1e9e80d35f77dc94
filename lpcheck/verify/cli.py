"""Run the proof gate: every claim of the paper's method and analysis as a checked obligation.

Each obligation is one displayed step or property of Xu & Yang (arXiv 2606.02078): the closed-form
minimiser eq. 10, eq. 11/16/19/20, Lemmas 1-2, Theorems 1-2 (eq. 30-40, 46-48) and their rate
constants. sympy and, for every inequality, z3 discharge them; numeric conformance checks (hypothesis
inputs, float64) confirm that lpcheck's own lp/schedule/optim/bounds code computes what the formulas
state. Negative controls (deliberately wrong variants) must come back refuted. Findings report where
the paper's text is loose or wrong, each with a witness computed here.

Prints one line per result, writes OUT/verify.json and OUT/verify.md, and exits 0 only when every
obligation holds (exit 1 otherwise; 2 for bad arguments). Add your own obligations with --proofs DIR
(see the README, "Adding an obligation").

examples:
  lpcheck verify                        # the paper's claims, report in ./lpcheck-out/
  lpcheck verify --only 'thm1.*'        # Theorem 1's steps only
  lpcheck verify --proofs my_proofs/ --strict --out reports/
"""

from __future__ import annotations

import sys


def add_arguments(parser):
    parser.add_argument("--out", default="lpcheck-out", metavar="DIR",
                        help="where verify.json and verify.md go (default: ./lpcheck-out)")
    parser.add_argument("--only", metavar="PATTERN",
                        help="run only obligations/findings whose id matches these comma-separated globs, e.g. 'eq10.*,thm1.*'")
    parser.add_argument("--strict", action="store_true",
                        help="also fail when a finding of verdict 'error' or 'gap' reproduces")
    parser.add_argument("--proofs", action="append", default=[], metavar="DIR",
                        help="a directory of your own obligation modules (*.py); repeatable")
    parser.add_argument("--no-builtin", action="store_true", help="run only the --proofs obligations")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="obligations run in parallel, each in its own process (default: CPU count; 0 = in-process)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="seconds per obligation before it counts as a timeout (default 60)")
    parser.add_argument("--list", action="store_true", help="list the obligations and findings, run nothing")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def run(args) -> int:
    from lpcheck.report import provenance, write_report
    from lpcheck.verify import gate, render

    if args.jobs is not None and args.jobs < 0:
        raise ValueError(f"--jobs must be >= 0, got {args.jobs}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if args.no_builtin and not args.proofs:
        raise ValueError("--no-builtin needs at least one --proofs DIR")
    if args.list:
        obs, fis = gate.collect(gate.load_modules(args.proofs, not args.no_builtin))
        for item in gate.select(obs, args.only) + gate.select(fis, args.only):
            kind = "finding" if hasattr(item, "verdict") else item.kind
            print(f"{item.id:<44} {kind:<12} {getattr(item, 'statement', getattr(item, 'claim', ''))[:90]}")
        return 0
    echo = (lambda r: None) if args.quiet else (lambda r: print(render.line(r), flush=True))
    report = gate.run_gate(only=args.only, proofs=args.proofs, builtin=not args.no_builtin, jobs=args.jobs,
                           timeout=args.timeout, on_result=echo)
    report["passes"] = gate.gate_passes(report, args.strict)
    report["strict"] = args.strict
    report["provenance"] = provenance()
    paths = write_report(args.out, "verify", report, render.markdown)
    s = report["summary"]
    print(f"\n{s['passing']}/{s['obligations']} obligations hold ({s['controls']} controls), "
          f"{s['findings']} findings ({', '.join(f'{k} {v}' for k, v in s['findings_reproduced'].items())} reproduced) "
          f"in {report['seconds']} s.", file=sys.stdout)
    if s["failing"]:
        print("failing: " + ", ".join(s["failing"]))
    if s["findings_broken"]:
        print("findings whose witness did not run: " + ", ".join(s["findings_broken"]))
    print(f"gate {'PASSES' if report['passes'] else 'FAILS'}; report: {paths['json']} and {paths['md']}")
    return 0 if report["passes"] else 1
