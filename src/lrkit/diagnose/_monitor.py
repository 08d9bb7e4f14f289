"""``LossMonitor``: the detection engine behind :class:`~lrkit.diagnose.Guard` (no policy).

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
from typing import Any

from lrkit._validate import check_int, check_real, fail

__all__ = ["EVENT_KINDS", "LossMonitor", "replay"]

EVENT_KINDS = ("nonfinite", "spike", "divergence")
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
    replay a recorded curve.

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
        """Judge one step's loss (and gradient norm); ``None`` when nothing is wrong."""
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
    :class:`~lrkit.diagnose.Guard` would have flagged at the same step.

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
