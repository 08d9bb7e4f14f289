"""Key points of evaluated curves (the ``lrkit schedule`` table and the plot marks)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.schedules import parse
from lrkit.schedules._points import key_points, warmup_steps


def _points(spec: str, steps: int) -> list[tuple[int, str]]:
    schedule = parse(spec)
    points, _ = key_points(schedule.values(steps), warmup=warmup_steps(schedule))
    return [(p.step, p.label) for p in points]


@pytest.mark.parametrize(
    ("spec", "steps", "want"),
    [
        ("cosine(1000)", 1000, [(0, "start"), (999, "end")]),
        ("exponential(0.999)", 1000, [(0, "start"), (999, "end")]),
        (
            "warmup(100, cosine(900, floor=0.05), start=0.01)",
            1000,
            [(0, "start"), (100, "warmup end"), (999, "end")],
        ),
        (
            "multistep([300, 700], gamma=0.1)",
            1000,
            [(0, "start"), (300, "drop"), (700, "drop"), (999, "end")],
        ),
        (
            "restarts(250, floor=0.1)",
            1000,
            [(0, "start"), (250, "restart"), (500, "restart"), (750, "restart"), (999, "end")],
        ),
        (
            "warmup(500, wsd(8000, 1500, cooldown=linear), start=0.0)",
            10_000,
            [(0, "start"), (500, "warmup end"), (8500, "phase change"), (9999, "end")],
        ),
        (
            "cyclic(100)",
            400,
            [(0, "start"), (100, "peak"), (200, "trough"), (300, "peak"), (399, "end")],
        ),
        ("onecycle(1000)", 1000, [(0, "start"), (299, "peak"), (999, "end")]),
        ("cosine(500, floor=0.1)", 1000, [(0, "start"), (500, "phase change"), (999, "end")]),
        (
            "restarts(100, mult=2.0, decay=0.7, floor=0.02)",
            1500,
            [(0, "start"), (100, "restart"), (300, "restart"), (700, "restart"), (1499, "end")],
        ),
        (
            "warmup(50, wsd(800, 150, cooldown=cosine), start=0.0)",
            1000,
            [(0, "start"), (50, "warmup end"), (850, "phase change"), (999, "end")],
        ),
    ],
)
def test_key_points_of_known_curves(spec: str, steps: int, want: list[tuple[int, str]]) -> None:
    assert _points(spec, steps) == want


def test_limit_and_omitted_count() -> None:
    values = parse("cyclic(10)").values(1000)
    points, omitted = key_points(values, limit=5)
    assert len(points) == 7 and points[-1].label == "end"
    assert omitted == 99 - 5  # 99 turning points between start and end


def test_warmup_steps_reads_the_structure() -> None:
    assert warmup_steps(parse("cosine(100)")) is None
    assert warmup_steps(parse("warmup(7, cosine(100))")) == 7
    assert warmup_steps(parse("floor(scale(warmup(9, constant()), 0.5), 0.1)")) == 9
    assert warmup_steps(parse("join(warmup(5, constant()), 10, cosine(10))")) == 5


def test_degenerate_curves() -> None:
    assert key_points(np.array([]))[0] == []
    assert [p.label for p in key_points(np.array([1.0]))[0]] == ["start"]
    assert [p.label for p in key_points(np.ones(50))[0]] == ["start", "end"]


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(0, 10, allow_nan=False), min_size=2, max_size=200))
def test_points_are_sorted_unique_and_in_range(values: list[float]) -> None:
    points, omitted = key_points(np.array(values), limit=1000)
    steps = [p.step for p in points]
    assert steps == sorted(set(steps))
    assert steps[0] == 0 and steps[-1] == len(values) - 1
    assert omitted == 0
