"""A user's own problem, exactly as the README's "Rate fitting" section writes it (tests load it by
name)."""

import torch

from lpcheck.rates import Problem
from lpcheck.rates.problems import diagonal_smoothness


class Cosine(Problem):
    """f = sum_i (1 - cos theta_i): nonconvex, f* = 0; f'' = cos <= 1, so
    L_p = ||1||_{p/(p-2)} = d^((p-2)/p)."""

    name = "cosine"

    def __init__(self, d=4, sigma=0.3):
        self.d, self.sigma, self.f_star = d, sigma, 0.0  # sigma: the default Gaussian noise
        self.x0 = torch.full((d,), 2.0, dtype=torch.float64)

    def f(self, theta):  # theta: (n, d), one row per seed
        return (1 - torch.cos(theta)).sum(-1)

    def grad(self, theta):
        return torch.sin(theta)

    def L(self, p):
        return diagonal_smoothness(torch.ones(self.d), p)
