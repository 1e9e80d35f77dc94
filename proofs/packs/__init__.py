"""Proof packs: sets of obligation modules chosen by name (`lpcheck verify --pack NAME`,
`--list-packs`).

A pack is one method's claims, as obligations with their negative controls. `lpsgd` is the paper's
(Xu & Yang: LPSGD/LPSGDM, lpcheck's conformance, the referee's findings) and the default. The
others check methods users compare LPSGD with, each in its own module here, and reuse the chain of
`lpcheck.proofs.descent_template`:

    lmo            linear minimization oracles for l2, l-inf and spectral balls
    scion          uSCG/Scion (Pethick et al. 2025), deterministic and with momentum
    l0l1           the clipped hybrid step under (L0, L1)-smoothness (Pethick, Xie et al. 2025)
    adaptive-norm  Adam/RMSProp preconditioners as ellipsoidal trust-region norms
                   (Kohler et al. 2019)

    from lpcheck.proofs.packs import list_packs, load_pack
    list_packs()            # [(name, description), ...]
    load_pack("scion")      # [module, ...]: what the gate collects obligations from
"""

from __future__ import annotations

import importlib

__all__ = ["DEFAULT", "PACKS", "list_packs", "load_pack", "pack_modules"]

DEFAULT = "lpsgd"


def _lpsgd():
    from lpcheck.proofs import MODULES

    return [f"lpcheck.proofs.{m}" for m in MODULES]


_HERE = "lpcheck.proofs.packs"

# name -> (what it checks, in one line; its modules, in order). lpsgd's list is the paper's MODULES.
PACKS = {
    "lpsgd": (
        "LPSGD/LPSGDM (Xu & Yang): eq. 10-53, Lemmas 1-2, Theorems 1-2, lpcheck's conformance, "
        "the findings",
        None,
    ),
    "lmo": (
        (
            "linear minimization oracles (l2, l-inf, spectral): <d, lmo(d)> = -rho ||d||_*, "
            "||lmo(d)|| <= rho, optimality, the momentum inequality; a reference lmo and "
            "lpcheck.methods.norms' checked numerically"
        ),
        [f"{_HERE}.lmo"],
    ),
    "scion": (
        (
            "uSCG/Scion (Pethick et al. 2025): the LMO descent lemma with and without momentum, "
            "the template's chain, O(T^-1/2) at gamma ~ T^-1/2"
        ),
        [f"{_HERE}.lmo", f"{_HERE}.scion"],
    ),
    "l0l1": (
        (
            "the hybrid clipped step under (L0, L1)-smoothness (Pethick, Xie et al. 2025): descent "
            "inequality, radius, descent in two regimes, min ||grad f||_* <= sqrt(2 L0 Delta/T) + "
            "2 L1 Delta/T"
        ),
        [f"{_HERE}.lmo", f"{_HERE}.l0l1_clipped"],
    ),
    "adaptive-norm": (
        (
            "Adam/RMSProp preconditioners as ellipsoidal trust-region norms (Kohler et al. 2019): "
            "eps I <= A_t <= (G_inf + eps) I, norm equivalence, Cauchy decrease; torch's "
            "Adam/RMSprop state checked"
        ),
        [f"{_HERE}.adaptive_norm"],
    ),
}


def list_packs():
    """[(name, one-line description)] in table order."""
    return [(name, description) for name, (description, _) in PACKS.items()]


def _check(name):
    if not isinstance(name, str) or name not in PACKS:
        raise ValueError(
            f"--pack must be one of {', '.join(PACKS)} (see --list-packs), got {name!r}"
        )


def pack_modules(names):
    """The module names of the packs `names` (a name or a list of them), in order, each module
    once."""
    names = list(names) if isinstance(names, (list, tuple)) else [names]
    for name in names:
        _check(name)
    out = []
    for name in names:
        modules = PACKS[name][1] if PACKS[name][1] is not None else _lpsgd()
        out += [m for m in modules if m not in out]
    return out


def load_pack(name):
    """The imported modules of pack `name` (or of a list of packs), in order."""
    return [importlib.import_module(m) for m in pack_modules(name)]
