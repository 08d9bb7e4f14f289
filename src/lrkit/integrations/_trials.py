"""The race through a framework's Trainer: what the Lightning and Hugging Face races share.

:func:`race_trainer` runs :func:`lrkit.race.run_race` on :class:`lrkit.race.ExternalTrials`
whose trials the framework trains: for each one it builds the learning rate of every step
(``lr * schedule(k)``) and the :class:`lrkit.race.TrialLog` that judges it, and hands both to
the framework's ``run_trial``. A :class:`SetupError` raised in a trial (a problem with the
user's setup that every trial would hit, such as a missing validation metric) ends the race
with that error, not with "no winner".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrkit.finder import RangeTest
    from lrkit.race import RaceResult, TrialLog, TrialOutcome
    from lrkit.schedules import Schedule

__all__ = ["SetupError", "race_trainer"]

#: ``run_trial(lr_at, log)``: train ``log.steps`` steps at ``lr_at(k)``, reporting to ``log``
RunTrial = Callable[[Callable[[int], float], "TrialLog"], None]


class SetupError(ValueError):
    """A problem with the user's setup that every trial would hit: it ends the race."""


def race_trainer(
    run_trial: RunTrial,
    *,
    range_test: Callable[[int], RangeTest],
    name: str,
    validation: str,
    **race: Any,
) -> RaceResult:
    """:func:`lrkit.race.run_race` (``race``: its keywords) on trials trained by ``run_trial``;
    ``range_test``, ``name`` and ``validation`` as in :class:`lrkit.race.ExternalTrials`."""
    from lrkit.race import ExternalTrials, TrialLog, run_race

    error: list[SetupError] = []

    def train(
        lr: float, steps: int, schedule: Schedule, evaluations: int, counter: list[int]
    ) -> TrialOutcome:
        if error:
            raise error[0]
        log = TrialLog(steps, evaluations, counter)
        try:
            run_trial(lambda k: lr * float(schedule(k)), log)
        except SetupError as exc:
            error.append(exc)
            raise
        return log.outcome()

    trials = ExternalTrials(train=train, range_test=range_test, name=name, validation=validation)
    result = run_race(trials, **race)
    if error:  # every trial failed on it: say so, not "no winner"
        raise error[0]
    return result
