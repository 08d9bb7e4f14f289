"""What ``lrkit auto`` found: :class:`AutoResult`, each check run (:class:`Attempt`), and the
small readers the report shares with the pipeline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lrkit.advice import Advice
from lrkit.pipeline._snippet import code_snippet

__all__ = ["Attempt", "AutoResult", "jsonable", "lr_of", "training_curves"]


@dataclass
class Attempt:
    """One guarded check run of the closed loop.

    Attributes:
        lr: the peak learning rate it trained with.
        schedule: its schedule spec.
        training: the :class:`~lrkit.tasks.TrainResult`.
        guard_events: the live Guard's events (dicts with a ``message``).
        diagnosis: the :class:`~lrkit.diagnosis.Diagnosis` of the run.
        verdict: the diagnosis' verdict.
        factor: the lr change the diagnosis (or the Guard) asked for, None when it asked none.
        decision: what ``auto`` did next, in words.
    """

    lr: float
    schedule: str
    training: Any = None
    guard_events: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: Any = None
    verdict: str | None = None
    factor: float | None = None
    decision: str = ""

    @property
    def final_val_loss(self) -> float:
        value = getattr(self.training, "final_val_loss", math.nan)
        return float(value) if value is not None else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "schedule": self.schedule,
            "verdict": self.verdict,
            "factor": self.factor,
            "decision": self.decision,
            "final_val_loss": jsonable(self.final_val_loss),
            "guard_events": [jsonable(e) for e in self.guard_events],
            "diagnosis": _sub(self.diagnosis),
            "training": _sub(self.training),
        }


@dataclass
class AutoResult:
    """Everything ``auto`` found. ``lr`` with ``schedule`` is the recommendation.

    ``lr_source`` says where ``lr`` came from: the race (``race``: the verified answer), the
    range test's quick answer, the check runs' closed loop that moved it, or the advisor when
    the range test gave no clear answer (the reason is in ``notes``). ``budget`` is the search
    budget in runs of ``total_steps`` steps and ``spent_steps`` what the search spent (range
    test and race; the check runs are listed in ``attempts``). ``training``, ``guard_events``
    and ``diagnosis`` are those of the last check run (empty without one); ``report`` holds the
    written paths (``html``, ``markdown``, ``json``, PNGs) when ``out`` was given.
    """

    name: str
    optimizer: str
    architecture: str
    advice: Advice
    lr: float
    lr_source: str
    schedule: str
    total_steps: int | None
    range_test: Any = None
    suggestion: float | None = None
    suggestion_reason: str | None = None
    finder_schedule: str = "constant"
    lr_range: tuple[float, float] | None = None
    budget: float = 0.0
    race: Any = None
    spent_steps: int = 0
    train_steps: int = 0
    train_schedule: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    training: Any = None
    guard_events: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: Any = None
    report: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    inferred: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def snippet(self) -> str:
        """Copy-pasteable code: the optimizer and ``lrkit.schedules.attach``."""
        return code_snippet(
            self.optimizer, self.lr, self.schedule, self.total_steps, self.optimizer_kwargs
        )

    @property
    def spent_budgets(self) -> float | None:
        """``spent_steps`` in runs of ``total_steps`` (None without a run length)."""
        return self.spent_steps / self.total_steps if self.total_steps else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (the range test, race and diagnosis via their ``to_dict``)."""
        return {
            "name": self.name,
            "optimizer": self.optimizer,
            "optimizer_kwargs": {k: jsonable(v) for k, v in self.optimizer_kwargs.items()},
            "architecture": self.architecture,
            "inferred": dict(self.inferred),
            "lr": self.lr,
            "lr_source": self.lr_source,
            "schedule": self.schedule,
            "total_steps": self.total_steps,
            "budget": self.budget,
            "spent_steps": self.spent_steps,
            "spent_budgets": self.spent_budgets,
            "suggestion": self.suggestion,
            "suggestion_reason": self.suggestion_reason,
            "finder_schedule": self.finder_schedule,
            "lr_range": None if self.lr_range is None else list(self.lr_range),
            "advice": self.advice.to_dict(),
            "range_test": _sub(self.range_test),
            "race": _sub(self.race),
            "train_steps": self.train_steps,
            "train_schedule": self.train_schedule,
            "attempts": [a.to_dict() for a in self.attempts],
            "training": _sub(self.training),
            "guard_events": [jsonable(e) for e in self.guard_events],
            "diagnosis": _sub(self.diagnosis),
            "report": {k: str(v) for k, v in self.report.items()},
            "notes": list(self.notes),
            "timings": dict(self.timings),
            "snippet": self.snippet,
        }


def _sub(obj: Any) -> Any:
    if obj is None:
        return None
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else repr(obj)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (non-finite floats become None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return jsonable(float(value.item()))
    item = getattr(value, "item", None)
    if callable(item):
        return jsonable(item())
    return str(value)


def lr_of(value: Any) -> float | None:
    """A positive finite learning rate from a number or a suggestion (its ``lr``), or None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value > 0 else None
    lr = getattr(value, "lr", None)
    return lr_of(lr) if lr is not None else None


def training_curves(
    training: Any, losses: list[float] | None = None
) -> tuple[list[float], list[int], list[float], list[float] | None]:
    """(train losses, val steps, val losses, lrs) of a TrainResult (or the on_step losses)."""
    train_loss = list(getattr(training, "train_loss", None) or losses or [])
    val_steps = list(getattr(training, "val_steps", None) or [])
    val_loss = list(getattr(training, "val_loss", None) or [])
    lrs = getattr(training, "lrs", None)
    return train_loss, val_steps, val_loss, (list(lrs) if lrs is not None else None)
