"""Plot a tuning result: a parameter (the learning rate) against the final value, and the
optimisation history (each trial's value and the best so far).

matplotlib is imported lazily (``pip install 'lrkit[plot]'``); numbers come from the
:class:`lrkit.tuning.TuneResult` records, this module only draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lrkit._optional import require
from lrkit._validate import fail

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lrkit.tuning._result import TuneResult

__all__ = ["plot_tune"]

_STYLE = {
    "complete": {"color": "tab:blue", "marker": "o", "label": "complete"},
    "pruned": {"color": "tab:orange", "marker": "x", "label": "pruned (last reported value)"},
}


def plot_tune(
    result: TuneResult, *, axes: Sequence[Axes] | None = None, param: str = "lr"
) -> list[Axes]:
    """Draw ``param`` vs value and the optimisation history into two Axes and return them.

    Args:
        result: a :class:`~lrkit.tuning.TuneResult`.
        axes: two Axes to draw into (else a new 1x2 figure).
        param: the parameter on the x axis of the first panel (log scale when all values > 0).

    Example:
        >>> axes = plot_tune(result)  # doctest: +SKIP
        >>> axes[0].figure.savefig("tune.png")  # doctest: +SKIP
    """
    require("matplotlib", "plot")
    import matplotlib.pyplot as plt

    if axes is None:
        fig, pair = plt.subplots(1, 2, figsize=(11, 4.2))
        axes = list(pair)
    else:
        axes = list(axes)
        if len(axes) != 2:
            fail("axes", axes, "a sequence of two matplotlib Axes")
    left, right = axes

    points: dict[str, tuple[list[float], list[float]]] = {}
    for state in _STYLE:
        xs: list[float] = []
        ys: list[float] = []
        for t in result.trials:
            x = t.params.get(param)
            if t.state != state or t.value is None or not isinstance(x, int | float):
                continue
            xs.append(float(x))
            ys.append(t.value)
        points[state] = (xs, ys)
    # a diverged trial's value (1e9 and more) would flatten everything else: then the y axis
    # ends a little above the worst complete trial, and values beyond it sit on the top as ^
    top = _top(points["complete"][1], [y for _, ys in points.values() for y in ys])
    drawn = False
    xs_all: list[float] = []
    clipped: list[float] = []
    for state, style in _STYLE.items():
        xs, ys = points[state]
        inside = [(x, y) for x, y in zip(xs, ys, strict=True) if top is None or y <= top]
        clipped += [x for x, y in zip(xs, ys, strict=True) if top is not None and y > top]
        if inside:
            left.scatter(*zip(*inside, strict=True), alpha=0.8, **style)  # type: ignore[arg-type]
            drawn = True
        xs_all += xs
    if clipped and top is not None:
        left.scatter(
            clipped,
            [top] * len(clipped),
            marker="^",
            color="tab:gray",
            clip_on=False,
            label=f"value > {top:.3g} (off the scale)",
        )
        drawn = True
    if result.best_value is not None and param in result.best_params:
        best_x = result.best_params[param]
        if isinstance(best_x, int | float):
            left.scatter(
                [best_x],
                [result.best_value],
                s=160,
                facecolors="none",
                edgecolors="tab:red",
                linewidths=2,
                label=f"best {param}={best_x:.3g}",
                zorder=3,
            )
    if xs_all and min(xs_all) > 0:
        left.set_xscale("log")
    if top is not None:
        bottom = min(y for _, ys in points.values() for y in ys if y <= top)
        left.set_ylim(bottom - 0.05 * (top - bottom), top)
    left.set_xlabel(param)
    left.set_ylabel("value (lower is better)")
    left.set_title(f"{param} vs value")
    if drawn:
        left.legend(fontsize="small")

    numbers: list[int] = []
    values: list[float] = []
    best: list[float] = []
    current = float("inf")
    for t in result.trials:
        if t.state == "complete" and t.value is not None:
            numbers.append(t.number)
            values.append(t.value)
            current = min(current, t.value)
            best.append(current)
    if numbers:
        right.scatter(numbers, values, color="tab:blue", alpha=0.7, label="trial value")
        right.step(numbers, best, where="post", color="tab:red", label="best so far")
        right.legend(fontsize="small")
    pruned = [t.number for t in result.trials if t.state == "pruned"]
    failed = [t.number for t in result.trials if t.state == "failed"]
    note: list[Any] = []
    if pruned:
        note.append(f"{len(pruned)} pruned")
    if failed:
        note.append(f"{len(failed)} failed")
    right.set_xlabel("trial")
    right.set_ylabel("value")
    right.set_title("optimisation history" + (f" ({', '.join(note)})" if note else ""))
    return [left, right]


def _top(complete: list[float], every: list[float]) -> float | None:
    """Where the lr-vs-value panel's y axis ends: None (matplotlib's limits) unless some value
    lies more than 10 spreads of the complete trials above the worst of them (a diverged run);
    then the axis ends 2 spreads above it."""
    if not complete or not every:
        return None
    low, high = min(complete), max(complete)
    spread = max(high - low, 0.05 * abs(high), 1e-12)
    return high + 2 * spread if max(every) > high + 10 * spread else None
