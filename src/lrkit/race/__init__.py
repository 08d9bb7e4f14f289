"""The verified learning rate: the range test narrows, a short guarded race decides.

:func:`run_race` runs a range test, puts a few candidate learning rates on a log lattice across
the interval it shows, and races them by successive halving on validation loss, every trial a
fresh copy trained with your schedule and watched by a Guard. The budget counts your training
runs (range test included); ``budget=0`` is the range test's quick answer.

Example:
    >>> from lrkit.race import run_race
    >>> result = run_race("diabetes", schedule="cosine", budget=3)  # doctest: +SKIP
    >>> result.lr, round(result.spent_budgets, 2)  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.race._holdout import HOLDOUT_FRACTION
    from lrkit.race._plan import (
        ETA,
        FINAL,
        HIGH_MARGIN,
        LOW_MARGIN,
        MIN_RUNG_STEPS,
        PER_DECADE,
        Interval,
        Rung,
        lattice,
        plan_rungs,
        plausible_interval,
    )
    from lrkit.race._race import DEFAULT_BUDGET, RANGE_STEPS, check_budget, quick_answer, run_race
    from lrkit.race._result import RaceCandidate, RaceResult, RungTrial
    from lrkit.race._schedule import COMPRESS_MODES, compress, resolve_schedule, rung_schedule
    from lrkit.race._trial import ExternalTrials, RaceObjective, TrialLog, TrialOutcome

__all__ = [
    "COMPRESS_MODES",
    "DEFAULT_BUDGET",
    "ETA",
    "ExternalTrials",
    "FINAL",
    "HIGH_MARGIN",
    "HOLDOUT_FRACTION",
    "LOW_MARGIN",
    "MIN_RUNG_STEPS",
    "PER_DECADE",
    "RANGE_STEPS",
    "Interval",
    "RaceCandidate",
    "RaceObjective",
    "RaceResult",
    "Rung",
    "RungTrial",
    "TrialLog",
    "TrialOutcome",
    "check_budget",
    "compress",
    "lattice",
    "plan_rungs",
    "plausible_interval",
    "quick_answer",
    "resolve_schedule",
    "rung_schedule",
    "run_race",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.race._holdout": ["HOLDOUT_FRACTION"],
            "lrkit.race._plan": [
                "ETA",
                "FINAL",
                "HIGH_MARGIN",
                "LOW_MARGIN",
                "MIN_RUNG_STEPS",
                "PER_DECADE",
                "Interval",
                "Rung",
                "lattice",
                "plan_rungs",
                "plausible_interval",
            ],
            "lrkit.race._race": [
                "DEFAULT_BUDGET",
                "RANGE_STEPS",
                "check_budget",
                "quick_answer",
                "run_race",
            ],
            "lrkit.race._result": ["RaceCandidate", "RaceResult", "RungTrial"],
            "lrkit.race._schedule": [
                "COMPRESS_MODES",
                "compress",
                "resolve_schedule",
                "rung_schedule",
            ],
            "lrkit.race._trial": ["ExternalTrials", "RaceObjective", "TrialLog", "TrialOutcome"],
        },
    )
