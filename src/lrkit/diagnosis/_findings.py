"""Value objects of a diagnosis: :class:`Finding`, :class:`Action` and :class:`Diagnosis`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "VERDICTS",
    "PROBLEMS",
    "SEVERITIES",
    "Action",
    "Diagnosis",
    "Finding",
]

PROBLEMS = (
    "diverged",
    "diverging",
    "spiking",
    "oscillating",
    "overfitting",
    "too_slow",
    "plateau",
)
"""Problem kinds, most urgent first: the verdict is the first kind among the findings."""

VERDICTS = ("healthy", *PROBLEMS, "inconclusive")
"""Every verdict. ``inconclusive`` means "not enough evidence" (too few points, too noisy)."""

SEVERITIES = ("critical", "high", "medium", "low")


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _as_dict(value: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], _clean(value))


@dataclass(frozen=True)
class Finding:
    """One problem found in a curve.

    Attributes:
        kind: one of :data:`PROBLEMS`.
        severity: "critical", "high", "medium" or "low".
        onset_step: the step where the problem started (None when it has no single start).
        message: one sentence for people.
        statistics: the numbers behind the finding (test statistics, levels, thresholds).
        end_step: the last step the problem covers, when it ended (a spike), else None.
    """

    kind: str
    severity: str
    onset_step: int | None
    message: str
    statistics: dict[str, Any] = field(default_factory=dict)
    end_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become None)."""
        return _as_dict(
            {
                "kind": self.kind,
                "severity": self.severity,
                "onset_step": self.onset_step,
                "end_step": self.end_step,
                "message": self.message,
                "statistics": dict(self.statistics),
            }
        )


@dataclass(frozen=True)
class Action:
    """What to change, for people (``text``) and for programs (``kind`` + ``params``).

    Kinds: ``"none"``, ``"scale_lr"`` (``factor``), ``"rollback"`` (``before_step``,
    ``skip_batches``, optional ``lr_factor``), ``"early_stop"`` (``at_step``) and
    ``"collect_more"`` (log more steps, then diagnose again).
    """

    kind: str
    text: str
    reason: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., **params, "text": ..., "reason": ...}`` (JSON-safe)."""
        return _as_dict(
            {"kind": self.kind, **self.params, "text": self.text, "reason": self.reason}
        )


def lr_direction(action: Action) -> str | None:
    """``"lower"``, ``"raise"`` or ``"keep"`` (see :attr:`Diagnosis.lr_direction`)."""
    if action.kind == "none":
        return "keep"
    factor = action.params.get("factor") if action.kind == "scale_lr" else None
    if action.kind == "rollback":
        factor = action.params.get("lr_factor")
    if factor is None:
        return None
    return "lower" if float(factor) < 1.0 else "raise"


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The result of :func:`lrkit.diagnosis.diagnose`.

    Attributes:
        verdict: one of :data:`VERDICTS`: "healthy", a problem kind, or "inconclusive"
            ("not enough evidence": the reason says why).
        findings: every problem found, most urgent first.
        action: the recommended change with its reason.
        reason: one sentence explaining the verdict.
        statistics: summary numbers of the curve (points, levels, noise, trend test).
    """

    verdict: str
    findings: tuple[Finding, ...]
    action: Action
    reason: str
    statistics: dict[str, Any]
    steps: NDArray[np.float64] = field(repr=False)
    train_loss: NDArray[np.float64] = field(repr=False)
    smoothed: NDArray[np.float64] = field(repr=False)
    val_steps: NDArray[np.float64] | None = field(default=None, repr=False)
    val_loss: NDArray[np.float64] | None = field(default=None, repr=False)

    @property
    def healthy(self) -> bool:
        """True when the verdict is "healthy"."""
        return self.verdict == "healthy"

    @property
    def problem(self) -> bool:
        """True when a problem was found (the CLI exits 1)."""
        return self.verdict in PROBLEMS

    @property
    def lr_direction(self) -> str | None:
        """What the action does to the learning rate: ``"lower"``, ``"raise"`` or ``"keep"``;
        None when it is about something else (roll back and skip batches, stop early, log
        more steps).

        Example:
            >>> import numpy as np
            >>> from lrkit.diagnosis import diagnose
            >>> diagnose(2.0 * np.exp(-np.arange(300) / 40) + 0.1).lr_direction
            'keep'
        """
        return lr_direction(self.action)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: verdict, reason, findings, action and summary statistics."""
        return _as_dict(
            {
                "verdict": self.verdict,
                "lr_direction": self.lr_direction,
                "reason": self.reason,
                "findings": [f.to_dict() for f in self.findings],
                "action": self.action.to_dict(),
                "statistics": dict(self.statistics),
            }
        )

    def plot(self, ax: Axes | None = None, *, log: bool | None = None) -> Axes:
        """Draw the curves with the onset of each finding marked; return the Axes.

        Needs matplotlib (``pip install 'lrkit[plot]'``).
        """
        from lrkit.plotting import plot_diagnosis

        return plot_diagnosis(self, ax=ax, log=log)
