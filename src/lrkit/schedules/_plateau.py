"""Metric bookkeeping of reduce-on-plateau, replicating torch's ``ReduceLROnPlateau``.

The schedule value itself is pure (:class:`~lrkit.schedules.Plateau` carries the steps of the
cuts already made). This tracker holds what torch keeps between metric observations: the best
metric so far, the number of bad observations, the cooldown counter. Its decision logic is
torch's, line for line: ``is_better`` with ``mode`` (min / max) and ``threshold_mode``
(rel / abs), bad observations ignored during cooldown, a cut when they exceed ``patience``,
then ``cooldown`` observations of rest.

How the adapter wires it (one tracker per active plateau; its parameters never change when a
cut is recorded, so the same tracker keeps serving the copy that ``reduce_at`` returns)::

    plateau = schedule.active_plateau(step)      # None during a warmup: ignore the metric
    if plateau is not None and tracker.observe(metric):
        cut = PlateauTracker.cut(schedule, step, base_lrs)   # torch's eps rule
        if cut is not None:
            schedule = cut                       # the cut applies from ``step`` on

:meth:`PlateauTracker.cut` applies torch's ``eps`` rule (a cut that lowers no param group's
lr by more than ``Plateau.eps`` is skipped, e.g. at ``min_scale`` or once the lr is ~1e-8), so
the learning rates equal torch's. Deliberate differences: a cut multiplies the schedule's
*multiplier*, so param groups keep their ratio; ``min_scale`` is relative to each group's own
initial lr (torch's ``min_lr`` is absolute); with several param groups a cut is applied to all
of them when it matters to any (torch decides per group).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lrkit._validate import check_int, check_real, fail
from lrkit.schedules._base import Schedule
from lrkit.schedules._kinds import Plateau

__all__ = ["PlateauTracker"]

_STATE_KEYS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")


class PlateauTracker:
    """torch's ReduceLROnPlateau decision logic for a :class:`~lrkit.schedules.Plateau`.

    Example:
        >>> from lrkit.schedules import Plateau
        >>> tracker = PlateauTracker(Plateau(patience=1))
        >>> [tracker.observe(m) for m in [1.0, 1.0, 1.0, 0.5, 0.5]]
        [False, False, True, False, False]
    """

    def __init__(self, plateau: Plateau) -> None:
        if not isinstance(plateau, Plateau):
            fail("plateau", plateau, "a Plateau schedule")
        self.mode = plateau.mode
        self.threshold = plateau.threshold
        self.threshold_mode = plateau.threshold_mode
        self.patience = plateau.patience
        self.cooldown = plateau.cooldown
        self.best: float = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    @property
    def in_cooldown(self) -> bool:
        """True while observations are ignored after a cut."""
        return self.cooldown_counter > 0

    def is_better(self, current: float, best: float) -> bool:
        """torch's ``_is_better``: does ``current`` improve on ``best`` beyond the threshold?"""
        if self.mode == "min" and self.threshold_mode == "rel":
            return current < best * (1.0 - self.threshold)
        if self.mode == "min":
            return current < best - self.threshold
        if self.threshold_mode == "rel":
            return current > best * (self.threshold + 1.0)
        return current > best + self.threshold

    def observe(self, metric: float) -> bool:
        """Record one metric value; return True when the learning rate should be cut now."""
        current = check_real("metric", metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
            return True
        return False

    @staticmethod
    def cut(schedule: Schedule, step: int, base_lrs: Sequence[float]) -> Schedule | None:
        """``schedule.reduce_at(step)`` when that lowers some param group's lr by more than the
        active plateau's ``eps`` (torch's rule), else None (the cut would change nothing).

        ``base_lrs`` are the param groups' initial learning rates.

        Example:
            >>> from lrkit.schedules import Plateau
            >>> p = Plateau(factor=0.1)
            >>> str(PlateauTracker.cut(p, 5, [0.1]))
            'plateau(reductions=[5])'
            >>> PlateauTracker.cut(p.reduce_at(1).reduce_at(2), 5, [1e-6]) is None
            True
        """
        plateau = schedule.active_plateau(step)
        if plateau is None:
            fail("step", step, "a step at which a reduce-on-plateau schedule is active")
        candidate = schedule.reduce_at(step)
        old = schedule._at(step)
        new = candidate._at(step)
        if any(base * old - base * new > plateau.eps for base in base_lrs):
            return candidate
        return None

    def state_dict(self) -> dict[str, Any]:
        """The bookkeeping as plain Python values (``best`` may be +-inf before any metric)."""
        return {
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "last_epoch": self.last_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; raises ValueError for a malformed one."""
        if not isinstance(state, dict) or any(key not in state for key in _STATE_KEYS):
            fail("state", state, "a dict with keys " + ", ".join(_STATE_KEYS))
        best = state["best"]
        if isinstance(best, bool) or not isinstance(best, (int, float)) or math.isnan(best):
            fail("state['best']", best, "a number (or +-inf)")
        self.best = float(best)
        self.num_bad_epochs = check_int(
            "state['num_bad_epochs']", state["num_bad_epochs"], minimum=0
        )
        self.cooldown_counter = check_int(
            "state['cooldown_counter']", state["cooldown_counter"], minimum=0
        )
        self.last_epoch = check_int("state['last_epoch']", state["last_epoch"], minimum=0)

    def __repr__(self) -> str:
        return f"PlateauTracker({self.state_dict()!r})"
