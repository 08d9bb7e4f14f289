"""``Guard``: watch the loss while training runs, catch trouble within a few steps, and act.

Call :meth:`Guard.step` once per optimizer step, after the loss (and, if you pass it, the
gradient norm) is known and BEFORE ``optimizer.step()``. It returns a :class:`GuardAction`
telling the loop what to do. Detection (:class:`LossMonitor`) is separate from the policy, so the
same engine serves a plain loop and the Lightning / Hugging Face callbacks.

Plain-loop pattern (steps count optimizer updates from 0)::

    guard = Guard(policy="rollback", model=model, optimizer=opt, scheduler=sched,
                  snapshot_every=100, log_path="guard.json")
    step = 0
    for x, y in batches:                    # an iterator that keeps producing new batches
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        action = guard.step(step, loss)     # before opt.step()
        if action.rollback:                 # model/optimizer/scheduler already restored
            step = action.resume_step       # redo from there; the batches of
            continue                        # action.skipped_steps are not replayed
        if action.skip_update:              # non-finite loss/gradient: do not apply it
            continue
        opt.step()
        sched.step()
        step += 1

Detection, on ``log(loss)`` (raw values once a loss <= 0 is seen):

* non-finite loss or gradient norm: an alarm at once (``kind="nonfinite"``);
* spike: one value above the trailing level (median of the last ``level_window`` accepted
  values) by more than ``spike_z`` noise units, by a factor ``spike_ratio``, and by
  ``min_rise`` x the loss level at the start (so tiny blips of an almost-zero loss are not
  spikes) (``kind="spike"``). The noise unit is a robust standard deviation of successive
  differences of the last ``window`` values (their 90th percentile / 1.645 / sqrt(2)), so a
  falling trend does not inflate it and heavy-tailed minibatch noise does. A gradient norm
  ``grad_ratio`` times its own level is a spike too;
* divergence: ``patience`` consecutive values above the level by ``diverge_z`` noise units and
  a factor ``diverge_ratio`` (fast), or the level ``drift_ratio`` times the best level so far
  (slow drift) (``kind="divergence"``, with the onset step).

Flagged values never enter the baseline; after an alarm, ``cooldown`` steps pass before the
next spike/divergence alarm while the baseline adapts. The level is refreshed every ``refresh``
steps and the noise every ``5 * refresh``, in pure Python: a step costs a few microseconds (see
``benchmarks/guard_overhead.py``). Defaults were tuned on the tuning tasks of
``benchmarks/diagnose`` (held-out tasks untouched).
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import shutil
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from itertools import islice, repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from lrkit._files import check_dir_path, check_file_path, write_files
from lrkit._signals import uninterruptible
from lrkit._state import Snapshot, SnapshotError, take_snapshot
from lrkit._validate import check_choice, check_int, check_real, fail

__all__ = [
    "POLICIES",
    "Guard",
    "GuardAction",
    "GuardError",
    "GuardEvent",
    "LossMonitor",
]

logger = logging.getLogger(__name__)

POLICIES = ("warn", "raise", "scale_lr", "rollback")
EVENT_KINDS = ("nonfinite", "spike", "divergence")
_Q90 = 1.6448536269514722  # Phi^-1(0.95): P(|N(0,1)| < _Q90) = 0.9

Policy = Literal["warn", "raise", "scale_lr", "rollback"]


def _to_float(name: str, value: object) -> float:
    """A float from a Python number or a one-element tensor (one device sync for a tensor)."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            fail(name, f"<tensor of shape {tuple(value.shape)}>", "a number or a 0-dim tensor")
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        fail(name, value, "a number or a 0-dim tensor")
    return float(value)


