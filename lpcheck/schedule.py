"""The cosine lp-norm schedule (eq. 19), epochs counted from 1 as in Algorithms 1-2."""

from __future__ import annotations

import math
from typing import Any

from lpcheck import checks

__all__ = ["cosine_p", "check_epoch", "check_total_epochs", "check_p_max"]


def check_total_epochs(total_epochs: Any) -> int:
    """total_epochs (S in eq. 19) as an int >= 1, or ValueError naming it (numbers as torch takes
    them)."""
    return checks.integer("total_epochs", total_epochs, low=1)


def check_p_max(p_max: Any) -> float:
    """p_max as a float in [2, inf), or ValueError naming it (eq. 19 is NaN at s = S for
    p_max = inf)."""
    return checks.real("p_max", p_max, low=2.0)


def check_epoch(epoch: Any, total_epochs: Any = None) -> int:
    """epoch s as an int in [1, total_epochs] (no upper bound when total_epochs is None)."""
    upper = None if total_epochs is None else check_total_epochs(total_epochs)
    epoch = checks.integer("epoch", epoch)
    if not 1 <= epoch <= (math.inf if upper is None else upper):
        bound = (
            "an integer >= 1"
            if upper is None
            else f"an integer in [1, total_epochs] = [1, {upper}]"
        )
        raise ValueError(f"epoch must be {bound}, got {epoch}")
    return epoch


def cosine_p(epoch: Any, total_epochs: Any, p_max: Any) -> float:
    """eq. 19: p_s = 2 + (p_max - 2) (1 + cos(pi (s-1)/(S-1))) / 2 for epoch s in [1, S].

    p_1 = p_max and p_S = 2 exactly; p is non-increasing in s. For S = 1 the formula is 0/0; we take
    the value every S > 1 gives at s = 1 ((s-1)/(S-1) = 0), i.e. p_1 = p_max: the one epoch runs at
    the schedule's starting geometry.
    """
    total_epochs = check_total_epochs(total_epochs)
    epoch = check_epoch(epoch, total_epochs)
    p_max = check_p_max(p_max)
    if epoch == 1:
        return p_max
    if epoch == total_epochs:
        return 2.0
    # (1 + cos(pi t))/2 = cos^2(pi t/2) = sin^2(pi (1-t)/2): the same number without the
    # cancellation of 1 + cos near t = 1; the argument kept below pi/4 keeps every digit of the
    # result.
    done, left = epoch - 1, total_epochs - epoch
    if done <= left:
        w = math.cos(math.pi * done / (2 * (total_epochs - 1))) ** 2
    else:
        w = math.sin(math.pi * left / (2 * (total_epochs - 1))) ** 2
    return 2 + (p_max - 2) * w
