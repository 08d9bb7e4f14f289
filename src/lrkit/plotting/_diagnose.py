"""Plot a diagnosis: training (and validation) loss, the smoothed curve, and the onset of each
finding marked with a vertical line. matplotlib is imported lazily (``lrkit[plot]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrkit._optional import require
from lrkit._validate import fail

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lrkit.diagnosis._findings import Diagnosis

__all__ = ["plot_diagnosis"]

_COLORS = {
    "diverged": "black",
    "diverging": "tab:red",
    "spiking": "tab:orange",
    "oscillating": "tab:purple",
    "overfitting": "tab:brown",
    "too_slow": "tab:cyan",
    "plateau": "tab:gray",
}


def plot_diagnosis(
    diagnosis: Diagnosis, ax: Axes | None = None, *, log: bool | None = None
) -> Axes:
    """Draw ``diagnosis``'s curves with each finding's onset marked; return the Axes.

    Args:
        diagnosis: the result of :func:`lrkit.diagnosis.diagnose`.
        ax: draw into this Axes (else a new figure).
        log: logarithmic y axis (default: when the loss is positive and spans > 2 decades).

    Example:
        >>> from lrkit.diagnosis import diagnose  # doctest: +SKIP
        >>> ax = plot_diagnosis(diagnose([3.0, 2.0, 1.5] * 10))  # doctest: +SKIP
    """
    from lrkit.diagnosis._findings import Diagnosis

    if not isinstance(diagnosis, Diagnosis):
        fail("diagnosis", diagnosis, "a lrkit.diagnosis.Diagnosis")
    if ax is None:
        plt: Any = require("matplotlib.pyplot", "plot")
        _, new_ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
        ax = new_ax
    x = diagnosis.steps
    y = diagnosis.train_loss
    ax.plot(x, y, lw=0.8, alpha=0.45, color="tab:blue", label="train loss", gid="train")
    if np.isfinite(diagnosis.smoothed).any():
        ax.plot(
            x,
            diagnosis.smoothed,
            lw=1.6,
            color="tab:blue",
            label="smoothed (median)",
            gid="smoothed",
        )
    if (
        diagnosis.val_loss is not None
        and diagnosis.val_steps is not None
        and diagnosis.val_loss.size
    ):
        ax.plot(
            diagnosis.val_steps,
            diagnosis.val_loss,
            "o-",
            ms=3,
            lw=1.2,
            color="tab:green",
            label="validation loss",
            gid="val",
        )
    finite = y[np.isfinite(y)]
    if log is None:
        log = bool(finite.size and finite.min() > 0 and finite.max() / finite.min() > 100)
    for finding in diagnosis.findings:
        if finding.onset_step is None:
            continue
        color = _COLORS.get(finding.kind, "tab:gray")
        ax.axvline(
            finding.onset_step,
            color=color,
            ls="--",
            lw=1.2,
            label=f"{finding.kind} from step {finding.onset_step}",
            gid=f"onset-{finding.kind}",
        )
        if finding.end_step is not None and finding.end_step > finding.onset_step:
            ax.axvspan(finding.onset_step, finding.end_step, color=color, alpha=0.15)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(f"verdict: {diagnosis.verdict}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7, frameon=False)
    return ax
