"""Suggestion rules: pick a learning rate from a range-test curve.

Pure functions on arrays (no torch). ``lrs``, ``losses`` (raw) and ``smoothed`` (the
bias-corrected EMA that :func:`lrkit.finder.find_lr` records) describe one curve; every rule
first keeps the curve up to its first non-finite loss.

Rules:

- ``"lrkit"`` (the default, designed on the benchmark in ``benchmarks/finder/``): see
  :func:`lrkit_rule`.
- ``"steepest"``: torch-lr-finder's rule: drop the first 10 and last 5 points, take the argmin
  of ``np.gradient(smoothed)`` (unit spacing, i.e. the slope against log lr in exp mode).
- ``"valley"``: fastai's default: on the curve trimmed to ``[n // 10 : -5]``, the longest
  strictly decreasing subsequence of ``smoothed`` (O(n^2) dynamic programme); with its end
  ``s1`` and ``s0 = s1 - length`` (fastai's convention), ``sections = (s1 - s0) / 3`` and the
  suggestion is index ``s0 + int(sections) + int(sections / 2)``.
- ``"minimum"``: fastai's: the lr of the minimum smoothed loss (trimmed curve) divided by 10.
- ``"slide"``: fastai's: walk left from the end of the trimmed curve with a 15-point window while
  ``|g[r] - g[l]| > 0.005`` for the gradient ``g`` of the smoothed loss; the lr at the window's
  left end.

The published rules are schedule-blind (``schedule`` does not change them); lrkit's rule scales
its answer for a decaying schedule. Each returns a :class:`Suggestion`; ``lr=None`` with a
reason means the curve gives no clear answer (flat, immediately divergent or too short).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrkit._validate import check_choice, fail

__all__ = [
    "METHODS",
    "SCHEDULES",
    "Suggestion",
    "lrkit_rule",
    "suggest",
    "suggest_range",
]

#: every rule :func:`suggest` knows; the first is the default
METHODS: tuple[str, ...] = ("lrkit", "steepest", "valley", "minimum", "slide")

#: schedules the suggestion can be made for; ``"cosine"`` means decay to (near) zero over the
#: run (cosine, linear decay, one-cycle's annealing all behave alike here)
SCHEDULES: tuple[str, ...] = ("constant", "cosine")

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Suggestion:
    """One rule's answer: ``lr`` (None when the curve gives no clear answer), the index of the
    curve point it came from (None when it is between points or absent) and why."""

    method: str
    lr: float | None
    index: int | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "lr": self.lr, "index": self.index, "reason": self.reason}


# ----------------------------------------------------------------------------- input
def _curve(lrs: ArrayLike, losses: ArrayLike, smoothed: ArrayLike) -> tuple[Array, Array, Array]:
    """Validated arrays, cut at the first non-finite loss (raw or smoothed)."""
    x = np.asarray(lrs, dtype=np.float64).reshape(-1)
    y = np.asarray(losses, dtype=np.float64).reshape(-1)
    s = np.asarray(smoothed, dtype=np.float64).reshape(-1)
    if not (len(x) == len(y) == len(s)):
        fail("losses", f"<{len(y)} losses, {len(s)} smoothed>", f"{len(x)} values like lrs")
    bad_lr = ~np.isfinite(x) | (x <= 0)
    if bad_lr.any():
        fail("lrs", x[bad_lr][0], "finite learning rates > 0")
    if len(x) > 1 and np.any(np.diff(x) <= 0):
        fail("lrs", "<not increasing>", "strictly increasing learning rates")
    finite = np.isfinite(y) & np.isfinite(s)
    n = len(x) if finite.all() else int(np.argmin(finite))
    return x[:n], y[:n], s[:n]


def _schedule(schedule: str) -> str:
    return check_choice("schedule", schedule, SCHEDULES)


# ----------------------------------------------------------------------------- published rules
def _steepest(lrs: Array, smoothed: Array) -> Suggestion:
    skip_start, skip_end = 10, 5
    if len(lrs) < skip_start + skip_end + 2:
        return Suggestion(
            "steepest",
            None,
            None,
            f"too short: {len(lrs)} finite points, steepest needs more than "
            f"{skip_start + skip_end + 1} (it drops the first 10 and last 5)",
        )
    part = smoothed[skip_start:-skip_end]
    i = int(np.argmin(np.gradient(part))) + skip_start
    return Suggestion("steepest", float(lrs[i]), i, "steepest descent of the smoothed loss")


def _trim(n: int) -> tuple[int, int]:
    """fastai's trimming of the curve before its rules: ``[n // 10 : n - 5]``."""
    return n // 10, n - 5


