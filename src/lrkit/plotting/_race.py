"""Plot a race: each candidate's validation curve on each rung, where it stopped, the winner.

matplotlib is imported lazily (``pip install 'lrkit[plot]'``). The numbers come from
:class:`lrkit.race.RaceResult`; this module only draws.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lrkit._optional import require
from lrkit._validate import fail

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lrkit.race._result import RaceResult

__all__ = ["plot_race", "plot_race_range"]


def plot_race(result: RaceResult, *, ax: Axes | None = None) -> Axes:
    """Draw the race and return the matplotlib Axes.

    One colour per candidate (by learning rate, low = dark); one line per rung it ran (its
    validation loss against the optimizer steps of that trial; the rungs are dashed, solid,
    ... from the shortest). The end of each trial is marked: a dot where it went on to the
    next rung or ran the last one, a cross where successive halving stopped it, a red cross
    at the top edge where the Guard stopped it (diverged) and a red square where it failed. The
    winner's last curve is thick, with a star.

    Example:
        >>> from lrkit.race import run_race
        >>> ax = run_race("diabetes", budget=2).plot()  # doctest: +SKIP
    """
    from lrkit.race._result import RaceResult

    if not isinstance(result, RaceResult):
        fail("result", type(result).__name__, "a RaceResult")
    plt = require("matplotlib.pyplot", "plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    assert ax is not None
    candidates = result.candidates
    if not candidates:
        ax.text(0.5, 0.5, "no race (quick answer)", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return ax
    logs = np.log10([c.lr for c in candidates])
    span = float(logs.max() - logs.min()) or 1.0
    cmap = plt.get_cmap("viridis")
    styles = ["--", "-", "-", "-"]
    finite = [v for c in candidates for t in c.trials for v in t.val_losses if math.isfinite(v)]
    diverged: list[tuple[int, str]] = []
    for c, x in zip(candidates, logs, strict=True):
        color = cmap(0.9 * (x - logs.min()) / span)
        label = f"{c.lr:.3g}" + (" (winner)" if c.winner else "")
        for t in c.trials:
            last = t.rung == c.trials[-1].rung
            width = 2.6 if (c.winner and last) else 1.3
            if t.val_steps:
                ax.plot(
                    t.val_steps,
                    t.val_losses,
                    styles[min(t.rung, len(styles) - 1)],
                    color=color,
                    lw=width,
                    label=label if last else None,
                )
            if t.state == "pruned":
                diverged.append((t.steps_done, "tab:red"))
                if not t.val_steps:
                    ax.plot([], [], "-", color=color, lw=width, label=f"{label} (stopped)")
            elif t.state == "failed":
                diverged.append((t.steps_done, "failed"))
            elif t.val_steps:
                went_on = not last or c.state == "complete"
                marker = "*" if (c.winner and last) else ("o" if went_on else "x")
                ax.plot(
                    [t.val_steps[-1]],
                    [t.val_losses[-1]],
                    marker,
                    color=color,
                    ms=14 if marker == "*" else 6,
                    mec="black" if marker == "*" else color,
                    zorder=5,
                )
    if finite:
        low, high = min(finite), max(finite)
        if low > 0 and high / low > 10:  # the bad candidates would flatten the good ones
            ax.set_yscale("log")
            ax.set_ylim(low / 1.2, high * 1.2)
        else:
            pad = 0.05 * (high - low) if high > low else 0.05 * max(abs(high), 1.0)
            ax.set_ylim(low - pad, high + pad)
    top = ax.get_ylim()[1]
    for steps, kind in diverged:
        ax.scatter(
            [steps],
            [top],
            marker="s" if kind == "failed" else "x",
            color="tab:red",
            s=50,
            zorder=6,
            clip_on=False,
        )
    if diverged:
        ax.scatter([], [], marker="x", color="tab:red", label="stopped by the Guard / failed")
    ax.set_xlabel("optimizer steps of the trial")
    ax.set_ylabel(f"validation loss ({_short(result.validation)})")
    rungs = " -> ".join(f"{r.count}x{r.steps}" for r in result.rungs)
    winner = "no winner" if result.lr is None else f"winner {result.lr:.3g}"
    ax.set_title(f"Race: {rungs} steps, {winner}", fontsize=11, loc="left")
    ax.grid(True, alpha=0.25)
    ax.legend(title="learning rate", fontsize="small", title_fontsize="small", loc="best")
    return ax


def plot_race_range(result: RaceResult, *, ax: Axes | None = None) -> Axes:
    """Draw the range test the race started from, the interval it raced over (shaded) and each
    candidate (a vertical line in its race colour; the winner thick); return the Axes."""
    from lrkit.race._result import RaceResult

    if not isinstance(result, RaceResult) or result.range_test is None:
        fail("result", type(result).__name__, "a RaceResult with its range test")
    ax = result.range_test.plot(ax=ax, schedule=_family(result))
    assert ax is not None
    plt = require("matplotlib.pyplot", "plot")
    if result.interval is not None:
        ax.axvspan(result.interval.low, result.interval.high, color="tab:gray", alpha=0.12,
                   label="raced interval")  # fmt: skip
    if result.candidates:
        logs = np.log10([c.lr for c in result.candidates])
        span = float(logs.max() - logs.min()) or 1.0
        cmap = plt.get_cmap("viridis")
        for c, x in zip(result.candidates, logs, strict=True):
            ax.axvline(
                c.lr,
                color=cmap(0.9 * (x - logs.min()) / span),
                lw=2.4 if c.winner else 0.9,
                ls="-" if c.winner else ":",
            )
    ax.set_title("")
    ax.set_title("Range test: the raced interval and candidates", fontsize=11, loc="left")
    ax.legend(loc="best", fontsize="x-small")
    return ax


def _family(result: RaceResult) -> str:
    from lrkit.finder._rules import schedule_family

    return schedule_family(result.schedule, result.total_steps)


def _short(validation: str) -> str:
    return "held-back training data" if "held back" in validation else "val_loader"
