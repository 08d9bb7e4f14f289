"""Tune the learning rate with Optuna: grid, random, quasi-random, TPE and GP search, early
stopping (median, ASHA, Hyperband), persistent studies on SQLite / journal files / PostgreSQL,
local worker processes and many machines cooperating on one study.

Example:
    >>> import math
    >>> from lrkit.tune import tune
    >>> def objective(params, report):
    ...     return (math.log10(params["lr"]) + 3) ** 2
    >>> result = tune(objective, n_trials=12, strategy="grid", storage=":memory:")
    >>> result.best_params["lr"]
    0.001
"""

from lrkit.tune._errors import StorageError
from lrkit.tune._result import TrialRecord, TuneResult
from lrkit.tune._space import DEFAULT_LR_RANGE, Param, grid_values, parse_space
from lrkit.tune._storage import mask_url
from lrkit.tune._task import TaskObjective
from lrkit.tune._tune import EARLY_STOPPING, STRATEGIES, Report, auto_range, load_result, tune

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
