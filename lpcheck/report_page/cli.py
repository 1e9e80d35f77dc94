"""One page over the reports of lpcheck verify, estimate and rates: each claim of the paper
(Assumptions 1-6, eq. 10-11, Theorems 1-2: step cap, bound, rate) with its verdict (holds, fails,
cannot be checked), the number that decides it, where it was checked, and a link to its evidence;
then one section per folder.

Each DIR's kind comes from its files: verify.json (lpcheck verify), constants.json (lpcheck
estimate), rates.json (lpcheck rates). A missing folder or one of no known kind is an error before
anything is written. The HTML is self-contained (CSS inline, figures embedded as base64 PNG): it
reads offline. The Markdown (--format md, or both) says the same, with figures linked relative to
it.

Examples:
  lpcheck report experiments/results/verify experiments/results/estimate-cpu \\
      experiments/results/rates --out report.html
  # index.html and index.md
  lpcheck report out/verify out/rates --out report/index.html --format both
"""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = ("html", "md", "both")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dirs", nargs="+", metavar="DIR", help="output folders of lpcheck verify, estimate or rates"
    )
    p.add_argument(
        "--out", required=True, help="the page to write (report.html; with --format md, report.md)"
    )
    p.add_argument(
        "--format",
        default=None,
        choices=FORMATS,
        help=(
            "html, md, or both (the .md beside the .html); default: from --out's suffix, else html"
        ),
    )
    p.add_argument("--title", default="lpcheck report", help="the page's title")


def _outputs(out: str, fmt) -> dict:
    """{format: path}, checked before any work."""
    if not out:
        raise ValueError("--out is empty: give the file to write, e.g. report.html")
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        raise ValueError(
            f"--out {out} is a folder: give a file name, e.g. {Path(out) / 'report.html'}"
        )
    if fmt is None:
        fmt = "md" if path.suffix.lower() == ".md" else "html"
    if fmt == "md" and path.suffix.lower() in (".html", ".htm"):
        raise ValueError(
            f"--out {out} ends in {path.suffix} but --format is md: name it .md, or use --format "
            "both"
        )
    if fmt == "html" and path.suffix.lower() == ".md":
        raise ValueError(
            f"--out {out} ends in .md but --format is html: name it .html, or use --format both"
        )
    stem = path.with_suffix("") if path.suffix.lower() in (".html", ".htm", ".md") else path
    paths = {}
    if fmt in ("html", "both"):
        paths["html"] = (
            stem.with_suffix(".html")
            if fmt == "both" or path.suffix.lower() not in (".html", ".htm")
            else path
        )
    if fmt in ("md", "both"):
        paths["md"] = stem.with_suffix(".md")
    from lpcheck.report import check_out_dir

    for p in paths.values():
        check_out_dir(p.parent if str(p.parent) else ".", "--out's folder")
    return paths


def run(args) -> int:
    import sys

    from lpcheck import report
    from lpcheck.report_page.claims import tally
    from lpcheck.report_page.sources import load

    paths = _outputs(args.out, args.format)
    _not_over_inputs(paths, args.dirs)
    sources = load(args.dirs)
    prov = report.provenance()
    rows, pages = _build(sources, args.title, paths, prov)
    for fmt, path in paths.items():  # written only once every part has been built
        report.write_text(path, pages[fmt])
    t = tally(rows)
    print(
        f"lpcheck report: wrote {', '.join(str(p) for p in paths.values())}; "
        + ", ".join(f"{n} {v}" for v, n in t.items()),
        file=sys.stderr,
    )
    return 0


def _not_over_inputs(paths: dict, dirs) -> None:
    """--out may not replace a file a pillar wrote in one of the DIRs (verify.md, rates.json, a
    figure): the page would destroy part of its own evidence."""
    from lpcheck.report_page.sources import pillar_files

    theirs = {}
    for d in dirs:
        if Path(d).is_dir():
            theirs.update({f.resolve(): f for f in pillar_files(Path(d))})
    for p in paths.values():
        if p.resolve() in theirs:
            raise ValueError(
                f"--out would replace {theirs[p.resolve()]}, a file of DIR {p.parent}: write the "
                "page elsewhere, e.g. report.html"
            )


# what a report's JSON lacking something the page reads raises inside the page builders
_UNREADABLE = (KeyError, TypeError, AttributeError, IndexError, ValueError)


def _build(sources, title, paths, prov) -> tuple[list, dict]:
    """(the claims' rows, {"html": page, "md": page}) over all sources, nothing written. When the
    build fails, each source's part is built alone to find the one the page cannot read (a
    report hand-edited, cut short or written by another version): that is then an error naming
    its file, instead of a traceback from deep inside the page builders."""
    try:
        return _pages(sources, title, paths, prov)
    except _UNREADABLE:
        from lpcheck.report_page.sources import KINDS

        for src in sources:
            try:
                _pages([src], title, paths, prov)
            except _UNREADABLE as e:
                marker, _, command = KINDS[src.kind]
                article = "an" if src.kind[0] in "aeiou" else "a"
                raise ValueError(
                    f"DIR {src.folder}: {marker} is not {article} {src.kind} report this lpcheck "
                    f"can read ({type(e).__name__}: {e}); write it again with `{command}`"
                ) from e
        raise


def _pages(sources, title, paths, prov) -> tuple[list, dict]:
    # both formats, whichever --format asks for: a report one of them cannot read is refused
    from lpcheck.report_page.claims import claims
    from lpcheck.report_page.page import to_html, to_markdown

    rows = claims(sources)
    md_dir = paths["md"].parent if "md" in paths else next(iter(paths.values())).parent
    return rows, {
        "html": to_html(sources, rows, title, prov),
        "md": to_markdown(sources, rows, md_dir, title, prov),
    }