def _too_short(method: str, n: int, need: int) -> Suggestion:
    return Suggestion(
        method,
        None,
        None,
        f"too short: {n} finite points, {method} needs at least {need} "
        "(fastai trims the first tenth and the last 5)",
    )


def _valley(lrs: Array, smoothed: Array) -> Suggestion:
    lo, hi = _trim(len(lrs))
    if hi - lo < 3:
        return _too_short("valley", len(lrs), 9)
    losses = smoothed[lo:hi]
    n = len(losses)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    i = idx + lo
    return Suggestion("valley", float(lrs[i]), i, "about half way down the longest valley")


def _minimum(lrs: Array, smoothed: Array) -> Suggestion:
    lo, hi = _trim(len(lrs))
    if hi - lo < 1:
        return _too_short("minimum", len(lrs), 7)
    i = int(np.argmin(smoothed[lo:hi])) + lo
    return Suggestion(
        "minimum", float(lrs[i]) / 10.0, None, "a tenth of the lr at the minimum smoothed loss"
    )


def _slide(lrs: Array, smoothed: Array, lr_diff: int = 15, thresh: float = 0.005) -> Suggestion:
    lo, hi = _trim(len(lrs))
    if hi - lo < lr_diff + 2:
        return _too_short("slide", len(lrs), lr_diff + 2 + 5 + len(lrs) // 10)
    x, losses = lrs[lo:hi], smoothed[lo:hi]
    grad = np.gradient(losses)
    n = len(losses)
    r, left = n - 1, n - 1 - lr_diff
    chosen = left
    while left >= 0 and abs(grad[r] - grad[left]) > thresh:
        chosen = left
        r -= 1
        left -= 1
    i = chosen + lo
    return Suggestion(
        "slide", float(x[chosen]), i, "where the loss gradient stops changing (15-point window)"
    )


# ----------------------------------------------------------------------------- lrkit's rule
#: Constants of lrkit's rule, chosen on the benchmark's design seeds (benchmarks/finder).
_KNEE = 0.9  # the knee: where the loss has done this fraction of its total descent
_FACTOR = 3.0  # suggestion for a constant lr = _FACTOR x the lr at the knee ...
_EDGE_RISE = 0.1  # ... capped at _EDGE_CAP x the lr where the loss climbs back by this fraction
_EDGE_CAP = 0.5
_SCHEDULE_FACTOR = {"constant": 1.0, "cosine": 1.0}  # peak lr multiplier for decaying schedules
_MIN_POINTS = 20  # fewer finite points: too short to judge
_MIN_DROP = 0.05  # relative descent below which the curve counts as flat
_NOISE_RATIO = 4.0  # the descent must also exceed this many noise widths
_SMOOTH_DECADES = 0.2  # half-width of the centred smoothing window, in decades of lr


def _centered_smooth(values: Array, half_width: int) -> Array:
    """Lag-free smoothing: running median of 5, then a centred triangular moving average."""
    n = len(values)
    med = np.array(
        [float(np.median(values[max(0, i - 2) : min(n, i + 3)])) for i in range(n)],
        dtype=np.float64,
    )
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        lo, hi = max(0, i - half_width), min(n, i + half_width + 1)
        w = (half_width + 1 - np.abs(np.arange(lo, hi) - i)).astype(np.float64)
        out[i] = float(np.dot(w, med[lo:hi]) / w.sum())
    return out


@dataclass(frozen=True)
class CurveFeatures:
    """What lrkit's rule reads off a curve (exposed for the benchmark and the plot)."""

    curve: Array  # lag-free smoothed loss
    start: float  # loss before training made progress (median of the first tenth)
    low: float  # minimum of ``curve``
    i_min: int
    i_knee: int  # first point where the loss has done _KNEE of its descent
    i_edge: int | None  # first point after the minimum where it climbed back by _EDGE_RISE
    noise: float  # robust width of the raw loss around ``curve``


def curve_features(lrs: Array, losses: Array) -> CurveFeatures:
    """Smooth the raw losses without lag and locate the knee, the minimum and the edge."""
    n = len(lrs)
    logx = np.log10(lrs)
    per_decade = (n - 1) / max(float(logx[-1] - logx[0]), 1e-12)
    half = max(2, int(round(_SMOOTH_DECADES * per_decade)))
    curve = _centered_smooth(losses, half)
    start = float(np.median(losses[: max(3, n // 10)]))
    i_min = int(np.argmin(curve))
    low = float(curve[i_min])
    drop = start - low
    i_knee = int(np.argmax(curve[: i_min + 1] <= start - _KNEE * drop))
    above = np.nonzero(curve[i_min:] > low + _EDGE_RISE * drop)[0]
    i_edge = i_min + int(above[0]) if len(above) else None
    noise = 1.4826 * float(np.median(np.abs(losses - curve)))
    return CurveFeatures(curve, start, low, i_min, i_knee, i_edge, noise)


def lrkit_rule(
    lrs: ArrayLike, losses: ArrayLike, smoothed: ArrayLike, *, schedule: str = "constant"
) -> Suggestion:
    """lrkit's default rule: a multiple of the lr at the knee of the descent, capped below the
    edge where the loss turns up; scaled up for a decaying schedule.

    It reads the raw losses with its own lag-free smoothing (a running median against spikes,
    then a centred average; an EMA lags and shifts every feature to the right), finds the knee
    (where the loss has done 90% of its descent: stable from run to run, unlike the exact
    minimum on a flat bottom) and returns ``3 x`` its lr, at most half the lr at which the loss
    climbs back by 10% of its descent. With ``schedule="cosine"`` (decay to zero) the peak lr is
    multiplied by the benchmark's factor. No suggestion (``lr=None``) when the curve is too
    short, never descends (diverged at once) or is flat within its noise.
    """
    schedule = _schedule(schedule)
    x, y, _ = _curve(lrs, losses, smoothed)
    n = len(x)
    if n < _MIN_POINTS:
        return Suggestion(
            "lrkit",
            None,
            None,
            f"too short: {n} finite points before the curve stopped; lrkit's rule needs "
            f"{_MIN_POINTS} (use more num_steps or a lower start_lr)",
        )
    f = curve_features(x, y)
    drop = f.start - f.low
    scale = max(abs(f.start), 1e-12)
    if f.i_min <= max(2, n // 10):
        return Suggestion(
            "lrkit",
            None,
            None,
            "no usable descent: the loss rises from the start (diverged at once); lower start_lr",
        )
    if drop < _MIN_DROP * scale or drop < _NOISE_RATIO * f.noise:
        return Suggestion(
            "lrkit",
            None,
            None,
            f"no usable descent: the loss fell by {100 * drop / scale:.1f}% of its start, "
            f"within its noise (flat curve); widen the range (end_lr) or check the model",
        )
    lr = _FACTOR * float(x[f.i_knee])
    reason = f"{_FACTOR:g} x the lr at the knee of the descent ({x[f.i_knee]:.3g})"
    if f.i_edge is not None and lr > _EDGE_CAP * float(x[f.i_edge]):
        lr = _EDGE_CAP * float(x[f.i_edge])
        reason = f"{_EDGE_CAP:g} x the lr where the loss turns up ({x[f.i_edge]:.3g})"
    factor = _SCHEDULE_FACTOR[schedule]
    if factor != 1.0:
        lr *= factor
        reason += f", x {factor:g} for a {schedule} schedule"
    return Suggestion("lrkit", lr, None, reason)


# ----------------------------------------------------------------------------- public API
def suggest(
    lrs: ArrayLike,
    losses: ArrayLike,
    smoothed: ArrayLike,
    method: str = "lrkit",
    *,
    schedule: str = "constant",
) -> Suggestion:
    """The suggestion of ``method`` (one of :data:`METHODS`) for a range-test curve.

    ``schedule`` is the schedule you will train with: ``"constant"`` or ``"cosine"`` (decay to
    zero). Only lrkit's rule uses it; the published rules are schedule-blind.

    Example:
        >>> import numpy as np
        >>> lrs = np.geomspace(1e-5, 1, 60)
        >>> loss = 2 - np.tanh(3 * (np.log10(lrs) + 3)) + 5 * np.maximum(np.log10(lrs) + 1, 0) ** 2
        >>> s = suggest(lrs, loss, loss)
        >>> 1e-3 < s.lr < 1e-1
        True
    """
    check_choice("method", method, METHODS)
    schedule = _schedule(schedule)
    if method == "lrkit":
        return lrkit_rule(lrs, losses, smoothed, schedule=schedule)
    x, _, s = _curve(lrs, losses, smoothed)
    if method == "steepest":
        return _steepest(x, s)
    if method == "valley":
        return _valley(x, s)
    if method == "minimum":
        return _minimum(x, s)
    return _slide(x, s)


def suggest_range(
    lrs: ArrayLike, losses: ArrayLike, smoothed: ArrayLike, *, schedule: str = "constant"
) -> tuple[float, float] | None:
    """``(low, high)`` bounds for cyclic / one-cycle schedules, or None without a clear answer.

    ``high`` is lrkit's suggestion for a decaying schedule (the peak); ``low`` is a tenth of it
    (Smith's one-cycle ratio). ``schedule`` is accepted for symmetry with :func:`suggest`.
    """
    _schedule(schedule)
    peak = lrkit_rule(lrs, losses, smoothed, schedule="cosine")
    if peak.lr is None:
        return None
    return (peak.lr / 10.0, peak.lr)
