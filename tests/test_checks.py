"""lpcheck.checks: what torch accepts as a number is accepted; everything else is one named
ValueError."""

import math

import numpy as np
import pytest
import torch

from lpcheck import checks


@pytest.mark.parametrize(
    "value",
    [
        0.5,
        1,
        np.float32(0.5),
        np.float64(0.5),
        np.int64(1),
        np.array(0.5),
        torch.tensor(0.5),
        torch.tensor([0.5]),
        torch.tensor(1, dtype=torch.int32),
    ],
)
def test_numbers_torch_accepts_are_accepted(value):
    v = checks.real("lr", value, low=0)
    assert type(v) is float and v == pytest.approx(
        float(np.asarray(value).item() if not isinstance(value, torch.Tensor) else value.item())
    )


@pytest.mark.parametrize(
    "value",
    [
        True,
        np.bool_(True),
        "0.1",
        None,
        1j,
        [0.1],
        torch.tensor([0.1, 0.2]),
        np.array([0.1, 0.2]),
        torch.tensor(True),
        float("nan"),
        np.float32("nan"),
    ],
)
def test_non_numbers_are_refused_with_the_name(value):
    with pytest.raises(ValueError, match="^lr must be"):
        checks.real("lr", value, low=0)


@pytest.mark.parametrize(
    "value, kwargs, text",
    [
        (-1, dict(low=0), ">= 0"),
        (0, dict(low=0, low_open=True), "> 0"),
        (math.inf, dict(low=0), "finite"),
        (1.0, dict(low=0, high=1, high_open=True), r"in \[0, 1\)"),
        (2, dict(high=1), "<= 1"),
    ],
)
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


def test_boolean():
    assert (
        checks.boolean("foreach", True) is True
        and checks.boolean("foreach", np.bool_(False)) is False
    )
    assert checks.boolean("fused", None, allow_none=True) is None
    for bad in (1, 0, "yes", None, torch.tensor(True)):
        with pytest.raises(ValueError, match="^foreach must be True or False"):
            checks.boolean("foreach", bad)


def test_infinity_allowed_is_named_in_the_range():
    with pytest.raises(ValueError, match=r"p must be a real number in \[2, inf\], got 1.5"):
        checks.real("p", 1.5, low=2, finite=False)


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16, np.float32, np.float16]
)
def test_representable_thresholds_are_the_dtypes_own(dtype):
    # the values just inside and just outside each threshold, against an actual cast
    zero_at, inf_at, _, _ = checks._limits(dtype)

    def cast(v):
        if isinstance(
            dtype, torch.dtype
        ):  # float32 casts once; half types via float32 (as torch does)
            return (
                torch.tensor(v, dtype=torch.float32 if dtype != torch.float32 else torch.float64)
                .to(dtype)
                .item()
            )
        with np.errstate(over="ignore"):
            return float(np.float64(v).astype(dtype))

    # torch casts a double to a half type through float32 (two roundings): step inside by more than
    # a float32 ulp (a subnormal one for bfloat16)
    half = dtype in (torch.float16, torch.bfloat16)
    inner = (
        [zero_at * (1 + 2**-10), inf_at * (1 - 2**-20)]
        if half
        else [math.nextafter(zero_at, 1), math.nextafter(inf_at, 0)]
    )
    for inside, outside in zip(inner, (zero_at, inf_at)):
        assert checks.representable("x", inside, dtype) == inside
        assert cast(inside) not in (0.0, math.inf)
        with pytest.raises(ValueError, match="rounds to 0|overflows"):
            checks.representable("x", outside, dtype)
        assert cast(outside) in (0.0, math.inf)
    assert checks.representable("x", 5e-324, torch.float64) == 5e-324


def test_power_representable_guards_eps_to_the_minus_rho():
    # eq. 21 at a zero gradient multiplies 0 by eps^-rho: inf in float32 for eps = 1e-40 at rho = 1
    assert checks.power_representable("eps", 1e-40, 0.5, torch.float32) == 1e-40
    with pytest.raises(
        ValueError, match=r"eps = 1e-40 is too small for torch.float32: eps\^-1 overflows"
    ):
        checks.power_representable("eps", 1e-40, 1.0, torch.float32)
    with pytest.raises(ValueError, match="too small for torch.float64"):
        checks.power_representable("eps", 1e-320, 1.0, torch.float64)
    assert checks.power_representable("eps", 1e-320, 0.9, torch.float64) == 1e-320
    assert checks.rounded(1e-40, torch.float32) == torch.tensor(1e-40).item()
