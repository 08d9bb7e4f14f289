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
import inspect
import json
import logging
import math
import multiprocessing
import os
import pickle
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

from lrkit._optional import require
from lrkit._threads import torch_threads
from lrkit._validate import check_choice, check_int, check_real, fail
from lrkit.tuning._result import TrialRecord, TuneResult, records_from_trials
from lrkit.tuning._space import Param, default_space, grid_values, parse_space, space_to_dict
from lrkit.tuning._storage import (
    StorageSpec,
    close_storage,
    open_storage,
    resolve_storage,
    scrub,
)

__all__ = ["EARLY_STOPPING", "STRATEGIES", "Report", "auto_range", "load_result", "suggest", "tune"]

logger = logging.getLogger(__name__)

STRATEGIES = ("grid", "random", "qmc", "tpe", "gp")
EARLY_STOPPING = ("none", "median", "asha", "hyperband")

#: ``report(step, value)``: feed an intermediate value; raises the pruning signal to stop.
Report = Callable[[int, float], None]

_HOST = socket.gethostname()


class _BadObjectiveValue(ValueError):
    """The objective returned something that is not a finite number."""


# --------------------------------------------------------------------------------------------
# the objective wrapper (picklable: it travels to worker processes)


def _objective_style(objective: object) -> str:
    """ "lrkit" for ``objective(params, report)``, "optuna" for ``objective(trial)``."""
    if not callable(objective):
        fail("objective", objective, "a callable objective(params, report) or objective(trial)")
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):
        fail("objective", objective, "a callable with an inspectable signature")
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values())
    if len(required) == 2 or (len(required) < 2 and (len(positional) >= 2 or varargs)):
        return "lrkit"
    if len(required) == 1:
        return "optuna"
    fail(
        "objective",
        objective,
        f"a callable taking (params, report) or an Optuna trial, but its signature is {signature}",
    )


def _as_float(value: object) -> float:
    if isinstance(value, bool):
        raise _BadObjectiveValue(f"objective returned a bool ({value!r}), expected a number")
    if not isinstance(value, Real):
        item = getattr(value, "item", None)
        numel = getattr(value, "numel", None)
        size = numel() if callable(numel) else getattr(value, "size", 1)
        if callable(item) and size == 1:
            value = item()
        if isinstance(value, bool) or not isinstance(value, Real):
            raise _BadObjectiveValue(
                f"objective returned {type(value).__name__} {value!r:.60}, expected a number"
            )
    result = float(value)
    if not math.isfinite(result):
        raise _BadObjectiveValue(f"objective returned {result}, expected a finite number")
    return result


class _Reporter:
    """The ``report(step, value)`` handed to lrkit-style objectives."""

    def __init__(self, trial: Any) -> None:
        self._trial = trial
        self._last_step = -1

    def __call__(self, step: int, value: float) -> None:
        optuna = require("optuna", "tune")
        step = check_int("step", step, minimum=0)
        if isinstance(value, bool) or not isinstance(value, Real):
            try:
                value = _as_float(value)
            except _BadObjectiveValue:
                fail("value", value, "a number")
        number = float(value)
        if not math.isfinite(number):
            reason = f"diverged: reported {number} at step {step}"
            self._trial.set_user_attr("lrkit_reason", reason)
            # keep the step so the spent training is counted (the value itself is not finite)
            self._trial.set_user_attr("lrkit_steps", step)
            raise optuna.TrialPruned(reason)
        if step <= self._last_step:
            return  # Optuna keeps the first value of a step; later ones are ignored
        self._last_step = step
        self._trial.report(number, step)
        if self._trial.should_prune():
            reason = f"pruned at step {step} (value {number:.6g})"
            self._trial.set_user_attr("lrkit_reason", reason)
            raise optuna.TrialPruned(reason)


def suggest(trial: Any, space: Sequence[Param]) -> dict[str, Any]:
    """Draw one point of ``space`` through an Optuna trial (constants included)."""
    params: dict[str, Any] = {}
    for p in space:
        if p.kind == "log":
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=True)
        elif p.kind == "float":
            params[p.name] = trial.suggest_float(p.name, p.low, p.high)
        elif p.kind == "int":
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high))
        elif p.kind == "logint":
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=True)
        elif p.kind == "choice":
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        else:
            params[p.name] = p.choices[0]
    return params


