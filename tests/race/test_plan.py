"""The race's plan: schedules completed and compressed, the lattice, the interval, the rungs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.finder import RangeTest
from lrkit.race import (
    HIGH_MARGIN,
    LOW_MARGIN,
    MIN_RUNG_STEPS,
    compress,
    lattice,
    plan_rungs,
    plausible_interval,
    resolve_schedule,
    rung_schedule,
)
from lrkit.race._plan import min_race_steps, thin
from lrkit.schedules import parse


@pytest.mark.parametrize(
    ("spec", "steps", "full"),
    [
        ("cosine", 300, "cosine(300)"),
        ("constant", 300, "constant()"),
        ("warmup(10, cosine)", 300, "warmup(10, cosine(290))"),
        ("warmup(10, cosine())", 300, "warmup(10, cosine(290))"),
        ("cosine(floor=0.1)", 300, "cosine(300, floor=0.1)"),
        ("warmup(20, linear(end=0.1))", 100, "warmup(20, linear(80, end=0.1))"),
        ("join(constant(), 100, cosine)", 300, "join(constant(), 100, cosine(200))"),
        ("floor(onecycle, 0.01)", 50, "floor(onecycle(50), 0.01)"),
        ("cosine(120)", 300, "cosine(120)"),
    ],
)
def test_missing_decay_lengths_end_with_the_run(spec: str, steps: int, full: str) -> None:
    schedule = resolve_schedule(spec, steps)
    assert str(schedule) == full
    assert parse(str(schedule)) == schedule


def test_a_bad_spec_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown"):
        resolve_schedule("cosinus", 100)
    with pytest.raises(ValueError, match="warmup"):
        resolve_schedule("warmup(cosine)", 100)


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(50, 5000),
    ratio=st.integers(2, 10),
    kind=st.sampled_from(["cosine", "linear", "warmup(0, cosine)", "onecycle"]),
)
def test_a_compressed_schedule_replays_the_full_one(total: int, ratio: int, kind: str) -> None:
    steps = max(1, total // ratio)
    full = resolve_schedule(kind, total)
    short = compress(full, total, steps)
    # the short schedule at step s is the full one near step s * total / steps (the lengths
    # are rounded to whole steps: within the full schedule's range over one short step each
    # way, give or take one full step's change, as a peak between two steps shows)
    values = full.values(total)
    got = short.values(steps)
    for i in range(steps):
        a = max(0, math.floor((i - 1) * total / steps))
        b = min(total, math.ceil((i + 1) * total / steps) + 1)
        window = values[a:b]
        slack = float(np.abs(np.diff(window)).max()) if len(window) > 1 else 0.0
        assert window.min() - slack - 1e-9 <= got[i] <= window.max() + slack + 1e-9
    assert parse(str(short)) == short


def test_compress_scales_every_length_and_per_step_factor() -> None:
    full = parse("warmup(30, join(step(60, gamma=0.5), 150, exponential(0.99)))")
    short = compress(full, 300, 30)
    assert str(short) == "warmup(3, join(step(6, gamma=0.5), 15, exponential(0.904382)))"
    assert short(29) == pytest.approx(full(290), rel=1e-3)
    assert str(compress(parse("multistep([100, 101, 200])"), 300, 30)) == "multistep([10, 11, 20])"
    assert compress(full, 300, 300) is full


def test_a_rung_plays_the_schedule_as_the_mode_says() -> None:
    full = parse("warmup(30, cosine(270))")
    assert str(rung_schedule(full, 300, 30, "warmup")) == "warmup(3, cosine(270))"
    assert str(rung_schedule(full, 300, 30, "all")) == "warmup(3, cosine(27))"
    assert rung_schedule(full, 300, 30, "none") is full
    assert rung_schedule(full, 300, 300, "all") is full  # a full-length rung is the run
    cosine = parse("cosine(300)")
    assert rung_schedule(cosine, 300, 30, "warmup") is cosine  # no warmup: the run's start


def test_lattice_points_and_widening() -> None:
    assert lattice(1e-3, 1e-2) == [0.001, 0.002154, 0.004642, 0.01]
    assert lattice(1e-3, 1e-2, per_decade=2) == [0.001, 0.003162, 0.01]
    # a narrow interval is widened to 3 points around its middle
    assert lattice(1.1e-3, 1.2e-3) == [0.0004642, 0.001, 0.002154]
    with pytest.raises(ValueError, match="low"):
        lattice(0.0, 1.0)


def test_thin_keeps_both_ends() -> None:
    assert thin([1, 2, 3, 4, 5, 6, 7], 4) == [1, 3, 5, 7]
    assert thin([1, 2, 3], 5) == [1, 2, 3]


@pytest.mark.parametrize(
    ("n", "race", "total", "expected"),
    [
        (9, 1800, 300, [(9, 100), (3, 300)]),
        (9, 180, 300, [(9, 10), (3, 30)]),
        (5, 113, 100, [(5, 10), (2, 30)]),
        (3, 60, 100, [(3, 20)]),
        # the last rung is capped at the run's length
        (12, 10_000, 300, [(12, 33), (4, 100), (2, 300)]),
        # 28/27 + 10/9 + 4/3 + 2 = 5.48 rung-lengths of the last rung: 100_000 / 5.48 > 10_000
        (28, 100_000, 10_000, [(28, 370), (10, 1111), (4, 3333), (2, 10_000)]),
        (28, 50_000, 10_000, [(28, 337), (10, 1013), (4, 3040), (2, 9121)]),
    ],
)
def test_plan_rungs(n: int, race: int, total: int, expected: list[tuple[int, int]]) -> None:
    assert [(r.count, r.steps) for r in plan_rungs(n, race, total)] == expected


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), race=st.integers(0, 200_000), total=st.integers(1, 20_000))
def test_a_plan_fits_its_budget(n: int, race: int, total: int) -> None:
    rungs = plan_rungs(n, race, total)
    if not rungs:
        assert race < min_race_steps(total) or n < 3
        return
    assert sum(r.count * r.steps for r in rungs) <= race
    assert all(1 <= r.steps <= total for r in rungs)
    assert rungs[0].steps >= min(MIN_RUNG_STEPS, total)
    assert rungs[0].count <= max(n, 3)
    for a, b in zip(rungs, rungs[1:], strict=False):
        assert b.count == math.ceil(a.count / 3) and b.steps >= a.steps
    assert rungs[-1].count >= 2 or len(rungs) == 1


def _curve(edge: float) -> RangeTest:
    """A clean curve: flat, a fall centred at 1e-4, a bottom, a steep rise from ``edge``."""
    lrs = np.geomspace(1e-7, 10.0, 100)
    x = np.log10(lrs)
    losses = 0.5 + 1.5 / (1 + np.exp(4 * (x + 4))) + 40 * np.maximum(x - np.log10(edge), 0) ** 2
    return RangeTest(lrs, losses, losses.copy(), "completed")


@pytest.mark.parametrize("family", ["constant", "cosine"])
def test_the_interval_runs_from_below_the_descent_to_the_edge(family: str) -> None:
    from lrkit.finder._rules import curve_features

    test = _curve(edge=1e-2)
    f = curve_features(test.lrs, test.losses)
    assert f.i_edge is not None
    interval = plausible_interval(test, family)
    assert interval.low == pytest.approx(f.lr_half / 10 ** LOW_MARGIN[family])
    assert interval.high == pytest.approx(test.lrs[f.i_edge] * 10 ** HIGH_MARGIN[family])
    assert f.lr_half == pytest.approx(1e-4, rel=0.05)
    assert family in interval.reason


def test_a_curve_without_descent_gives_the_decades_below_its_end() -> None:
    lrs = np.geomspace(1e-7, 1.0, 60)
    rng = np.random.default_rng(0)
    flat = 2 + 0.01 * rng.standard_normal(60)
    interval = plausible_interval(RangeTest(lrs, flat, flat.copy(), "completed"))
    assert interval.high == pytest.approx(1.0)
    assert interval.low == pytest.approx(1e-4)
    assert "no usable descent" in interval.reason
