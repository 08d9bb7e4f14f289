"""Plot a schedule: the learning rate (or multiplier) against the optimizer step.

matplotlib is imported lazily (``pip install 'lrkit[plot]'``). The numbers come from
``Schedule.values`` and :func:`lrkit.schedules._points.key_points`; this module only draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrkit._optional import require
from lrkit._validate import check_int, check_real, fail
from lrkit.schedules._base import Schedule
from lrkit.schedules._points import key_points, warmup_steps

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_schedule"]

_MARKER_COLORS = {
    "warmup end": "tab:green",
    "drop": "tab:red",
    "restart": "tab:purple",
    "peak": "tab:orange",
    "trough": "tab:blue",
    "phase change": "tab:gray",
}


def plot_schedule(
    schedule: Schedule,
    steps: int,
    *,
    lr: float | None = None,
    ax: Axes | None = None,
    log: bool = False,
    label: str | None = None,
    marks: bool = True,
) -> Axes:
    """Draw ``schedule`` over steps ``0..steps-1`` and return the matplotlib Axes.

    Args:
        schedule: the schedule to draw.
        steps: number of optimizer steps (>= 1).
        lr: initial learning rate; the y axis shows ``lr * multiplier`` (else the multiplier).
        ax: draw into this Axes (else a new figure).
        log: logarithmic y axis (zero values are left out of the log scale by matplotlib).
        label: legend label (default: the schedule's spec).
        marks: mark the key points (warmup end, drops, restarts, phase changes) on the curve.

    Example:
        >>> from lrkit.schedules import parse  # doctest: +SKIP
        >>> ax = plot_schedule(parse("warmup(100, cosine(900))"), 1000, lr=3e-4)  # doctest: +SKIP
        >>> ax.figure.savefig("schedule.png")  # doctest: +SKIP
    """
    if not isinstance(schedule, Schedule):
        fail("schedule", schedule, "a Schedule")
    count = check_int("steps", steps, minimum=1)
    scale = 1.0 if lr is None else check_real("lr", lr, minimum=0.0)
    if ax is None:
        plt: Any = require("matplotlib.pyplot", "plot")
        _, new_ax = plt.subplots(figsize=(7.0, 3.6), layout="constrained")
        ax = new_ax
    x = np.arange(count)
    y = schedule.values(count) * scale
    (line,) = ax.plot(x, y, label=label if label is not None else str(schedule), lw=1.6)
    if marks:
        points, _ = key_points(y, warmup=warmup_steps(schedule))
        for point in points[1:-1]:
            color = _MARKER_COLORS.get(point.label, "tab:gray")
            ax.plot(point.step, y[point.step], "o", ms=4, color=color, zorder=3)
            if point.label == "warmup end":
                ax.axvline(point.step, color=color, ls="--", lw=0.8, alpha=0.7)
                ax.annotate(
                    f"warmup end ({point.step})",
                    (point.step, y[point.step]),
                    textcoords="offset points",
                    xytext=(4, -12),
                    fontsize=7,
                    color=color,
                )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate" if lr is not None else "multiplier of the initial lr")
    ax.set_xlim(0, max(count - 1, 1))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7, frameon=False)
    line.set_gid("schedule")
    return ax
