"""Lemma 1 (eq. 29): the one-step descent inequality of LPSGD.

Proof in the paper: Assumption 1 (eq. 4), applied with the active norm ||.||_{p_s(t)}, at x =
theta_t and y = theta_{t+1} = eq. 22's update. The step is the displacement -eta u_t, linearity of
the inner product and 2-homogeneity of ||.||_p^2 (for every p > 1). Whether one L serves every
active p is a finding (F.A1.active_norm)."""

from lpcheck import formulas as F
from lpcheck.verify import obligation

from . import _descent as D


@obligation(
    "lemma1.eq29",
    "f(theta_{t+1}) <= f(theta_t) - eta <grad f(theta_t), u_t> + L eta^2/2 ||u_t||_p^2, "
    "from eq. 4 at y = theta_{t+1} = theta_t - eta u_t (eq. 22)",
    "4, 22, 26, 29",
    uses=("A1",),
)
def eq29():
    return D.lemma_substitution(lambda *a: F.eq29_rhs(*a), lambda *a: F.eq22_theta(*a), "u")
