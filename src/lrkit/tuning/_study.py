"""A study as tune configures it: sampler, pruner, the settings every worker shares, and
opening (or creating) the study in its storage."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from lrkit._optional import require
from lrkit.tuning._errors import StorageError
from lrkit.tuning._objective import _Objective
from lrkit.tuning._space import Param, grid_values
from lrkit.tuning._storage import StorageSpec, storage_error

__all__ = ["EARLY_STOPPING", "STRATEGIES", "WorkerConfig", "open_study"]

STRATEGIES = ("grid", "random", "qmc", "tpe", "gp")
EARLY_STOPPING = ("none", "median", "asha", "hyperband")


def _sampler(
    strategy: str, space: list[Param], *, seed: int | None, n_trials: int, grid_per_decade: int
) -> Any:
    optuna = require("optuna", "tune")
    startup = min(10, max(4, n_trials // 4))
    if strategy == "grid":
        grid = {
            p.name: grid_values(p, per_decade=grid_per_decade) for p in space if p.kind != "const"
        }
        return optuna.samplers.GridSampler(grid, seed=seed)
    if strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if strategy == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(
                seed=seed,
                scramble=seed is not None,
                warn_independent_sampling=False,
                warn_asynchronous_seeding=False,
            )
    if strategy == "gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=startup, warn_independent_sampling=False
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup,
            multivariate=sum(p.kind != "const" for p in space) > 1,
            constant_liar=True,
        )


def _pruner(early_stopping: str, max_steps: int | None) -> Any:
    optuna = require("optuna", "tune")
    if early_stopping == "none":
        return optuna.pruners.NopPruner()
    if early_stopping == "median":
        warmup = max_steps // 10 if max_steps else 0
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=warmup)
    # the first rung at 1/9 (asha) or 1/27 (hyperband) of a full run, rungs growing 3x
    if early_stopping == "asha":
        minimum = max(1, max_steps // 9) if max_steps else "auto"
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=minimum, reduction_factor=3)
    return optuna.pruners.HyperbandPruner(
        min_resource=max(1, max_steps // 27) if max_steps else 1,
        max_resource=max_steps if max_steps else "auto",
        reduction_factor=3,
    )


@dataclass
class WorkerConfig:
    objective: _Objective
    strategy: str
    early_stopping: str
    storage: StorageSpec
    study_name: str
    n_trials: int
    seed: int | None
    timeout: float | None
    max_steps: int | None
    grid_per_decade: int
    worker_index: int = 0
    threads: int | None = None
    poll_s: float = 0.5
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    fast_exit: bool = False


def _sampler_seed(config: WorkerConfig) -> int | None:
    if config.seed is None:
        return None
    if config.strategy in ("grid", "qmc"):
        return config.seed  # every worker walks the same sequence; the study hands out points
    return config.seed + 7919 * config.worker_index  # distinct points per worker


def open_study(config: WorkerConfig, storage: Any) -> Any:
    optuna = require("optuna", "tune")
    sampler = _sampler(
        config.strategy,
        config.objective.space,
        seed=_sampler_seed(config),
        n_trials=config.n_trials,
        grid_per_decade=config.grid_per_decade,
    )
    try:
        study = optuna.create_study(
            study_name=config.study_name,
            storage=storage,
            sampler=sampler,
            pruner=_pruner(config.early_stopping, config.max_steps),
            direction="minimize",
            load_if_exists=True,
        )
    except StorageError:
        raise
    except Exception as exc:
        raise storage_error(
            f"cannot open study {config.study_name!r} in", config.storage, exc
        ) from None
    if study.directions[0] != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError(
            f"study {config.study_name!r} in {config.storage.display!r} maximises; "
            "lrkit minimises the objective (choose another study name)"
        )
    for params in config.enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    return study
