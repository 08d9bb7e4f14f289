"""The torch adapter against the bare ``Schedule`` contract (private test schedules).

Resume / plateau / one-cycle tests with the real kinds live in ``test_attach_kinds.py``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from lrkit.schedules._base import Schedule
from lrkit.schedules._torch import ScheduledLR, attach


@dataclass(frozen=True)
class _Decay(Schedule):
    """1 / (1 + rate * step): a smooth test curve whose values are not round numbers."""

    rate: float = 0.37
    kind = "_decay"

    def _at(self, step: int) -> float:
        return 1.0 / (1.0 + self.rate * step)

    def _values(self, steps: NDArray[np.int64]) -> NDArray[np.float64]:
        return 1.0 / (1.0 + self.rate * steps.astype(np.float64))

    def __str__(self) -> str:
        return f"_decay(rate={self.rate!r})"


@dataclass(frozen=True)
class _Swing(Schedule):
    """A schedule that also cycles momentum between 0.85 and 0.95 (like one-cycle)."""

    period: int = 10
    kind = "_swing"

    def _at(self, step: int) -> float:
        return 0.5 + 0.5 * math.cos(2 * math.pi * step / self.period)

    def _values(self, steps: NDArray[np.int64]) -> NDArray[np.float64]:
        return 0.5 + 0.5 * np.cos(2 * np.pi * steps / self.period)

    def _momentum_at(self, step: int) -> float | None:
        return 0.95 - 0.1 * self._at(step)

    def __str__(self) -> str:
        return f"_swing(period={self.period})"


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2), torch.nn.Linear(2, 1))


def _groups(model: torch.nn.Module, lrs: list[float]) -> list[dict[str, object]]:
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    return [
        {"params": layer.parameters(), "lr": lr} for layer, lr in zip(layers, lrs, strict=False)
    ]


def test_is_a_torch_lr_scheduler_and_applies_step_zero() -> None:
    opt = torch.optim.SGD(_model().parameters(), lr=0.5)
    sched = attach(opt, _Decay())
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    assert sched.last_epoch == 0
    assert sched.base_lrs == [0.5]
    assert opt.param_groups[0]["lr"] == 0.5 * _Decay()._at(0)
    assert opt.param_groups[0]["initial_lr"] == 0.5
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_groups_keep_their_ratios_and_match_torch_lambdalr() -> None:
    schedule = _Decay(rate=0.113)
    lrs = [0.3, 0.007, 0.0]
    ours_opt = torch.optim.SGD(_groups(_model(), lrs), lr=1.0)
    ref_opt = torch.optim.SGD(_groups(_model(), lrs), lr=1.0)
    ours = attach(ours_opt, schedule)
    ref = torch.optim.lr_scheduler.LambdaLR(ref_opt, lambda s: schedule(s))
    for step in range(300):
        got = [g["lr"] for g in ours_opt.param_groups]
        assert got == [g["lr"] for g in ref_opt.param_groups], step
        assert got == [base * schedule(step) for base in lrs]
        assert ours.get_last_lr() == got
        assert ours.last_epoch == ref.last_epoch == step
        ours_opt.step()
        ref_opt.step()
        ours.step()
        ref.step()


@settings(max_examples=40, deadline=None)
@given(
    lrs=st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=1, max_size=4),
    rate=st.floats(0.0, 5.0),
    start=st.integers(0, 10_000),
    extra=st.integers(0, 20),
)
def test_every_group_is_its_initial_lr_times_the_multiplier(
    lrs: list[float], rate: float, start: int, extra: int
) -> None:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)])
    schedule = _Decay(rate=rate)
    sched = attach(opt, schedule, start_step=start)
    for _ in range(extra):
        sched.step()
    step = start + extra
    assert sched.last_epoch == step
    assert [g["lr"] for g in opt.param_groups] == [lr * schedule(step) for lr in lrs]


def test_existing_initial_lr_is_used_without_key_error() -> None:
    opt = torch.optim.SGD(_model().parameters(), lr=0.2)
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    step_lr.step()  # lr is now 0.1, initial_lr 0.2
    sched = attach(opt, _Decay(), start_step=7)
    assert sched.base_lrs == [0.2]
    assert opt.param_groups[0]["lr"] == 0.2 * _Decay()(7)


def test_jump_ahead_on_a_fresh_optimizer_has_no_initial_lr_key_error() -> None:
    # control: torch's way (last_epoch on a fresh optimizer) raises KeyError 'initial_lr'
    with pytest.raises(KeyError, match="initial_lr"):
        torch.optim.lr_scheduler.LambdaLR(
            torch.optim.SGD(_model().parameters(), lr=0.2), lambda s: 1.0, last_epoch=5
        )
    opt = torch.optim.SGD(_model().parameters(), lr=0.2)
    sched = attach(opt, _Decay(), start_step=5)
    assert sched.last_epoch == 5
    assert opt.param_groups[0]["lr"] == 0.2 * _Decay()(5)  # no extra step: exactly step 5
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.2 * _Decay()(6)


@pytest.mark.parametrize("bad", [float("nan"), -0.1, float("inf")])
def test_bad_initial_lr_names_group_and_value(bad: float) -> None:
    opt = torch.optim.SGD(_groups(_model(), [0.1, bad]), lr=0.1)
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['lr'\]") as info:
        attach(opt, _Decay())
    assert repr(bad) in str(info.value)


def test_bad_arguments() -> None:
    opt = torch.optim.SGD(_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="start_step"):
        attach(opt, _Decay(), start_step=-1)
    with pytest.raises(ValueError, match="schedule must be"):
        attach(opt, 3.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="optimizer"):
        attach("sgd", _Decay())  # type: ignore[arg-type]


def test_metric_for_a_schedule_without_plateau_is_an_error() -> None:
    opt = torch.optim.SGD(_model().parameters(), lr=0.1)
    sched = attach(opt, _Decay())
    with pytest.raises(ValueError, match="metric"):
        sched.step(0.5)
    with pytest.raises(ValueError, match="metric"):
        sched.observe(0.5)
    assert sched.last_epoch == 0  # a rejected call does not advance


def test_group_added_after_attach_is_an_error() -> None:
    model = _model()
    opt = torch.optim.SGD(model[0].parameters(), lr=0.1)
    sched = attach(opt, _Decay())
    opt.add_param_group({"params": model[1].parameters(), "lr": 0.2})
    with pytest.raises(ValueError, match="param_groups"):
        sched.step()


def test_tensor_learning_rates_are_filled_in_place() -> None:
    opt = torch.optim.Adam(_model().parameters(), lr=torch.tensor(0.01))
    lr_tensor = opt.param_groups[0]["lr"]
    sched = attach(opt, _Decay())
    for _ in range(5):
        sched.step()
    assert opt.param_groups[0]["lr"] is lr_tensor
    assert float(lr_tensor) == pytest.approx(0.01 * _Decay()(5), rel=1e-6)


def _skipped_first_step(scheduler_factory: object) -> list[str]:
    """Run one AMP step whose gradients overflow (GradScaler skips optimizer.step)."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = scheduler_factory(opt)  # type: ignore[operator]
    scaler = torch.amp.GradScaler("cpu")
    loss = (model(torch.ones(2, 3)) * float("inf")).sum()
    scaler.scale(loss).backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaler.step(opt)
        scaler.update()
        scheduler.step()
    assert scaler.get_scale() < 65536.0  # the step really was skipped
    return [str(w.message) for w in caught]


