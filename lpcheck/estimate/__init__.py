"""Constant estimators (Assumptions 5 and 6): plain tensor functions first.

`stoch_grads` is a (K, d) array of K stochastic gradients at one point (numpy or torch; the
result is of the same kind). The per-sample functions return K values, one per gradient, for
bootstrap intervals; the plain ones are their means, the left sides of eq. 27 and eq. 28.
"""

from lpcheck.estimate.core import alignment, alignment_samples, second_moment, second_moment_samples

__all__ = ["alignment", "alignment_samples", "second_moment", "second_moment_samples"]
