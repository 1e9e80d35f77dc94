"""lpcheck.formulas against the paper's equations typed again by hand, at numbers.

formulas.py is the spec the gate proves things about and ties lpcheck's code to; a slip there (a
wrong offset in eq. 19, a lost factor in eq. 31) can leave every proof true and every conformance
check green if the code carries the same slip. These values are the paper's text evaluated
independently."""

import math

import pytest
import sympy as sp

from lpcheck import formulas as F

p, eps, g, eta, beta, lam = 3.7, 1e-3, -0.42, 0.05, 0.8, 0.1
c1, c2, c3, L, delta, T = 0.3, 2.0, 0.7, 5.0, 1.5, 1000


def num(expr):
    return float(sp.N(sp.sympify(expr), 30))


def test_exponents_and_norm():
    assert num(F.dual_exponent(sp.Float(p))) == pytest.approx(p / (p - 1), rel=1e-15)
    assert num(F.eq20_rho(sp.Float(p))) == pytest.approx((p - 2) / (p - 1), rel=1e-15)
    assert num(F.eq16_alpha(sp.Float(p))) == pytest.approx(1 / (p - 1), rel=1e-15)
    assert num(F.lp_norm([sp.Float(3), sp.Float(-4)], sp.Float(2))) == pytest.approx(5.0, rel=1e-15)


@pytest.mark.parametrize(
    "s, S, p_max", [(1, 10, 8.0), (4, 10, 8.0), (10, 10, 8.0), (2, 3, 4.0), (7, 12, 16.0)]
)
def test_eq19_cosine_schedule(s, S, p_max):
    want = (
        2 + (p_max - 2) * (1 + math.cos(math.pi * (s - 1) / (S - 1))) / 2
    )  # epochs from 1: p_1 = p_max, p_S = 2
    assert num(F.eq19_p(s, S, sp.Float(p_max))) == pytest.approx(want, rel=1e-14)


def test_eq10_and_eq11_steps():
    N = 1.3  # ||g||_q
    rho = (p - 2) / (p - 1)
    assert num(F.eq10_step(sp.Float(g), sp.Float(N), sp.Float(p), sp.Float(eta))) == pytest.approx(
        -eta * N**rho * g / abs(g) ** rho, rel=1e-14
    )
    assert num(
        F.eq10_step_magnitude(sp.Float(abs(g)), sp.Float(N), sp.Float(p), sp.Float(eta))
    ) == pytest.approx(eta * N**rho * abs(g) ** (1 - rho), rel=1e-14)
    assert num(
        F.eq11_step(sp.Float(g), sp.Float(p), sp.Float(eps), sp.Float(eta))
    ) == pytest.approx(-eta * g / (abs(g) + eps) ** rho, rel=1e-14)


def test_the_algorithms_lines():
    rho = (p - 2) / (p - 1)
    u = g / (abs(g) + eps) ** rho
    P, E, G = sp.Float(p), sp.Float(eps), sp.Float(g)
    assert num(F.eq21_u(G, P, E)) == pytest.approx(u, rel=1e-14)
    assert num(F.eq22_theta(1.0, eta, u)) == pytest.approx(1.0 - eta * u, rel=1e-14)
    m = beta * 0.2 + (1 - beta) * g  # EMA momentum, not torch's beta m + g
    assert num(F.eq23_m(sp.Float(0.2), G, sp.Float(beta))) == pytest.approx(m, rel=1e-14)
    v = m / (abs(m) + eps) ** rho
    assert num(F.eq24_v(sp.Float(m), P, E)) == pytest.approx(v, rel=1e-14)
    assert num(F.eq25_theta(1.0, eta, lam, v)) == pytest.approx(
        (1 - eta * lam) * 1.0 - eta * v, rel=1e-14
    )
    assert num(F.eq42_theta(1.0, eta, v)) == pytest.approx(1.0 - eta * v, rel=1e-14)
    assert num(F.eq41_weight_sum(sp.Float(beta), 4)) == pytest.approx(1 - beta**5, rel=1e-14)


def test_theorem_1_and_2_bounds():
    C = [sp.Float(x) for x in (c1, c2, c3, L, delta)]
    assert num(F.eq30_step_cap(C[0], C[3], C[2])) == pytest.approx(c1 / (L * c3), rel=1e-14)
    rhs = 2 * delta / (eta * c1 * T) + L * eta * c2 / c1
    assert num(F.eq31_rhs(sp.Float(eta), C[0], C[1], C[3], C[4], T)) == pytest.approx(
        rhs, rel=1e-14
    )
    step = min(c1 / (L * c3), math.sqrt(2 * delta / (L * c2 * T)))
    assert num(F.eq32_step(*C, T)) == pytest.approx(step, rel=1e-14)
    rate = 2 / c1 * math.sqrt(2 * delta * L * c2 / T) + 2 * delta * L * c3 / (c1**2 * T)
    assert num(F.eq33_rate(*C, T)) == pytest.approx(rate, rel=1e-14)
    assert num(F.eq48_rate(*C, T)) == pytest.approx(rate, rel=1e-14)
    assert num(F.thm2_eta0(C[0], C[3], C[2])) == pytest.approx(c1 / (L * c3), rel=1e-14)
    assert num(F.eq47_step(sp.Float(0.01), C[1], C[3], C[4], T)) == pytest.approx(
        min(0.01, math.sqrt(2 * delta / (L * c2 * T))), rel=1e-14
    )
    descent = 3.0 - eta * 0.4 + L * eta**2 / 2 * 0.9
    assert num(F.eq29_rhs(3.0, eta, 0.4, 0.9, L)) == pytest.approx(descent, rel=1e-14)
    assert num(F.assumption1_rhs(3.0, 0.4, 0.9, L)) == pytest.approx(
        3.0 + 0.4 + L / 2 * 0.9, rel=1e-14
    )
