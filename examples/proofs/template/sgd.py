"""A new method through the descent template in a few lines: SGD under L-smoothness and bounded
variance.

    lpcheck verify --proofs examples/proofs/template --no-builtin

The method's own part is its one-step descent inequality (one obligation). For x+ = x - gamma g with
E[g | x] = grad f(x) and E[||g - grad f(x)||^2 | x] <= sigma^2, L-smoothness gives, with G = ||grad
f(x)||^2, E[f(x+) | x] <= f(x) - gamma G + L gamma^2 (G + sigma^2)/2, which is at most f(x) - gamma
G/2 + L gamma^2 sigma^2/2 when gamma <= 1/L. `descent_chain` turns that into (1/T) sum_t E G_t <= 2
Delta/(gamma T) + L gamma sigma^2 for every T and, at gamma = sqrt(2 Delta/(L sigma^2 T)), into 2
sqrt(2 Delta L sigma^2/T). The template does not know the method's step condition, so the rule's
admissibility (gamma <= 1/L once T >= 2 Delta L/sigma^2) is stated here."""

import sympy as sp

from lpcheck.proofs import descent_template as DT
from lpcheck.verify import obligation

gamma, L, sigma = sp.symbols("gamma L sigma", positive=True)
G = sp.Symbol("G", nonnegative=True)
F0, F1 = sp.symbols("f_x E_f_next", real=True)  # f(x_t), E[f(x_{t+1}) | x_t]
RULE = sp.sqrt(2 * DT.Delta / (L * sigma**2 * DT.T))


@obligation(
    "sgd.one_step",
    "E[f(x+) | x] <= f(x) - gamma G + L gamma^2 (G + sigma^2)/2 and gamma <= 1/L give E[f(x+) "
    "| x] <= f(x) - gamma G/2 + L gamma^2 sigma^2/2",
    uses=("L-smooth", "unbiased", "variance"),
)
def one_step():
    smooth = sp.Le(F1, F0 - gamma * G + L * gamma**2 / 2 * (G + sigma**2))
    return DT.both_engines(
        [smooth, sp.Le(gamma, 1 / L)],
        sp.Le(F1, F0 - gamma / 2 * G + L * gamma**2 * sigma**2 / 2),
        [1, gamma * G * L / 2],
    )


@obligation(
    "sgd.rule_admissible",
    "the rule gamma = sqrt(2 Delta/(L sigma^2 T)) satisfies gamma <= 1/L once T >= 2 "
    "Delta L/sigma^2",
)
def rule_admissible():
    r = sp.Symbol("r", positive=True)  # the rule, by its equation r^2 = 2 Delta/(L sigma^2 T)
    hyps = [
        sp.Eq(r**2 * L * sigma**2 * DT.T, 2 * DT.Delta),
        sp.Ge(DT.T, 2 * DT.Delta * L / sigma**2),
    ]
    scale = DT.T * (1 + L * r)  # 1/L - r = (1/L^2 - r^2)/(1/L + r)
    return DT.both_engines(hyps, sp.Le(r, 1 / L), [1 / (sigma**2 * scale), 1 / (L * scale)])


globals().update(
    DT.descent_chain(
        "sgd",
        DT.OneStep(
            progress=gamma / 2,
            error=L * gamma**2 * sigma**2 / 2,
            measure="||grad f(x_t)||_2^2",
            symbol="G",
        ),
        step_size=gamma,
        rule=RULE,
        rate=2 * sp.sqrt(2 * DT.Delta * L * sigma**2 / DT.T),
        constant=2 * sp.sqrt(2 * DT.Delta * L * sigma**2),
        uses=("f >= f*",),
    )
)