def test_no_false_warning_when_grad_scaler_skips_a_step() -> None:
    # control: torch's own scheduler emits the false warning in this very setup
    torch_messages = _skipped_first_step(
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    )
    assert any("before `optimizer.step()`" in m for m in torch_messages)
    ours = _skipped_first_step(lambda opt: attach(opt, _Decay()))
    assert ours == []


def test_momentum_is_driven_for_sgd_and_adam_betas() -> None:
    schedule = _Swing()
    sgd = torch.optim.SGD(_groups(_model(), [0.1, 0.01]), lr=0.1, momentum=0.9)
    adam = torch.optim.Adam(_groups(_model(), [0.1, 0.01]), lr=0.1, betas=(0.9, 0.98))
    s1, s2 = attach(sgd, schedule), attach(adam, schedule)
    for step in range(25):
        want = schedule.momentum(step)
        assert [g["momentum"] for g in sgd.param_groups] == [want, want]
        assert [g["betas"] for g in adam.param_groups] == [(want, 0.98), (want, 0.98)]
        s1.step()
        s2.step()


def test_momentum_left_alone_when_not_cycled_or_not_cycling() -> None:
    sgd = torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    sched = attach(sgd, _Swing(), cycle_momentum=False)
    sched.step()
    assert sgd.param_groups[0]["momentum"] == 0.9
    sgd2 = torch.optim.SGD(_model().parameters(), lr=0.1, momentum=0.9)
    attach(sgd2, _Decay()).step()
    assert sgd2.param_groups[0]["momentum"] == 0.9


def test_momentum_schedule_on_optimizer_without_momentum_is_an_error() -> None:
    opt = torch.optim.Adagrad(_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="cycle_momentum=False"):
        attach(opt, _Swing())
    sched = attach(opt, _Swing(), cycle_momentum=False)
    assert isinstance(sched, ScheduledLR)


def test_get_lr_is_the_closed_form_of_the_current_step() -> None:
    opt = torch.optim.SGD(_groups(_model(), [0.1, 0.3]), lr=0.1)
    sched = attach(opt, _Decay())
    for _ in range(4):
        sched.step()
    assert sched.get_lr() == sched.get_last_lr() == [0.1 * _Decay()(4), 0.3 * _Decay()(4)]
