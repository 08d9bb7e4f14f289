"""Where a run stands at its end: converged, stuck, still falling, or a validation loss that got
worse. Pure numpy, on the prepared (binned) curve.

Progress is read against *lr-time*: the share of the run's cumulative learning rate used so far
(the step share when the lr is not known). A run whose lr decays (cosine, linear) spends its
last steps at a tiny lr, so its loss flattens at the end whatever its lr was; in lr-time that
flat end is squeezed into a sliver and the shape of the curve says how far the run got. A
healthy run has done most of its falling by the middle of its lr-time (it *converged*: fell,
then settled); a run whose lr is too low is still falling through the second half (*still
falling*); a run that never really fell is *stuck*. The curve judged is the validation loss
when there are enough evaluations (it is measured on the same data each time, so it is less
noisy than minibatch losses), else the smoothed training loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from lrkit.diagnosis._stats import MAD_SCALE

if TYPE_CHECKING:
    from lrkit.diagnosis._rules import Curve, Summary

__all__ = ["Progress", "progress"]

FloatArray = NDArray[np.float64]

LATE = (0.5, 0.8)  # the lr-time window where "still falling" is read
MIN_VAL_POINTS = 6  # fewer evaluations: judge the training loss


@dataclass(frozen=True)
class Progress:
    """The evidence on progress (see the module doc); every level on a log scale when the
    losses are positive.

    Attributes:
        lr_time: True when lr-time comes from the learning rate, False from the steps.
        judged: "validation" or "training": the curve the late fall is read on.
        fall: start level minus end level of the judged curve.
        late_drop: how much the judged curve fell over lr-time 0.5 to 0.8.
        late_share: ``late_drop / fall`` (NaN when it did not fall).
        late_se: standard error of ``late_drop``.
        val_points: finite validation evaluations.
        val_rise: the validation loss at the end (median of the last three evaluations)
            relative to its minimum, minus 1 (NaN without enough evaluations).
        val_min_step: the step of the best evaluation (None without).
        val_min_share: where the best evaluation lies, as a share of the steps.
        val_zigzag: path length of the validation loss after its minimum divided by its net
            change (1 for a steady rise, large for a curve that jumps around).
        val_evals_after_min: evaluations after the best one.
        decayed: the lr ended below half its peak.
        val_rebound: the largest rise of the validation loss above its best so far, minus 1.
    """

    lr_time: bool
    judged: str
    fall: float
    late_drop: float
    late_share: float
    late_se: float
    val_points: int
    val_rise: float
    val_min_step: int | None
    val_min_share: float
    val_zigzag: float
    val_evals_after_min: int
    decayed: bool = False
    val_rebound: float = math.nan

    def as_dict(self) -> dict[str, object]:
        return {
            "lr_time": self.lr_time,
            "judged": self.judged,
            "fall": self.fall,
            "late_drop": self.late_drop,
            "late_share": self.late_share,
            "late_se": self.late_se,
            "val_points": self.val_points,
            "val_rise": self.val_rise,
            "val_min_step": self.val_min_step,
            "val_min_share": self.val_min_share,
            "val_zigzag": self.val_zigzag,
            "lr_decayed": self.decayed,
            "val_rebound": self.val_rebound,
        }


def lr_time(curve: Curve) -> tuple[FloatArray, bool]:
    """The lr-time of each point: cumulative lr (times the steps a point covers), from 0 at
    the first point to 1 at the end; the step share when the lr per point is not known."""
    n = curve.y.size
    width = curve.width
    lr = curve.lr
    if lr is not None and lr.size == n and np.isfinite(lr).all() and float(np.max(lr)) > 0:
        mass = np.maximum(lr, 0.0) * width
        known = True
    else:
        mass = width.astype(np.float64)
        known = False
    total = float(np.sum(mass))
    if total <= 0:
        return np.linspace(0.0, 1.0, n), False
    # lr-time at the END of each point's steps
    return np.asarray(np.cumsum(mass) / total, dtype=np.float64), known


def _levels(v: FloatArray, log: bool) -> FloatArray:
    if log:
        return np.log(v)
    return v / max(float(np.median(np.abs(v))), 1e-12)


def high_lr_window(curve: Curve, share: float = 0.4) -> tuple[float, float]:
    """The steps ``(a, b)`` of the last ``share`` of the high-lr phase (the points whose lr is
    at least half its maximum; the whole run when the lr is not known). Inside it the lr
    changes by at most 2x, so steps and lr-time agree: a run still falling there is held back
    by its lr, while a run whose lr decays later may fall then for another reason (a lr too
    high that stops getting in the way)."""
    x = curve.x
    lr = curve.lr
    if lr is not None and lr.size == x.size and np.isfinite(lr).all() and float(np.max(lr)) > 0:
        high = np.flatnonzero(lr >= 0.5 * float(np.max(lr)))
        first, last = float(x[high[0]]), float(x[high[-1]] + curve.width[high[-1]] - 1)
    else:
        first, last = float(x[0]), float(x[-1] + curve.width[-1] - 1)
    return last - share * (last - first), last


def progress(curve: Curve, s: Summary) -> Progress:
    """Compute the :class:`Progress` evidence of a prepared curve."""
    tau, known = lr_time(curve)
    n = curve.y.size
    val_y, val_x = curve.val_y, curve.val_x
    m = 0 if val_y is None else int(val_y.size)
    log_val = m > 0 and val_y is not None and bool(np.all(val_y > 0))
    val_rise = math.nan
    rebound = math.nan
    val_min_step: int | None = None
    val_min_share = math.nan
    zigzag = math.nan
    after = 0
    if m >= MIN_VAL_POINTS and val_y is not None and val_x is not None:
        lv = _levels(val_y, log_val)
        np.interp(val_x, curve.x, tau)
        i = int(np.argmin(lv))
        end = float(np.median(lv[-3:]))
        val_rise = (math.exp(end - lv[i]) - 1.0) if log_val else float(end - lv[i])
        up = float(np.max(lv - np.minimum.accumulate(lv)))
        rebound = math.expm1(up) if log_val else up
        val_min_step = int(val_x[i])
        span = float(curve.x[-1] - curve.x[0]) or 1.0
        val_min_share = float((val_x[i] - curve.x[0]) / span)
        tail = lv[i:]
        after = int(tail.size - 1)
        net = abs(float(tail[-1] - tail[0]))
        path = float(np.sum(np.abs(np.diff(tail)))) if tail.size > 1 else 0.0
        zigzag = path / net if net > 0 else (math.inf if path > 0 else 1.0)
        # the judged curve: the validation loss
        d2 = np.diff(lv, 2)
        sigma = float(MAD_SCALE * np.median(np.abs(d2 - np.median(d2)))) / math.sqrt(6.0)
        a, b = high_lr_window(curve)
        at_b = float(np.interp(b, val_x, lv))
        fall = float(lv[0] - at_b)
        late = float(np.interp(a, val_x, lv) - at_b)
        se = sigma * math.sqrt(2.0)
        judged = "validation"
    else:
        base = _levels(np.maximum(s.base, 1e-300) if s.log_scale else s.base, s.log_scale)
        a, b = high_lr_window(curve)
        at_b = float(np.interp(b, curve.x, base))
        k = max(3, base.size // 20)
        fall = float(np.median(base[:k]) - at_b)
        late = float(np.interp(a, curve.x, base) - at_b)
        se = 1.2533 * s.sigma * math.sqrt(2.0 / max(s.window, 1))
        judged = "training"
    share = late / fall if fall > 0 else math.nan
    lr = curve.lr
    decayed = bool(
        lr is not None
        and lr.size == n
        and np.isfinite(lr).all()
        and float(lr[-1]) < 0.5 * float(np.max(lr))
    )
    return Progress(
        known,
        judged,
        fall,
        late,
        share,
        se,
        m,
        val_rise,
        val_min_step,
        val_min_share,
        zigzag,
        after,
        decayed,
        rebound,
    )
