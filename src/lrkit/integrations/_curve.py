"""The range test's curve, fed one optimizer step at a time by a framework's own training loop.

Inside Lightning's or Hugging Face's Trainer the Trainer owns the loop; lrkit only sets the
learning rate before each optimizer step and hears the loss after it. :class:`RampCurve` holds
what lrkit's own :func:`lrkit.find_lr` uses around its loop: the ramp
(:func:`lrkit.finder.ramp`), and the bias-corrected smoothing (:func:`lrkit.finder.ema`) and
stop rule (smoothed loss above ``best + (diverge_factor - 1) * |best|``, or any non-finite
loss) of its :class:`~lrkit.finder._range_test.StopRule`; it builds the same
:class:`~lrkit.finder.RangeTest`. The same losses therefore give the same curve, stop and
suggestion whichever loop produced them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrkit.finder import RangeTest, ramp
from lrkit.finder._range_test import StopRule, check_ramp

__all__ = ["RampCurve"]


class RampCurve:
    """The ramp of learning rates and the curve recorded along it.

    Example:
        >>> curve = RampCurve(start_lr=1e-3, end_lr=1.0, num_steps=10, smoothing=0.0)
        >>> curve.lr(0), curve.add(2.0), curve.add(1.0), curve.add(9.0)
        (0.001, False, False, True)
        >>> curve.result().stop_reason
        'diverged'
    """

    def __init__(
        self,
        *,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_steps: int = 100,
        mode: str = "exp",
        smoothing: float = 0.98,
        diverge_factor: float | None = 4.0,
    ) -> None:
        (
            self.start_lr,
            self.end_lr,
            self.num_steps,
            self.mode,
            self.smoothing,
            self.diverge_factor,
        ) = check_ramp(start_lr, end_lr, num_steps, mode, smoothing, diverge_factor)
        self.lrs = ramp(self.start_lr, self.end_lr, self.num_steps, self.mode)
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stop_reason: str | None = None
        self._rule = StopRule(self.smoothing, self.diverge_factor)

    @property
    def settings(self) -> dict[str, Any]:
        """The ramp's settings, as :attr:`lrkit.finder.RangeTest.settings` names them."""
        return {
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "num_steps": self.num_steps,
            "mode": self.mode,
            "smoothing": self.smoothing,
            "diverge_factor": self.diverge_factor,
        }

    @property
    def step(self) -> int:
        """The next step to record (from 0)."""
        return len(self.losses)

    @property
    def finished(self) -> bool:
        """True once the test stopped or recorded every step."""
        return self.stop_reason is not None

    def lr(self, step: int) -> float:
        """The reference group's learning rate at ``step`` (the last one past the end)."""
        return float(self.lrs[min(step, self.num_steps - 1)])

    def add(self, loss: float) -> bool:
        """Record the loss of the next step; return True when the test must stop there."""
        if self.finished:
            raise RuntimeError("the range test already stopped; no more losses can be added")
        self.losses.append(float(loss))
        smoothed, self.stop_reason = self._rule.add(float(loss))
        self.smoothed.append(smoothed)
        if self.stop_reason is None and len(self.losses) == self.num_steps:
            self.stop_reason = "completed"
        return self.finished

    def result(
        self,
        *,
        group_ratios: tuple[float, ...] = (1.0,),
        settings: dict[str, Any] | None = None,
        seconds: float = float("nan"),
    ) -> RangeTest:
        """The :class:`~lrkit.finder.RangeTest` of what was recorded so far."""
        n = len(self.losses)
        return RangeTest(
            lrs=self.lrs[:n].copy(),
            losses=np.asarray(self.losses, dtype=np.float64),
            smoothed=np.asarray(self.smoothed, dtype=np.float64),
            stop_reason=self.stop_reason or "completed",
            steps=np.arange(n, dtype=np.int64),
            group_ratios=group_ratios,
            settings={**self.settings, **(settings or {})},
            seconds=seconds,
        )
