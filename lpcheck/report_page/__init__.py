"""`lpcheck report`: one page (HTML, Markdown) over any mix of verify, estimate and rates output
folders.

sources.py reads the folders (each one's kind from its files, every folder checked before any work);
claims.py turns the JSON the pillars wrote into one verdict per claim of the paper (holds, fails,
cannot be checked), with the number that decides it, its scope and which way a bound's error goes;
nothing is
recomputed: a verdict is read from fields the pillars record. page.py renders the page
(self-contained
HTML: CSS inline, figures as base64 PNG; and Markdown); cli.py is the verb."""

from lpcheck.report_page.claims import CLAIMS, claims
from lpcheck.report_page.sources import KINDS, Source, load

__all__ = ["CLAIMS", "claims", "KINDS", "Source", "load"]
