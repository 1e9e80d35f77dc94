"""The docs: README as a short front page whose links resolve, an mkdocs site that builds with
--strict, and results tables that are generated from experiments/results/ and go stale when a
result changes."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ROOT / "experiments" / "results"
README = ROOT / "README.md"

_spec = importlib.util.spec_from_file_location("lpcheck_docs_gen_tables", DOCS / "gen_tables.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    # mkdocs' toc slugify: lower case, drop what is not a word character, space or hyphen, spaces to
    # hyphens
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def _nav_pages():
    text = (ROOT / "mkdocs.yml").read_text()
    return set(re.findall(r":\s*([\w./-]+\.md)\s*$", text, re.M))


# ---------------------------------------------------------------------------------------------
# README


def test_the_readme_is_a_front_page_of_at_most_12000_characters():
    n = len(README.read_text(encoding="utf-8"))
    assert n <= 12_000, f"README.md has {n} characters; move detail into docs/"


def test_every_readme_link_into_docs_resolves_to_a_page_of_the_site():
    links = [u for u in LINK.findall(README.read_text()) if not re.match(r"[a-z]+:", u)]
    into_docs = [u for u in links if u.startswith("docs/")]
    assert into_docs, "the README links into the docs"
    nav = _nav_pages()
    for url in links:
        path, _, anchor = url.partition("#")
        target = ROOT / path
        assert target.is_file(), f"README link {url!r}: {path} does not exist"
        if path.startswith("docs/"):
            assert str(Path(path).relative_to("docs")) in nav, (
                f"README link {url!r}: not a page in mkdocs.yml's nav"
            )
        if anchor:
            slugs = {_slug(h) for h in re.findall(r"^#+\s+(.*)$", target.read_text(), re.M)}
            assert anchor in slugs, f"README link {url!r}: no heading #{anchor} in {path}"


def test_the_link_check_fails_on_a_broken_link(tmp_path, monkeypatch):
    broken = tmp_path / "README.md"
    broken.write_text(README.read_text() + "\n[gone](docs/no-such-page.md)\n")
    monkeypatch.setattr(sys.modules[__name__], "README", broken)
    with pytest.raises(AssertionError, match="no-such-page"):
        test_every_readme_link_into_docs_resolves_to_a_page_of_the_site()


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == _nav_pages()


# ---------------------------------------------------------------------------------------------
# generated tables


def test_every_generated_table_in_the_docs_equals_what_the_result_files_give():
    assert gen.stale() == [], "run: python docs/gen_tables.py"


def test_every_table_of_the_generator_is_on_some_page_and_every_block_is_known():
    used = [name for page in DOCS.rglob("*.md") for name in gen.blocks(page.read_text())]
    assert sorted(set(used)) == sorted(gen.TABLES)
    assert len(used) == len(set(used)), "a table appears twice"


def _mutate(path: Path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


MUTATIONS = [
    (
        "rates/rates.json",
        lambda d: d["problems"]["strong"]["studies"][0]["tail_fit"].update(slope=-0.123456),
        "rates.md: rates.results",
    ),
    (
        "bench_optim_step/cpu.json",
        lambda d: d["models"]["resnet18"]["results"]["LPSGDM fused"][
            "paired_x_sgdm_foreach"
        ].update(median=9.99),
        "performance.md: step.cpu",
    ),
    (
        "verify/verify.json",
        lambda d: d["summary"]["by_status"].update(proved=58),
        "verify.md: verify.summary",
    ),
    (
        "verify/verify.json",
        lambda d: d["findings"][0]["witness"].update(extra=1.5),
        "findings.md: verify.findings",
    ),
    (
        "estimate-cpu/constants.json",
        lambda d: d["fit"]["assumption5"].update(c1=0.1),
        "estimate.md: estimate.constants",
    ),
    (
        "estimate-cost/cost.json",
        lambda d: d.update(ratio_probe_over_train=0.5),
        "estimate.md: estimate.cost",
    ),
    ("bench_curvature/cpu.json", lambda d: d.update(dim=1), "curvature.md: curvature.products"),
    (
        "fig3/fig3.json",
        lambda d: d["problems"]["eq17"]["GD"].update(final_f=1.0),
        "experiments.md: fig3",
    ),
    (
        "rates-quick/rates.json",
        lambda d: d["problems"]["weak"]["studies"][0].update(verdict="refuted"),
        "rates.md: rates.quick",
    ),
    (
        "rates/rates.json",
        lambda d: d["problems"]["weak"]["info"]["L"].update({"6": 7.0}),
        "rates.md: rates.problems",
    ),
    (
        "rates/throughput.json",
        lambda d: d["benchmarks"][0]["extra_info"].update(seed_steps_per_s=1.0),
        "rates.md: rates.throughput",
    ),
    (
        "rates/epoch_floor.json",
        lambda d: d["rows"][0].update(eta=0.5),
        "rates.md: rates.epoch-floor",
    ),
    (
        "verify-packs/lmo/verify.json",
        lambda d: d["summary"].update(passing=13),
        "packs.md: verify.packs",
    ),
    (
        "curvature-cpu/curvature.json",
        lambda d: d["operator"].update(products=7),
        "curvature.md: curvature.example",
    ),
    (
        "bench_curvature/trace.json",
        lambda d: d["rows"][0].update(ratio=0.5),
        "curvature.md: curvature.trace",
    ),
    (
        "bench_optim_step/cpu-avx2.json",
        lambda d: d["models"]["gpt-mini"]["results"]["LPSGDM fused"].update(first_step_s=1.0),
        "performance.md: step.cpu-avx2",
    ),
    (
        "bench_optim_step/pow_cpu_avx512.json",
        lambda d: d["results"]["bits-horner"].update(median_ms=1.0),
        "performance.md: pow.avx512",
    ),
    (
        "bench_optim_step/pow_cpu_avx2.json",
        lambda d: d.update(default_scheme="horner"),
        "performance.md: pow.avx2",
    ),
    (
        "estimate-cpu/constants.json",
        lambda d: d["fit"]["checkpoints"][0]["align"].update(lo=1.0),
        "estimate.md: estimate.checkpoints",
    ),
    (
        "coverage/coverage.json",
        lambda d: d["table3"][1].update(coverage=0.5),
        "estimate.md: estimate.coverage",
    ),
    (
        "mutation/mutation.json",
        lambda d: d["totals"]["gate_in_scope"].update(caught=50),
        "verify.md: mutation.summary",
    ),
]


def test_every_table_is_tied_to_its_result_file_by_a_mutation():
    assert {expect.split(": ")[1] for _, _, expect in MUTATIONS} == set(gen.TABLES)


@pytest.mark.parametrize("rel,edit,expect", MUTATIONS, ids=[m[2] for m in MUTATIONS])
def test_a_changed_result_file_makes_its_table_stale(tmp_path, rel, edit, expect):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    assert gen.stale(DOCS, results) == []
    _mutate(results / rel, edit)
    assert expect in gen.stale(DOCS, results)


def test_a_missing_result_file_is_an_error_naming_it(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    (results / "rates" / "rates.json").unlink()
    with pytest.raises(FileNotFoundError, match="rates.json"):
        gen.render((DOCS / "rates.md").read_text(), results)


MEASUREMENT = re.compile(
    r"(?<![\w.])[-+−]?\d+\.\d+(e[-+]?\d+)?"
)  # 0.19, -0.507, 1.6e-7: not "eq. 10"


def _hand_typed_tables(text: str):
    """Markdown tables outside the generated blocks and code fences whose cells carry measured
    values."""
    text = re.sub(r"```.*?```", "", gen.BLOCK.sub("", text), flags=re.S)
    for table in re.findall(r"(?:^\|.*\|\s*$\n?){3,}", text, re.M):
        cells = [c for line in table.splitlines()[2:] for c in line.strip().strip("|").split("|")]
        if sum(bool(MEASUREMENT.search(c)) for c in cells) >= 3:
            yield table


def test_no_table_of_results_is_typed_by_hand_outside_the_generated_blocks():
    for page in DOCS.rglob("*.md"):
        tables = list(_hand_typed_tables(page.read_text()))
        assert not tables, (
            f"{page.name}: a table of results outside a generated block:\n{tables[0]}"
        )


def test_the_hand_typed_table_check_catches_retyped_results_and_passes_descriptions():
    # rows as the README typed them before the docs were generated
    text = (
        "| a | b |\n|---|---|\n| LPSGDM fused | **1.05** (0.87–1.65) |\n| LPSGD | confirmed "
        "-0.507, 0.19 |\n| strong | 200, 200, 200.1 |\n"
    )
    assert len(list(_hand_typed_tables(text))) == 1
    described = "| id | eq. |\n|---|---|\n| eq10 | eq. 10, eq. 34 → 40 |\n| x | 2/L |\n"
    assert not list(_hand_typed_tables(described))


# ---------------------------------------------------------------------------------------------
# the site


def test_the_site_builds_with_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=f"{module} is not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    perf = (site / "performance" / "index.html").read_text()
    assert "LPSGDM fused" in perf and "<table>" in perf
    api = (site / "api" / "index.html").read_text()
    assert "descent_chain" in api and "Algorithm 2" in api
