"""What a race found: the winner, every candidate's rungs and validation curve, and the cost."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lrkit.race._plan import Interval, Rung

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["RaceCandidate", "RaceResult", "RungTrial"]

#: candidate states: reached the last rung / stopped (halved out or guarded) / raised an error
STATES = ("complete", "pruned", "failed")


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class RungTrial:
    """One candidate on one rung (one Optuna trial of the race's study).

    Attributes:
        rung: the rung (0 = first, shortest).
        steps: the rung's length in optimizer steps.
        steps_done: the steps actually trained (fewer when the Guard stopped it or it failed).
        state: "complete", "pruned" (stopped by the Guard, diverged) or "failed" (raised).
        value: the final validation loss (None unless complete).
        reason: why it was stopped or failed.
        val_steps, val_losses: the validation curve of the trial.
        number: the Optuna trial number.
    """

    rung: int
    steps: int
    steps_done: int
    state: str
    value: float | None
    reason: str | None = None
    val_steps: tuple[int, ...] = ()
    val_losses: tuple[float, ...] = ()
    number: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "steps": self.steps,
            "steps_done": self.steps_done,
            "state": self.state,
            "value": _num(self.value),
            "reason": self.reason,
            "val_steps": list(self.val_steps),
            "val_losses": [_num(v) for v in self.val_losses],
            "number": self.number,
        }


@dataclass(frozen=True)
class RaceCandidate:
    """One candidate learning rate: how far it got and why it stopped.

    ``state`` is "complete" (it ran the last rung), "pruned" (halved out after a rung, or its
    trial was stopped by the Guard) or "failed" (its trial raised); ``reason`` says which.
    """

    lr: float
    state: str
    reason: str
    trials: tuple[RungTrial, ...] = ()
    winner: bool = False

    @property
    def last(self) -> RungTrial | None:
        """The trial of the highest rung it ran."""
        return self.trials[-1] if self.trials else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "state": self.state,
            "reason": self.reason,
            "winner": self.winner,
            "trials": [t.to_dict() for t in self.trials],
        }


@dataclass
class RaceResult:
    """The verified learning rate of :func:`lrkit.race.run_race` and how it was found.

    Attributes:
        lr: the winner (the candidate with the lowest validation loss on the last rung), or the
            range test's quick answer when ``budget=0``; None only when nothing could be chosen
            (``reason`` says why).
        reason: how ``lr`` was chosen, or why there is none.
        schedule: the schedule of the user's run the race trained with (its full spec).
        total_steps: optimizer steps of the user's run (the unit of the budget).
        budget: the budget asked for, in user runs (range test included).
        spent_steps: every optimizer step spent before choosing: the range test, and every
            trial on every rung (stopped and failed ones up to where they stopped).
        range_test: the :class:`~lrkit.finder.RangeTest` the race started from.
        quick_lr, quick_reason: the range test's own suggestion for the schedule.
        interval: the learning rates raced over, and why.
        rungs: the successive-halving plan (candidates and steps per rung).
        candidates: every candidate, lowest lr first.
        validation: what the candidates were scored on (the val_loader, or held-back data).
        compress: how a rung played the schedule: "warmup" (the warmup scaled to the rung,
            then the schedule as the run starts), "all" (replayed over the rung), "none".
        stage_steps: the optimizer steps of each stage ("range test", "rung 0", ...).
        study_name, storage: the Optuna study holding the trials (password masked).
        seconds: wall time.
        notes: anything the user should know (held-back data, a thinner field, ...).
    """

    lr: float | None
    reason: str
    schedule: str
    total_steps: int
    budget: float
    spent_steps: int
    range_test: Any = None
    quick_lr: float | None = None
    quick_reason: str | None = None
    interval: Interval | None = None
    rungs: list[Rung] = field(default_factory=list)
    candidates: list[RaceCandidate] = field(default_factory=list)
    validation: str = "val_loader"
    compress: str = "warmup"
    stage_steps: dict[str, int] = field(default_factory=dict)
    study_name: str | None = None
    storage: str | None = None
    seed: int = 0
    seconds: float = math.nan
    notes: list[str] = field(default_factory=list)

    @property
    def spent_budgets(self) -> float:
        """``spent_steps`` in units of the user's run (``spent_steps / total_steps``)."""
        return self.spent_steps / self.total_steps

    @property
    def winner(self) -> RaceCandidate | None:
        """The winning candidate (None for the quick answer or when nothing completed)."""
        return next((c for c in self.candidates if c.winner), None)

    def __repr__(self) -> str:
        lr = "None" if self.lr is None else f"{self.lr:.3g}"
        return (
            f"RaceResult(lr={lr}, candidates={len(self.candidates)}, "
            f"spent_budgets={self.spent_budgets:.2f} of {self.budget:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite numbers become None)."""
        rt = self.range_test
        return {
            "lr": self.lr,
            "reason": self.reason,
            "schedule": self.schedule,
            "total_steps": self.total_steps,
            "budget": self.budget,
            "spent_steps": self.spent_steps,
            "spent_budgets": self.spent_budgets,
            "quick_lr": self.quick_lr,
            "quick_reason": self.quick_reason,
            "interval": None if self.interval is None else self.interval.to_dict(),
            "rungs": [r.to_dict() for r in self.rungs],
            "candidates": [c.to_dict() for c in self.candidates],
            "validation": self.validation,
            "compress": self.compress,
            "stage_steps": dict(self.stage_steps),
            "study_name": self.study_name,
            "storage": self.storage,
            "seed": self.seed,
            "seconds": _num(self.seconds),
            "notes": list(self.notes),
            "range_test": rt.to_dict() if rt is not None else None,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Draw the race: each candidate's validation curves, where it stopped, the winner.

        Needs matplotlib (``pip install 'lrkit[plot]'``); returns the Axes.
        """
        from lrkit.plotting import plot_race

        return plot_race(self, ax=ax)
