"""lpcheck.proofs.packs and lpcheck.proofs.descent_template: every pack holds (its controls
refuted), a planted mistake in a pack's key formula turns a claim red, and the template serves
Theorems 1-2 and a user's method."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from lpcheck.proofs import descent_template as DT
from lpcheck.proofs import packs
from lpcheck.verify import gate

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_EXAMPLE = ROOT / "examples" / "proofs" / "template"
NEW = ["lmo", "scion", "l0l1", "adaptive-norm"]


def run_pack(name, only=None):
    """Every obligation of a pack, in this process: {id: Result}."""
    obligations, _ = gate.collect(packs.load_pack(name))
    return {ob.id: ob.run() for ob in gate.select(obligations, only)}


# --- the table -----------------------------------------------------------------------------------


def test_packs_are_listed_by_name_with_what_they_check():
    listed = dict(packs.list_packs())
    assert next(iter(listed)) == packs.DEFAULT == "lpsgd"
    assert set(NEW) <= set(listed) and all(len(d) > 40 for d in listed.values())


def test_pack_modules_keep_order_and_load_shared_modules_once():
    from lpcheck.proofs import MODULES

    assert packs.pack_modules("lpsgd") == [f"lpcheck.proofs.{m}" for m in MODULES]
    both = packs.pack_modules(["scion", "l0l1"])
    assert both == [
        "lpcheck.proofs.packs.lmo",
        "lpcheck.proofs.packs.scion",
        "lpcheck.proofs.packs.l0l1_clipped",
    ]


@pytest.mark.parametrize("bad", ["nope", "", None, "LMO"])
def test_an_unknown_pack_is_a_value_error_naming_the_choices(bad):
    with pytest.raises(
        ValueError, match=r"--pack must be one of lpsgd, lmo, scion, l0l1, adaptive-norm"
    ):
        packs.pack_modules(bad)


# --- every pack holds, every control is refuted --------------------------------------------------


@pytest.fixture(scope="module", params=NEW)
def pack_results(request):
    return request.param, run_pack(request.param)


def test_every_claim_holds_and_every_control_is_refuted(pack_results):
    name, results = pack_results
    claims = [r for r in results.values() if r.kind != "control"]
    controls = [r for r in results.values() if r.kind == "control"]
    assert len(claims) >= 6 and len(controls) >= 4, (name, len(claims), len(controls))
    assert [r.id for r in claims if r.status not in ("proved", "held")] == []
    assert [r.id for r in controls if r.status != "refuted"] == []


def test_every_inequality_step_has_both_engines_on_one_statement(pack_results):
    _, results = pack_results
    for r in results.values():
        if (
            "z3" in r.engine and r.kind == "claim" and not r.id.endswith(".expectation")
        ):  # the axioms' z3 check
            assert "sympy" in r.engine and "[statement " in r.detail, r.id


# --- planted mistakes in a pack's key formulas ----------------------------------------------------


def _lmo_without_minus(d, radius):
    n = sp.sqrt(sp.Add(*[x**2 for x in d]))
    return [radius * x / n for x in d]


def _spectral_by_frobenius(d, norm, radius=1.0):
    d = np.asarray(d, dtype=float)
    if norm == "spectral":
        return -radius * d / np.linalg.norm(d)
    return MUTANT_ORIGINALS["lmo"](d, norm, radius)


MUTANT_ORIGINALS = {}
L0, L1 = sp.symbols("L0 L1", positive=True)
MUTANTS = [  # (pack, module, attribute, replacement, the obligations that must fail)
    ("lmo", "lmo", "lmo_l2", _lmo_without_minus, ["lmo.l2_pairing"]),
    ("lmo", "lmo", "lmo", _spectral_by_frobenius, ["lmo.conformance_spectral"]),
    (
        "scion",
        "scion",
        "descent_rhs",
        lambda f, s, r, g, e, L: f - s * r * g + 2 * s * r * e + L * s**2 * r**2 / 4,
        ["scion.descent", "scion.descent_momentum"],
    ),
    (
        "scion",
        "scion",
        "smooth_rhs",
        lambda f, inner, sq, L: f + inner + L / 4 * sq,
        ["scion.descent"],
    ),
    (
        "l0l1",
        "l0l1_clipped",
        "decrease",
        lambda G: G**2 / (L0 + L1 * G),
        ["l0l1.descent", "l0l1.regimes"],
    ),  # no 1/2
    ("l0l1", "l0l1_clipped", "step_length", lambda G: G / L0, ["l0l1.step_radius"]),  # no clipping
    (
        "adaptive-norm",
        "adaptive_norm",
        "ema",
        lambda v, g, b, w: v + g**2,
        ["adaptive.ema_bounded"],
    ),
    (
        "adaptive-norm",
        "adaptive_norm",
        "diagonal",
        lambda v, e: v + e,
        ["adaptive.diagonal_bounds"],
    ),
    (
        "adaptive-norm",
        "adaptive_norm",
        "preconditioner",
        None,
        ["adaptive.torch_adam"],
    ),  # without the square root
]


@pytest.mark.parametrize(
    "pack,module,attribute,replacement,must_fail", MUTANTS, ids=[f"{m[1]}.{m[2]}" for m in MUTANTS]
)
def test_a_planted_mistake_turns_a_claim_red(
    monkeypatch, pack, module, attribute, replacement, must_fail
):
    import importlib

    mod = importlib.import_module(f"lpcheck.proofs.packs.{module}")
    MUTANT_ORIGINALS[attribute] = getattr(mod, attribute)
    if replacement is None:  # Adam's A_t read from its state without the square root

        def replacement(opt, p):
            state, group = opt.state[p], opt.param_groups[0]
            return (
                state["exp_avg_sq"] / (1 - group["betas"][1] ** float(state["step"])) + group["eps"]
            )

    before = run_pack(pack, ",".join(must_fail))
    assert all(r.ok for r in before.values())
    monkeypatch.setattr(mod, attribute, replacement)
    after = run_pack(pack, ",".join(must_fail))
    assert [i for i, r in after.items() if r.ok] == [], {i: r.status for i, r in after.items()}


def test_the_method_layers_oracle_is_what_the_pack_checks(monkeypatch):
    from lpcheck.methods import norms
    from lpcheck.proofs.packs import lmo

    assert lmo.conformance_methods.run().ok
    original = norms.Layerwise._block_lmo
    monkeypatch.setattr(
        norms.Layerwise,
        "_block_lmo",
        lambda self, g, batched: -g / g.norm() if g.ndim == 2 else original(self, g, batched),
    )  # the spectral block normalised by its Frobenius norm
    assert (
        lmo.conformance_methods.run().status == "failed"
    )  # the l2 and l-inf checks hold, the spectral one not


# --- the template ---------------------------------------------------------------------------------


def test_theorems_keep_their_ids_through_the_template():
    from lpcheck.proofs import theorem1, theorem2

    ids = [ob.id for ob in gate.collect([theorem1, theorem2])[0]]
    assert ids == [
        "thm1.eq34",
        "thm1.eq35",
        "thm1.step_condition",
        "thm1.eq36",
        "thm1.eq37",
        "thm1.eq38",
        "thm1.eq39",
        "thm1.eq40",
        "thm1.rate_balanced",
        "thm1.rate",
        "control.thm1.step_cap_2x",
        "control.thm1.eq40_missing_2",
        "control.thm1.rate_missing_2",
        "control.thm1.alignment_reversed",
        "control.thm1.eq34_without_monotonicity",
        "control.thm1.eq38_index_shifted",
        "thm2.momentum_closed_form",
        "thm2.momentum_weights",
        "thm2.algorithm",
        "thm2.filtration",
        "thm2.eq49",
        "thm2.eq50",
        "thm2.eta0",
        "thm2.eq51",
        "thm2.eq52",
        "thm2.eq53",
        "thm2.lower_bound",
        "thm2.eq46",
        "thm2.eq47",
        "thm2.rate_balanced",
        "thm2.eq48",
        "control.thm2.eta0_2x",
        "control.thm2.weights_sum_to_one",
        "control.thm2.eq47_without_2",
    ]


def test_the_chain_for_theorem_1_is_the_template_on_eq36():
    from lpcheck import formulas as F
    from lpcheck.proofs import theorem1

    c1, c2, _ = theorem1.c
    eta, L = sp.symbols("eta L", positive=True)
    assert (
        sp.simplify(DT.claimed_bound(theorem1.STEP) - F.eq31_rhs(eta, c1, c2, L, DT.Delta, DT.T))
        == 0
    )
    for name in ("eq37", "eq38", "eq39", "eq40"):
        assert getattr(theorem1, name).run().status == "proved", name


def _step(**kw):
    gamma = sp.Symbol("gamma", positive=True)
    return DT.OneStep(**{"progress": gamma, "error": gamma**2, "symbol": "G", **kw})


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: DT.OneStep(progress=sp.Symbol("a", real=True), error=0),
            "progress must be positive",
        ),
        (lambda: _step(symbol="2x"), "symbol must be a name"),
        (lambda: DT.descent_chain("bad prefix", _step()), "prefix must be a dotted name"),
        (lambda: DT.descent_chain("ok", "not a step"), "step must be a OneStep"),
        (
            lambda: DT.descent_chain("ok", _step(), rule=1 / sp.sqrt(DT.T)),
            "a rate needs step_size, rule, rate",
        ),
        (
            lambda: DT.rate_at_step(
                DT.Delta / DT.T,
                sp.Symbol("gamma", positive=True),
                DT.T ** sp.Rational(-1, 3),
                1 / DT.T,
                constant=1,
            ),
            "rule must be a rational expression",
        ),
        (
            lambda: DT.rate_at_step(
                DT.Delta / DT.T,
                sp.Symbol("gamma", positive=True),
                sp.sin(DT.T),
                1 / DT.T,
                constant=1,
            ),
            "must be invertible for T > 0",
        ),
    ],
)
def test_the_template_rejects_bad_input_before_any_work(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_new_method_in_a_few_lines_gets_its_chain_and_rate():
    gamma, L = sp.symbols("gamma L", positive=True)
    chain = DT.descent_chain(
        "toy",
        DT.OneStep(progress=gamma, error=L * gamma**2 / 2, symbol="G", stochastic=False),
        step_size=gamma,
        rule=sp.sqrt(2 * DT.Delta / (L * DT.T)),
        rate=sp.sqrt(2 * DT.Delta * L / DT.T),
        constant=sp.sqrt(2 * DT.Delta * L),
    )
    assert sorted(ob.id for ob in chain.values()) == [
        "control.toy.divide_halved",
        "control.toy.telescope_shifted",
        "toy.divide",
        "toy.lower_bound",
        "toy.rate",
        "toy.telescope",
    ]
    assert {ob.module for ob in chain.values()} == {__name__}
    results = {ob.id: ob.run() for ob in chain.values()}
    assert all(r.ok for r in results.values()), {
        i: (r.status, r.detail[:300]) for i, r in results.items()
    }


def test_a_claimed_rate_the_step_does_not_give_is_refuted():
    gamma, L = sp.symbols("gamma L", positive=True)
    step = DT.OneStep(progress=gamma, error=L * gamma**2 / 2, stochastic=False)
    bound = DT.claimed_bound(step)
    checks = DT.rate_at_step(
        bound,
        gamma,
        sp.sqrt(2 * DT.Delta / (L * DT.T)),
        sp.sqrt(DT.Delta * L / (2 * DT.T)),
        constant=sp.sqrt(DT.Delta * L / 2),
        multiplier=0,
    )
    assert [c.status for c in checks if c.engine == "z3"] == ["refuted"]
    assert any(c.engine == "sympy" and c.status == "refuted" for c in checks)


def test_the_user_example_runs_through_the_cli(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpcheck",
            "verify",
            "--proofs",
            str(TEMPLATE_EXAMPLE),
            "--no-builtin",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "verify.json").read_text())
    ids = [o["id"] for o in report["obligations"]]
    assert ids == [
        "sgd.one_step",
        "sgd.rule_admissible",
        "sgd.expectation",
        "sgd.telescope",
        "sgd.lower_bound",
        "sgd.divide",
        "sgd.rate",
        "control.sgd.telescope_shifted",
        "control.sgd.divide_halved",
    ]


# --- the command line: --list-packs, --pack NAME --------------------------------------------------


def test_list_packs_prints_one_line_per_pack(capsys):
    from lpcheck import cli

    assert cli.main(["verify", "--list-packs"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == [name for name, _ in packs.list_packs()]


def test_pack_chooses_the_builtin_obligations_and_lpsgd_stays_the_default(capsys):
    from lpcheck import cli

    assert cli.main(["verify", "--list"]) == 0
    default = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "thm1.eq40" in default and not any(i.startswith(("lmo.", "scion.")) for i in default)
    assert cli.main(["verify", "--list", "--pack", "scion", "--pack", "l0l1"]) == 0
    chosen = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "thm1.eq40" not in chosen and chosen.count("lmo.l2_pairing") == 1
    assert {
        "scion.descent",
        "scion.rate",
        "l0l1.descent",
        "l0l1.rate",
        "control.l0l1.unclipped_radius",
    } <= set(chosen)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["verify", "--pack", "nope"], "--pack must be one of lpsgd, lmo"),
        (
            ["verify", "--pack", "lmo", "--no-builtin", "--proofs", str(TEMPLATE_EXAMPLE)],
            "exclude each other",
        ),
    ],
)
def test_bad_pack_arguments_exit_2_before_anything_runs(argv, match, capsys, tmp_path):
    from lpcheck import cli

    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_pack_runs_through_the_cli_and_passes(tmp_path):
    argv = [
        sys.executable,
        "-m",
        "lpcheck",
        "verify",
        "--pack",
        "lmo",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "verify.json").read_text())
    ids = [o["id"] for o in report["obligations"]]
    assert ids and all(i.startswith(("lmo.", "control.lmo.")) for i in ids)
    assert report["summary"]["controls"] == sum(i.startswith("control.") for i in ids) >= 4
