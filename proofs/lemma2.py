"""Lemma 2 (eq. 45): the one-step descent inequality of the momentum method (eq. 42), as Lemma 1 with v_t."""

from lpcheck.verify import obligation

from . import _descent as D


@obligation("lemma2.eq45", "f(theta_{t+1}) <= f(theta_t) - eta <grad f(theta_t), v_t> + L eta^2/2 ||v_t||_p^2, "
            "from eq. 4 with theta_{t+1} - theta_t = -eta v_t", "4, 42, 45", uses=("A1",))
def eq45():
    return D.lemma_substitution()
