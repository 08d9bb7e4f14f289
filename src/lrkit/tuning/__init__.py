"""Tune the learning rate with Optuna: grid, random, quasi-random, TPE and GP search, early
stopping (median, ASHA, Hyperband), persistent studies on SQLite / journal files / PostgreSQL,
local worker processes and many machines cooperating on one study.

Example:
    >>> import math
    >>> from lrkit.tuning import tune
    >>> def objective(params, report):
    ...     return (math.log10(params["lr"]) + 3) ** 2
    >>> result = tune(objective, n_trials=12, strategy="grid", storage=":memory:")
    >>> result.best_params["lr"]
    0.001
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.tuning._errors import StorageError
    from lrkit.tuning._result import TrialRecord, TuneResult
    from lrkit.tuning._space import DEFAULT_LR_RANGE, Param, grid_values, parse_space
    from lrkit.tuning._storage import mask_url
    from lrkit.tuning._task import TaskObjective
    from lrkit.tuning._tune import EARLY_STOPPING, STRATEGIES, Report, auto_range, load_result, tune

__all__ = [
    "DEFAULT_LR_RANGE",
    "EARLY_STOPPING",
    "STRATEGIES",
    "Param",
    "StorageError",
    "Report",
    "TaskObjective",
    "TrialRecord",
    "TuneResult",
    "auto_range",
    "grid_values",
    "load_result",
    "mask_url",
    "parse_space",
    "tune",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.tuning._errors": ["StorageError"],
            "lrkit.tuning._result": ["TrialRecord", "TuneResult"],
            "lrkit.tuning._space": ["DEFAULT_LR_RANGE", "Param", "grid_values", "parse_space"],
            "lrkit.tuning._storage": ["mask_url"],
            "lrkit.tuning._task": ["TaskObjective"],
            "lrkit.tuning._tune": [
                "EARLY_STOPPING",
                "STRATEGIES",
                "Report",
                "auto_range",
                "load_result",
                "tune",
            ],
        },
    )
