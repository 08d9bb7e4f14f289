"""The readable result of a tuning run: one record per trial, the best trial, JSON, plots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["TrialRecord", "TuneResult", "records_from_trials"]

#: Optuna trial states as lrkit names them.
STATE_NAMES = {
    "COMPLETE": "complete",
    "PRUNED": "pruned",
    "FAIL": "failed",
    "RUNNING": "running",
    "WAITING": "waiting",
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a study.

    Attributes:
        number: the trial's number in the study (0, 1, ...).
        params: the parameters the trial was run with (constants of the space included).
        state: "complete", "pruned", "failed", "running" or "waiting".
        value: the final value (complete trials) or the last reported value (pruned trials).
        steps: the last step passed to ``report(step, value)`` (the training spent), or None.
        reason: why a trial failed or was pruned (the exception, "returned nan", ...).
        duration_s: wall-clock seconds, None while running.
        retry_of: for a retried trial, the number of the trial it re-runs (its worker died).
        retried: True for a failed trial whose worker died and that was queued again.
    """

    number: int
    params: dict[str, Any]
    state: str
    value: float | None
    steps: int | None = None
    reason: str | None = None
    duration_s: float | None = None
    retry_of: int | None = None
    retried: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["value"] is not None and not math.isfinite(data["value"]):
            data["value"] = None
        return data


@dataclass
class TuneResult:
    """What :func:`lrkit.tuning.tune` found.

    Attributes:
        best_params: parameters of the best complete trial ({} when none completed).
        best_value: its value (None when no trial completed).
        best_number: its trial number (None when no trial completed).
        trials: every trial of the study, by number.
        study_name, storage (password masked), strategy, early_stopping, space, n_trials: how
            the search was run (n_trials is the study total that was asked for).
        range_test: for ``space="auto"``: the finder's suggestion, the searched range and the
            optimizer steps the range test spent (``{"suggestion", "range", "steps"}``).
    """

    best_params: dict[str, Any]
    best_value: float | None
    best_number: int | None
    trials: list[TrialRecord]
    study_name: str
    storage: str
    strategy: str | None = None
    early_stopping: str | None = None
    space: dict[str, object] = field(default_factory=dict)
    n_trials: int | None = None
    range_test: dict[str, Any] | None = None

    @property
    def counts(self) -> dict[str, int]:
        """How many trials are in each state."""
        out = {name: 0 for name in STATE_NAMES.values()}
        for trial in self.trials:
            out[trial.state] = out.get(trial.state, 0) + 1
        return out

    @property
    def total_steps(self) -> int:
        """Training steps reported across all trials (the cost of the search)."""
        return sum(t.steps or 0 for t in self.trials)

    def best_trials(self, k: int = 5) -> list[TrialRecord]:
        """The ``k`` complete trials with the lowest values, best first."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        return sorted(done, key=lambda t: (t.value, t.number))[:k]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (no passwords: the storage URL is masked)."""
        return {
            "study_name": self.study_name,
            "storage": self.storage,
            "strategy": self.strategy,
            "early_stopping": self.early_stopping,
            "space": self.space,
            "n_trials": self.n_trials,
            "range_test": self.range_test,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "best_number": self.best_number,
            "counts": self.counts,
            "total_steps": self.total_steps,
            "trials": [t.to_dict() for t in self.trials],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def plot(self, axes: Sequence[Axes] | None = None, *, param: str = "lr") -> list[Axes]:
        """Draw ``param`` vs final value, and the optimisation history; return the two Axes.

        Example:
            >>> axes = result.plot()  # doctest: +SKIP
            >>> axes[0].figure.savefig("tune.png")  # doctest: +SKIP
        """
        from lrkit.plotting import plot_tune

        return plot_tune(self, axes=axes, param=param)


def records_from_trials(trials: Sequence[Any]) -> list[TrialRecord]:
    """Turn Optuna FrozenTrials into :class:`TrialRecord` (constants merged into params)."""
    retried: set[int] = set()
    for trial in trials:
        retried.update(int(n) for n in trial.system_attrs.get("retry_history", []))
    records = []
    for trial in sorted(trials, key=lambda t: t.number):
        state = STATE_NAMES.get(trial.state.name, trial.state.name.lower())
        params = dict(trial.user_attrs.get("lrkit_constants", {}))
        params.update(trial.params)
        steps = max(trial.intermediate_values) if trial.intermediate_values else None
        diverged_at = trial.user_attrs.get("lrkit_steps")
        if isinstance(diverged_at, int) and (steps is None or diverged_at > steps):
            steps = diverged_at
        value: float | None = None
        if state == "complete" and trial.values:
            value = float(trial.values[0])
        elif state == "pruned" and trial.intermediate_values:
            value = float(trial.intermediate_values[max(trial.intermediate_values)])
        reason = trial.user_attrs.get("lrkit_reason")
        if state == "failed" and reason is None:
            reason = (
                "its worker died (its process is gone, or it sent no heartbeat); queued again"
                if trial.number in retried
                else "failed (no reason recorded)"
            )
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        records.append(
            TrialRecord(
                number=trial.number,
                params=params,
                state=state,
                value=value,
                steps=steps,
                reason=reason,
                duration_s=duration,
                retry_of=trial.system_attrs.get("failed_trial"),
                retried=trial.number in retried,
            )
        )
    return records