@dataclass
class _Objective:
    func: Callable[..., Any]
    style: str
    space: list[Param]

    def __call__(self, trial: Any) -> float:
        optuna = require("optuna", "tune")
        trial.set_user_attr("lrkit_worker", f"{_HOST}:{os.getpid()}")
        constants = {p.name: p.choices[0] for p in self.space if p.kind == "const"}
        if constants:
            trial.set_user_attr("lrkit_constants", constants)
        try:
            if self.style == "optuna":
                raw = self.func(trial)
            else:
                raw = self.func(suggest(trial, self.space), _Reporter(trial))
            return _as_float(raw)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            if isinstance(exc, _BadObjectiveValue):
                reason = str(exc)
            else:
                reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("lrkit_reason", reason[:500])
            raise


# --------------------------------------------------------------------------------------------
# samplers and pruners


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


# --------------------------------------------------------------------------------------------
# counting and recovering trials


def _process_start(pid: int, stat: str) -> float | None:
    """Unix time at which process ``pid`` started (from its /proc stat line), if known."""
    try:
        ticks = int(stat.rpartition(")")[2].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):  # pragma: no cover
        return None


def _pid_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` still runs (and, given ``since``, is the process that was
    running at that Unix time, not a later one that reused the pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:  # pragma: no cover - no procfs (macOS)
        return True
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] == "Z":  # killed, but its parent has not reaped it yet
        return False
    started = _process_start(pid, stat)
    return since is None or started is None or started <= since + 1.0


def _progress(study: Any) -> tuple[int, int, int]:
    """(finished, running, waiting) trials; a trial that was queued again counts once."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {int(n) for t in trials for n in t.system_attrs.get("retry_history", [])}
    finished = running = waiting = 0
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            finished += 1
        elif t.state == TrialState.FAIL:
            finished += t.number not in retried
        elif t.state == TrialState.RUNNING:
            running += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
    return finished, running, waiting


def _reap_dead_local_workers(study: Any, max_retry: int | None) -> int:
    """Fail (and queue again) RUNNING trials whose worker process on this host is gone.

    This is the single-host counterpart of the RDB heartbeat: journal and SQLite storages have
    no heartbeat, but every lrkit trial records ``host:pid`` of its worker.
    """
    optuna = require("optuna", "tune")
    from optuna.trial import TrialState

    reaped = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("lrkit_worker", "")
        host, _, pid = str(worker).rpartition(":")
        since = trial.datetime_start.timestamp() if trial.datetime_start else None
        if host != _HOST or not pid.isdigit() or _pid_alive(int(pid), since):
            continue
        try:
            study._storage.set_trial_user_attr(
                trial._trial_id, "lrkit_reason", f"worker process {pid} died"
            )
            if not study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker reaped it first
        reaped += 1
        logger.warning("trial %d: worker process %s died; queueing it again", trial.number, pid)
        frozen = study._storage.get_trial(trial._trial_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, frozen)
    return reaped


def _fail_stale(study: Any, spec: StorageSpec) -> None:
    """Fail and queue again the trials of dead workers: by heartbeat on database servers (the
    same rule on every machine), by a dead pid on this host for the file storages."""
    optuna = require("optuna", "tune")
    if spec.kind == "memory":
        return
    if spec.heartbeat:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    else:
        _reap_dead_local_workers(study, spec.max_retry)


def _unresolved(study: Any, spec: StorageSpec) -> int:
    """RUNNING trials a finishing worker waits for: they end, or their worker is found dead
    (heartbeat, or a dead pid on this host) and they are queued again and re-run. Without a
    heartbeat, another host's trials cannot be judged, so they are not waited for."""
    from optuna.trial import TrialState

    if spec.kind == "memory":
        return 0
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get("lrkit_worker", ""))
        if not worker:
            continue  # not started by lrkit (no heartbeat or pid to judge it by)
        if spec.heartbeat or worker.rpartition(":")[0] == _HOST:
            count += 1
    return count


# --------------------------------------------------------------------------------------------
# the worker loop


@dataclass
class _WorkerConfig:
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


def _sampler_seed(config: _WorkerConfig) -> int | None:
    if config.seed is None:
        return None
    if config.strategy in ("grid", "qmc"):
        return config.seed  # every worker walks the same sequence; the study hands out points
    return config.seed + 7919 * config.worker_index  # distinct points per worker


def _open_study(config: _WorkerConfig, storage: Any) -> Any:
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
    except Exception as exc:
        raise ValueError(
            f"cannot open study {config.study_name!r} in {config.storage.display!r}: "
            f"{type(exc).__name__}: {scrub(str(exc), config.storage.target)}"
        ) from None
    if study.directions[0] != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError(
            f"study {config.study_name!r} in {config.storage.display!r} maximises; "
            "lrkit minimises the objective (choose another study name)"
        )
    for params in config.enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    return study


def _run_worker(
    config: _WorkerConfig,
    storage: Any,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> None:
    """Run trials until the study holds ``n_trials`` finished ones (or the timeout)."""
    study = _open_study(config, storage)

    def callback(study: Any, trial: Any) -> None:
        if on_trial is not None:
            on_trial(records_from_trials([trial])[0])

    with torch_threads(config.threads):
        _trial_loop(config, study, callback)


def _trial_loop(config: _WorkerConfig, study: Any, callback: Callable[[Any, Any], None]) -> None:
    """The body of :func:`_run_worker`: one trial at a time until nothing is left to run."""
    optuna = require("optuna", "tune")
    start = time.monotonic()
    grid = config.strategy == "grid"
    while True:
        if config.timeout is not None and time.monotonic() - start >= config.timeout:
            logger.info("timeout of %.0f s reached", config.timeout)
            break
        _fail_stale(study, config.storage)
        finished, running, waiting = _progress(study)
        if waiting == 0:
            exhausted = grid and study.sampler.is_exhausted(study)
            if finished + running >= config.n_trials or exhausted:
                # nothing left to start here: wait until the running trials (here or on other
                # workers) end, or until their worker is found dead and they are queued again
                if _unresolved(study, config.storage) == 0:
                    break
                time.sleep(config.poll_s)
                continue
        # a queued trial (a retry of a dead worker's trial, a seed) always runs, even when the
        # study already holds n_trials: every trial ends complete, pruned or failed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(
                config.objective,
                n_trials=1,
                catch=(Exception,),
                callbacks=[callback],
                gc_after_trial=False,
            )


def _worker_main(config: _WorkerConfig) -> None:
    """Entry point of a local worker process."""
    if config.threads is not None:  # for a torch imported later (_run_worker sets a loaded one)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(config.threads)
    logging.basicConfig(level=logging.WARNING)
    require("optuna", "tune").logging.set_verbosity(logging.WARNING)
    storage = open_storage(config.storage)
    try:
        _run_worker(config, storage)
    finally:
        close_storage(storage)
    if config.fast_exit:
        # the study is saved and the storage closed: skip the interpreter's teardown, which
        # takes a second or more with torch loaded (an error above still exits normally)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


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
            ``postgresql://user:pw@host/db`` with heartbeats for many machines) or
            ``":memory:"``. Passwords are masked everywhere lrkit shows the URL.
        study_name: the study to create or resume (default: derived from the objective's name,
            the space and the strategy, so re-running the same search resumes it).
        seed: makes a one-worker search reproducible.
        timeout: stop starting new trials after this many seconds.
        workers: local workers (each opens the storage itself): this process and
            ``workers - 1`` new processes (``start_method``, default "spawn"), so the
            objective must be importable by name (a module-level function).
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

    if n_trials is None:
        if strategy == "grid":
            size = 1
            for p in params:
                if p.kind != "const":
                    size *= len(grid_values(p, per_decade=grid_per_decade))
            n_trials = size
        else:
            n_trials = 20
    n_trials = check_int("n_trials", n_trials, minimum=1)

    given_storage = None
    if storage is not None and isinstance(storage, optuna.storages.BaseStorage):
        if workers > 1:
            fail("storage", type(storage).__name__, "a path or URL when workers > 1")
        given_storage = storage
        if isinstance(storage, optuna.storages.InMemoryStorage):
            spec = StorageSpec("memory", "")
        else:
            spec = StorageSpec("custom", str(getattr(storage, "url", type(storage).__name__)))
    else:
        spec = resolve_storage(
            storage,
            workers=workers,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_retry=max_retry,
        )
    name = study_name.strip() if study_name else _default_study_name(objective, params, strategy)
    wrapped = _Objective(objective, style, params)
    config = _WorkerConfig(
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
    with _opened(spec, given_storage) as opened:
        if workers == 1:
            _run_worker(config, opened, on_trial)
        else:
            _run_workers(config, opened, workers, threads_per_worker, start_method, on_trial)
        study = optuna.load_study(study_name=name, storage=opened)
        if range_test is not None:  # kept with the study, so that --show can print it
            study.set_user_attr("lrkit_range_test", range_test)
        return _result(study, spec, config)


def _run_workers(
    config: _WorkerConfig,
    storage: Any,
    workers: int,
    threads: int | None,
    start_method: str,
    on_trial: Callable[[TrialRecord], None] | None,
) -> None:
    optuna = require("optuna", "tune")
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    threads = check_int("threads_per_worker", threads, minimum=1)
    try:
        pickle.dumps(config.objective.func)
    except Exception as exc:
        raise ValueError(
            f"workers={workers} runs the objective in new processes, so it must be picklable "
            f"(a module-level function), but {config.objective.func!r} is not: {exc}"
        ) from None
    _open_study(config, storage)  # create the study (and queue seeds) once, before the workers
    study = optuna.load_study(study_name=config.study_name, storage=storage)
    # on_trial hears of the trials that finish during this call, as with one worker
    seen = {
        r.number
        for r in records_from_trials(study.get_trials(deepcopy=False))
        if r.state in ("complete", "pruned", "failed")
    }
    context = multiprocessing.get_context(start_method)
    processes = []
    # worker 0 is this process (it needs no start-up); the others are new processes
    for index in range(1, workers):
        worker_config = _WorkerConfig(
            **{
                **config.__dict__,
                "worker_index": index,
                "threads": threads,
                "enqueue": [],
                "fast_exit": True,
            }
        )
        process = context.Process(  # type: ignore[attr-defined]
            target=_worker_main, args=(worker_config,), daemon=False
        )
        process.start()
        processes.append(process)

    def report_finished(_record: TrialRecord | None = None) -> None:
        """on_trial for every trial finished since the last call, by any worker (called
        after each of this process's trials: its own is among them)."""
        if on_trial is None:
            return
        for record in records_from_trials(study.get_trials(deepcopy=False)):
            if record.state in ("complete", "pruned", "failed") and record.number not in seen:
                seen.add(record.number)
                on_trial(record)

    own = _WorkerConfig(**{**config.__dict__, "threads": threads, "enqueue": []})
    try:
        _run_worker(own, storage, report_finished)
        while any(p.is_alive() for p in processes):
            report_finished()
            time.sleep(0.25)
        report_finished()
    except BaseException:
        for p in processes:
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in processes:
            p.join(timeout=5)
    failed = [p.exitcode for p in processes if p.exitcode not in (0, None)]
    if not failed:
        return
    finished, _, _ = _progress(study)
    if finished >= config.n_trials:
        logger.warning(
            "%d of %d worker processes exited with an error (exit codes %s); this process "
            "ran the remaining trials",
            len(failed),
            workers - 1,
            failed,
        )
        return
    raise RuntimeError(
        f"{len(failed)} of {workers - 1} worker processes exited with an error "
        f"(exit codes {failed}); the study has {finished} of {config.n_trials} trials "
        "(their errors are printed above; a script that calls tune(workers > 1) needs "
        "its code under `if __name__ == '__main__':`, as worker processes import it)"
    )


def _result(study: Any, spec: StorageSpec, config: _WorkerConfig | None) -> TuneResult:
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
