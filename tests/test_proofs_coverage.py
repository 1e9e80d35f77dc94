"""The proof gate checks what it says: every formula is used by an obligation, a wrong formula turns
the gate red, and the theorems' inequality steps are checked by both engines on the same
statement."""

import json
import subprocess
import sys
import textwrap

import pytest

from lpcheck import formulas as F
from lpcheck.proofs import _coverage

# each mutant is a plausible slip in formulas.py, and the obligations that must catch it
MUTANTS = {
    "eq47_step": (
        "lambda eta0, c2, L, delta, T: sp.Min(eta0, sp.sqrt(delta / (L * c2 * T)))",
        "thm2.eq47,thm2.eq48",
    ),
    "eq23_m": ("lambda m, g, beta: beta * m + g", "thm2.momentum_*"),
    "eq41_weight_sum": ("lambda beta, t: 1 - beta ** t", "thm2.momentum_weights"),
    "eq43_alignment": ("lambda A, G, c1: sp.Ge(A, c1 * G / 2)", "thm2.eq50"),
    "eq29_rhs": (
        "lambda f, eta, inner, sq, L: f - eta * inner + L * eta**2 / 4 * sq",
        "lemma1.eq29,thm1.eq34,thm1.eq35",
    ),
    "eq31_rhs": (
        "lambda eta, c1, c2, L, delta, T: delta / (eta * c1 * T) + L * eta * c2 / c1",
        "thm1.eq40",
    ),
    "eq22_theta": ("lambda theta, eta, u: theta + eta * u", "lemma1.eq29"),
    "eq24_v": (
        "lambda m, p, eps: m / (abs(m) + eps) ** ((p - 1) / (p - 2))",
        "thm2.algorithm,thm2.filtration",
    ),
    "eq9_objective": (
        "lambda g, d, p, eta: eta * sum(a * b for a, b in zip(g, d)) + F.lp_norm(d, p) ** 2",
        "eq10.minimizer_numeric",
    ),
}

SCRIPT = textwrap.dedent("""
    import json, sys
    import sympy as sp
    from lpcheck import formulas as F
    from lpcheck.verify import gate
    mutants = json.loads(sys.argv[1])
    selection = sorted({o for _, o in mutants.values()} | {"thm1.*", "thm2.*", "lemma*"})
    out = {"baseline": gate.run_gate(only=",".join(selection), jobs=0)["obligations"]}
    for name, (code, only) in mutants.items():
        original = getattr(F, name)
        setattr(F, name, eval(code))
        try:
            out[name] = gate.run_gate(only=only, jobs=0)["summary"]["failing"]
        finally:
            setattr(F, name, original)
    print(json.dumps(out))
""")


def test_every_public_formula_is_used_by_a_claim():
    used = _coverage.formulas_by_obligation()
    by_claims = set().union(*[v for k, v in used.items() if not k.startswith("control.")])
    public = {
        n for n in F.__all__ if callable(getattr(F, n))
    }  # SYMBOLS is a dict of symbols, not a formula
    assert public - by_claims == set(), f"formulas no claim uses: {sorted(public - by_claims)}"


def test_the_static_analysis_follows_helpers_across_modules():
    used = _coverage.formulas_by_obligation()
    assert (
        "eq29_rhs" in used["thm1.eq34"] and "eq45_rhs" in used["thm2.eq49"]
    )  # through _descent and FORMS
    assert {"eq47_step", "thm2_eta0", "eq48_rate"} <= used["thm2.eq48"]
    assert "eq47_step" not in used["thm1.rate"] and "eq19_p" not in used["thm1.eq38"]


@pytest.fixture(scope="module")
def mutated():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(MUTANTS)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_unmutated_steps_hold_with_both_engines_on_the_same_statement(mutated):
    claims = [o for o in mutated["baseline"] if o["kind"] == "claim"]
    assert claims and all(o["ok"] for o in claims), [o["id"] for o in claims if not o["ok"]]
    steps = [o for o in claims if o["id"].split(".")[0] in ("thm1", "thm2", "lemma1", "lemma2")]
    for o in steps:
        if "z3" in o["engine"]:  # every step z3 checks, sympy checks too
            assert "sympy" in o["engine"], o["id"]
    paired = [o["id"] for o in steps if "[statement " in o["detail"]]
    assert len(paired) >= 18, paired  # sympy-with-certificate and z3 on one digest


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_wrong_formula_turns_a_claim_red(mutated, name):
    assert mutated[name], f"no obligation failed with {name} = {MUTANTS[name][0]}"
