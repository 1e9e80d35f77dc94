"""Rate fitting: does a method reach O(T^-1/2) (eq. 33, 48) on synthetic problems with known constants?"""

from lpcheck.rates.fit import SlopeFit, fit_slope, verdict
from lpcheck.rates.problems import PROBLEMS, Problem, make_problem
from lpcheck.rates.simulate import METHODS, make_method, simulate

__all__ = ["fit_slope", "SlopeFit", "verdict", "Problem", "PROBLEMS", "make_problem", "METHODS", "make_method",
           "simulate"]
