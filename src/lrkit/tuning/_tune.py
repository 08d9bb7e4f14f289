"""``tune``: search the learning rate (and friends) with Optuna, on one process or many.

How a run counts trials: ``n_trials`` is the **study total**. Every worker (a local process, or
the same command on another machine) keeps starting trials until the study holds ``n_trials``
finished ones (complete, pruned or failed; a trial whose worker died and that was queued again
counts once, through its retry). Re-running a finished command therefore does nothing but print
the result, and re-running an interrupted one finishes the remaining trials. When workers race
for the last trials the study may end with a few more than ``n_trials``; never fewer (unless a
``timeout`` or an exhausted grid stops it earlier).

A worker with nothing left to start does not leave while trials still run elsewhere: it waits
until they end, or until their worker is found dead (no heartbeat on a database server; a gone
process on this host for the file storages) and they are queued again, and runs such retries
itself. So when a command returns, its study is finished: every trial complete, pruned or
failed (a failed trial of a dead worker carries ``retried`` and has a re-run).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lrkit._optional import require
from lrkit._validate import check_choice, check_int, check_real, fail
from lrkit.tuning._errors import StorageError as StorageError
from lrkit.tuning._objective import Report, _Objective, suggest
from lrkit.tuning._objective import _objective_style as _objective_style
from lrkit.tuning._result import TrialRecord, TuneResult, records_from_trials
from lrkit.tuning._space import Param, default_space, grid_values, parse_space, space_to_dict
from lrkit.tuning._storage import StorageSpec, close_storage, open_storage, resolve_storage
from lrkit.tuning._study import EARLY_STOPPING, STRATEGIES, WorkerConfig
from lrkit.tuning._worker import run_worker
from lrkit.tuning._workers import run_workers, sigterm_raises

__all__ = ["EARLY_STOPPING", "STRATEGIES", "Report", "auto_range", "load_result", "suggest", "tune"]

logger = logging.getLogger(__name__)

# the names these lived under before the worker machinery moved to its own modules
_WorkerConfig = WorkerConfig
_run_worker = run_worker


# --------------------------------------------------------------------------------------------
# the public function


def _default_study_name(func: Callable[..., Any], space: list[Param], strategy: str) -> str:
    name = getattr(func, "__qualname__", None) or type(func).__name__
    module = getattr(func, "__module__", "") or ""
    payload = json.dumps(
        [module, name, space_to_dict(space), strategy], sort_keys=True, default=str
    )
    digest = hashlib.sha1(payload.encode()).hexdigest()[:8]
    short = name.replace("<", "").replace(">", "").replace(".", "-")
    return f"lrkit-{short}-{digest}"


def _auto_space(setup: object, seed: int | None) -> tuple[list[Param], dict[str, Any]]:
    """Run the range test on ``setup``; return a log space around its suggestion and a summary
    (``suggestion``, searched ``range``, ``steps`` the test spent)."""
    if setup is None:
        fail("setup", setup, "a Setup or a task when space='auto' (the range test needs it)")
    from lrkit._setup import Setup, as_setup
    from lrkit.finder import find_lr

    task_setup = getattr(setup, "setup", None)
    if not isinstance(setup, Setup) and callable(task_setup):  # a built-in task
        setup = task_setup(seed=0 if seed is None else seed)
    s = as_setup(setup, source="setup")
    test = find_lr(s.model, s.optimizer, s.loss_fn, s.train_loader, step_fn=s.step_fn)
    suggestion = getattr(test, "suggestion", None)
    if suggestion is None or not math.isfinite(float(suggestion)) or float(suggestion) <= 0:
        why = getattr(test, "suggestion_reason", "the loss never fell clearly")
        raise ValueError(
            f"space='auto': the range test gave no learning-rate suggestion ({why}); "
            "pass an explicit space instead"
        )
    low, high = auto_range(float(suggestion), test.suggest_range())
    curve = getattr(test, "train_losses", None)
    steps = len(curve if curve is not None else test.losses)
    info = {"suggestion": float(suggestion), "range": [low, high], "steps": int(steps)}
    logger.info("range test: suggestion %.3g, searching %.3g..%.3g", suggestion, low, high)
    return default_space(low, high), info


def auto_range(suggestion: float, suggested: tuple[float, float] | None) -> tuple[float, float]:
    """The search range for ``space="auto"``: a decade each way around the range test's
    suggestion, widened to hold the finder's suggested range when that reaches further.

    (The best learning rate of a full training run is usually within a few times the range
    test's suggestion, below or above it: a 2-decade window keeps the search dense there. It
    replaced a 2.5-decade window, a 30th of the suggestion to ~9x it, after both were measured
    on ``benchmarks/tune/search_cost.py``; see the README's tuning section.)

    Example:
        >>> auto_range(1e-2, (3e-3, 3e-2))
        (0.001, 0.1)
        >>> auto_range(1e-2, (1e-4, 3e-2))
        (0.0001, 0.1)
    """
    low, high = (suggestion, suggestion) if suggested is None else suggested
    low = min(float(low), suggestion / 10)
    high = max(float(high), suggestion * 10)
    return float(f"{low:.6g}"), float(f"{high:.6g}")


@contextlib.contextmanager
def _opened(spec: StorageSpec, given: Any) -> Iterator[Any]:
    if given is not None:
        yield given
        return
    storage = open_storage(spec)
    try:
        yield storage
    finally:
        close_storage(storage)


def _search_space(
    space: Mapping[str, object] | str | None,
    setup: object,
    seed: int | None,
    style: str,
    strategy: str,
) -> tuple[list[Param], list[dict[str, Any]], dict[str, Any] | None]:
    """The parsed space, the trials to queue first, and the range test's summary (auto)."""
    enqueue: list[dict[str, Any]] = []
    range_test: dict[str, Any] | None = None
    if isinstance(space, str):
        if space != "auto":
            fail("space", space, "None, 'auto' or a mapping of parameter name to range/choices")
        params, range_test = _auto_space(setup, seed)
        enqueue.append({"lr": range_test["suggestion"]})
    else:
        if setup is not None:
            fail("setup", type(setup).__name__, "None unless space='auto'")
        params = parse_space(space)
    if style == "optuna" and space is not None and strategy != "grid":
        fail(
            "space",
            space,
            "None for an Optuna-style objective(trial) (it suggests its own "
            "parameters), except with strategy='grid'",
        )
    return params, enqueue, range_test


def _grid_size(params: list[Param], per_decade: int) -> int:
    size = 1
    for p in params:
        if p.kind != "const":
            size *= len(grid_values(p, per_decade=per_decade))
    return size


def _storage_of(storage: object, *, workers: int, **heartbeat: Any) -> tuple[StorageSpec, Any]:
    """The storage's spec, and the Optuna storage object when the caller passed one."""
    optuna = require("optuna", "tune")
    if storage is None or not isinstance(storage, optuna.storages.BaseStorage):
        return resolve_storage(storage, workers=workers, **heartbeat), None
    if workers > 1:
        fail("storage", type(storage).__name__, "a path or URL when workers > 1")
    if isinstance(storage, optuna.storages.InMemoryStorage):
        return StorageSpec("memory", ""), storage
    return StorageSpec("custom", str(getattr(storage, "url", type(storage).__name__))), storage


def tune(
    objective: Callable[..., Any],
    *,
    space: Mapping[str, object] | str | None = None,
    n_trials: int | None = None,
    strategy: str = "tpe",
    early_stopping: str | None = None,
    storage: object = None,
    study_name: str | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    max_steps: int | None = None,
    setup: object = None,
    grid_per_decade: int = 3,
    heartbeat_interval: int = 10,
    grace_period: int | None = None,
    max_retry: int | None = 3,
    threads_per_worker: int | None = None,
    start_method: str = "spawn",
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> TuneResult:
    """Search the learning rate (and optionally more) to minimise ``objective``.

    Args:
        objective: ``objective(params, report) -> float`` where ``params`` is a dict drawn from
            ``space`` and ``report(step, value)`` feeds intermediate values (it raises Optuna's
            pruning signal when the trial should stop; a non-finite value counts as diverged
            and prunes the trial). An Optuna-style ``objective(trial) -> float`` also works
            (it suggests its own parameters; ``space`` then only feeds the grid strategy).
        space: None (the learning rate ``"lr"``, log-uniform over 1e-6..1), ``"auto"`` (run
            the range test on ``setup`` first and search around its suggestion, which is tried
            first), or a declarative mapping, e.g. ``{"lr": ("log", 1e-5, 1e-1),
            "warmup": ("float", 0.0, 0.1), "schedule": ["cosine(1000)", "constant()"],
            "batch_size": [32, 64, 128]}`` (see :mod:`lrkit.tuning._space`).
        n_trials: the study total of finished trials to reach (default: the grid's size for
            ``strategy="grid"``, else 20). Workers on several machines share it.
        strategy: "grid", "random", "qmc" (scrambled Sobol), "tpe" or "gp".
        early_stopping: None, "median", "asha" (asynchronous successive halving) or
            "hyperband"; they prune on the values passed to ``report``.
        storage: None (an SQLite file ``lrkit-tune.db``; a journal file for ``workers > 1``),
            a path (``.db`` SQLite, ``.journal`` journal file), a URL (``sqlite:///...``,
            ``postgresql://user:pw@host/db`` with heartbeats for many machines, or the same
            as a libpq string ``"host=db user=u password=pw dbname=hpo"``) or ``":memory:"``.
            Passwords are masked everywhere lrkit shows the storage. A journal file cut by a
            full disk or a kill is repaired before the next write; a storage that cannot be
            written ends the run with a :class:`StorageError` naming it (the study resumes).
        study_name: the study to create or resume (default: derived from the objective's name,
            the space and the strategy, so re-running the same search resumes it).
        seed: makes a one-worker search reproducible.
        timeout: stop starting new trials after this many seconds.
        workers: local workers (each opens the storage itself): this process and
            ``workers - 1`` new processes (``start_method``, default "spawn"), so the
            objective must be importable by name (a module-level function). The new processes
            share one process group and end with this process, however it ends; SIGTERM here
            stops them and raises ``Terminated`` (a KeyboardInterrupt) after queueing the
            interrupted trial again.
        max_steps: the steps of a full trial, if known (sizes the early-stopping rungs).
        setup: a :class:`lrkit.Setup` or a built-in task, for ``space="auto"``.
        grid_per_decade: grid points per decade of a log range (strategy "grid").
        heartbeat_interval, grace_period, max_retry: for database servers: a trial whose
            worker sent no heartbeat for ``grace_period`` seconds (default twice the interval)
            is failed and queued again, at most ``max_retry`` times.
        threads_per_worker: torch threads in each worker process (default: cores // workers).
        on_trial: called with each finished trial's record (in this process; with
            ``workers > 1`` the other workers' trials are reported when this process's
            current trial ends).

    Returns:
        The :class:`TuneResult` of the whole study (all its trials, including earlier runs).

    Example:
        >>> import math
        >>> def objective(params, report):
        ...     return (math.log10(params["lr"]) + 3) ** 2   # best at lr = 1e-3
        >>> result = tune(objective, n_trials=12, strategy="grid", storage=":memory:")
        >>> result.best_params
        {'lr': 0.001}
    """
    optuna = require("optuna", "tune")
    style = _objective_style(objective)
    strategy = check_choice("strategy", strategy, STRATEGIES)
    stopping = "none" if early_stopping is None else early_stopping
    if stopping not in EARLY_STOPPING:
        fail(
            "early_stopping",
            early_stopping,
            "None or one of " + ", ".join(repr(e) for e in EARLY_STOPPING[1:]),
        )
    workers = check_int("workers", workers, minimum=1)
    grid_per_decade = check_int("grid_per_decade", grid_per_decade, minimum=1)
    heartbeat_interval = check_int("heartbeat_interval", heartbeat_interval, minimum=1)
    if grace_period is not None:
        grace_period = check_int("grace_period", grace_period, minimum=1)
    if max_retry is not None:
        max_retry = check_int("max_retry", max_retry, minimum=0)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if timeout is not None:
        timeout = check_real("timeout", timeout, minimum=0.0, min_inclusive=False)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, minimum=1)
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        fail("study_name", study_name, "a non-empty string")
    start_method = check_choice("start_method", start_method, ("spawn", "forkserver", "fork"))

    params, enqueue, range_test = _search_space(space, setup, seed, style, strategy)
    if n_trials is None:
        n_trials = _grid_size(params, grid_per_decade) if strategy == "grid" else 20
    n_trials = check_int("n_trials", n_trials, minimum=1)
    spec, given_storage = _storage_of(
        storage,
        workers=workers,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        max_retry=max_retry,
    )
    name = study_name.strip() if study_name else _default_study_name(objective, params, strategy)
    wrapped = _Objective(objective, style, params)
    config = WorkerConfig(
        objective=wrapped,
        strategy=strategy,
        early_stopping=stopping,
        storage=spec,
        study_name=name,
        n_trials=n_trials,
        seed=seed,
        timeout=timeout,
        max_steps=max_steps,
        grid_per_decade=grid_per_decade,
        enqueue=enqueue,
    )
    logger.info(
        "tuning study %r in %s: %d trials, strategy %s, early stopping %s, %d worker(s)",
        name,
        spec.display,
        n_trials,
        strategy,
        stopping,
        workers,
    )
    with _opened(spec, given_storage) as opened, sigterm_raises():
        if workers == 1:
            run_worker(config, opened, on_trial)
        else:
            run_workers(config, opened, workers, threads_per_worker, start_method, on_trial)
        study = optuna.load_study(study_name=name, storage=opened)
        if range_test is not None:  # kept with the study, so that --show can print it
            study.set_user_attr("lrkit_range_test", range_test)
        return _result(study, spec, config)


def _result(study: Any, spec: StorageSpec, config: WorkerConfig | None) -> TuneResult:
    records = records_from_trials(study.get_trials(deepcopy=False))
    done = [r for r in records if r.state == "complete" and r.value is not None]
    best = min(done, key=lambda r: (r.value, r.number)) if done else None
    return TuneResult(
        best_params=dict(best.params) if best else {},
        best_value=best.value if best else None,
        best_number=best.number if best else None,
        trials=records,
        study_name=study.study_name,
        storage=spec.display,
        strategy=config.strategy if config else None,
        early_stopping=config.early_stopping if config else None,
        space=space_to_dict(config.objective.space) if config else {},
        n_trials=config.n_trials if config else None,
        range_test=study.user_attrs.get("lrkit_range_test"),
    )


def load_result(storage: object, study_name: str) -> TuneResult:
    """Read an existing study (``lrkit tune --show``) without running anything.

    Raises ValueError when the storage cannot be opened or holds no such study (the message
    lists the studies it does hold).
    """
    optuna = require("optuna", "tune")
    if not isinstance(study_name, str) or not study_name:
        fail("study_name", study_name, "a non-empty string")
    spec = resolve_storage(storage)
    if spec.kind == "memory":
        fail("storage", storage, "a persistent storage (a file or a database URL)")
    if spec.kind == "sqlite":
        database = spec.target.partition(":///")[2]
        if database and not os.path.exists(database):
            raise ValueError(f"storage {spec.display!r} does not exist")
    if spec.kind == "journal" and not os.path.exists(spec.target):
        raise ValueError(f"storage {spec.display!r} does not exist")
    with _opened(spec, None) as opened:
        names = [s.study_name for s in optuna.study.get_all_study_summaries(opened)]
        if study_name not in names:
            raise ValueError(
                f"study_name must name a study in {spec.display!r}, but got "
                f"study_name={study_name!r} (studies there: {', '.join(names) or 'none'})"
            )
        study = optuna.load_study(study_name=study_name, storage=opened)
        return _result(study, spec, None)
