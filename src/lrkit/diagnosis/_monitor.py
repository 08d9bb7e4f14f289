"""``LossMonitor``: the detection engine behind :class:`~lrkit.diagnosis.Guard` (no policy).

Moved out of ``_guard.py`` so detection lives apart from the policy (warn / raise / scale the lr /
roll back) that acts on it.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from lrkit._validate import check_int, check_real, fail

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from lrkit.diagnosis._findings import Diagnosis
    from lrkit.diagnosis._rules import Thresholds

__all__ = ["EVENT_KINDS", "LossMonitor", "replay"]

EVENT_KINDS = ("nonfinite", "spike", "divergence")
_MAX_DETECTIONS = 10_000  # kept by LossMonitor.detections (the first ones)
_Q90 = 1.6448536269514722  # Phi^-1(0.95): P(|N(0,1)| < _Q90) = 0.9


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    half = n // 2
    return ordered[half] if n % 2 else 0.5 * (ordered[half - 1] + ordered[half])


class _Series:
    """Trailing robust baseline of one positive series (log scale) with O(1) checks."""

    __slots__ = (
        "_window",
        "_level",
        "_values",
        "_refresh",
        "next_refresh",
        "_next_noise",
        "_median",
        "_scale",
        "_log",
        "total",
    )

    def __init__(self, window: int, refresh: int, level: int) -> None:
        self._window = window
        self._level = level
        self._values: deque[float] = deque(maxlen=window)
        self._refresh = refresh
        self.next_refresh = 0  # refresh when ``total`` reaches this
        self._next_noise = 0
        self._median = math.nan
        self._scale = math.nan
        self._log = True
        self.total = 0  # values accepted so far (also those already out of the window)

    def __len__(self) -> int:
        return len(self._values)

    def transform(self, value: float) -> float:
        if self._log:
            if value > 0.0:
                return math.log(value)
            # a loss <= 0 cannot be put on a log scale: switch this series to raw values
            self._log = False
            self._values = deque((math.exp(v) for v in self._values), maxlen=self._window)
            self.next_refresh = 0
            self._scale = math.nan
        return value

    def untransform(self, x: float) -> float:
        return math.exp(x) if self._log else x

    @property
    def log(self) -> bool:
        return self._log

    def refresh(self) -> bool:
        """Recompute the level (every ``refresh`` values) and the noise (every 5 x ``refresh``).

        The level is the median of the newest ``level_window`` values; the noise is a robust
        standard deviation from the MAD of successive differences (divided by sqrt(2)), so a
        falling trend inside the window does not inflate it. Returns True when recomputed.
        """
        if self.total < self.next_refresh:
            return False
        # pure Python: for ~100 values sorted() is several times faster than np.median
        self._median = _median(list(islice(reversed(self._values), self._level)))
        if (
            self.total >= self._next_noise
            or len(self._values) < self._window
            or math.isnan(self._scale)
        ):
            values = list(self._values)
            # map() with operator functions keeps these loops in C (this runs every 5 x refresh)
            diffs = list(map(operator.sub, islice(values, 1, None), values))
            if diffs:
                mid = _median(diffs)
                dev = sorted(map(abs, map(operator.sub, diffs, repeat(mid))))
                # the 90th percentile of |deviation| / 1.645: the standard deviation for Gaussian
                # noise, larger (safer) for the heavy-tailed noise of small minibatch losses
                spread = dev[min(len(dev) - 1, int(0.9 * len(dev)))] / _Q90
            else:
                spread = 0.0
            self._scale = spread / math.sqrt(2)
            self._next_noise = self.total + 5 * self._refresh
        self.next_refresh = self.total + self._refresh
        return True

    @property
    def median(self) -> float:
        return self._median

    @property
    def scale(self) -> float:
        return self._scale

    def accept(self, x: float) -> None:
        # (LossMonitor.observe inlines this on its hot path)
        self._values.append(x)
        self.total += 1

    def rewind(self, total: int) -> None:
        """Drop the values accepted after the first ``total`` ones (newest first)."""
        drop = self.total - total
        for _ in range(min(max(drop, 0), len(self._values))):
            self._values.pop()
        self.total = min(self.total, total)
        self.next_refresh = 0
        self._scale = math.nan

    def reset(self) -> None:
        self._values.clear()
        self.total = 0
        self.next_refresh = 0
        self._median = math.nan
        self._scale = math.nan


class _History:
    """The observed curve in at most ``cap`` bins: when full, neighbouring bins merge in pairs,
    so memory stays bounded on runs of any length. Each bin keeps its first step, the mean and
    the maximum of its losses (a one-step spike survives a merge) and the largest gradient norm.
    A step at or before the last one recorded (a rollback, a restart) drops the bins from it on.
    While every bin holds one value (``width == 1``) the maxima are the values themselves and
    :meth:`LossMonitor.observe` appends directly (a fraction of a microsecond per step).
    """

    __slots__ = (
        "cap",
        "width",
        "steps",
        "means",
        "_peaks",
        "grads",
        "last",
        "_n",
        "_sum",
        "_max",
        "_g",
    )

    def __init__(self, cap: int = 4096) -> None:
        self.cap = max(cap, 2)
        self.width = 1  # values per closed bin
        self.steps: list[int] = []
        self.means: list[float] = []
        self._peaks: list[float] | None = None  # the means themselves while width == 1
        self.grads: list[float | None] = []
        self.last = -1  # the last step added
        self._n = 0  # values in the open bin (width > 1 only)
        self._sum = 0.0
        self._max = -math.inf
        self._g = -math.inf

    @property
    def peaks(self) -> list[float]:
        return self.means if self._peaks is None else self._peaks

    def grad_values(self) -> list[float]:
        return [math.nan if g is None else g for g in self.grads]

    def add(self, step: int, loss: float, grad: float | None) -> None:
        if step <= self.last:
            self.truncate(step)
        self.last = step
        if self.width == 1:
            self.steps.append(step)
            self.means.append(loss)
            self.grads.append(grad)
        else:
            peaks = self.peaks
            g = math.nan if grad is None else grad
            if self._n == 0:
                self.steps.append(step)
                self.means.append(math.nan)
                peaks.append(math.nan)
                self.grads.append(math.nan)
                self._sum, self._max, self._g = 0.0, -math.inf, -math.inf
            self._n += 1
            self._sum += loss
            if loss > self._max or loss != loss:
                self._max = loss
            if g > self._g or g != g:
                self._g = g
            self.means[-1] = self._sum / self._n
            peaks[-1] = self._max
            self.grads[-1] = self._g
            if self._n == self.width:
                self._n = 0
        if len(self.steps) > self.cap and self._n == 0:
            self._merge()

    def _merge(self) -> None:
        """Halve the number of bins (pairs merged); the width doubles."""
        n = len(self.steps) // 2 * 2
        s, m, p, g = self.steps, self.means, self.peaks, self.grad_values()
        self.steps = s[0:n:2] + s[n:]
        self.means = [0.5 * (a + b) for a, b in zip(m[0:n:2], m[1:n:2], strict=True)] + m[n:]
        self._peaks = [_nanmax(a, b) for a, b in zip(p[0:n:2], p[1:n:2], strict=True)] + p[n:]
        merged: list[float | None] = [
            _nanmax(a, b) for a, b in zip(g[0:n:2], g[1:n:2], strict=True)
        ]
        self.grads = merged + list(g[n:])
        self.width *= 2
        if len(s) % 2:  # the odd last bin stays open with the values it had
            self._n = self.width // 2
            self._sum = m[-1] * self._n
            self._max = p[-1]
            self._g = g[-1]

    def truncate(self, step: int) -> None:
        """Drop the bins that start at or after ``step``."""
        keep = 0
        while keep < len(self.steps) and self.steps[keep] < step:
            keep += 1
        del self.steps[keep:], self.means[keep:], self.grads[keep:]
        if self._peaks is not None:
            del self._peaks[keep:]
        self._n = 0
        self.last = step - 1


def _nanmax(a: float, b: float) -> float:
    """The larger of two values, NaN when either is NaN (a non-finite loss stays visible)."""
    if a != a or b != b:
        return math.nan
    return a if a >= b else b


@dataclass(frozen=True)
class _Detection:
    kind: str
    onset_step: int
    signal: str
    value: float
    baseline: float | None
    score: float | None
    ratio: float | None


class LossMonitor:
    """The detector behind :class:`Guard`: no policy, no side effects on any model.

    ``observe(step, loss, grad_norm)`` returns ``None`` or a detection. Useful on its own to
    replay a recorded curve; ``lrkit.diagnose`` replays it to find spikes and jumps.

    ``history``: keep up to this many points of the curve (0: none, the default, which keeps
    ``observe`` at a few microseconds; keeping them adds to every step on the benchmark's
    small MLP), so that :meth:`diagnose` can judge the run so far. ``Guard(history=4096)``
    passes it on.

    Example:
        >>> mon = LossMonitor(min_history=5)
        >>> [mon.observe(s, 1.0 + 0.01 * (s % 3)) for s in range(10)].count(None)
        10
        >>> mon.observe(10, float("nan")).kind
        'nonfinite'
        >>> mon.observe(11, 50.0).kind
        'spike'
    """

    def __init__(
        self,
        *,
        window: int = 100,
        level_window: int = 20,
        min_history: int = 20,
        refresh: int = 10,
        spike_z: float = 6.0,
        spike_ratio: float = 2.0,
        diverge_z: float = 3.0,
        diverge_ratio: float = 1.5,
        patience: int = 5,
        grad_ratio: float = 20.0,
        drift_ratio: float = 3.0,
        min_rise: float = 0.1,
        cooldown: int = 50,
        history: int = 0,
    ) -> None:
        self.window = check_int("window", window, minimum=5)
        self.level_window = check_int("level_window", level_window, minimum=1)
        if self.level_window > self.window:
            fail("level_window", level_window, f"<= window ({self.window})")
        self.min_history = check_int("min_history", min_history, minimum=3)
        if self.min_history > self.window:
            fail("min_history", min_history, f"<= window ({self.window})")
        self.refresh = check_int("refresh", refresh, minimum=1)
        self.spike_z = check_real("spike_z", spike_z, minimum=0.0, min_inclusive=False)
        self.spike_ratio = check_real("spike_ratio", spike_ratio, minimum=1.0)
        self.diverge_z = check_real("diverge_z", diverge_z, minimum=0.0, min_inclusive=False)
        self.diverge_ratio = check_real("diverge_ratio", diverge_ratio, minimum=1.0)
        self.patience = check_int("patience", patience, minimum=1)
        self.grad_ratio = check_real("grad_ratio", grad_ratio, minimum=1.0)
        self.drift_ratio = check_real("drift_ratio", drift_ratio, minimum=1.0)
        self.min_rise = check_real("min_rise", min_rise, minimum=0.0)
        self.cooldown = check_int("cooldown", cooldown, minimum=0)
        history = check_int("history", history, minimum=0)
        self._loss = _Series(self.window, self.refresh, self.level_window)
        self._grad = _Series(self.window, self.refresh, self.level_window)
        self._run_start = -1
        self._run_len = 0
        self._quiet_until = -1
        self._initial = math.nan
        self._best = math.inf
        self._drift_start = -1
        self._loss_edges = (math.nan, math.inf, math.inf)
        self._grad_edges = (math.nan, math.inf, math.inf)
        self._history: _History | None = _History(history) if history else None
        #: every detection so far (spikes, divergences, non-finite values), oldest first
        self.detections: list[_Detection] = []
        self._last_step = -1

    def config(self) -> dict[str, Any]:
        """The thresholds, as plain values."""
        return {
            "window": self.window,
            "level_window": self.level_window,
            "min_history": self.min_history,
            "refresh": self.refresh,
            "spike_z": self.spike_z,
            "spike_ratio": self.spike_ratio,
            "diverge_z": self.diverge_z,
            "diverge_ratio": self.diverge_ratio,
            "patience": self.patience,
            "grad_ratio": self.grad_ratio,
            "drift_ratio": self.drift_ratio,
            "min_rise": self.min_rise,
            "cooldown": self.cooldown,
        }

    def observe(self, step: int, loss: float, grad_norm: float | None = None) -> _Detection | None:
        """Judge one step's loss (and gradient norm); ``None`` when nothing is wrong.

        With ``history`` > 0 the value is also kept in a bounded history (:meth:`diagnose`
        judges it as a whole).
        """
        if step <= self._last_step and self.detections:
            # a rollback or a restart: what was detected from this step on did not happen
            self.detections = [d for d in self.detections if d.onset_step < step]
        self._last_step = step
        h = self._history
        if h is not None:
            if h.width == 1 and step > h.last and len(h.steps) < h.cap:
                h.last = step  # the common case, inlined: three appends
                h.steps.append(step)
                h.means.append(loss)
                h.grads.append(grad_norm)
            else:
                h.add(step, loss, grad_norm)
        found = self._judge(step, loss, grad_norm)
        if found is not None and len(self.detections) < _MAX_DETECTIONS:
            self.detections.append(found)
        return found

    def _judge(self, step: int, loss: float, grad_norm: float | None) -> _Detection | None:
        if not math.isfinite(loss):
            self._run_len = 0
            return _Detection("nonfinite", step, "loss", loss, None, None, None)
        if grad_norm is not None and not math.isfinite(grad_norm):
            self._run_len = 0
            return _Detection("nonfinite", step, "grad_norm", grad_norm, None, None, None)
        series = self._loss
        # hot path (a few microseconds per call matter): attributes read once, no helper calls
        x = math.log(loss) if series._log and loss > 0.0 else series.transform(loss)
        found: _Detection | None = None
        elevated = False
        quiet = step <= self._quiet_until
        if len(series._values) >= self.min_history:
            if series.total >= series.next_refresh and series.refresh():
                level = series.untransform(series.median)
                if math.isnan(self._initial):
                    self._initial = abs(level)
                best = self._best
                drift = self._drift(step, level)
                if drift is not None and not quiet:
                    # a slow drift: report the level that rose against the best level before
                    ratio = level / best if best > 0.0 else None
                    found = _Detection("divergence", drift, "loss", level, best, None, ratio)
                self._loss_edges = self._edges(
                    series,
                    self.spike_z,
                    self.spike_ratio,
                    self.diverge_z,
                    self.diverge_ratio,
                    self.min_rise * self._initial,
                )
            med, spike_edge, div_edge = self._loss_edges
            dev = x - med
            if found is not None:
                pass
            elif dev > div_edge:
                elevated = True
                if self._run_len == 0:
                    self._run_start = step
                self._run_len += 1
                if not quiet and dev > spike_edge:
                    found = self._make("spike", step, "loss", loss, series, x)
                elif not quiet and self._run_len >= self.patience:
                    found = self._make("divergence", self._run_start, "loss", loss, series, x)
            else:
                self._run_len = 0
        if not elevated or quiet:
            # inside a cooldown the baseline adapts to the new level
            series._values.append(x)
            series.total += 1
        if grad_norm is not None and grad_norm > 0.0:
            found = self._observe_grad(step, grad_norm, found, quiet)
        if found is not None:
            self._quiet_until = step + self.cooldown
            self._run_len = 0
        return found

    def _observe_grad(
        self, step: int, grad_norm: float, found: _Detection | None, quiet: bool
    ) -> _Detection | None:
        g = self._grad
        gx = g.transform(grad_norm)
        grad_bad = False
        if len(g._values) >= self.min_history:
            if g.total >= g.next_refresh and g.refresh():  # the check inlined, as for the loss
                self._grad_edges = self._edges(
                    g, self.spike_z, self.grad_ratio, self.spike_z, self.grad_ratio, 0.0
                )
            gmed, gedge, _ = self._grad_edges
            if gx - gmed > gedge:
                grad_bad = True
                if found is None and not quiet:
                    found = self._make("spike", step, "grad_norm", grad_norm, g, gx)
        if not grad_bad or quiet:
            g.accept(gx)
        return found

    def _drift(self, step: int, level: float) -> int | None:
        """Slow divergence: the trailing level ``drift_ratio`` times the best level so far.

        Checked at each level refresh; returns the onset (the refresh at which the level first
        rose above ``diverge_ratio`` x the best, without falling back since) or None.
        """
        if not self._loss.log:
            return None  # ratios mean nothing for losses that can be <= 0
        if level < self._best:
            self._best = level
        if level > self.diverge_ratio * self._best:
            if self._drift_start < 0:
                self._drift_start = step
        else:
            self._drift_start = -1
        if (
            self._drift_start >= 0
            and level > self.drift_ratio * self._best
            and level - self._best > self.min_rise * self._initial
        ):
            onset = self._drift_start
            self._drift_start = -1
            self._best = level  # judge what follows against the new level
            return onset
        return None

    @staticmethod
    def _edges(
        series: _Series,
        spike_z: float,
        spike_ratio: float,
        div_z: float,
        div_ratio: float,
        rise: float,
    ) -> tuple[float, float, float]:
        """(level, spike edge, divergence edge) on the series' scale.

        An edge is the largest of: ``z`` robust standard deviations, the ``ratio`` to the level,
        and an absolute rise of ``rise`` (raw units) above the level.
        """
        med, scale = series.median, series.scale
        if series.log:
            floor = math.log1p(rise / math.exp(med)) if rise > 0 else 0.0
            return (
                med,
                max(spike_z * scale, math.log(spike_ratio), floor),
                max(div_z * scale, math.log(div_ratio), floor),
            )
        level = abs(med)
        return (
            med,
            max(spike_z * scale, (spike_ratio - 1.0) * level, rise),
            max(div_z * scale, (div_ratio - 1.0) * level, rise),
        )

    @staticmethod
    def _make(
        kind: str, onset: int, signal: str, value: float, series: _Series, x: float
    ) -> _Detection:
        med, scale = series.median, series.scale
        baseline = series.untransform(med)
        score = (x - med) / scale if scale > 0 else math.inf
        ratio = value / baseline if baseline != 0.0 else None
        return _Detection(kind, onset, signal, value, baseline, score, ratio)

    @property
    def steps(self) -> list[int]:
        """The step of each point :meth:`diagnose` judges (a bin's first step once binned)."""
        return [] if self._history is None else list(self._history.steps)

    def diagnose(
        self,
        *,
        val_loss: ArrayLike | None = None,
        val_steps: ArrayLike | None = None,
        lr: ArrayLike | float | None = None,
        thresholds: Thresholds | None = None,
    ) -> Diagnosis:
        """Diagnose everything observed so far, as :func:`lrkit.diagnosis.diagnose` would, with
        this monitor's own detections as its spikes and jumps (what the live Guard raised).

        ``lr`` is a number or one value per point of :attr:`steps`. The history keeps at most
        ``history`` points (older ones merged in pairs: means, with the maxima kept for spikes).

        Example:
            >>> import math
            >>> mon = LossMonitor(history=4096)
            >>> for s in range(300):
            ...     _ = mon.observe(s, 2.0 * math.exp(-s / 30) + 0.1 + 0.01 * (s % 3))
            >>> mon.diagnose().verdict
            'healthy'
        """
        from lrkit.diagnosis._diagnosis import diagnose_curve

        h = self._history
        if h is None:
            fail("history", 0, "> 0 to diagnose the run so far (e.g. LossMonitor(history=4096))")
        if not h.steps:
            fail("history", "<empty>", "at least one observed step")
        grads = h.grad_values()
        return diagnose_curve(
            h.means,
            steps=h.steps,
            peaks=h.peaks,
            grad_norm=grads if any(g == g for g in grads) else None,
            val_loss=val_loss,
            val_steps=val_steps,
            lr=lr,
            thresholds=thresholds,
            detections=list(self.detections),
        )

    def mark(self) -> tuple[int, int]:
        """A bookmark of the history, for :meth:`rewind` (taken with each snapshot)."""
        return (self._loss.total, self._grad.total)

    def rewind(self, mark: tuple[int, int]) -> None:
        """Forget the values accepted after ``mark`` (after a rollback to a snapshot)."""
        self._loss.rewind(mark[0])
        self._grad.rewind(mark[1])
        self._drift_start = -1
        self._run_len = 0
        self._quiet_until = -1

    def reset(self) -> None:
        """Forget everything seen so far."""
        if self._history is not None:
            self._history = _History(self._history.cap)
        self.detections.clear()
        self._last_step = -1
        self._loss.reset()
        self._grad.reset()
        self._initial = math.nan
        self._best = math.inf
        self._drift_start = -1
        self._run_len = 0
        self._quiet_until = -1


def replay(
    steps: Sequence[float],
    loss: Sequence[float],
    grad_norm: Sequence[float] | None = None,
    monitor: LossMonitor | None = None,
) -> list[_Detection]:
    """Every detection of a :class:`LossMonitor` (default thresholds) fed a recorded curve.

    The offline diagnosis calls this, so a spike or a divergence it reports is one the live
    :class:`~lrkit.diagnosis.Guard` would have flagged at the same step.

    Example:
        >>> curve = [1.0 + 0.01 * (s % 3) for s in range(60)]
        >>> curve[40] = 50.0
        >>> [(d.kind, d.onset_step) for d in replay(range(60), curve)]
        [('spike', 40)]
    """
    mon = LossMonitor() if monitor is None else monitor
    found: list[_Detection] = []
    grads: Iterable[float | None] = repeat(None, len(loss)) if grad_norm is None else grad_norm
    for step, value, g in zip(steps, loss, grads, strict=True):
        d = mon.observe(int(step), float(value), None if g is None else float(g))
        if d is not None:
            found.append(d)
    return found
