"""lpcheck's obligations: the paper's claims as code, one module per claim (see DESIGN.md).

Installed as the subpackage `lpcheck.proofs`; `lpcheck verify` runs the modules below in this order,
which is the paper's order (Sections 4-5), then the conformance checks of lpcheck's own code, then
the findings.
"""

MODULES = [
    "eq10_minimizer",  # Section 4.1: eq. 9 -> eq. 10
    "eq11_rescale",  # eq. 11 against eq. 10
    "eq16_power_law",  # eq. 14-16
    "eq19_schedule",  # eq. 19-20
    "lemma1",  # eq. 29
    "theorem1",  # eq. 30-40, 32-33
    "lemma2",  # eq. 45
    "theorem2",  # eq. 46-53, 47-48
    # lpcheck.lp / schedule / optim / bounds / estimate compute what formulas.py states
    "conformance",
    # what users run: every optimizer path, param groups, resume, p = 2 / inf, the methods
    "conformance_optim",
    # the estimators' statistics and intervals, the rates' slope, step and bound check
    "conformance_stats",
    "findings",  # the referee's report, each with a computed witness
]
