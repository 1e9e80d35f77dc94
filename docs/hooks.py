"""mkdocs hook: every page's generated tables are rendered from experiments/results/ at build time.

So a built site always shows the committed results, even before `python docs/gen_tables.py` has
rewritten the pages (tests/test_docs.py checks that the pages themselves are up to date). A missing
or unreadable result file stops the build with its name: a table is never left empty or stale in
silence."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.exceptions import PluginError

_spec = importlib.util.spec_from_file_location(
    "lpcheck_docs_gen_tables", Path(__file__).with_name("gen_tables.py")
)
gen_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_tables)


def on_page_markdown(markdown, page, config, files):
    try:
        return gen_tables.render(markdown)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PluginError(f"{page.file.src_path}: a generated table failed: {e!r}") from e
