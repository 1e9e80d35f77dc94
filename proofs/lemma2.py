"""Lemma 2 (eq. 45): the one-step descent inequality of the momentum method (eq. 42), as Lemma 1
with v_t; and a control showing it does not extend to eq. 25's decoupled weight decay (lambda >
0)."""

from lpcheck import formulas as F
from lpcheck.verify import control, obligation

from . import _descent as D


@obligation(
    "lemma2.eq45",
    "f(theta_{t+1}) <= f(theta_t) - eta <grad f(theta_t), v_t> + L eta^2/2 ||v_t||_p^2, "
    "from eq. 4 at y = theta_{t+1} = theta_t - eta v_t (eq. 42)",
    "4, 42, 45",
    uses=("A1",),
)
def eq45():
    return D.lemma_substitution(lambda *a: F.eq45_rhs(*a), lambda *a: F.eq42_theta(*a), "v")


@control(
    "control.lemma2.weight_decay",
    "eq. 45 holds for eq. 25's update with weight decay lambda > 0 (checked at p = 2, where "
    "eq. 4 is explicit)",
    "25, 45",
)
def weight_decay():
    return D.lemma_with_weight_decay(lambda *a: F.eq45_rhs(*a))
