"""Detectors: each looks at a prepared curve and returns findings. Pure numpy.

Every detector works on at most ``Thresholds.max_points`` (binned) values, so diagnosing a
curve costs O(n) for the binning plus a bounded amount of work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrkit.diagnosis._findings import Finding
from lrkit.diagnosis._monitor import LossMonitor, replay
from lrkit.diagnosis._progress import Progress, lr_time, progress
from lrkit.diagnosis._stats import (
    MAD_SCALE,
    TrendTest,
    mann_kendall,
    rolling_median,
    sens_slope,
)

__all__ = ["Curve", "Thresholds", "detect_all"]

FloatArray = NDArray[np.float64]
USE_MONITOR = False


@dataclass(frozen=True)
class Thresholds:
    """Tunable thresholds of the detectors (defaults tuned on the corpus's tuning tasks).

    Attributes:
        min_points: fewer finite points than this gives "inconclusive".
        max_points: longer curves are binned to this many means before the analysis.
        spike_z, spike_ratio, spike_min_rise: the ``spike_z``, ``spike_ratio`` and
            ``min_rise`` of the :class:`~lrkit.diagnosis.LossMonitor` that finds spikes and
            jumps (the live Guard's detector, replayed over the curve); the defaults are the
            Guard's.
        spike_grad_z, spike_z_with_grad: no longer used (a gradient-norm jump is judged by the
            monitor's ``grad_ratio``); kept so that code passing them still runs.
        spike_recovery: after a spike the loss must come back below ``spike_recovery`` x the
            trailing median before it (median of the rest of the run), else the jump counts
            as divergence.
        diverge_rise: the end level must exceed the best level by this fraction of the best.
        diverge_persist: fraction of the points after the onset that stay above the threshold.
        explode_ratio: the loss exceeding this multiple of its initial value in the first
            fifth of the run marks an unstable start ("oscillating": learning rate too high).
        stuck_explode_ratio: a run without net progress whose loss went above this multiple
            of its initial value early on is "oscillating" (too high), not a plateau.
        stuck_transient: ... and whose maximum in the first fifth is at least this multiple of
            the maximum in the last fifth (a transient, not stationary noise).
        oscillation_swing: swing amplitude that marks oscillation: the 90th percentile of
            ``|log(short median) - log(long median)|`` after the first tenth (0.85 = the
            smoothed loss swings by a factor ~2.3 around its trend).
        oscillation_spikes: this many separate spikes count as oscillation.
        plateau_trend_z: the second half counts as "no progress" when the Mann-Kendall z
            (autocorrelation-corrected) is above this (i.e. not clearly decreasing).
        plateau_share, plateau_decades: no longer used (they made "progress stopped early" a
            plateau, so a run that fell fast and settled at its best lr was told to raise its
            lr 10x; such a run has converged); kept so that code passing them still runs.
        plateau_drop: relative improvement below this, with no downward trend, is a plateau.
        plateau_lr: a learning rate below this fraction of its maximum for the last
            ``plateau_lr_span`` of the run (or more) explains a plateau.
        plateau_lr_span: see ``plateau_lr``.
        slow_decades_early: "barely falling" (too slow): the loss fell by fewer decades than
            this, steadily, with less than ``slow_early`` of its progress made in the first
            tenth of the run's lr-time ...
        slow_early: see ``slow_decades_early``.
        slow_decades, slow_share: no longer used (a rule on the decades fallen alone told a
            language model's good runs, whose loss can only fall ~0.25 decades, "too slow");
            kept so that code passing them still runs.
        overfit_rise: validation end level above its minimum by this fraction.
        overfit_min_evals: evaluations needed after the validation minimum.
        overfit_train_drop: ... or, without such a rise: the validation loss has not improved
            since an evaluation in the first half of the run while the training loss fell by
            this factor after it (memorising the training set).
        alpha: significance level of the trend tests.
        evidence_z: a level change (fall, rise, early rise) must exceed this many standard
            errors of a level difference (``Summary.se_diff``); a verdict without it is
            "inconclusive" (not enough evidence) rather than a guess.
        spike_noise: a spike (or an early blow-up) must exceed the point-to-point noise by this
            many robust standard deviations (log scale).
        settle_points: a curve shorter than this with the "too_slow" pattern whose second
            half still falls clearly is "inconclusive" (too early to tell a low learning rate
            from the early phase of a healthy run).
        plateau_power: "no progress" needs ``2 x se_diff`` below this (on a log scale): the
            curve must be able to show a ~20% improvement had there been one.
        falling_share: "still falling" (lr too low): at least this share of the judged curve's
            fall (validation loss, else smoothed training loss) came in lr-time 0.5-0.8 (see
            ``lrkit.diagnosis._progress``), by more than ``evidence_z`` standard errors.
        val_rise: the validation loss "got worse": it ended (median of the last three
            evaluations) this fraction above its best ...
        val_min_share: ... and its best evaluation lies in the first ``val_min_share`` of the
            steps. A steady rise (``overfit_zigzag``) is overfitting; one that jumps around
            means the lr is too high.
        overfit_zigzag: a validation rise whose path length is at most this multiple of its
            net change is steady (overfitting).
        jump_ratio: an evaluation in the first fifth at this multiple of the starting training
            loss or more means the updates blew the model up (unstable start: lr too high); a
            training loss that jumped this far above its first value early on is no "barely
            falling" run.
    """

    min_points: int = 20
    max_points: int = 4096
    spike_z: float = 6.0
    spike_ratio: float = 2.0
    spike_grad_z: float = 8.0
    spike_z_with_grad: float = 8.0
    spike_min_rise: float = 0.1
    spike_recovery: float = 3.0
    diverge_rise: float = 0.5
    diverge_persist: float = 0.9
    explode_ratio: float = 6.0
    stuck_explode_ratio: float = 1.3
    stuck_transient: float = 1.5
    oscillation_swing: float = 0.85
    oscillation_spikes: int = 3
    plateau_trend_z: float = -2.0
    plateau_share: float = 0.95
    plateau_decades: float = 1.5
    plateau_drop: float = 0.05
    plateau_lr: float = 0.01
    plateau_lr_span: float = 0.4
    slow_decades: float = 0.3
    slow_share: float = 0.8
    slow_decades_early: float = 1.0
    slow_early: float = 0.2
    overfit_rise: float = 0.25
    overfit_min_evals: int = 3
    overfit_train_drop: float = 10.0
    alpha: float = 0.05
    evidence_z: float = 3.0
    spike_noise: float = 5.0
    plateau_power: float = 0.2
    settle_points: int = 100
    falling_share: float = 0.25
    val_rise: float = 0.2
    val_min_share: float = 0.6
    overfit_zigzag: float = 1.5
    jump_ratio: float = 3.0

    def replace(self, **changes: float) -> Thresholds:
        """A copy with some thresholds changed (unknown names raise ValueError)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(
                f"thresholds must be names from {sorted(names)}, but got thresholds={unknown!r}"
            )
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Thresholds(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Curve:
    """A prepared (finite, possibly binned) training curve plus optional extra series."""

    x: FloatArray  # step of each value (bin start when binned)
    y: FloatArray  # loss (bin mean when binned); finite
    width: FloatArray  # steps covered by each value (1 when not binned)
    val_x: FloatArray | None
    val_y: FloatArray | None
    lr: FloatArray | None  # lr at each x (or a single value), if known
    grad: FloatArray | None  # gradient norm at each x (inf allowed), if known
    peak: FloatArray | None = None  # bin maxima when binned (spikes survive the binning)
    detections: list[Any] | None = None  # a live LossMonitor's detections (else: replayed)


def _step(x: FloatArray, i: int) -> int:
    return int(x[min(max(i, 0), x.size - 1)])


def _window(n: int) -> int:
    return int(min(101, max(5, (n // 25) | 1)))


@dataclass(frozen=True)
class Summary:
    """Shared statistics computed once per curve."""

    base: FloatArray  # centred rolling median
    resid: FloatArray
    scale: FloatArray  # local robust noise scale
    initial: float  # the first loss value (before training changed much)
    start: float
    end: float
    best: float
    best_index: int
    noise_end: float  # relative noise over the last half
    early_share: float  # share of the total improvement reached after the first tenth
    quarter_share: float  # ... after the first quarter (improvement measured to the end level)
    decades: float  # log10(initial / end), NaN when a level is not positive
    explode: float  # max loss in the first fifth / initial loss
    swing: float  # oscillation amplitude (see Thresholds.oscillation_swing)
    trend: TrendTest
    trend_half: TrendTest  # second half
    window: int
    sigma: float  # point-to-point noise (log scale for positive losses), from differences
    se_diff: float  # standard error of the difference of two levels (medians of a tenth)
    fall: float  # start level - end level (log scale for positive losses)
    log_scale: bool


def summarise(curve: Curve, th: Thresholds) -> Summary:
    y = curve.y
    n = y.size
    w = _window(n)
    base = rolling_median(y, w)
    resid = y - base
    scale = MAD_SCALE * rolling_median(np.abs(resid), 2 * w + 1)
    head = max(3, n // 20)
    initial = float(y[0])
    start = float(np.median(y[:head]))
    end = float(np.median(y[-max(3, n // 10) :]))
    best_index = int(np.argmin(base))
    best = float(base[best_index])
    half = y[n // 2 :]
    half_base = base[n // 2 :]
    ref = max(float(np.median(np.abs(half_base))), 1e-12)
    noise_end = float(MAD_SCALE * np.median(np.abs(half - half_base)) / ref)
    # shares of the progress made by a tenth / a quarter of the run's lr-time (the step share
    # without an lr): a warmup is no slow start
    tau, _ = lr_time(curve)
    i10 = min(n - 1, int(np.searchsorted(tau, 0.1)))
    i25 = min(n - 1, int(np.searchsorted(tau, 0.25)))
    total = initial - best
    early_share = float((initial - base[i10]) / total) if total > 0 else 0.0
    gained = initial - end
    quarter_share = float((initial - base[i25]) / gained) if gained > 0 else 0.0
    decades = math.log10(initial / end) if initial > 0 and end > 0 else math.nan
    fifth = y[1 : max(2, n // 5)]
    explode = float(np.max(fifth) / initial) if initial > 0 and fifth.size else 1.0
    trend = mann_kendall(y, max_points=600)
    trend_half = mann_kendall(half, max_points=400)
    return Summary(
        base,
        resid,
        scale,
        initial,
        start,
        end,
        best,
        best_index,
        noise_end,
        early_share,
        quarter_share,
        decades,
        explode,
        _swing(y),
        trend,
        trend_half,
        w,
        *_evidence(y),
    )


def _evidence(y: FloatArray) -> tuple[float, float, float, bool]:
    """Noise and level-difference uncertainty: how much a short, noisy curve can tell.

    sigma: robust standard deviation of successive differences / sqrt(2) (a trend does not
    inflate it); se_diff: standard error of the difference of two medians of a tenth of the
    points each (1.2533 sigma / sqrt(k) per median); fall: start level - end level.
    """
    n = y.size
    positive = bool(np.all(y > 0))
    v = np.log(y) if positive else y / max(float(np.median(np.abs(y))), 1e-12)
    d = np.diff(v)
    sigma = (
        float(MAD_SCALE * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0)) if n > 2 else 0.0
    )
    k = max(3, n // 10)
    se_diff = 1.2533 * sigma * math.sqrt(2.0 / k)
    fall = float(np.median(v[:k]) - np.median(v[-k:]))
    return sigma, se_diff, fall, positive


def _swing(y: FloatArray) -> float:
    """90th percentile of |short-window median - long-window median| on a log scale."""
    n = y.size
    if n < 20:
        return 0.0
    if np.all(y > 0):
        v = np.log(y)
    else:
        v = y / max(float(np.median(np.abs(y))), 1e-12)
    short = max(5, (n // 45) | 1)
    long = max(5 * short, (n // 8) | 1)
    r = rolling_median(v, short) - rolling_median(v, long)
    return float(np.percentile(np.abs(r[n // 10 :]), 90))


def monitor_events(curve: Curve, s: Summary, th: Thresholds) -> tuple[list[Finding], list[Finding]]:
    """Spikes and jumps as the live Guard sees them, judged with hindsight.

    The curve (bin maxima when binned, so a one-step spike survives) is replayed through a
    :class:`~lrkit.diagnosis.LossMonitor` with its default thresholds: each of its spike or
    divergence detections is a candidate, exactly where the Guard would have raised it. With the
    rest of the curve known, a candidate whose loss came back (the median of the last fifth of
    what follows below ``spike_recovery`` x the level before it) is a spike; one that did not
    is a jump (divergence). Returns (spikes, jumps).
    """
    x = curve.x
    y = curve.peak if curve.peak is not None else curve.y
    n = y.size
    grads = curve.grad.tolist() if curve.grad is not None and curve.grad.size == n else None
    spikes: list[Finding] = []
    shifts: list[Finding] = []
    monitor = LossMonitor(
        spike_z=th.spike_z, spike_ratio=th.spike_ratio, min_rise=th.spike_min_rise
    )
    found = curve.detections
    if found is None:
        found = replay(x.tolist(), y.tolist(), grads, monitor)
    for d in found:
        if d.kind == "nonfinite" or d.baseline is None:
            continue
        a = max(0, int(np.searchsorted(x, d.onset_step, side="right")) - 1)
        onset = max(int(d.onset_step), _step(x, a))  # exact when a live monitor saw it
        baseline = float(d.baseline)
        # the excursion: the points from the onset on above the midpoint (log scale for
        # positive losses) between the level before it and the detected value
        top = max(float(y[a]), float(d.value) if d.signal == "loss" else -math.inf)
        if baseline > 0 and top > 0:
            mid = math.sqrt(baseline * top)
        else:
            mid = 0.5 * (baseline + top)
        above = y[a:] > mid
        b = a + (int(np.argmin(above)) if not above.all() else above.size)
        b = max(b, a + 1)
        peak = float(np.max(y[a:b]))
        rest = curve.y[b:]
        tail = rest[-max(3, rest.size // 5) :] if rest.size >= 3 else rest
        level_end = float(np.median(tail)) if tail.size else peak
        recovered = tail.size >= 2 and level_end <= th.spike_recovery * abs(baseline)
        stats: dict[str, object] = {
            "peak": peak,
            "baseline": baseline,
            "peak_ratio": peak / abs(baseline) if baseline else math.inf,
            "robust_z": d.score,
            "signal": d.signal,
            "monitor_kind": d.kind,
            "level_end": level_end,
            "duration_steps": int(x[b - 1] - x[a] + curve.width[b - 1]),
        }
        if recovered:
            spikes.append(
                Finding(
                    "spiking",
                    "high",
                    onset,
                    f"loss spiked to {peak:.4g} ({peak / max(abs(baseline), 1e-30):.1f}x the "
                    f"trailing median {baseline:.4g}) at step {onset} and recovered",
                    stats,
                    end_step=max(onset, int(x[b - 1] + curve.width[b - 1] - 1)),
                )
            )
        else:
            shifts.append(
                Finding(
                    "diverging",
                    "critical",
                    onset,
                    f"loss jumped to {peak:.4g} at step {onset} and did not come back",
                    stats,
                )
            )
    return spikes, shifts


def detect_diverging(curve: Curve, s: Summary, th: Thresholds) -> Finding | None:
    """The loss ends well above its best level and stays there (persistence required).

    Levels are compared on a log scale when every loss is positive (a loss that grows
    exponentially crosses a fixed fraction of its final level only at the very end).
    """
    y, x = curve.y, curve.x
    n = y.size
    ref = max(abs(s.best), 1e-12)
    rise = (s.end - s.best) / ref
    if rise < th.diverge_rise:
        return None
    positive = bool(np.all(y > 0)) and s.best > 0
    if positive:
        v = np.log(y)
        base = np.log(np.maximum(s.base, 1e-300))
        scale = MAD_SCALE * rolling_median(np.abs(v - base), 2 * s.window + 1)
        best, end = math.log(s.best), math.log(s.end)
    else:
        v, base, scale, best, end = y, s.base, s.scale, s.best, s.end
    noise = float(np.median(scale[-max(3, n // 10) :]))
    unit = 1.0 if positive else max(float(np.median(np.abs(y))), 1e-12)
    # the best level is the minimum of a rolling median (biased low): one more standard error
    se_rise = 1.2533 * s.sigma * math.sqrt(1.0 / max(3, n // 10) + 1.0 / s.window) * unit
    if end - best < 3.0 * noise or end - best < (th.evidence_z + 1.0) * se_rise:
        return None
    threshold = best + 0.25 * (end - best)
    after = base[s.best_index :]
    # persistence: the loss stays above the threshold from the first crossing on
    tail_min = np.minimum.accumulate(after[::-1])[::-1]
    above = np.flatnonzero(tail_min > threshold)
    if above.size == 0:
        return None
    crossing = s.best_index + int(above[0])
    persist = float(np.mean(v[crossing:] > threshold))
    # onset: the last time before that the smoothed loss was near its best
    near = best + max(0.05 * (end - best), 2.0 * float(scale[s.best_index]))
    lifted = np.flatnonzero(tail_min > near)
    onset = s.best_index + int(lifted[0]) if lifted.size else crossing
    onset = min(onset, crossing)
    if persist < th.diverge_persist or n - crossing < 3:
        return None
    mk = mann_kendall(y[s.best_index :], max_points=400)
    stats = {
        "best_loss": s.best,
        "best_step": _step(x, s.best_index),
        "end_loss": s.end,
        "relative_rise": rise,
        "persistence": persist,
        "log_scale": positive,
        "mk_z_after_best": mk.z,
        "mk_p_after_best": mk.p,
    }
    return Finding(
        "diverging",
        "critical",
        _step(x, onset),
        f"loss rose from its best {s.best:.4g} to {s.end:.4g} ({rise:+.0%}) from step "
        f"{_step(x, onset)} on and stayed up",
        stats,
    )


def detect_unstable_start(curve: Curve, s: Summary, th: Thresholds) -> Finding | None:
    """Learning rate too high from the start: an early blow-up, or stuck above the start."""
    n = curve.y.size
    tenth = s.base[n // 10]
    progress = (s.initial - s.end) / max(abs(s.initial), 1e-12)
    stats = {
        "initial_loss": s.initial,
        "early_max_ratio": s.explode,
        "threshold": th.explode_ratio,
        "progress": progress,
    }
    strong = not s.log_scale or math.log(max(s.explode, 1e-300)) >= th.spike_noise * s.sigma
    # a blow-up the run recovered from (it ended below half its initial loss and settled: no
    # downward trend in its second half) is judged by what followed
    recovered = (
        s.log_scale
        and progress >= 0.5
        and s.trend_half.z > th.plateau_trend_z
        and s.swing < th.oscillation_swing
    )
    if s.explode >= th.explode_ratio and strong and not recovered:
        onset = int(np.argmax(curve.y[: max(2, n // 5)] > 2.0 * s.initial))
        return Finding(
            "oscillating",
            "high",
            _step(curve.x, onset),
            f"unstable start: the loss blew up to {s.explode:.3g}x its initial value in the "
            "first fifth of the run",
            stats,
        )
    vy = curve.val_y
    ref = max(s.initial, s.start)  # the loss before training changed much
    if vy is not None and vy.size >= 3 and ref > 0 and not recovered:
        early_val = float(np.max(vy[: max(2, vy.size // 5)]))
        if early_val >= th.jump_ratio * ref:
            assert curve.val_x is not None
            k = int(np.argmax(vy[: max(2, vy.size // 5)]))
            stats["early_val_max_ratio"] = early_val / ref
            return Finding(
                "oscillating",
                "high",
                int(curve.val_x[k]),
                f"unstable start: the validation loss reached {early_val / ref:.3g}x the "
                f"starting training loss at step {int(curve.val_x[k])}: the updates blew the "
                "model up",
                stats,
            )
    # The first loss is a single noisy value: an early excursion above it counts only when it
    # is a transient (the early maximum well above the maximum of the last fifth), not the
    # spread of a stationary noisy loss.
    margin = 3.0 * float(np.median(s.scale[: max(3, n // 5)]))
    fifth = max(2, n // 5)
    late_max = float(np.max(curve.y[-fifth:]))
    early_late = float(np.max(curve.y[1:fifth])) / late_max if late_max > 0 else math.inf
    above = tenth > max(s.initial, s.start) + margin
    if above and s.log_scale and tenth > 0 and max(s.initial, s.start) > 0:
        # the start level is a median of a twentieth of the points, the level at a tenth a
        # rolling median of ``window`` points: the rise must beat both medians' noise
        gap = math.log(tenth / max(s.initial, s.start))
        se_gap = 1.2533 * s.sigma * math.sqrt(1.0 / max(3, n // 20) + 1.0 / s.window)
        above = gap >= th.evidence_z * se_gap
    # two maxima of stationary noise differ by ~0.6-0.7 sigma (log scale): ask for 3 sigma
    transient = early_late >= th.stuck_transient and (
        not s.log_scale or math.log(early_late) >= 3.0 * s.sigma
    )
    rose = above or (s.explode >= th.stuck_explode_ratio and transient)
    stats["early_to_late_max"] = early_late
    if progress < th.plateau_drop and rose:
        return Finding(
            "oscillating",
            "high",
            _step(curve.x, 0),
            f"the loss rose above its initial value {s.initial:.4g} and made no progress "
            f"({progress:+.1%}): the updates are too large",
            stats,
        )
    return None


def detect_oscillating(
    curve: Curve, s: Summary, th: Thresholds, spikes: list[Finding]
) -> Finding | None:
    """Large swings of the smoothed loss around its trend, or recurring spikes."""
    n = curve.y.size
    stats: dict[str, object] = {
        "swing": s.swing,
        "threshold": th.oscillation_swing,
        "relative_noise_last_half": s.noise_end,
        "spikes": len(spikes),
    }
    short = max(5, (n // 45) | 1)
    long = max(5 * short, (n // 8) | 1)
    swing_noise = 1.2533 * s.sigma * math.sqrt(1.0 / short + 1.0 / long)
    stats["swing_noise_floor"] = swing_noise
    # the swing is a 90th percentile (~1.6 noise floors for pure noise), itself noisier when
    # estimated from fewer points
    swing_z = 2.0 * math.sqrt(max(1.0, 100.0 / n))
    if s.swing >= th.oscillation_swing and s.swing >= swing_z * swing_noise:
        big = np.abs(s.resid) > 2 * s.scale
        big[: n // 10] = False
        onset_idx = int(np.argmax(big)) if big.any() else n // 10
        return Finding(
            "oscillating",
            "high",
            _step(curve.x, onset_idx),
            f"the smoothed loss swings by a factor {math.exp(s.swing):.2g} around its trend",
            stats,
        )
    if len(spikes) >= th.oscillation_spikes:
        return Finding(
            "oscillating",
            "high",
            spikes[0].onset_step,
            f"{len(spikes)} separate loss spikes: the training is unstable",
            stats,
        )
    return None


def _lr_dead_from(curve: Curve, th: Thresholds) -> int | None:
    """Index from which the lr stays below ``plateau_lr`` x its maximum, if long enough."""
    lr = curve.lr
    n = curve.y.size
    if lr is None or lr.size != n:
        return None
    top = float(np.nanmax(lr)) if np.isfinite(lr).any() else 0.0
    if top <= 0:
        return None
    low = ~(lr > th.plateau_lr * top)
    # the last run of low values must reach the end and cover plateau_lr_span of the run
    if not low[-1]:
        return None
    live = np.flatnonzero(~low)
    first = int(live[-1]) + 1 if live.size else 0
    if n - first < th.plateau_lr_span * n:
        return None
    return first


def detect_slow(curve: Curve, s: Summary, th: Thresholds, prog: Progress) -> Finding | None:
    """Stuck (never really fell: plateau), or still falling at the end (lr too low: too_slow).

    A run that fell and then settled has *converged* and gets no finding here, however early
    it settled. A plateau is also reported when the lr fell to ~0 and the loss stopped.
    """
    n = curve.y.size
    drop = (s.start - s.end) / max(abs(s.start), 1e-12)
    stats: dict[str, object] = {
        "relative_improvement": drop,
        "decades": s.decades,
        "mk_z": s.trend.z,
        "mk_p": s.trend.p,
        "mk_z_second_half": s.trend_half.z,
        "variance_inflation": s.trend.variance_inflation,
        "sen_slope_second_half_relative": sens_slope(curve.y[n // 2 :], max_points=300)
        / max(abs(s.end), 1e-12),
        **prog.as_dict(),
    }
    decreasing = s.trend.p < th.alpha and s.trend.z < 0
    flat_half = s.trend_half.z > th.plateau_trend_z
    dead = _lr_dead_from(curve, th)
    if dead is not None and flat_half:
        stats["lr_dead_from_step"] = _step(curve.x, dead)
        return Finding(
            "plateau",
            "medium",
            _step(curve.x, dead),
            f"the learning rate fell below {th.plateau_lr:g}x its maximum at step "
            f"{_step(curve.x, dead)} and the loss stopped improving",
            stats,
        )
    stats["level_change_se"] = s.se_diff
    train_fell = s.fall >= th.evidence_z * s.se_diff
    if (
        prog.judged == "validation"
        and not train_fell
        and curve.val_y is not None
        and bool(np.all(curve.val_y > 0))
        and 0.0 <= -math.expm1(-prog.fall) < th.plateau_drop
        and prog.late_drop <= th.evidence_z * prog.late_se + th.plateau_drop
    ):
        # the training loss is too noisy to show progress, and the validation loss (the same
        # data each time) shows there was almost none
        return Finding(
            "plateau",
            "medium",
            _step(curve.x, 0),
            f"stuck: the validation loss fell only {-math.expm1(-prog.fall):.1%} and the "
            "training loss no more than its noise",
            stats,
        )
    if drop < th.plateau_drop:
        # under 5% over the whole run, a significant trend or not: it never really fell
        if not decreasing and 2.0 * s.se_diff > th.plateau_power:
            return None  # too noisy to rule out progress: not enough evidence
        return Finding(
            "plateau",
            "medium",
            _step(curve.x, 0),
            f"stuck: the loss never really fell (it changed by {-drop:+.1%}, Mann-Kendall "
            f"p={s.trend.p:.2g})",
            stats,
        )
    if slow_progress(s, th, prog) and n >= th.settle_points:
        return Finding(
            "too_slow",
            "medium",
            _step(curve.x, 0),
            f"barely falling: the loss fell only {s.decades:.2f} decades, steadily (share of "
            f"progress in the first tenth {s.early_share:.0%}): the learning rate looks too low",
            stats,
        )
    if still_falling(prog, th) and n >= th.settle_points:
        what = "validation" if prog.judged == "validation" else "training"
        clock = "of the lr budget" if prog.lr_time else "of the run"
        return Finding(
            "too_slow",
            "medium",
            _step(curve.x, 0),
            f"still falling: the {what} loss fell {prog.late_share:.0%} of its total fall in "
            f"the second half {clock} (from 50% to 80%), so it had not settled: the "
            "learning rate looks too low",
            stats,
        )
    return None


def slow_progress(s: Summary, th: Thresholds, prog: Progress | None = None) -> bool:
    """Barely fell, steadily: a significant decrease of under ``slow_decades_early`` decades
    with a slow start (under ``slow_early`` of it in the first tenth of lr-time), never above
    its first value early on (the training loss; any schedule)."""
    decreasing = s.trend.p < th.alpha and s.trend.z < 0
    fell = s.fall >= th.evidence_z * s.se_diff
    slow = (
        math.isfinite(s.decades)
        and s.decades < th.slow_decades_early
        and s.early_share < th.slow_early
    )
    # steadily: the smoothed loss never well above its start early on (a loss that first rose
    # had too large updates)
    early = s.base[: max(2, s.base.size // 5)]
    steady = float(np.max(early)) <= th.stuck_explode_ratio * max(s.initial, s.start)
    steady = steady and s.explode < th.jump_ratio  # no early jump either
    if prog is not None and prog.val_rebound >= th.val_rise:
        steady = False  # a validation loss that jumped up on the way
    return decreasing and fell and slow and steady


def still_falling(prog: Progress, th: Thresholds) -> bool:
    """The judged curve fell a large share of its fall in the last 40% of the run, at an lr still
    at least half its peak, significantly. Not judged when the lr decayed before the end: a
    decaying schedule's best peak lr also leaves the loss falling until the decay (measured on
    the design tasks), so a run still falling then says nothing about its lr. Read on the
    validation loss only: the training loss of a good run keeps falling after the validation
    loss has settled (it fits its training set), so on its own it says nothing either."""
    return (
        prog.judged == "validation"
        and not prog.decayed
        and not prog.val_rebound >= th.val_rise  # a validation loss that jumped: unsteady
        and math.isfinite(prog.late_share)
        and prog.late_share >= th.falling_share
        and prog.late_drop >= th.evidence_z * prog.late_se
    )


def detect_val_worse(curve: Curve, s: Summary, th: Thresholds, prog: Progress) -> Finding | None:
    """The validation loss was best early and ended well above it, jumping around (lr too
    high; a steady rise is overfitting, left to :func:`detect_overfitting`)."""
    if prog.val_min_step is None or not math.isfinite(prog.val_rise):
        return None
    if (
        prog.val_rise < th.val_rise
        or prog.val_min_share > th.val_min_share
        or prog.val_evals_after_min < th.overfit_min_evals
        or prog.val_zigzag <= th.overfit_zigzag
    ):
        return None
    return Finding(
        "oscillating",
        "high",
        prog.val_min_step,
        f"the validation loss was best at step {prog.val_min_step} and ended "
        f"{prog.val_rise:.0%} above it, jumping around on the way (its path was "
        f"{prog.val_zigzag:.1f}x its net rise): the updates are too large",
        {**prog.as_dict(), "threshold_rise": th.val_rise, "threshold_zigzag": th.overfit_zigzag},
    )


def detect_overfitting(curve: Curve, s: Summary, th: Thresholds) -> Finding | None:
    """Validation loss rising over several evaluations while the training loss does not, or
    validation loss stuck since early on while the training loss keeps falling far below it."""
    if curve.val_x is None or curve.val_y is None:
        return None
    vy = curve.val_y
    vx = curve.val_x
    m = vy.size
    if m < th.overfit_min_evals + 3:
        return None
    smooth = rolling_median(vy, 3) if m >= 6 else vy
    i = int(np.argmin(smooth))
    after = vy[i + 1 :]
    if after.size < th.overfit_min_evals:
        return None
    vmin = float(smooth[i])
    tail = after[-th.overfit_min_evals :]
    end = float(np.median(tail))
    rise = (end - vmin) / max(abs(vmin), 1e-12)
    # the training loss at the validation minimum and at the end
    j = int(np.searchsorted(curve.x, vx[i], side="right")) - 1
    j = min(max(j, 0), curve.y.size - 1)
    train_then = float(s.base[j])
    train_end = s.end
    if train_end > train_then * 1.02 + 1e-12:
        return None
    path = float(np.sum(np.abs(np.diff(vy[i:]))))
    steady = path <= th.overfit_zigzag * max(float(vy[-1] - vy[i]), 1e-300)
    rising = rise >= th.overfit_rise and bool(np.all(tail > vmin)) and steady
    train_drop = train_then / train_end if train_end > 0 and train_then > 0 else 1.0
    memorising = (
        i < m // 2
        and end >= vmin
        and bool(np.all(tail >= vmin))
        and train_drop >= th.overfit_train_drop
    )
    if not (rising or memorising):
        return None
    mk = mann_kendall(vy[i:], max_points=400) if vy[i:].size >= 4 else None
    stats = {
        "val_min": vmin,
        "val_min_step": int(vx[i]),
        "val_end": end,
        "relative_rise": rise,
        "evaluations_after_min": int(after.size),
        "train_at_val_min": train_then,
        "train_end": train_end,
        "train_drop_after_val_min": train_drop,
        "mk_z_after_min": None if mk is None else mk.z,
        "mk_p_after_min": None if mk is None else mk.p,
    }
    if rising:
        text = (
            f"validation loss rose {rise:.0%} above its minimum {vmin:.4g} at step {int(vx[i])} "
            "while the training loss kept falling"
        )
    else:
        text = (
            f"validation loss has not improved on {vmin:.4g} since step {int(vx[i])} while the "
            f"training loss fell {train_drop:.3g}x further"
        )
    return Finding("overfitting", "medium", int(vx[i]), text, stats)


def detect_all(curve: Curve, th: Thresholds) -> tuple[list[Finding], Summary, Progress]:
    """Run every detector; return the findings, most urgent first, and the summary.

    Order of urgency: unstable start (lr far too high) / divergence, then spikes, then
    oscillation, overfitting, plateau and too-slow progress. A divergence that starts in the
    unstable first fifth is reported as the unstable start; a jump the run recovers from is a
    spike, one it does not recover from is divergence; recurring spikes are oscillation.
    """
    s = summarise(curve, th)
    prog = progress(curve, s)
    n = curve.y.size
    findings: list[Finding] = []
    unstable = detect_unstable_start(curve, s, th)
    spikes, shifts = monitor_events(curve, s, th)
    diverging = detect_diverging(curve, s, th)
    if diverging is not None and diverging.onset_step is not None:
        early_onset = diverging.onset_step <= _step(curve.x, n // 5)
        window_steps = _step(curve.x, s.window) - _step(curve.x, 0)
        recovered_spike = any(
            f.onset_step is not None and abs(f.onset_step - diverging.onset_step) <= window_steps
            for f in spikes
        )
        if (unstable is not None and early_onset) or (recovered_spike and not shifts):
            diverging = None
    if diverging is None and shifts:
        diverging = shifts[0]
    elif diverging is not None and shifts:
        jump = shifts[0]
        if (
            jump.onset_step is not None
            and diverging.onset_step is not None
            and jump.onset_step < diverging.onset_step
        ):
            diverging = Finding(
                diverging.kind,
                diverging.severity,
                jump.onset_step,
                diverging.message,
                {**diverging.statistics, "jump": jump.statistics},
            )
    osc = None if unstable is not None else detect_oscillating(curve, s, th, spikes)
    if diverging is not None and unstable is None and diverging.onset_step is not None:
        # swings that came before the rise: the oscillation is the problem, the rise its result
        k = int(np.searchsorted(curve.x, diverging.onset_step))
        if k >= 100 and _swing(curve.y[:k]) >= th.oscillation_swing:
            osc = Finding(
                "oscillating",
                "high",
                _step(curve.x, n // 10),
                f"the loss swung by a factor {math.exp(_swing(curve.y[:k])):.2g} around its "
                f"trend before it rose at step {diverging.onset_step}",
                {"swing_before_rise": _swing(curve.y[:k]), "threshold": th.oscillation_swing},
            )
            findings.append(osc)
    if unstable is not None:
        findings.append(unstable)
    if diverging is not None:
        findings.append(diverging)
    if spikes and osc is None:
        first = spikes[0]
        stats = dict(first.statistics)
        stats["count"] = len(spikes)
        stats["steps"] = [f.onset_step for f in spikes[:20]]
        findings.append(
            Finding(
                "spiking",
                "high",
                first.onset_step,
                f"{len(spikes)} loss spike(s); the first: {first.message}",
                stats,
                end_step=first.end_step,
            )
        )
    if osc is not None:
        findings.append(osc)
    worse = detect_val_worse(curve, s, th, prog)
    if worse is not None and osc is None and unstable is None:
        findings.append(worse)
    over = detect_overfitting(curve, s, th)
    if over is not None:
        findings.append(over)
    if unstable is None and diverging is None and osc is None and worse is None:
        slow = detect_slow(curve, s, th, prog)
        if slow is not None:
            findings.append(slow)
    return findings, s, prog
