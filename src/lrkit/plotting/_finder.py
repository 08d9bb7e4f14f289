"""Plot a range test: loss against learning rate, with the suggestion and range marked.

matplotlib is imported lazily (``pip install 'lrkit[plot]'``). The numbers come from
:class:`lrkit.finder.RangeTest` and its rules; this module only draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lrkit._optional import require
from lrkit._validate import fail

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lrkit.finder._result import RangeTest

__all__ = ["plot_range_test"]


def plot_range_test(
    result: RangeTest,
    *,
    ax: Axes | None = None,
    method: str = "lrkit",
    schedule: str = "constant",
    raw: bool = True,
) -> Axes:
    """Draw ``result``'s curve and return the matplotlib Axes.

    The smoothed loss (EMA) is a solid line (raw losses faint behind it when ``raw``), with the
    lag-free smoothing lrkit's rule reads for ``method="lrkit"``; the
    suggestion of ``method`` is a dashed vertical line with a dot on the curve; the suggested
    range is shaded; NaN/infinite losses are red crosses at the top edge of the plot.

    Example:
        >>> import numpy as np
        >>> from lrkit.finder import RangeTest
        >>> t = RangeTest(lrs=np.geomspace(1e-4, 1, 30), losses=np.linspace(2, 1, 30),
        ...               smoothed=np.linspace(2, 1, 30), stop_reason="completed")
        >>> ax = plot_range_test(t)  # doctest: +SKIP
    """
    from lrkit.finder._result import RangeTest

    if not isinstance(result, RangeTest):
        fail("result", type(result).__name__, "a RangeTest")
    plt = require("matplotlib.pyplot", "plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    assert ax is not None
    lrs, losses, smoothed = result.lrs, result.losses, result.smoothed
    finite = np.isfinite(losses)
    what = "validation loss" if result.curve == "val" else "training loss"
    if raw and finite.any():
        ax.plot(lrs[finite], losses[finite], color="tab:blue", alpha=0.3, lw=1, label=f"{what}")
    sfinite = np.isfinite(smoothed)
    if sfinite.any():
        ax.plot(lrs[sfinite], smoothed[sfinite], color="tab:blue", lw=2, label="smoothed (EMA)")
    n_ok = int(np.argmin(finite)) if not finite.all() else len(lrs)
    if method == "lrkit" and n_ok >= 5:
        from lrkit.finder._rules import curve_features

        lag_free = curve_features(lrs[:n_ok], losses[:n_ok]).curve
        ax.plot(lrs[:n_ok], lag_free, color="tab:purple", lw=1.5, label="lag-free (lrkit's rule)")
    if result.settings.get("mode", "exp") == "exp":
        ax.set_xscale("log")
    # y range: the part of the curve that matters (up to a bit above the first smoothed loss)
    shown = smoothed[sfinite] if sfinite.any() else losses[finite]
    if shown.size:
        low, high = float(np.min(shown)), float(np.max(shown))
        top = min(high, float(shown[0]) + 1.5 * abs(float(shown[0]) - low) + 1e-12)
        if raw and finite.any():
            low = min(low, float(np.min(losses[finite])))
        pad = 0.05 * (top - low) if top > low else 0.05 * max(abs(top), 1.0)
        ax.set_ylim(low - pad, top + pad)
    bad = np.flatnonzero(~finite)
    if bad.size:
        top_y = ax.get_ylim()[1]
        ax.scatter(
            lrs[bad],
            np.full(bad.size, top_y),
            marker="x",
            color="tab:red",
            s=60,
            zorder=5,
            clip_on=False,
            label="non-finite loss",
        )
    suggestion = result.suggest(method, schedule=schedule)
    span = result.suggest_range(schedule=schedule)
    if span is not None:
        ax.axvspan(span[0], span[1], color="tab:green", alpha=0.12, label="suggested range")
    if suggestion.lr is not None:
        ax.axvline(suggestion.lr, color="tab:orange", ls="--", lw=1.5)
        y = None
        if suggestion.index is not None and 0 <= suggestion.index < len(smoothed):
            y = smoothed[suggestion.index]
        if y is not None and np.isfinite(y):
            ax.plot(
                [suggestion.lr],
                [y],
                "o",
                color="tab:orange",
                ms=8,
                label=f"{method}: {suggestion.lr:.3g}",
            )
        else:
            ax.plot([], [], "o", color="tab:orange", label=f"{method}: {suggestion.lr:.3g}")
    else:
        ax.plot([], [], " ", label=f"{method}: no clear answer")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(what)
    ax.set_title(f"LR range test ({result.stop_reason})")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="best", fontsize="small")
    return ax
