"""Constant estimators: Assumptions 1, 3, 5 and 6 of the paper, measured on any torch model.

Plain tensor functions first (`core`): `stoch_grads` is a (K, d) array of K stochastic gradients at
one point (numpy or torch; the result is of the same kind). The per-sample functions return
K values, one per gradient, for the intervals of `fit` (Student t with Hall's skewness correction);
the plain ones are their means: the left sides of eq. 27-28 (Assumption 5), eq. 43-44 (Assumption 6,
conditional on the momentum buffer) and eq. 6 (Assumption 3). `smoothness` holds the lp smoothness
ratios of Assumption 1, `fit` the fitting over checkpoints, and `Probe` (imported on first use: it
needs torch) measures all of them inside a training loop.
"""

from lpcheck.estimate.core import (
    alignment,
    alignment_samples,
    momentum_alignment,
    momentum_alignment_samples,
    momentum_directions,
    momentum_second_moment,
    momentum_second_moment_samples,
    noise,
    noise_samples,
    second_moment,
    second_moment_samples,
)

__all__ = [
    "alignment",
    "alignment_samples",
    "second_moment",
    "second_moment_samples",
    "momentum_directions",
    "momentum_alignment",
    "momentum_alignment_samples",
    "momentum_second_moment",
    "momentum_second_moment_samples",
    "noise",
    "noise_samples",
    "Probe",
    "fit_run",
    "FitResult",
]


def __getattr__(name):
    if name == "Probe":
        from lpcheck.estimate.probe import Probe

        return Probe
    if name in ("fit_run", "FitResult"):
        from lpcheck.estimate import fit

        return getattr(fit, name)
    raise AttributeError(f"module 'lpcheck.estimate' has no attribute {name!r}")
