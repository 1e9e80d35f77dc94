"""Refit a finished `lpcheck estimate` run with this checkout's fit, without training again.

    python experiments/refit_estimate.py experiments/results/estimate-cpu

The run's records (what was measured) stay as they are; the fit over them (intervals, (c2, c3), the
step cap, the bounds), constants.md and the plots are recomputed by this checkout's
`lpcheck.estimate.fit.fit_run` and renderers, with the run's own confidence, resamples, seed, lr
schedule and loss lower bound. Why: the fit changes more often than a 14-minute run is worth
repeating (the intervals moved from a percentile bootstrap to Student t + Hall in issue 12), and the
records do not depend on it. The file records the refit: `refit_provenance` (this checkout's commit,
the command) and `fit_before_refit` (the method of the intervals it replaced), so a reader sees
which code made which part."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _common  # noqa: F401 - this checkout's lpcheck ahead of an installed copy


def refit(folder: Path) -> dict:
    from lpcheck import report
    from lpcheck.estimate import fit, render
    from lpcheck.estimate.trainer import lr_at

    path = folder / "constants.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"folder: no constants.json in {folder} (not an lpcheck estimate run)"
        )
    d = report.read_json(path)
    if not d.get("complete") or not d.get("records"):
        raise ValueError(
            f"folder: {folder} holds an unfinished run; finish it with lpcheck estimate --resume"
        )
    c, r = d["config"], d["run"]
    lrs = [lr_at(t, r["T"], r["warmup_steps"], c["lr"]) for t in range(r["T"])]
    old = d.get("fit", {}).get("sample_sizes", {})
    d["fit_before_refit"] = {
        "interval_method": old.get("interval", {}).get("method", "percentile bootstrap"),
        "provenance": d.get("provenance", {}).get("git_commit"),
    }
    d["fit"] = fit.fit_run(
        d["records"],
        r["T"],
        confidence=c["confidence"],
        resamples=c["resamples"],
        seed=c["seed"],
        lr_used=lrs,
        loss_lower_bound=c.get("loss_lower_bound"),
    )
    d["refit_provenance"] = report.provenance("cpu", command=["python", *sys.argv])
    report.write_report(folder, "constants", d, render.markdown)
    render.plots(report.read_json(path), folder)
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "folder", help="an lpcheck estimate --out folder holding a finished constants.json"
    )
    args = ap.parse_args(argv)
    try:
        d = refit(Path(args.folder))
    except (ValueError, FileNotFoundError) as e:
        print(f"refit_estimate.py: {e}", file=sys.stderr)
        return 2
    f = d["fit"]["assumption5"]
    print(f"refit {args.folder}: c1 = {f.get('c1')}, (c2, c3) = ({f.get('c2')}, {f.get('c3')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
