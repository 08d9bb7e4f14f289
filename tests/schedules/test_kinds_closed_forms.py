"""Kinds: closed forms from independent formulas, parameter validation, step validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrkit.schedules import (
    WSD,
    Constant,
    Cosine,
    Cyclic,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    OneCycle,
    Plateau,
    Polynomial,
    Restarts,
    Step,
)


def _timm_cosine(t: int, t_initial: int, cycle_mul: float, cycle_decay: float, lr_min: float):
    """timm's CosineLRScheduler._get_lr formula (lr_min as a fraction, no warmup, no limit)."""
    if cycle_mul != 1:
        i = math.floor(math.log(1 - t / t_initial * (1 - cycle_mul), cycle_mul))
        t_i = cycle_mul**i * t_initial
        t_curr = t - (1 - cycle_mul**i) / (1 - cycle_mul) * t_initial
    else:
        i = t // t_initial
        t_i = t_initial
        t_curr = t - (t_initial * i)
    lr_max = cycle_decay**i
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t_curr / t_i))


@pytest.mark.parametrize(
    ("period", "mult", "decay", "floor"),
    [(100, 1.0, 0.5, 0.0), (40, 1.5, 0.8, 0.05), (13, 2.5, 1.0, 0.1), (1000, 1.1, 0.9, 0.0)],
)
def test_restarts_matches_timm_formula_with_float_mult_and_decay(
    period: int, mult: float, decay: float, floor: float
) -> None:
    s = Restarts(period, mult=mult, decay=decay, floor=floor)
    expected = [_timm_cosine(t, period, mult, decay, floor) for t in range(3000)]
    # atol: timm's float log can put a step a hair inside the previous cycle (value ~floor)
    np.testing.assert_allclose(s.values(3000), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([s(t) for t in range(3000)], expected, rtol=1e-9, atol=1e-12)


def test_restarts_cycle_boundaries_are_exact_for_integer_mult() -> None:
    s = Restarts(10, mult=2.0)
    starts = [0, 10, 30, 70, 150, 310, 630, 10 * (2**40 - 1)]
    for k, start in enumerate(starts):
        assert s(start) == 1.0
        if start:  # the last step of the previous cycle, of length 10 * 2 ** (k - 1)
            length = 10 * 2 ** (k - 1) if k < 7 else 10 * 2**39
            expected = (1 + math.cos(math.pi * (length - 1) / length)) / 2
            assert s(start - 1) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    values = s.values(np.asarray(starts))
    assert values.tolist() == [1.0] * len(starts)


def test_inverse_sqrt_formula() -> None:
    s = InverseSqrt(100)
    t = np.arange(5000)
    np.testing.assert_allclose(s.values(5000), np.sqrt(100 / (t + 100)), rtol=1e-14)
    assert s(0) == 1.0 and s(300) == 0.5


@pytest.mark.parametrize("cooldown", ["linear", "cosine", "sqrt"])
def test_wsd_formula(cooldown: str) -> None:
    s = WSD(100, 50, cooldown=cooldown, floor=0.1)
    t = np.arange(200)
    p = np.clip((t - 100) / 50, 0, 1)
    shape = {"linear": 1 - p, "cosine": (1 + np.cos(np.pi * p)) / 2, "sqrt": 1 - np.sqrt(p)}
    expected = np.where(t < 100, 1.0, np.where(t >= 150, 0.1, 0.1 + 0.9 * shape[cooldown]))
    np.testing.assert_allclose(s.values(200), expected, rtol=1e-12)
    np.testing.assert_allclose([s(i) for i in range(200)], expected, rtol=1e-12)


def test_polynomial_with_end_and_linear_hold() -> None:
    s = Polynomial(100, power=2.0, end=0.1)
    t = np.arange(300)
    expected = 0.1 + 0.9 * (1 - np.minimum(t, 100) / 100) ** 2
    np.testing.assert_allclose(s.values(300), expected, rtol=1e-14)
    assert Linear(10, start=0.2, end=0.7)(10**9) == 0.7


def test_cyclic_with_zero_down_is_a_sawtooth() -> None:
    s = Cyclic(4, down=0, low=0.0)
    assert s.values(9).tolist() == [0.0, 0.25, 0.5, 0.75, 0.0, 0.25, 0.5, 0.75, 0.0]
    assert [s(i) for i in range(9)] == s.values(9).tolist()


# ---------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Step(0), "size must be an integer >= 1, but got size=0"),
        (lambda: Step(2.5), "size must be an integer >= 1, but got size=2.5"),
        (lambda: Step(10, gamma=1.5), "gamma must be a number <= 1, but got gamma=1.5"),
        (lambda: Step(10, gamma=-0.1), "gamma must be a number >= 0, but got gamma=-0.1"),
        (lambda: MultiStep(5), "milestones must be a list of integers >= 0, but got milestones=5"),
        (lambda: MultiStep((5, -1)), "milestones must be an integer >= 0, but got milestones=-1"),
        (lambda: Exponential(math.nan), "gamma must be a finite number, but got gamma=nan"),
        (lambda: Exponential("0.9"), "gamma must be a finite number, but got gamma='0.9'"),
        (lambda: Linear(0), "steps must be an integer >= 1, but got steps=0"),
        (lambda: Linear(10, end=-1), "end must be a number >= 0, but got end=-1"),
        (lambda: Polynomial(10, power=0), "power must be a number > 0, but got power=0"),
        (lambda: Cosine(-3), "steps must be an integer >= 1, but got steps=-3"),
        (lambda: Cosine(True), "steps must be an integer >= 1, but got steps=True"),
        (lambda: Cosine(10, floor=math.inf), "floor must be a finite number, but got floor=inf"),
        (lambda: Restarts(10, mult=0.5), "mult must be a number >= 1, but got mult=0.5"),
        (lambda: Restarts(10, decay=2), "decay must be a number <= 1, but got decay=2"),
        (lambda: Cyclic(0), "up must be an integer >= 1, but got up=0"),
        (lambda: Cyclic(5, down=-1), "down must be an integer >= 0, but got down=-1"),
        (lambda: Cyclic(5, gamma=0), "gamma must be a number > 0, but got gamma=0"),
        (lambda: Cyclic(5, mode="tri"), "mode must be one of 'triangular', 'triangular2'"),
        (lambda: OneCycle(1), "steps must be an integer >= 2, but got steps=1"),
        (
            lambda: OneCycle(100, pct_start=0.005),
            "pct_start must be a fraction with pct_start * steps > 1 and pct_start < 1 (steps=100)",
        ),
        (lambda: OneCycle(100, pct_start=0.6, three_phase=True), "2 * pct_start * steps < steps"),
        (lambda: OneCycle(100, div_factor=0), "div_factor must be a number > 0"),
        (lambda: OneCycle(100, anneal="cosine"), "anneal must be one of 'cos', 'linear'"),
        (lambda: OneCycle(100, three_phase=1), "three_phase must be True or False"),
        (lambda: InverseSqrt(0), "timescale must be an integer >= 1, but got timescale=0"),
        (lambda: WSD(-1, 10), "stable must be an integer >= 0, but got stable=-1"),
        (lambda: WSD(10, 10, cooldown="1-sqrt"), "cooldown must be one of 'linear', 'cosine'"),
        (lambda: Plateau(factor=1.0), "factor must be a number < 1, but got factor=1.0"),
        (lambda: Plateau(patience=-1), "patience must be an integer >= 0, but got patience=-1"),
        (lambda: Plateau(mode="lowest"), "mode must be one of 'min', 'max'"),
        (lambda: Plateau(min_scale=-0.5), "min_scale must be a number >= 0"),
        (lambda: Plateau(reductions=(-2,)), "reductions must be an integer >= 0"),
    ],
)
def test_invalid_parameters_name_argument_and_value(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_parameters_are_normalised() -> None:
    assert Cosine(10.0, floor=0) == Cosine(10, floor=0.0)  # type: ignore[arg-type]
    assert isinstance(Cosine(10.0).steps, int)  # type: ignore[arg-type]
    assert isinstance(Cosine(10, floor=0).floor, float)
    assert MultiStep([60, 30]).milestones == (30, 60)  # type: ignore[arg-type]
    assert hash(MultiStep([60, 30])) == hash(MultiStep((30, 60)))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="cannot assign"):
        Cosine(10).steps = 20  # type: ignore[misc]


