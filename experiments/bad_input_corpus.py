"""Run the bad-input corpus (tests/corpus/) against a checkout of lpcheck and count outcomes per
area.

    # this checkout
    python experiments/bad_input_corpus.py
    # another checkout (e.g. an old commit)
    python experiments/bad_input_corpus.py --checkout /tmp/old
    python experiments/bad_input_corpus.py --out experiments/results/bad_input --name after

Outcomes: handled (the right error, naming the argument, state unchanged), silent (accepted),
traceback (another exception), wrong message, changed state, and past the limit (still running after
--limit seconds: the bad input was accepted and work began). Each case runs in a forked child, so
one case's crash, hang or global change (torch's thread count, the working directory) cannot touch
the next: an old checkout that trains for hours on a bad --epochs is measured too. Writes NAME.json
and NAME.md."""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTCOMES = ("handled", "silent", "traceback", "wrong message", "changed state", "past the limit")


def _child(corpus, case, conn):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            conn.send(corpus.outcome(case, Path(tmp)))
        except BaseException as e:  # noqa: BLE001 - SystemExit and the like are outcomes too
            conn.send(("traceback", f"{type(e).__name__}: {str(e)[:300]}"))


def _run(corpus, case, limit):
    """corpus.outcome(case) in a forked child with a time limit."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(corpus, case, child), daemon=True)
    proc.start()
    child.close()
    if not parent.poll(limit):
        proc.kill()
        proc.join()
        return "past the limit", f"still running after {limit:g} s"
    try:
        result = parent.recv()
    except EOFError:
        result = None
    proc.join()
    return result or ("traceback", f"the case's process died (exit code {proc.exitcode})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--checkout",
        default=str(HERE.parent),
        help="the lpcheck source tree to test (default: this one)",
    )
    ap.add_argument("--out", default=None, help="write NAME.json and NAME.md here")
    ap.add_argument("--name", default="corpus", help="file stem (default corpus)")
    ap.add_argument("--verbose", action="store_true", help="print every case that is not handled")
    ap.add_argument(
        "--limit",
        type=float,
        default=60.0,
        help="seconds per case before it counts as past the limit",
    )
    ap.add_argument("--area", action="append", help="only these areas (repeatable; default all)")
    args = ap.parse_args(argv)
    checkout = Path(args.checkout).resolve()
    # the corpus comes from this checkout; lpcheck from the one under test
    sys.path[:0] = [str(checkout), str(HERE.parent / "tests")]
    import corpus
    import lpcheck

    if Path(lpcheck.__file__).resolve().parent.parent != checkout:
        raise SystemExit(f"imported lpcheck from {lpcheck.__file__}, not from {checkout}")
    from lpcheck import report

    rows, counts = [], {}
    for case in corpus.load(args.area or corpus.AREAS):
        result, detail = _run(corpus, case, args.limit)
        counts.setdefault(case.area, Counter())[result] += 1
        rows.append({"id": case.id, "area": case.area, "outcome": result, "detail": detail})
        if args.verbose and result != "handled":
            print(f"{result:14s} {case.id}: {detail}", file=sys.stderr)
    table = [[area, sum(c.values()), *(c[o] for o in OUTCOMES)] for area, c in counts.items()]
    total = Counter()
    for c in counts.values():
        total.update(c)
    table.append(["all", sum(total.values()), *(total[o] for o in OUTCOMES)])
    text = report.markdown_table(["area", "cases", *OUTCOMES], table)
    print(text)
    if args.out:
        data = {
            "checkout": str(checkout),
            "cases": rows,
            "counts": {a: dict(c) for a, c in counts.items()},
        }
        report.write_report(
            args.out, args.name, data, lambda d: f"# Bad-input corpus against {checkout}\n\n" + text
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
