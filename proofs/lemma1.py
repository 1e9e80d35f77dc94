"""Lemma 1 (eq. 29): the one-step descent inequality of LPSGD.

Proof in the paper: Assumption 1 (eq. 4), applied with the active norm ||.||_{p_s(t)}, at x = theta_t and
y = theta_{t+1} = theta_t - eta u_t. The step is linearity of the inner product and 2-homogeneity of
||.||_p^2. Whether one L serves every active p is a finding (F.A1.active_norm).
"""

from lpcheck.verify import obligation

from . import _descent as D


@obligation("lemma1.eq29", "f(theta_{t+1}) <= f(theta_t) - eta <grad f(theta_t), u_t> + L eta^2/2 ||u_t||_p^2, "
            "from eq. 4 with theta_{t+1} - theta_t = -eta u_t", "4, 26, 29", uses=("A1",))
def eq29():
    return D.lemma_substitution()
