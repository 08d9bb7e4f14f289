"""``plot_schedule`` draws exactly the schedule's values and marks its key points."""

from __future__ import annotations

import numpy as np
import pytest

from lrkit.plotting._schedule import plot_schedule
from lrkit.schedules import parse

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures() -> object:
    yield
    plt.close("all")


def _curve(ax: object) -> tuple[np.ndarray, np.ndarray]:
    line = next(line for line in ax.get_lines() if line.get_gid() == "schedule")  # type: ignore[attr-defined]
    return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())


def test_line_is_lr_times_schedule() -> None:
    schedule = parse("warmup(100, cosine(900, floor=0.05), start=0.01)")
    ax = plot_schedule(schedule, 1000, lr=3e-4)
    x, y = _curve(ax)
    assert x.tolist() == list(range(1000))
    assert np.array_equal(y, schedule.values(1000) * 3e-4)
    assert ax.get_ylabel() == "learning rate"
    assert ax.get_yscale() == "linear"
    # the warmup end is marked with a vertical line at step 100
    vertical = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [100, 100]]
    assert vertical, "warmup end not marked"


def test_multiplier_axis_log_scale_and_given_axes() -> None:
    schedule = parse("exponential(0.99)")
    _, ax = plt.subplots()
    returned = plot_schedule(schedule, 500, ax=ax, log=True)
    assert returned is ax
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel().startswith("multiplier")
    _, y = _curve(ax)
    assert np.array_equal(y, schedule.values(500))


def test_drops_are_marked() -> None:
    ax = plot_schedule(parse("multistep([30, 60], gamma=0.1)"), 100)
    marker_x = sorted(float(ln.get_xdata()[0]) for ln in ax.get_lines() if ln.get_marker() == "o")
    assert marker_x == [30.0, 60.0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 10, "lr": float("nan")}, "lr"),
        ({"steps": 10, "lr": -1.0}, "lr"),
    ],
)
def test_bad_input(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        plot_schedule(parse("cosine(10)"), **kwargs)  # type: ignore[arg-type]


def test_not_a_schedule() -> None:
    with pytest.raises(ValueError, match="schedule"):
        plot_schedule("cosine(10)", 10)  # type: ignore[arg-type]


def test_schedule_plot_method_delegates() -> None:
    schedule = parse("step(10, gamma=0.5)")
    ax = schedule.plot(40, lr=0.2)
    _, y = _curve(ax)
    assert np.array_equal(y, schedule.values(40) * 0.2)
