"""lpcheck.checks: what torch accepts as a number is accepted; everything else is one named ValueError."""

import math

import numpy as np
import pytest
import torch

from lpcheck import checks


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.float64(0.5), np.int64(1), np.array(0.5),
                                   torch.tensor(0.5), torch.tensor([0.5]), torch.tensor(1, dtype=torch.int32)])
def test_numbers_torch_accepts_are_accepted(value):
    v = checks.real("lr", value, low=0)
    assert type(v) is float and v == pytest.approx(float(np.asarray(value).item() if not isinstance(value, torch.Tensor) else value.item()))


@pytest.mark.parametrize("value", [True, np.bool_(True), "0.1", None, 1j, [0.1], torch.tensor([0.1, 0.2]),
                                   np.array([0.1, 0.2]), torch.tensor(True), float("nan"), np.float32("nan")])
def test_non_numbers_are_refused_with_the_name(value):
    with pytest.raises(ValueError, match="^lr must be"):
        checks.real("lr", value, low=0)


@pytest.mark.parametrize("value, kwargs, text", [
    (-1, dict(low=0), ">= 0"), (0, dict(low=0, low_open=True), "> 0"), (math.inf, dict(low=0), "finite"),
    (1.0, dict(low=0, high=1, high_open=True), r"in \[0, 1\)"), (2, dict(high=1), "<= 1"),
])
def test_out_of_range_names_the_range(value, kwargs, text):
    with pytest.raises(ValueError, match=text):
        checks.real("x", value, **kwargs)


def test_infinity_only_where_allowed():
    assert checks.real("p", math.inf, low=2, finite=False) == math.inf
    with pytest.raises(ValueError, match="finite"):
        checks.real("p", math.inf, low=2)


def test_integers():
    assert checks.integer("T", np.int32(3), low=1) == 3 and checks.integer("T", 4.0) == 4
    assert checks.integer("T", torch.tensor(5), low=1) == 5
    for bad in (3.5, True, "3", float("inf")):
        with pytest.raises(ValueError, match="^T must be an integer"):
            checks.integer("T", bad, low=1)
    with pytest.raises(ValueError, match=r"in \[1, 10\]"):
        checks.integer("T", 11, low=1, high=10)


def test_representable_refuses_values_that_round_to_zero_or_overflow():
    assert checks.representable("eps", 1e-8, torch.float32) == 1e-8
    assert checks.representable("eps", 1e-46, torch.float64) == 1e-46
    with pytest.raises(ValueError, match="eps = 1e-46 rounds to 0 in torch.float32"):
        checks.representable("eps", 1e-46, torch.float32)
    with pytest.raises(ValueError, match="overflows in torch.float16"):
        checks.representable("lr", 1e6, torch.float16)
    assert checks.representable("wd", 0.0, torch.float16) == 0.0
