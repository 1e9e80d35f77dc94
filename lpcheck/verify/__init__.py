"""The proof gate (`lpcheck verify`): the paper's claims as named obligations, checked by engines.

Write your own obligations with these names (see the README, "Adding an obligation"):

    from lpcheck.verify import obligation, control, finding, Witness
    from lpcheck.verify.engines import (
        sympy_equal, sympy_nonneg, sympy_limit, z3_implies, numeric_forall,
    )
"""

from lpcheck.verify.core import Check, Obligation, Witness, control, finding, obligation
from lpcheck.verify.gate import gate_passes, run_gate

__all__ = [
    "Check",
    "Obligation",
    "Witness",
    "control",
    "finding",
    "obligation",
    "run_gate",
    "gate_passes",
]