# ---------------------------------------------------------------------------------- steps
@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (-1, "steps must be an integer >= 0, but got steps=-1"),
        (2.5, "steps must be whole, non-negative step numbers, but got steps=2.5"),
        ([1, -3], "steps must be whole, non-negative step numbers"),
        ([0.5, 1.0], "steps must be whole, non-negative step numbers"),
        (["a"], "steps must be an int or an array of whole"),
    ],
)
def test_values_rejects_bad_steps(steps: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Cosine(10).values(steps)  # type: ignore[arg-type]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (-1, "step must be an integer >= 0, but got step=-1"),
        (1.5, "step must be an integer >= 0, but got step=1.5"),
        ("3", "step must be an integer >= 0, but got step='3'"),
    ],
)
def test_call_rejects_bad_step(step: object, message: str) -> None:
    for schedule in (Constant(), Cosine(10), OneCycle(10)):
        with pytest.raises(ValueError) as info:
            schedule(step)  # type: ignore[arg-type]
        assert message in str(info.value)
    with pytest.raises(ValueError, match="step must be an integer >= 0, but got step=-2"):
        OneCycle(10).momentum(-2)


def test_values_accepts_arrays_and_empty() -> None:
    s = Cosine(10)
    assert s.values(0).shape == (0,)
    assert s.values(np.array([], dtype=np.int64)).shape == (0,)
    np.testing.assert_array_equal(s.values([3, 1, 3]), [s(3), s(1), s(3)])
    np.testing.assert_array_equal(s.values(np.array([[0, 10]])), [[1.0, 0.0]])


def test_largest_parameters_and_steps_stay_finite() -> None:
    from lrkit.schedules import parse

    big = 2**62
    specs = [
        f"step({big})", f"multistep([0, {big}])", f"linear({big})", f"polynomial({big})",
        f"cosine({big})", f"restarts({big}, mult=2.0)", f"cyclic({big}, down={big})",
        f"onecycle({big})", f"inverse_sqrt({big})", f"wsd({big}, {big})",
        f"plateau(reductions=[{big}])", f"warmup({big}, cosine({big}))",
        f"join(constant(), {big}, exponential(0.5))",
    ]  # fmt: skip
    steps = [0, 1, big - 1, big, 2**63 - 1]
    for spec in specs:
        s = parse(spec)
        values = s.values(steps)
        assert np.all(np.isfinite(values)) and np.all(values >= 0), spec
        np.testing.assert_allclose([s(t) for t in steps], values, rtol=1e-12, atol=1e-300)
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 2\*\*62\]"):
        Cosine(big + 1)
