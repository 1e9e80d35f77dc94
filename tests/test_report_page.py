"""lpcheck report: kinds from files, verdicts read from the pillars' JSON, a self-contained page, a
browser.

The committed results (experiments/results/) are the realistic input; copies edited in one field
check that each verdict follows the field that decides it."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lpcheck.cli import main
from lpcheck.report_page import claims, load
from lpcheck.report_page.claims import FAILS, HOLDS, UNCHECKED, tally
from lpcheck.report_page.page import to_html, to_markdown

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results"
DIRS = [RESULTS / "verify", RESULTS / "estimate-cpu", RESULTS / "rates"]

pytestmark = pytest.mark.skipif(
    not all(d.is_dir() for d in DIRS), reason="the committed results are not here"
)


def _rows(sources, claim, kind=None):
    return [
        r for r in claims(sources) if r["claim"] == claim and (kind is None or r["kind"] == kind)
    ]


def _copy(tmp_path, name, edit=None, marker=None):
    """A copy of a committed results folder, its report JSON edited by edit(data) (in place)."""
    dst = tmp_path / name
    shutil.copytree(RESULTS / name, dst)
    if edit is not None:
        path = dst / marker
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return dst


def test_kinds_come_from_the_files():
    sources = load(DIRS)
    assert [s.kind for s in sources] == ["verify", "estimate", "rates"]
    assert [p.name for p in sources[1].figures] == ["constants.png", "frontier.png"]


def test_committed_results_verdicts():
    sources = load(DIRS)
    (a6,) = _rows(sources, "A6", "estimate")
    assert (
        a6["verdict"] == FAILS and "step 273" in a6["number"]
    )  # the one checkpoint whose interval is below 0
    (cap,) = _rows(sources, "thm1.cap", "estimate")
    assert (
        cap["verdict"] == FAILS
        and "0.001 > cap" in cap["number"]
        and "c₁/(L c₃)" in cap["number"]
        and "optimistic" in cap["error"]
    )
    (a5,) = _rows(sources, "A5", "estimate")
    assert (
        a5["verdict"] == HOLDS and "of 468 steps" in a5["scope"] and "12 checkpoints" in a5["scope"]
    )
    (a1,) = _rows(sources, "A1", "estimate")
    assert a1["verdict"] == UNCHECKED and "lower bound" in a1["error"]
    (eq10,) = _rows(sources, "eq10")
    assert eq10["verdict"] == HOLDS and eq10["number"].startswith("15/15")
    assert _rows(sources, "A2")[0]["verdict"] == UNCHECKED
    (rate,) = _rows(sources, "thm1.rate", "rates")
    assert rate["verdict"] == FAILS and "logistic" in rate["number"]
    (bound2,) = _rows(sources, "thm2.bound", "rates")
    assert bound2["verdict"] == UNCHECKED and "alignment ≤ 0" in bound2["number"]


def test_every_claim_has_a_row_even_from_one_source():
    rows = claims(load([RESULTS / "verify"]))
    assert {r["claim"] for r in rows} == set(
        __import__("lpcheck.report_page.claims", fromlist=["x"]).CLAIMS
    )
    (a5,) = [r for r in rows if r["claim"] == "A5"]
    assert a5["verdict"] == UNCHECKED and "lpcheck estimate, rates" in a5["scope"]
    assert any("F.A5" in n["text"] for n in a5["notes"])  # the proof gate's findings on it, linked


def test_a_claim_fails_if_any_source_shows_it_failing():
    # the tally's rule (the page says it beside the counts): fails beats holds beats cannot be
    # checked, per claim, whatever the order of its rows
    rows = [
        {"claim": "a", "verdict": HOLDS},
        {"claim": "a", "verdict": FAILS},
        {"claim": "b", "verdict": UNCHECKED},
        {"claim": "b", "verdict": HOLDS},
        {"claim": "c", "verdict": UNCHECKED},
        {"claim": "d", "verdict": FAILS},
        {"claim": "d", "verdict": UNCHECKED},
    ]
    assert tally(rows) == {HOLDS: 1, FAILS: 2, UNCHECKED: 1}
    assert tally(rows[::-1]) == tally(rows)
    # the committed results: the proof gate holds thm1.cap and thm1.rate where the estimate and the
    # rates fail them, and the page counts them as failing
    rows = claims(load(DIRS))
    verdicts = {r["claim"]: set() for r in rows}
    for r in rows:
        verdicts[r["claim"]].add(r["verdict"])
    mixed = {c for c, v in verdicts.items() if {HOLDS, FAILS} <= v}
    assert {"thm1.cap", "thm1.rate"} <= mixed
    assert tally(rows)[FAILS] == sum(FAILS in v for v in verdicts.values())


def test_verify_verdict_follows_the_obligation_status(tmp_path):
    def refute(d):
        ob = next(o for o in d["obligations"] if o["id"] == "eq11.distortion")
        ob.update(status="refuted", ok=False)

    def timeout(d):
        ob = next(o for o in d["obligations"] if o["id"] == "eq11.distortion")
        ob.update(status="timeout", ok=False)

    def control_holds(d):  # a negative control that was not refuted: the engines cannot tell
        ob = next(o for o in d["obligations"] if o["id"] == "control.eq11.same_direction")
        ob.update(status="proved", ok=False)

    for edit, verdict, word in (
        (refute, FAILS, "refuted: eq11.distortion"),
        (timeout, UNCHECKED, "(timeout)"),
        (control_holds, UNCHECKED, "control control.eq11.same_direction (proved) not refuted"),
    ):
        folder = _copy(tmp_path / edit.__name__, "verify", edit, "verify.json")
        (row,) = _rows(load([folder]), "eq11")
        assert row["verdict"] == verdict and word in row["number"], row


def test_alignment_verdict_reads_the_interval_ends(tmp_path):
    def undecided(d):  # c1 <= 0 but every interval reaches above 0: neither holds nor fails
        for c in d["fit"]["checkpoints"]:
            c["align_m"]["hi"] = max(c["align_m"]["hi"], 0.01)

    def holds(d):
        d["fit"]["assumption6"].update(c1=0.2, holds=True)

    folder = _copy(tmp_path / "u", "estimate-cpu", undecided, "constants.json")
    (row,) = _rows(load([folder]), "A6", "estimate")
    assert row["verdict"] == UNCHECKED and "no checkpoint's interval lies below 0" in row["number"]
    folder = _copy(tmp_path / "h", "estimate-cpu", holds, "constants.json")
    (row,) = _rows(load([folder]), "A6", "estimate")
    assert row["verdict"] == HOLDS and "c̃₁ ≥ 0.2" in row["number"]


def test_alignment_fails_on_the_interval_below_0_whatever_the_widest_interval(tmp_path):
    # another checkpoint's interval made the widest (its lower end the least of all) but reaching
    # above 0: the claim still fails on the one interval that lies below 0 (step 273)
    def wide(d):
        cks = d["fit"]["checkpoints"]
        other = next(c for c in cks if c["step"] != 273 and c["align_m"]["hi"] > 0)
        other["align_m"]["lo"] = min(c["align_m"]["lo"] for c in cks) - 1.0

    folder = _copy(tmp_path / "w", "estimate-cpu", wide, "constants.json")
    (row,) = _rows(load([folder]), "A6", "estimate")
    assert row["verdict"] == FAILS and "step 273" in row["number"], row


def test_step_cap_verdict_reads_lr_within_cap(tmp_path):
    def within(d):
        d["fit"]["assumption5"]["lr_within_cap"] = True

    def unknown(d):
        d["fit"]["assumption5"].update(
            lr_within_cap=None, lr_within_cap_reason="lr_used was not given"
        )

    (row,) = _rows(
        load([_copy(tmp_path / "w", "estimate-cpu", within, "constants.json")]),
        "thm1.cap",
        "estimate",
    )
    assert row["verdict"] == HOLDS and "≤ cap" in row["number"]
    (row,) = _rows(
        load([_copy(tmp_path / "n", "estimate-cpu", unknown, "constants.json")]),
        "thm1.cap",
        "estimate",
    )
    assert row["verdict"] == UNCHECKED and "lr_used was not given" in row["number"]


def test_rate_verdict_reads_the_studies(tmp_path):
    def all_confirmed(d):
        for prob in d["problems"].values():
            for s in prob["studies"]:
                if s["rule"] != "constant":
                    s["verdict"] = "confirmed"

    (row,) = _rows(
        load([_copy(tmp_path, "rates", all_confirmed, "rates.json")]), "thm1.rate", "rates"
    )
    assert row["verdict"] == HOLDS and "flattest tail slope" in row["number"]


@pytest.mark.parametrize("ratio, want", [(1.0, HOLDS), (1.0 + 1e-9, FAILS), (0.5, HOLDS)])
def test_bound_verdict_holds_up_to_observed_equal_to_the_bound(tmp_path, ratio, want):
    # eq. 31 is an upper bound: observed = bound satisfies it; only observed > bound fails
    def set_ratio(d):
        for prob in d["problems"].values():
            for s in prob["studies"]:
                if s.get("theorem") == 1:
                    s["bound_ratio_max"] = ratio

    (row,) = _rows(load([_copy(tmp_path, "rates", set_ratio, "rates.json")]), "thm1.bound", "rates")
    assert row["verdict"] == want, row


def test_a_rate_outside_the_hypotheses_neither_confirms_nor_refutes(tmp_path):
    """LPSGDM's T^-1/2 is confirmed on the committed runs, but Assumption 6 fails on every one of
    them (a resolved c~1 <= 0): the theorem is not tested there. With the alignment positive, the
    same slopes confirm it."""
    (rate,) = _rows(load([RESULTS / "rates"]), "thm2.rate")
    assert rate["verdict"] == UNCHECKED and "observed anyway: 11 confirmed" in rate["number"]
    (a6,) = _rows(load([RESULTS / "rates"]), "A6")
    assert a6["verdict"] == FAILS and "resolved checkpoint" in a6["number"]

    def aligned(d):
        for prob in d["problems"].values():
            for s in prob["studies"]:
                for r in s["runs"]:
                    if s["theorem"] == 2 and r.get("constants"):
                        r["constants"].update(c1=0.5, c1_upper=0.6)

    folder = _copy(tmp_path, "rates", aligned, "rates.json")
    (rate,) = _rows(load([folder]), "thm2.rate")
    assert rate["verdict"] == HOLDS and "within the hypotheses" in rate["number"]
    (a6,) = _rows(load([folder]), "A6")
    assert a6["verdict"] == HOLDS


def test_a_smoke_run_refutes_nothing(tmp_path):
    """A refuted slope of a --quick run (T <= 400) is a reason to run the full grid, as the rates
    report says: cannot be checked, not fails; the same studies on a full run do fail."""

    def quick(d):
        d["config"]["quick"] = True

    (row,) = _rows(load([_copy(tmp_path, "rates", quick, "rates.json")]), "thm1.rate")
    assert (
        row["verdict"] == UNCHECKED
        and "a smoke run" in row["number"]
        and "logistic/lpsgd" in row["number"]
    )
    (row,) = _rows(load([RESULTS / "rates"]), "thm1.rate")
    assert row["verdict"] == FAILS


def test_html_is_self_contained_and_every_link_lands():
    sources = load(DIRS)
    rows = claims(sources)
    page = to_html(sources, rows)
    assert not re.search(
        r"""(src|href)\s*=\s*["'](?!#|data:)""", page
    )  # no external resource, no outside link
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert page.count('src="data:image/png;base64,') == sum(len(s.figures) for s in sources) == 8
    ids = set(re.findall(r'id="([^"]+)"', page))
    targets = set(re.findall(r'href="#([^"]+)"', page))
    assert targets and targets <= ids, targets - ids
    first = page.index("<table>")
    for title in ("Assumption 6", "eq. 10", "Theorem 1, step cap", "Theorem 2, rate"):
        assert (
            first < page.index(title) < page.index("<h2")
        )  # in the claims table, before any section


