"""Hugging Face's warmup factories, reproduced as warmup(..., start=0.0) compositions.

transformers is a test-only dependency here; the module is skipped with a reason without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim import SGD
from torch.optim.lr_scheduler import LRScheduler

from lrkit.schedules import (
    WSD,
    Constant,
    Cosine,
    InverseSqrt,
    Linear,
    Polynomial,
    Restarts,
    Schedule,
    join,
    parse,
    scale,
    warmup,
)

optimization = pytest.importorskip(
    "transformers.optimization", reason="transformers (test-only dependency) is not installed"
)

LR = 0.1
RTOL = 1e-9


def _hf_lrs(factory: object, n: int, **kwargs: object) -> np.ndarray:
    opt = SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    sched: LRScheduler = factory(opt, **kwargs)  # type: ignore[operator]
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.asarray(out)


def _check(schedule: Schedule, expected_lrs: np.ndarray, atol: float = 0.0) -> None:
    expected = expected_lrs / LR
    n = len(expected)
    np.testing.assert_allclose(schedule.values(n), expected, rtol=RTOL, atol=atol)
    np.testing.assert_allclose([schedule(i) for i in range(n)], expected, rtol=RTOL, atol=atol)


@pytest.mark.parametrize(("warm", "total"), [(100, 2000), (0, 1000), (1, 50), (333, 3000)])
def test_linear_schedule_with_warmup(warm: int, total: int) -> None:
    lrs = _hf_lrs(
        optimization.get_linear_schedule_with_warmup,
        total + 200,  # past the end HF clamps at 0, as linear() holds `end`
        num_warmup_steps=warm,
        num_training_steps=total,
    )
    # the curve reaches exactly 0; the two formulas differ in the last ulp near it
    _check(warmup(warm, Linear(total - warm), start=0.0), lrs, atol=1e-15)
    if warm:  # start=0 with a linear ramp is HF's float(step) / float(warmup), bit for bit
        ramp = warmup(warm, Linear(total - warm), start=0.0)
        assert [ramp(i) for i in range(warm)] == [float(i) / float(warm) for i in range(warm)]
        np.testing.assert_array_equal(ramp.values(warm), np.arange(warm) / float(warm))


@pytest.mark.parametrize(("warm", "total"), [(100, 2000), (0, 1000), (250, 3000)])
def test_cosine_schedule_with_warmup(warm: int, total: int) -> None:
    lrs = _hf_lrs(
        optimization.get_cosine_schedule_with_warmup,
        total + 1,
        num_warmup_steps=warm,
        num_training_steps=total,
    )
    # HF computes pi * (t / n), we compute (pi * t) / n: equal but for the last ulps near 0
    _check(parse(f"warmup({warm}, cosine({total - warm}), start=0.0)"), lrs, atol=1e-15)


@pytest.mark.parametrize("floor", [0.1, 0.0])
def test_cosine_with_min_lr_schedule_with_warmup(floor: float) -> None:
    lrs = _hf_lrs(
        optimization.get_cosine_with_min_lr_schedule_with_warmup,
        2001,
        num_warmup_steps=200,
        num_training_steps=2000,
        min_lr_rate=floor,
    )
    _check(warmup(200, Cosine(1800, floor=floor), start=0.0), lrs, atol=1e-15)


@pytest.mark.parametrize(("warm", "total", "cycles"), [(100, 2100, 4), (0, 3000, 3), (50, 550, 1)])
def test_cosine_with_hard_restarts_schedule_with_warmup(warm: int, total: int, cycles: int) -> None:
    lrs = _hf_lrs(
        optimization.get_cosine_with_hard_restarts_schedule_with_warmup,
        total + 100,
        num_warmup_steps=warm,
        num_training_steps=total,
        num_cycles=cycles,
    )
    period = (total - warm) // cycles
    assert period * cycles == total - warm, "the test uses whole cycles"
    # HF is 0 after its last cycle: join a zero piece there
    schedule = warmup(warm, join(Restarts(period), total - warm, scale(Constant(), 0.0)), start=0.0)
    _check(schedule, lrs, atol=1e-15)


@pytest.mark.parametrize(("warm", "timescale"), [(100, None), (500, 2000), (0, None), (1, 7)])
def test_inverse_sqrt_schedule(warm: int, timescale: int | None) -> None:
    lrs = _hf_lrs(
        optimization.get_inverse_sqrt_schedule,
        3000,
        num_warmup_steps=warm,
        timescale=timescale,
    )
    ts = timescale if timescale is not None else (warm or 10_000)
    _check(warmup(warm, InverseSqrt(ts), start=0.0), lrs)


@pytest.mark.parametrize("cooldown", ["linear", "cosine", "sqrt"])
@pytest.mark.parametrize("warmup_type", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_wsd_schedule(cooldown: str, warmup_type: str, floor: float) -> None:
    hf_decay = "1-sqrt" if cooldown == "sqrt" else cooldown
    lrs = _hf_lrs(
        optimization.get_wsd_schedule,
        3000,
        num_warmup_steps=200,
        num_stable_steps=2000,
        num_decay_steps=600,
        warmup_type=warmup_type,
        decay_type=hf_decay,
        min_lr_ratio=floor,
    )
    kind = "sqrt" if warmup_type == "1-sqrt" else warmup_type
    schedule = warmup(200, WSD(2000, 600, cooldown=cooldown, floor=floor), start=floor, kind=kind)
    _check(schedule, lrs, atol=1e-15)


def test_wsd_schedule_from_training_steps() -> None:
    # HF's num_training_steps form: stable = total - warmup - decay
    lrs = _hf_lrs(
        optimization.get_wsd_schedule,
        2500,
        num_warmup_steps=100,
        num_decay_steps=400,
        num_training_steps=2000,
    )
    _check(parse("warmup(100, wsd(1500, 400), start=0.0)"), lrs, atol=1e-15)


@pytest.mark.parametrize(("power", "lr_end"), [(1.0, 1e-7), (2.0, 1e-3), (0.5, 0.0)])
def test_polynomial_decay_schedule_with_warmup(power: float, lr_end: float) -> None:
    lrs = _hf_lrs(
        optimization.get_polynomial_decay_schedule_with_warmup,
        2200,
        num_warmup_steps=100,
        num_training_steps=2000,
        lr_end=lr_end,
        power=power,
    )
    # HF computes (lr - lr_end) * x + lr_end in absolute lr, we in multipliers: last-ulp
    # differences, absolute where the curve reaches 0
    _check(warmup(100, Polynomial(1900, power=power, end=lr_end / LR), start=0.0), lrs, 1e-15)


@pytest.mark.parametrize("warm", [0, 1, 250])
def test_constant_schedule_with_warmup(warm: int) -> None:
    lrs = _hf_lrs(optimization.get_constant_schedule_with_warmup, 1000, num_warmup_steps=warm)
    _check(parse(f"warmup({warm}, constant(), start=0.0)"), lrs)
    _check(Constant(), _hf_lrs(optimization.get_constant_schedule, 100))
