"""Suggestion rules: pick a learning rate from a range-test curve.

Pure functions on arrays (no torch). ``lrs``, ``losses`` (raw) and ``smoothed`` (the
bias-corrected EMA that :func:`lrkit.finder.find_lr` records) describe one curve; every rule
first keeps the curve up to its first non-finite loss.

Rules:

- ``"lrkit"`` (the default, chosen by leave-one-task-out in ``benchmarks/race_design.py``):
  see :func:`lrkit_rule`.
- ``"steepest"``: torch-lr-finder's rule: drop the first 10 and last 5 points, take the argmin
  of ``np.gradient(smoothed)`` (unit spacing, i.e. the slope against log lr in exp mode).
- ``"steepest_lightning"``: Lightning's (>= 2.5.3): drop the first 10 and the last point,
  take the argmin of ``np.gradient(smoothed, lrs)`` (the slope against linear lr).
- ``"valley"``: fastai's default: on the curve trimmed to ``[n // 10 : -5]``, the longest
  strictly decreasing subsequence of ``smoothed`` (O(n^2) dynamic programme); with its end
  ``s1`` and ``s0 = s1 - length`` (fastai's convention), ``sections = (s1 - s0) / 3`` and the
  suggestion is index ``s0 + int(sections) + int(sections / 2)``.
- ``"minimum"``: fastai's: the lr of the minimum smoothed loss (trimmed curve) divided by 10.
- ``"slide"``: fastai's: walk left from the end of the trimmed curve with a 15-point window while
  ``|g[r] - g[l]| > 0.005`` for the gradient ``g`` of the smoothed loss; the lr at the window's
  left end.

The published rules are schedule- and optimizer-blind; lrkit's rule scales its answer by
optimizer family (SGD or adaptive) and schedule, and was chosen by how it generalises
(leave-one-task-out), not by how it fits. Each returns
a :class:`Suggestion`; ``lr=None`` with a reason means the curve gives no clear answer (flat,
immediately divergent or too short).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrkit._validate import check_choice, fail

__all__ = [
    "FAMILIES",
    "METHODS",
    "SCHEDULES",
    "Suggestion",
    "lrkit_rule",
    "optimizer_family",
    "schedule_family",
    "suggest",
    "suggest_range",
]

#: every rule :func:`suggest` knows; the first is the default
METHODS: tuple[str, ...] = (
    "lrkit",
    "steepest",
    "steepest_lightning",
    "valley",
    "minimum",
    "slide",
)

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


def schedule_family(spec: object, total_steps: int | None = None) -> str:
    """The schedule family whose suggestion rule fits ``spec`` (``"constant"`` or ``"cosine"``).

    The rules know a constant learning rate and a decay to (near) zero. The family of a
    schedule is its own kind when the rules know it; otherwise a schedule that ends at 10% of
    its peak or less over ``total_steps`` is a decay (cosine, linear, one-cycle, step decay,
    ...), and one that does not (reduce-on-plateau before any cut, inverse square root, or no
    budget given) is constant. A warmup in front does not change the family.

    Example:
        >>> schedule_family("warmup(50, cosine(950))", 1000)
        'cosine'
        >>> schedule_family("onecycle(300)", 300), schedule_family("plateau()", 300)
        ('cosine', 'constant')
    """
    from lrkit.schedules import Warmup, parse

    schedule = parse(spec)  # type: ignore[arg-type]
    inner = schedule
    while isinstance(inner, Warmup):
        inner = inner.schedule
    if inner.kind in SCHEDULES:
        return inner.kind
    if total_steps is None or total_steps < 2:
        return "constant"
    values = schedule.values(total_steps)
    peak = float(values.max())
    decays = peak > 0 and float(values[-1]) <= 0.1 * peak
    return "cosine" if decays else "constant"


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


def _steepest_lightning(lrs: Array, smoothed: Array) -> Suggestion:
    skip_start, skip_end = 10, 1
    if len(lrs) < skip_start + skip_end + 2:
        return Suggestion(
            "steepest_lightning",
            None,
            None,
            f"too short: {len(lrs)} finite points, Lightning's steepest needs more than "
            f"{skip_start + skip_end + 1} (it drops the first 10 and the last)",
        )
    x, part = lrs[skip_start:-skip_end], smoothed[skip_start:-skip_end]
    i = int(np.argmin(np.gradient(part, x))) + skip_start
    return Suggestion(
        "steepest_lightning",
        float(lrs[i]),
        i,
        "steepest descent of the smoothed loss against linear lr (Lightning)",
    )


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
#: Constants of lrkit's rule (v4). The form (the geometric mean of the bottom's middle and the
#: edge, times a factor per optimizer family and schedule) and its factors were chosen by
#: leave-one-task-out over the 12 design tasks of ``benchmarks/race_design.py``: each factor
#: fitted on 11 tasks (minimising the worst per-task median regret), scored on the 12th; the
#: form with the lowest held-out worst case won. The factors are the fit on all 12 tasks
#: (2 significant digits). See docs/find.md.
_SMOOTH_DECADES = 0.4  # half-width of the centred smoothing window, in decades of lr
_BASIN = 0.1  # the bottom: the stretch around the minimum within 10% of the descent of it
_EDGE_RISE = 0.1  # the edge: where the loss climbs back by 10% of its descent
#: a constant lr stays below this fraction of the edge's lr (the stability limit binds for the
#: whole run; a decaying schedule spends only its start at the peak)
_EDGE_CAP = 0.5
#: multiplier of the anchor, sqrt(bottom's middle x edge), per optimizer family and schedule
_FACTORS: dict[str, dict[str, float]] = {
    "adaptive": {"constant": 0.15, "cosine": 0.18},
    "sgd": {"constant": 0.28, "cosine": 0.35},
}
_MIN_POINTS = 20  # fewer finite points: too short to judge
_RANK_CLEAR = 0.75  # share of the bottom's losses below (nearly) every starting loss ...
_RANK_WEAK = 0.5  # ... or this share together with a z-score of at least _Z_WEAK
_Z_WEAK = 3.0

#: optimizer families lrkit's rule knows; torch's SGD and ASGD are "sgd", the rest "adaptive"
FAMILIES: tuple[str, ...] = ("adaptive", "sgd")


def optimizer_family(optimizer: str | None) -> str:
    """``"sgd"`` or ``"adaptive"`` for an optimizer class name (``"SGD"``, ``"AdamW"``, ...) or a
    family name; None (unknown) counts as ``"adaptive"``, the lower, safer suggestion.

    Example:
        >>> optimizer_family("SGD"), optimizer_family("AdamW"), optimizer_family(None)
        ('sgd', 'adaptive', 'adaptive')
        >>> optimizer_family("sgd_momentum"), optimizer_family("nesterov")
        ('sgd', 'sgd')
    """
    if optimizer is None:
        return "adaptive"
    if not isinstance(optimizer, str) or not optimizer:
        fail("optimizer", optimizer, "an optimizer class name such as 'SGD' or 'AdamW', or None")
    name = optimizer.lower()
    if name in FAMILIES:
        return name
    # torch's SGD / ASGD, and the advisor's sgd_momentum / nesterov (SGD with momentum)
    return "sgd" if "sgd" in name or name == "nesterov" else "adaptive"


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
    """What lrkit's rule reads off a curve (exposed for the benchmark, the tests and the plot).

    Learning rates are interpolated between curve points on the log scale.
    """

    curve: Array  # lag-free smoothed loss
    half: int  # half-width of the smoothing window, in points
    start: float  # loss before training made progress (median of the first tenth)
    low: float  # minimum of ``curve``
    i_min: int
    lr_half: float  # where ``curve`` first reaches half of its descent
    lr_bottom: float  # geometric middle of the bottom (within _BASIN x descent of the low)
    i_edge: int | None  # first point after the minimum where it climbed back by _EDGE_RISE
    bottom_share: float  # share of losses around the minimum below (nearly) all starting ones
    z: float  # descent / its standard error (robust noise estimate)


def curve_features(lrs: Array, losses: Array) -> CurveFeatures:
    """Smooth the raw losses without lag and locate the descent, the bottom and the edge."""
    n = len(lrs)
    logx = np.log10(lrs)
    per_decade = (n - 1) / max(float(logx[-1] - logx[0]), 1e-12)
    half = max(2, int(round(_SMOOTH_DECADES * per_decade)))
    curve = _centered_smooth(losses, half)
    start = float(np.median(losses[: max(3, n // 10)]))
    i_min = int(np.argmin(curve))
    low = float(curve[i_min])
    drop = start - low
    # half way down: first crossing of start - drop / 2, interpolated on log lr
    level = start - 0.5 * drop
    i = int(np.argmax(curve[: i_min + 1] <= level))
    if i == 0 or curve[i - 1] == curve[i]:
        lr_half = float(lrs[i])
    else:
        t = float((curve[i - 1] - level) / (curve[i - 1] - curve[i]))
        lr_half = float(10 ** (logx[i - 1] + t * (logx[i] - logx[i - 1])))
    # the bottom: the contiguous stretch around the minimum within _BASIN x drop of the low
    near = curve <= low + _BASIN * drop
    lo = hi = i_min
    while lo > 0 and near[lo - 1]:
        lo -= 1
    while hi < n - 1 and near[hi + 1]:
        hi += 1
    lr_bottom = float(10 ** ((logx[lo] + logx[hi]) / 2))
    above = np.nonzero(curve[i_min:] > low + _EDGE_RISE * drop)[0]
    i_edge = i_min + int(above[0]) if len(above) else None
    # is the descent real? the raw losses around the minimum against the starting ones
    first = np.sort(losses[: max(5, n // 5)])
    threshold = first[len(first) // 10]  # the lowest starting loss, or the 2nd/3rd of many
    b_lo, b_hi = max(0, i_min - half), min(n, i_min + half + 1)
    bottom = losses[b_lo:b_hi]
    share = float(np.mean(bottom < threshold))
    resid = losses - _centered_smooth(losses, 2)
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    n_start = max(3, n // 10)
    err = 1.2533 * noise * float(np.sqrt(1 / n_start + 1 / len(bottom)))
    z = float(start - float(np.median(bottom))) / err if err > 0 else float("inf")
    return CurveFeatures(curve, half, start, low, i_min, lr_half, lr_bottom, i_edge, share, z)


def lrkit_rule(
    lrs: ArrayLike,
    losses: ArrayLike,
    smoothed: ArrayLike,
    *,
    schedule: str = "constant",
    optimizer: str | None = None,
) -> Suggestion:
    """lrkit's default rule: a fraction of the geometric mean of the curve's bottom and its
    edge, by optimizer family and schedule; a constant lr stays below half the edge.

    The rule reads the raw losses with its own lag-free smoothing (a running median against
    spikes, then a centred average over +-0.4 decades; an EMA lags and shifts every feature to
    the right). Then it takes two steady features: the middle of the bottom (the stretch around
    the minimum within 10% of the descent of it) and the edge (where the loss climbs back by
    10% of its descent; the end of the curve when it never does), and answers

        factor[family][schedule] * sqrt(bottom_middle * edge)

    with the factors 0.15 / 0.18 (adaptive optimizers, also when ``optimizer`` is unknown;
    constant lr / cosine decay) and 0.28 / 0.35 (SGD, with or without momentum), and for a
    constant lr at most 0.5 x the edge. The form and the factors were chosen by
    leave-one-task-out on 12 design tasks (``benchmarks/race_design.py``): no curve rule is
    safe everywhere (overfitting over a whole run is invisible to a 100-step test), so this is
    the quick answer; :func:`lrkit.race.run_race` verifies it.

    No suggestion (``lr=None``, with the reason) when the curve is too short (< 20 finite
    points), rises from the start (diverged at once), or has no real descent: the losses
    around the minimum must be below (nearly) all starting losses, a rank test that does not
    depend on the loss's units or offset.
    """
    schedule = _schedule(schedule)
    family = optimizer_family(optimizer)
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
    if f.i_min <= max(2, n // 10):
        return Suggestion(
            "lrkit",
            None,
            None,
            "no usable descent: the loss rises from the start (diverged at once); lower start_lr",
        )
    clear = f.bottom_share >= _RANK_CLEAR or (f.bottom_share >= _RANK_WEAK and f.z >= _Z_WEAK)
    if not clear:
        return Suggestion(
            "lrkit",
            None,
            None,
            f"no usable descent: only {100 * f.bottom_share:.0f}% of the losses around the "
            f"lowest point are below the lowest starting losses (z = {f.z:.1f}): a flat "
            "curve within its noise; widen the range (end_lr), add num_steps or check the model",
        )
    edge = float(x[f.i_edge]) if f.i_edge is not None else float(x[-1])
    anchor = float(np.sqrt(f.lr_bottom * edge))
    factor = _FACTORS[family][schedule]
    lr = factor * anchor
    where = "the edge where the loss turns up" if f.i_edge is not None else "the end of the test"
    reason = (
        f"{factor:g} x the geometric mean of the bottom's middle ({f.lr_bottom:.3g}) and {where} "
        f"({edge:.3g}); {family} optimizer, {schedule} lr"
    )
    if schedule == "constant" and lr > _EDGE_CAP * edge:
        lr = _EDGE_CAP * edge
        reason = f"{_EDGE_CAP:g} x {where} ({edge:.3g}), the most a constant lr may take"
    return Suggestion("lrkit", lr, None, reason)


# ----------------------------------------------------------------------------- public API
def suggest(
    lrs: ArrayLike,
    losses: ArrayLike,
    smoothed: ArrayLike,
    method: str = "lrkit",
    *,
    schedule: str = "constant",
    optimizer: str | None = None,
) -> Suggestion:
    """The suggestion of ``method`` (one of :data:`METHODS`) for a range-test curve.

    ``schedule`` is the schedule you will train with: ``"constant"`` or ``"cosine"`` (decay to
    zero; linear decay and one-cycle's annealing behave alike). ``optimizer`` is the optimizer's
    class name (``"SGD"``, ``"AdamW"``, ...) or family (``"sgd"``, ``"adaptive"``); None counts as
    adaptive. Only lrkit's rule uses them; the published rules are schedule- and optimizer-blind.

    Example:
        >>> import numpy as np
        >>> lrs = np.geomspace(1e-5, 1, 60)
        >>> loss = 2 - np.tanh(3 * (np.log10(lrs) + 3)) + 5 * np.maximum(np.log10(lrs) + 1, 0) ** 2
        >>> s = suggest(lrs, loss, loss)
        >>> 3e-3 < s.lr < 3e-2
        True
    """
    check_choice("method", method, METHODS)
    schedule = _schedule(schedule)
    family = optimizer_family(optimizer)
    if method == "lrkit":
        return lrkit_rule(lrs, losses, smoothed, schedule=schedule, optimizer=family)
    x, _, s = _curve(lrs, losses, smoothed)
    if method == "steepest":
        return _steepest(x, s)
    if method == "steepest_lightning":
        return _steepest_lightning(x, s)
    if method == "valley":
        return _valley(x, s)
    if method == "minimum":
        return _minimum(x, s)
    return _slide(x, s)


def suggest_range(
    lrs: ArrayLike,
    losses: ArrayLike,
    smoothed: ArrayLike,
    *,
    schedule: str = "constant",
    optimizer: str | None = None,
) -> tuple[float, float] | None:
    """``(low, high)`` bounds for cyclic / one-cycle schedules, or None without a clear answer.

    ``high`` is lrkit's suggestion for a decaying schedule (the peak); ``low`` is a tenth of it
    (Smith's one-cycle ratio). ``schedule`` is accepted for symmetry with :func:`suggest`.
    """
    _schedule(schedule)
    peak = lrkit_rule(lrs, losses, smoothed, schedule="cosine", optimizer=optimizer)
    if peak.lr is None:
        return None
    return (peak.lr / 10.0, peak.lr)
