"""Reduce-on-plateau: the Plateau kind, and PlateauTracker against torch's ReduceLROnPlateau."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim import SGD
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lrkit.schedules import Plateau, PlateauTracker, Schedule, parse, warmup

LR = 0.1


def _metrics(seed: int, n: int) -> list[float]:
    """A noisy, mostly decreasing loss with long flat stretches and exact repeats."""
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.choice([0.0, 0.0, -0.01, 0.002], size=n)) + 5.0
    noisy = base + rng.normal(0, 0.003, size=n) * rng.integers(0, 2, size=n)
    values = [float(v) for v in noisy]
    for i in rng.integers(1, n, size=n // 20):  # exact repeats hit the threshold boundary
        values[i] = values[i - 1]
    return values


def _torch_lrs(metrics: list[float], **kwargs: object) -> list[float]:
    opt = SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    sched = ReduceLROnPlateau(opt, **kwargs)  # type: ignore[arg-type]
    out = []
    for m in metrics:
        opt.step()
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
    return out


def _ours(metrics: list[float], schedule: Schedule, offset: int = 0) -> list[float]:
    """Observe metric i at step offset + i + 1 (like torch's epoch counter), cut there."""
    plateau = schedule.active_plateau(offset + 1)
    assert plateau is not None
    tracker = PlateauTracker(plateau)
    out = []
    for i, m in enumerate(metrics):
        step = offset + i + 1
        if tracker.observe(m):
            schedule = PlateauTracker.cut(schedule, step, [LR]) or schedule
        out.append(LR * schedule(step))
    return out


CASES = [
    {},
    {"mode": "min", "factor": 0.5, "patience": 3, "threshold": 1e-3},
    {"mode": "min", "factor": 0.7, "patience": 0, "threshold_mode": "abs", "threshold": 0.001},
    {"mode": "max", "factor": 0.5, "patience": 2, "cooldown": 3},
    {"mode": "max", "factor": 0.9, "patience": 5, "threshold_mode": "abs", "cooldown": 1},
    {"mode": "min", "factor": 0.5, "patience": 1, "cooldown": 2, "min_lr": 1e-4},
]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_tracker_matches_reducelronplateau(kwargs: dict[str, object], seed: int) -> None:
    metrics = _metrics(seed, 3000)
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    expected = _torch_lrs(metrics, **kwargs)
    ours_kwargs = {k: v for k, v in kwargs.items() if k != "min_lr"}
    if "min_lr" in kwargs:
        ours_kwargs["min_scale"] = float(kwargs["min_lr"]) / LR  # type: ignore[arg-type]
    schedule = Plateau(**ours_kwargs)  # type: ignore[arg-type]
    got = _ours(metrics, schedule)
    assert len(set(expected)) > 3, "the metric sequence must trigger several cuts"
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_tracker_behind_warmup_records_local_steps() -> None:
    metrics = _metrics(3, 2000)
    expected = _torch_lrs(metrics, factor=0.5, patience=4)
    schedule = warmup(100, Plateau(factor=0.5, patience=4))
    got = _ours(metrics, schedule, offset=100)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # replaying the recorded cuts from the spec gives the same values (resume = parse the spec)
    final = schedule
    tracker = PlateauTracker(Plateau(factor=0.5, patience=4))
    for i, m in enumerate(metrics):
        if tracker.observe(m):
            final = PlateauTracker.cut(final, 100 + i + 1, [LR]) or final
    again = parse(str(final))
    assert again == final
    np.testing.assert_allclose([LR * again(100 + i + 1) for i in range(2000)], expected, 1e-9)


def test_tracker_state_dict_round_trip_resumes_identically() -> None:
    metrics = _metrics(4, 600)
    p = Plateau(factor=0.5, patience=2, cooldown=2)
    full = PlateauTracker(p)
    decisions = [full.observe(m) for m in metrics]
    first = PlateauTracker(p)
    head = [first.observe(m) for m in metrics[:300]]
    state = first.state_dict()
    second = PlateauTracker(p)
    second.load_state_dict(dict(state))
    tail = [second.observe(m) for m in metrics[300:]]
    assert head + tail == decisions
    assert second.state_dict() == full.state_dict()


def test_tracker_state_dict_values_and_validation() -> None:
    t = PlateauTracker(Plateau())
    assert t.state_dict() == {
        "best": math.inf,
        "num_bad_epochs": 0,
        "cooldown_counter": 0,
        "last_epoch": 0,
    }
    assert PlateauTracker(Plateau(mode="max")).best == -math.inf
    with pytest.raises(ValueError, match="state must be a dict with keys best"):
        t.load_state_dict({"best": 1.0})
    with pytest.raises(ValueError, match=r"state\['num_bad_epochs'\] must be an integer >= 0"):
        t.load_state_dict(
            {"best": 1.0, "num_bad_epochs": -1, "cooldown_counter": 0, "last_epoch": 0}
        )
    with pytest.raises(ValueError, match="metric must be a finite number, but got metric=nan"):
        t.observe(float("nan"))
    with pytest.raises(ValueError, match="plateau must be a Plateau schedule"):
        PlateauTracker("plateau()")  # type: ignore[arg-type]


def test_plateau_value_protocol() -> None:
    p = Plateau(factor=0.5, min_scale=0.2)
    assert p.stateful and p.active_plateau(5) is p
    cut = p.reduce_at(10).reduce_at(20).reduce_at(30)
    assert cut.reductions == (10, 20, 30)
    assert [cut(s) for s in (9, 10, 19, 20, 30, 10**15)] == [1.0, 0.5, 0.5, 0.25, 0.2, 0.2]
    np.testing.assert_array_equal(cut.values(40), [cut(i) for i in range(40)])
    assert p.can_reduce(0) and cut.can_reduce(25) and not cut.can_reduce(30)
    # cuts are stored sorted, so the order they were recorded in does not matter
    assert Plateau(reductions=(30, 10)) == Plateau(reductions=(10, 30))
    with pytest.raises(ValueError, match="step must be an integer >= 0, but got step=-1"):
        p.reduce_at(-1)


def test_cut_applies_torchs_eps_rule() -> None:
    p = Plateau(factor=0.1, min_scale=0.01)
    assert PlateauTracker.cut(p, 5, [0.1]) == p.reduce_at(5)
    # at min_scale a cut changes nothing: skipped, as torch skips it
    low = p.reduce_at(1).reduce_at(2).reduce_at(3)
    assert low(5) == 0.01 and PlateauTracker.cut(low, 5, [0.1]) is None
    # the lr change 1e-9 * (1 - 0.1) is below eps=1e-8: skipped; any group that matters cuts all
    assert PlateauTracker.cut(p, 5, [1e-9]) is None
    assert PlateauTracker.cut(p, 5, [1e-9, 1.0]) == p.reduce_at(5)
    assert PlateauTracker.cut(Plateau(eps=0.0), 5, [1e-9]) is not None
    # through a composition, at the composite's step
    w = warmup(10, p)
    assert PlateauTracker.cut(w, 15, [0.1]) == warmup(10, p.reduce_at(5))
    with pytest.raises(ValueError, match="step must be a step at which a reduce-on-plateau"):
        PlateauTracker.cut(w, 3, [0.1])
