"""The `lpcheck` command: one verb per pillar (verify, estimate, rates), and `report` over their
outputs.

Each verb lives in its pillar as a module with `add_arguments(parser)` and `run(args) -> int`;
this file only dispatches, so `lpcheck --help` stays fast and imports no pillar it does not run.
Bad input (ValueError, FileNotFoundError) is reported as one line naming the problem, exit code 2;
set LPCHECK_DEBUG=1 to see the traceback. Ctrl-C (exit code 130) names the files the command wrote
before it was interrupted, which are complete (every report is replaced atomically), or says that it
wrote none.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from lpcheck import __version__, report

# verb -> (module, one-line help)
COMMANDS = {
    "verify": (
        "lpcheck.verify.cli",
        "run the proof gate: every claim of the paper as a checked obligation",
    ),
    "estimate": (
        "lpcheck.estimate.cli",
        "measure the Assumption 5/6 constants, lp smoothness and noise of a model",
    ),
    "rates": (
        "lpcheck.rates.cli",
        "fit the convergence rate on synthetic problems with known constants",
    ),
    "curvature": (
        "lpcheck.curvature.cli",
        "Hessian eigenvalues with residuals, trace and density of any model",
    ),
    "report": (
        "lpcheck.report_page.cli",
        "one page (HTML, Markdown): each claim's verdict from verify/estimate/rates",
    ),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is absent
        return False


def _available():
    return {verb: spec for verb, spec in COMMANDS.items() if _installed(spec[0])}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lpcheck",
        description=(
            "Check the mathematics and numerics of LPSGD/LPSGDM (Xu & Yang, arXiv 2606.02078)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"lpcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb, (module, help_text) in _available().items():
        mod = importlib.import_module(module)
        p = sub.add_parser(
            verb,
            help=help_text,
            description=(mod.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    before = len(report.written())
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError) as e:
        if os.environ.get("LPCHECK_DEBUG"):
            raise
        print(f"lpcheck {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"lpcheck {args.command}: interrupted; {_kept(report.written()[before:])}",
            file=sys.stderr,
        )
        return 130


def _kept(paths) -> str:
    """Which files an interrupted command wrote (and kept), folder by folder."""
    paths = [p for p in dict.fromkeys(paths) if p.exists()]
    if not paths:
        return "it wrote no file"
    folders = {}
    for p in paths:
        folders.setdefault(p.parent, []).append(p.name)
    return "kept what it wrote: " + "; ".join(
        f"{folder}/ {', '.join(names)}" for folder, names in folders.items()
    )


if __name__ == "__main__":
    sys.exit(main())