@dataclass(frozen=True)
class GuardEvent:
    """One thing the guard saw, and what it did about it.

    Attributes:
        step: the step at which the alarm was raised.
        kind: ``"nonfinite"``, ``"spike"`` or ``"divergence"``.
        onset_step: the first step of the anomaly (earlier than ``step`` for a divergence).
        signal: ``"loss"`` or ``"grad_norm"``: which series raised the alarm.
        value: the offending value (``None`` when not finite; see ``value_text``).
        value_text: the value as text (``"nan"``, ``"inf"`` or the number).
        baseline: the trailing median level of the series at the alarm (``None`` before any);
            for a slow divergence, the best level before it (``value`` is then the risen level).
        score: robust z-score of the value against the baseline (``None`` when undefined).
        ratio: value / baseline (``None`` when undefined).
        action: what the policy did: ``"warned"``, ``"raised"``, ``"scaled_lr"``,
            ``"rolled_back"`` or ``"gave_up"`` (retry cap reached, then raised).
        detail: action details (new learning rates, restored step, skipped steps, ...).
        time: wall-clock time of the event (seconds since the epoch).
    """

    step: int
    kind: str
    onset_step: int
    signal: str
    value: float | None
    value_text: str
    baseline: float | None
    score: float | None
    ratio: float | None
    action: str = "none"
    detail: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (every field, in field order)."""
        return asdict(self)

    def describe(self) -> str:
        """One line for logs."""
        what = {
            "nonfinite": "non-finite",
            "spike": "spike in",
            "divergence": "divergence of",
        }[self.kind]
        text = f"step {self.step}: {what} {self.signal} ({self.value_text}"
        if self.baseline is not None and self.ratio is not None:
            reference = "its earlier level" if self.kind == "divergence" else "the trailing median"
            text += f", {self.ratio:.3g}x {reference} {self.baseline:.4g}"
        text += ")"
        if self.kind == "divergence":
            text += f" since step {self.onset_step}"
        return text


class GuardError(RuntimeError):
    """Raised by the ``"raise"`` policy, or when the retry cap / a missing snapshot stops a fix.

    ``error.event`` is the :class:`GuardEvent` behind it.
    """

    def __init__(self, message: str, event: GuardEvent) -> None:
        super().__init__(message)
        self.event = event


@dataclass(frozen=True)
class GuardAction:
    """What :meth:`Guard.step` asks the training loop to do.

    Attributes:
        event: the event behind the action (``None`` when all is well).
        skip_update: do not apply this step's update (``optimizer.step()``): True for a
            non-finite loss/gradient and for a rollback.
        rollback: the model, optimizer (and scheduler) were restored; continue from
            ``resume_step`` with NEW batches.
        resume_step: the step to continue from after a rollback (the snapshot's step).
        skipped_steps: ``(first, last)`` steps whose batches are dropped by the rollback.
        lr_scale: the factor applied to every learning rate (``scale_lr`` policy), else None.
    """

    event: GuardEvent | None = None
    skip_update: bool = False
    rollback: bool = False
    resume_step: int | None = None
    skipped_steps: tuple[int, int] | None = None
    lr_scale: float | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was detected at this step."""
        return self.event is None


_OK = GuardAction()


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


@dataclass
class _Kept:
    """A snapshot the guard keeps: its step, the monitor's bookmark, the saved state."""

    step: int
    history: tuple[int, int]
    state: Snapshot


def _scale_lrs(optimizer: Optimizer, scheduler: Any, factor: float) -> list[float]:
    """Multiply every group's lr by ``factor`` so that the scheduler keeps the change."""
    from lrkit.schedules._torch import ScheduledLR

    if isinstance(scheduler, ScheduledLR):
        # the lrkit adapter recomputes lr = base * schedule(step): scale its bases through
        # its public state (load_state_dict re-applies the learning rates of the current step)
        state = scheduler.state_dict()
        state["base_lrs"] = [float(b) * factor for b in state["base_lrs"]]
        scheduler.load_state_dict(state)
    else:
        if scheduler is not None:
            bases = getattr(scheduler, "base_lrs", None)
            if isinstance(bases, list):
                scheduler.base_lrs = [b * factor for b in bases]
            last = getattr(scheduler, "_last_lr", None)
            if isinstance(last, list):
                scheduler._last_lr = [v * factor for v in last]
        for group in optimizer.param_groups:
            if "initial_lr" in group:
                group["initial_lr"] = group["initial_lr"] * factor
            lr = group["lr"]
            if isinstance(lr, Tensor):
                lr.mul_(factor)
            else:
                group["lr"] = lr * factor
    return [
        float(g["lr"].item()) if isinstance(g["lr"], Tensor) else float(g["lr"])
        for g in optimizer.param_groups
    ]


class Guard:
    """Watch the training loss live; warn, raise, scale the lr, or roll back when it goes wrong.

    Args:
        policy: ``"warn"`` (log a warning), ``"raise"`` (raise :class:`GuardError`),
            ``"scale_lr"`` (multiply every param group's lr by ``lr_factor``; with ``scheduler``
            given, its base learning rates too, so the schedule keeps the change) or
            ``"rollback"`` (restore the last good snapshot of model, optimizer and scheduler and
            tell the loop to skip the offending batches).
        model, optimizer, scheduler: the objects to act on. ``optimizer`` is required by
            ``scale_lr``; ``model`` and ``optimizer`` by ``rollback``. Pass the scheduler when
            one owns the lr (an lrkit ``attach`` scheduler or any torch ``LRScheduler``).
        on: the event kinds that trigger the policy; the others are logged only.
        lr_factor: the factor of ``scale_lr`` (0 < factor < 1).
        snapshot_every: take a snapshot every this many steps (rollback only), at steps whose
            loss was judged healthy.
        snapshot: ``"memory"`` (clones on the tensors' device) or ``"disk"`` (``torch.save``
            to ``snapshot_dir``). Snapshots hold the parameters, buffers, optimizer state and
            hyper-parameters, train/eval flags and the scheduler's state (not the gradients nor
            the RNGs: after a rollback training goes on with new batches).
        snapshot_dir: folder for disk snapshots (default: a new temporary folder, created at
            the first snapshot). Every file the guard writes is deleted by :meth:`close`
            (or leaving ``with Guard(...) as guard:``), when the guard is garbage-collected,
            and at interpreter exit; a folder the guard created goes with them.
        keep_snapshots: how many snapshots to keep; a rollback uses the newest one taken
            before the anomaly's onset.
        max_retries: how many policy actions (rollbacks or lr scalings) in a row, without a
            new good snapshot / ``recovery_steps`` healthy steps in between, before the guard
            gives up and raises :class:`GuardError`.
        recovery_steps: healthy steps after an action that reset the retry count (scale_lr).
        log_path: write the event log (JSON, :meth:`to_dict`) there after every event. A path
            that cannot be a file (a directory, a file as its folder) is rejected here.
        **thresholds: passed to :class:`LossMonitor` (window, min_history, spike_z, ...).

    Faults of the guard's own never stop training half-way: a snapshot that cannot be saved
    (a full disk, out of memory) is skipped with a warning (older snapshots stay usable,
    ``to_dict()["snapshot_failures"]`` counts them); an event log that cannot be written is
    a warning too (``guard.events`` keeps every event). A rollback is all or nothing: the
    snapshot is read completely before anything is written, and SIGINT / SIGTERM arriving
    during the restore are delivered once it has finished. The only errors ``step`` raises
    are :class:`GuardError` (documented above, also for a snapshot that cannot be read back,
    with the model untouched) and ``ValueError`` for bad arguments.

    Example:
        >>> guard = Guard(policy="warn", min_history=5)
        >>> for step in range(10):
        ...     action = guard.step(step, 1.0 + 0.01 * (step % 3))
        >>> guard.step(10, float("nan")).event.kind
        'nonfinite'
        >>> guard.events[0].action
        'warned'

        ``with Guard(...) as guard:`` deletes the snapshots when the block ends.
    """

    def __init__(
        self,
        policy: Policy = "warn",
        *,
        model: nn.Module | None = None,
        optimizer: Optimizer | None = None,
        scheduler: Any = None,
        on: Iterable[str] = EVENT_KINDS,
        lr_factor: float = 0.5,
        snapshot_every: int = 100,
        snapshot: Literal["memory", "disk"] = "memory",
        snapshot_dir: str | os.PathLike[str] | None = None,
        keep_snapshots: int = 2,
        max_retries: int = 3,
        recovery_steps: int = 100,
        log_path: str | os.PathLike[str] | None = None,
        **thresholds: Any,
    ) -> None:
        self.policy = check_choice("policy", policy, POLICIES)
        self._rollback_policy = self.policy == "rollback"
        if isinstance(on, str):
            fail("on", on, "a collection of event kinds such as ('nonfinite', 'spike')")
        self.on = tuple(check_choice("on", k, EVENT_KINDS) for k in on)
        self.lr_factor = check_real(
            "lr_factor",
            lr_factor,
            minimum=0.0,
            maximum=1.0,
            min_inclusive=False,
            max_inclusive=False,
        )
        self.snapshot_every = check_int("snapshot_every", snapshot_every, minimum=1)
        self.snapshot_mode = check_choice("snapshot", snapshot, ("memory", "disk"))
        self.keep_snapshots = check_int("keep_snapshots", keep_snapshots, minimum=1)
        self.max_retries = check_int("max_retries", max_retries, minimum=0)
        self.recovery_steps = check_int("recovery_steps", recovery_steps, minimum=1)
        if model is not None and not isinstance(model, nn.Module):
            fail("model", type(model).__name__, "a torch.nn.Module or None")
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            fail("optimizer", type(optimizer).__name__, "a torch.optim.Optimizer or None")
        if scheduler is not None and not callable(getattr(scheduler, "state_dict", None)):
            fail("scheduler", type(scheduler).__name__, "a torch / lrkit scheduler or None")
        if self.policy == "scale_lr" and optimizer is None:
            fail("optimizer", None, "given for policy='scale_lr'")
        if self.policy == "rollback" and (model is None or optimizer is None):
            fail("model" if model is None else "optimizer", None, "given for policy='rollback'")
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.monitor = LossMonitor(**thresholds)
        self.log_path = check_file_path("log_path", log_path) if log_path is not None else None
        self._dir_option = (
            check_dir_path("snapshot_dir", snapshot_dir) if snapshot_dir is not None else None
        )
        self._snapshot_dir: Path | None = None  # created at the first disk snapshot
        self._dir_finalizer: weakref.finalize | None = None  # type: ignore[type-arg]
        self.events: list[GuardEvent] = []
        self._snapshots: list[_Kept] = []
        self._snapshot_failures = 0
        self._last_failure: str | None = None
        self._retries = 0
        self._healthy_since_action = 0
        self._steps_seen = 0
        self._last_step: int | None = None

    # ------------------------------------------------------------------ public API
    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete every snapshot now (files, the folder the guard created, memory copies).

        Safe to call more than once; the guard stays usable (later snapshots start afresh).
        """
        with uninterruptible():
            kept, self._snapshots = self._snapshots, []
            for k in kept:
                k.state.discard()
            if self._dir_finalizer is not None:
                self._dir_finalizer()
                self._dir_finalizer = None
            self._snapshot_dir = None

    def __call__(
        self, step: int, loss: float | Tensor, grad_norm: float | Tensor | None = None
    ) -> GuardAction:
        return self.step(step, loss, grad_norm)

    def step(
        self, step: int, loss: float | Tensor, grad_norm: float | Tensor | None = None
    ) -> GuardAction:
        """Judge the loss of optimizer step ``step`` and apply the policy; see the class doc.

        ``loss`` and ``grad_norm`` may be Python numbers or one-element tensors (converted with
        one ``.item()`` each). Call before ``optimizer.step()``.
        """
        if type(step) is not int:
            step = check_int("step", step, minimum=0)
        elif step < 0:
            fail("step", step, "an integer >= 0")
        value = loss if type(loss) is float else _to_float("loss", loss)
        gn = (
            grad_norm
            if grad_norm is None or type(grad_norm) is float
            else _to_float("grad_norm", grad_norm)
        )
        self._steps_seen += 1
        self._last_step = step
        found = self.monitor.observe(step, value, gn)
        if found is None:
            self._healthy_since_action += 1
            if self._retries and self._healthy_since_action >= self.recovery_steps:
                self._retries = 0
            if self._rollback_policy and step % self.snapshot_every == 0:
                self._take_snapshot(step)
            return _OK
        return self._handle(step, found)

    @property
    def snapshot_steps(self) -> list[int]:
        """Steps of the snapshots currently kept (rollback policy)."""
        return [s.step for s in self._snapshots]

    def take_snapshot(self, step: int) -> None:
        """Take a snapshot now (e.g. right before training starts), as if ``step`` was healthy."""
        if self.policy != "rollback":
            fail("policy", self.policy, "'rollback' to take snapshots")
        self._take_snapshot(check_int("step", step, minimum=0))

    def to_dict(self) -> dict[str, Any]:
        """The event log: configuration, counts and every event (JSON-ready)."""
        counts: dict[str, int] = {k: 0 for k in EVENT_KINDS}
        for e in self.events:
            counts[e.kind] += 1
        return {
            "format": 1,
            "policy": self.policy,
            "on": list(self.on),
            "lr_factor": self.lr_factor,
            "snapshot_every": self.snapshot_every,
            "snapshot": self.snapshot_mode,
            "max_retries": self.max_retries,
            "thresholds": self.monitor.config(),
            "steps_seen": self._steps_seen,
            "last_step": self._last_step,
            "snapshot_steps": self.snapshot_steps,
            "snapshot_failures": self._snapshot_failures,
            "counts": counts,
            "events": [e.to_dict() for e in self.events],
        }

    def write_log(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` or ``log_path``: the whole file or nothing.

        Raises ``OSError`` when it cannot be written (the old file, if any, is left as it was).
        """
        target = check_file_path("path", path) if path is not None else self.log_path
        if target is None:
            fail("path", None, "a file path (or log_path given to Guard)")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_files({target: json.dumps(self.to_dict(), indent=1, allow_nan=False)})
        return target

    # ------------------------------------------------------------------ internals
    def _handle(self, step: int, found: _Detection) -> GuardAction:
        value = found.value
        finite = math.isfinite(value)
        base = GuardEvent(
            step=step,
            kind=found.kind,
            onset_step=found.onset_step,
            signal=found.signal,
            value=value if finite else None,
            value_text=f"{value:.6g}" if finite else str(value),
            baseline=_finite_or_none(found.baseline),
            score=_finite_or_none(found.score),
            ratio=_finite_or_none(found.ratio),
            time=time.time(),
        )
        skip = found.kind == "nonfinite"
        self._healthy_since_action = 0
        if found.kind not in self.on or self.policy == "warn":
            event = replace(base, action="warned")
            self._record(event, logging.WARNING)
            return GuardAction(event=event, skip_update=skip)
        if self.policy == "raise":
            event = replace(base, action="raised")
            self._record(event, logging.ERROR)
            raise GuardError(event.describe(), event)
        if self._retries >= self.max_retries:
            event = replace(base, action="gave_up", detail={"retries": self._retries})
            self._record(event, logging.ERROR)
            raise GuardError(
                f"{event.describe()}: gave up after {self._retries} {self.policy} attempts "
                f"(max_retries={self.max_retries})",
                event,
            )
        self._retries += 1
        if self.policy == "scale_lr":
            assert self.optimizer is not None  # checked in __init__
            lrs = _scale_lrs(self.optimizer, self.scheduler, self.lr_factor)
            event = replace(
                base,
                action="scaled_lr",
                detail={"factor": self.lr_factor, "lrs": lrs, "attempt": self._retries},
            )
            self._record(event, logging.WARNING)
            return GuardAction(event=event, skip_update=skip, lr_scale=self.lr_factor)
        return self._rollback(base, found.onset_step)

    def _rollback(self, base: GuardEvent, onset: int) -> GuardAction:
        usable = [s for s in self._snapshots if s.step < onset]
        if not usable:
            reason = "no snapshot before onset"
            hint = "call guard.take_snapshot(0) before training, or lower snapshot_every"
            if self._last_failure is not None:
                reason += f"; the last one could not be saved: {self._last_failure}"
                hint = "snapshots could not be saved: " + self._last_failure
            event = replace(base, action="gave_up", detail={"reason": reason})
            self._record(event, logging.ERROR)
            raise GuardError(
                f"{event.describe()}: no snapshot taken before step {onset} to roll back to "
                f"({hint})",
                event,
            )
        kept = usable[-1]
        skipped = (kept.step, base.step)
        event = replace(
            base,
            action="rolled_back",
            detail={
                "restored_step": kept.step,
                "skipped_steps": list(skipped),
                "attempt": self._retries,
                "snapshot": str(kept.state.path) if kept.state.path is not None else "memory",
            },
        )
        # all or nothing: the snapshot is read whole before any write, and SIGINT / SIGTERM
        # wait until the model, optimizer, scheduler and the guard's own books agree again
        with uninterruptible():
            try:
                kept.state.restore(keep=True)
            except Exception as exc:  # unreadable snapshot file: nothing was written
                why = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
                failed = replace(
                    base, action="gave_up", detail={"reason": f"snapshot unreadable: {why}"}
                )
                self._record(failed, logging.ERROR)
                raise GuardError(
                    f"{failed.describe()}: the snapshot of step {kept.step} could not be read "
                    f"back ({why}); the model was not changed",
                    failed,
                ) from exc
            # newer snapshots may hold the anomaly: drop them
            for newer in [s for s in self._snapshots if s.step > kept.step]:
                newer.state.discard()
            self._snapshots = [s for s in self._snapshots if s.step <= kept.step]
            self.monitor.rewind(kept.history)
            self.events.append(event)
        self._log_event(event, logging.WARNING)
        return GuardAction(
            event=event,
            skip_update=True,
            rollback=True,
            resume_step=kept.step,
            skipped_steps=skipped,
        )

    def _folder(self) -> Path:
        """The folder of disk snapshots, created (with its clean-up registered) on first use."""
        if self._snapshot_dir is not None and self._snapshot_dir.is_dir():
            return self._snapshot_dir
        if self._dir_option is None:
            folder = Path(tempfile.mkdtemp(prefix="lrkit-guard-"))
            self._dir_finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
        else:
            folder = self._dir_option
            missing = [p for p in (folder, *folder.parents) if not p.exists()]
            folder.mkdir(parents=True, exist_ok=True)
            if missing:  # remove what we created, once it is empty again
                self._dir_finalizer = weakref.finalize(self, _remove_empty, missing)
        self._snapshot_dir = folder
        return folder

    def _take_snapshot(self, step: int) -> None:
        assert self.model is not None and self.optimizer is not None
        if self._snapshots and self._snapshots[-1].step == step:
            return
        # uninterruptible: a Ctrl-C waits until the snapshot is complete and on the list
        with uninterruptible():
            try:
                path = None
                if self.snapshot_mode == "disk":
                    path = self._folder() / f"guard-step{step:09d}.pt"
                state = take_snapshot(
                    self.model,
                    self.optimizer,
                    scheduler=self.scheduler,
                    where=self.snapshot_mode,
                    path=path,
                    rng=False,
                    grads=False,
                    on_device=True,
                )
            except (SnapshotError, OSError, MemoryError, torch.OutOfMemoryError) as exc:
                self._snapshot_failures += 1
                self._last_failure = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "guard: snapshot at step %d skipped (%s); rollback uses older ones (%s)",
                    step,
                    self._last_failure,
                    self.snapshot_steps or "none yet",
                )
                return
            self._snapshots.append(_Kept(step, self.monitor.mark(), state))
            self._last_failure = None
            # a new good snapshot after a rollback means training recovered
            self._retries = 0
            while len(self._snapshots) > self.keep_snapshots:
                self._snapshots.pop(0).state.discard()
        logger.debug("guard: snapshot at step %d", step)

    def _record(self, event: GuardEvent, level: int) -> None:
        self.events.append(event)
        self._log_event(event, level)

    def _log_event(self, event: GuardEvent, level: int) -> None:
        logger.log(level, "guard: %s -> %s", event.describe(), event.action)
        if self.log_path is not None:
            try:
                self.write_log()
            except OSError as exc:  # the event is in guard.events; training goes on
                logger.warning("guard: cannot write the event log %s: %s", self.log_path, exc)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _remove_empty(folders: list[Path]) -> None:
    """Remove folders the guard created (deepest first) if nothing else was put there."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
