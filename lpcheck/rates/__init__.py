"""Rate fitting: does a method reach O(T^-1/2) (eq. 33, 48), or the rate its paper claims, on
synthetic problems with known constants?

- `fit_slope(T, values, seed=0)`: log-log slope of the seed mean with a 95% interval over seeds
  (jackknife t ∪ studentized bootstrap).
- `Problem` (the protocol a problem implements), `PROBLEMS`, `make_problem(name)`: the problem
  library.
- `METHODS`, `make_method(name)`, `simulate(problem, method, T, eta, seeds)`: all seeds in one
  tensor.
- `resolve_method(spec)`: what `--optimizer SPEC` names (the paper's six, a lpcheck.methods name, or
  a user's 'MODULE:CLASS[:key=value,...]', a torch.optim.Optimizer or lpcheck.methods.Method
  subclass); `METRICS`.
- `rate_study(problem, method, rule, T_grid, ..., metric=, rate=)`: pilot, runs, bound check, fit
  and verdict (`verdict_rule(rate, tolerance)` says how); `StudyResult.from_dict(study)` types what
  it returns.

Names are loaded on first use, so `lpcheck rates --help` does not import torch.
"""

import importlib

_WHERE = {
    "fit_slope": "fit",
    "SlopeFit": "fit",
    "verdict": "fit",
    "VERDICT_RULE": "fit",
    "Problem": "problems",
    "PROBLEMS": "problems",
    "make_problem": "problems",
    "METHODS": "simulation",
    "make_method": "simulation",
    "simulate": "simulation",
    "resolve_method": "simulation",
    "METRICS": "simulation",
    "verdict_rule": "fit",
    "rate_study": "study",
    "StudyResult": "study",
    "STEP_RULES": "study",
}

__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f"lpcheck.rates.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lpcheck.rates' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