def test_markdown_links_its_figures_relative_to_itself(tmp_path):
    sources = load(DIRS)
    out = tmp_path / "deep" / "er"
    text = to_markdown(sources, claims(sources), out)
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert len(images) == 8
    for rel in images:
        assert (out / rel).resolve().is_file(), rel
    assert "**fails**" in text and "**holds**" in text


def test_cli_writes_html_and_md_and_refuses_before_writing(tmp_path, capsys):
    out = tmp_path / "r" / "page.html"
    assert main(["report", *map(str, DIRS), "--out", str(out), "--format", "both"]) == 0
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert "holds" in capsys.readouterr().err
    bad = tmp_path / "bad.html"
    assert main(["report", str(DIRS[0]), str(RESULTS / "fig3"), "--out", str(bad)]) == 2
    assert "fig3 is of no known kind" in capsys.readouterr().err and not bad.exists()


def _chromium():
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


def test_page_renders_in_a_browser(tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "no chromium on this machine (apt-get install chromium): the page is not rendered"
        )
    page = tmp_path / "page.html"
    assert main(["report", *map(str, DIRS), "--out", str(page)]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file(), "chromium wrote no screenshot"
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert float(pixels.std()) > 0.05  # not blank: text, badges and the table
    # the verdict badges are drawn: their green and red appear on the first screen
    green = np.all(np.abs(pixels - np.array([0x1A, 0x7F, 0x37]) / 255) < 0.03, axis=-1).sum()
    red = np.all(np.abs(pixels - np.array([0xCF, 0x22, 0x2E]) / 255) < 0.03, axis=-1).sum()
    assert green > 200 and red > 200


def test_blank_page_fails_the_variance_check(tmp_path):
    """The check above can fail: an empty page screenshots as one colour."""
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    shot = tmp_path / "blank.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    from matplotlib.image import imread

    assert float(imread(shot)[..., :3].std()) < 0.05


def test_sources_keep_their_data_unchanged():
    before = copy.deepcopy(load([DIRS[1]])[0].data)
    claims(load([DIRS[1]]))
    assert load([DIRS[1]])[0].data == before


def test_fresh_outputs_of_all_three_pillars(tmp_path, capsys):
    """The page on what this checkout's pillars write now (not only the committed, older reports): a
    short gate, a tiny estimate run and a tiny rates run, then the report over the three."""
    verify, est, rates = tmp_path / "v", tmp_path / "e", tmp_path / "r"
    assert (
        main(
            [
                "verify",
                "--only",
                "eq10.conjugate,eq10.p2,control.eq10.primal_norm,F.eq19.single_epoch",
                "--out",
                str(verify),
                "--quiet",
            ]
        )
        == 0
    )
    rng = np.random.default_rng(0)
    npz = tmp_path / "tiny.npz"
    np.savez(
        npz,
        x_train=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(64) % 10,
        x_test=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(16) % 10,
    )
    assert (
        main(
            [
                "estimate",
                "--model",
                "resnet18",
                "--width",
                "0.0625",
                "--data",
                str(npz),
                "--batch-size",
                "16",
                "--epochs",
                "2",
                "--checkpoints",
                "2",
                "--samples",
                "3",
                "--resamples",
                "100",
                "--threads",
                "1",
                "--quiet",
                "--out",
                str(est),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "rates",
                "--problem",
                "weak",
                "--optimizer",
                "lpsgd",
                "--T",
                "20,40,80",
                "--seeds",
                "3",
                "--K",
                "32",
                "--pilot-seeds",
                "3",
                "--boot",
                "200",
                "--quiet",
                "--out",
                str(rates),
            ]
        )
        == 0
    )
    sources = load([verify, est, rates])
    rows = claims(sources)
    by = {(r["claim"], r["kind"]): r for r in rows}
    assert by[("eq10", "verify")]["verdict"] == HOLDS and by[("eq10", "verify")][
        "number"
    ].startswith("2/2")
    a4 = by[("A4", "estimate")]
    assert (
        a4["verdict"] == HOLDS and "f* ≥ 0" in a4["number"]
    )  # the current report records where f* comes from
    a5 = by[("A5", "estimate")]
    assert "interval coverage" in a5["scope"] and "not recorded" not in a5["scope"]
    assert by[("thm1.cap", "estimate")]["verdict"] in (HOLDS, FAILS, UNCHECKED)
    assert ("thm1.rate", "rates") in by and ("thm1.bound", "rates") in by
    page = to_html(sources, rows)
    ids = set(re.findall(r'id="([^"]+)"', page))
    assert set(re.findall(r'href="#([^"]+)"', page)) <= ids
