"""Dead-worker recovery: trials whose worker died are failed and queued again, through Optuna's
public API (``study.tell``, ``optuna.storages.fail_stale_trials``, the retry callback).

A worker can die anywhere: killed (SIGKILL, the OOM killer), its machine gone, its process
ended by a full disk. Its RUNNING trials are found dead

- by heartbeat on database servers (the same rule on every machine), or
- on this host, for the file storages (no heartbeat), by the ``host:pid`` every lrkit trial
  records: the process is gone (psutil; a pid reused by a later process does not count), or it
  is this very process and no longer evaluating that trial (an earlier ``tune`` call in it
  stopped on an error).

Each is failed, and queued again at most ``max_retry`` times (its retry runs the same params).
"""

from __future__ import annotations

import copy
import logging
import os
import time
import warnings
from typing import Any

from lrkit._optional import require
from lrkit.tuning._objective import HOST, running_here, untagged_here, worker_id
from lrkit.tuning._storage import StorageSpec

__all__ = ["fail_stale", "process_alive", "progress", "requeue_interrupted", "unresolved"]

logger = logging.getLogger(__name__)

#: seconds after which a RUNNING trial with no worker id, on a file storage, is judged dead
UNTAGGED_GRACE_S = 60.0

# user attributes that describe one attempt, not the trial: a retry starts without them
_ATTEMPT_ATTRS = ("lrkit_reason", "lrkit_interrupted", "lrkit_steps", "lrkit_worker")


def process_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` runs (not a zombie) and, given ``since`` (a Unix time), is the
    process that was running then, not a later one that reused the pid."""
    psutil = require("psutil", "tune")
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # killed, its parent has not reaped it
            return False
        started = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # pragma: no cover - someone else's process: it exists
        return True
    return since is None or started <= since + 1.0


def _worker_dead(trial: Any, study_name: str, spec: StorageSpec) -> bool:
    """A RUNNING trial's worker is known dead (only judged for workers on this host)."""
    worker = trial.user_attrs.get("lrkit_worker")
    if worker is None:
        # lrkit tags a trial first thing: an untagged one lost its worker within that write
        # (a full disk, a kill). This process knows its own; on a file storage any other is
        # judged dead once it is older than UNTAGGED_GRACE_S (a live worker tags in ms)
        if untagged_here(study_name, trial.number):
            return not running_here(study_name, trial.number)
        started = trial.datetime_start.timestamp() if trial.datetime_start else None
        return spec.kind in ("journal", "sqlite") and (
            started is not None and time.time() - started > UNTAGGED_GRACE_S
        )
    host, _, pid = str(worker).rpartition(":")
    if host != HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return not running_here(study_name, trial.number)
    since = trial.datetime_start.timestamp() if trial.datetime_start else None
    return not process_alive(int(pid), since)


def _neutral_study(study: Any, storage: Any) -> Any:
    """The same study under a sampler with no ``after_trial`` side effects: telling a dead
    worker's trial must not make a grid sampler stop a search that is not running here."""
    optuna = require("optuna", "tune")
    return optuna.load_study(
        study_name=study.study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
    )


def _retry(study: Any, frozen: Any, max_retry: int | None) -> None:
    """Queue ``frozen`` again (Optuna's retry callback), without its attempt's own attributes."""
    optuna = require("optuna", "tune")
    clean = copy.copy(frozen)
    clean.user_attrs = {k: v for k, v in frozen.user_attrs.items() if k not in _ATTEMPT_ATTRS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, clean)


def _reap_dead_local_workers(study: Any, storage: Any, spec: StorageSpec) -> int:
    """Fail (and queue again) the RUNNING trials whose worker on this host is dead."""
    optuna = require("optuna", "tune")
    from optuna.trial import TrialState

    dead = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _worker_dead(t, study.study_name, spec)
    ]
    if not dead:
        return 0
    neutral = _neutral_study(study, storage)
    reaped = 0
    for trial in dead:
        try:
            neutral.tell(trial.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            continue  # another worker reaped it first (or it ended meanwhile)
        reaped += 1
        worker = trial.user_attrs.get("lrkit_worker")
        logger.warning("trial %d: its worker %s died; queueing it again", trial.number, worker)
        _retry(neutral, trial, spec.max_retry)
    return reaped


def fail_stale(study: Any, storage: Any, spec: StorageSpec) -> None:
    """Fail and queue again the trials of dead workers: by heartbeat on database servers, by a
    dead process on this host for the file storages."""
    optuna = require("optuna", "tune")
    if spec.kind == "memory":
        return
    if spec.heartbeat:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    else:
        _reap_dead_local_workers(study, storage, spec)


def requeue_interrupted(study: Any, storage: Any, spec: StorageSpec) -> None:
    """After Ctrl-C or SIGTERM: queue again the trial this process was running (Optuna failed
    it, or left it RUNNING), so that the next run evaluates it (best effort: the rerun's
    dead-worker recovery catches what this misses)."""
    from optuna.trial import TrialState

    me = worker_id()
    neutral = None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL, TrialState.RUNNING)):
        mine = trial.user_attrs.get("lrkit_worker") == me or untagged_here(
            study.study_name, trial.number
        )
        if not mine or running_here(study.study_name, trial.number):
            continue
        if trial.state == TrialState.FAIL and not trial.user_attrs.get("lrkit_interrupted"):
            continue
        if any(t.system_attrs.get("failed_trial") == trial.number for t in study.trials):
            continue  # already queued again
        neutral = neutral or _neutral_study(study, storage)
        if trial.state == TrialState.RUNNING:
            neutral.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        _retry(neutral, trial, spec.max_retry)
        logger.info("trial %d was interrupted; it is queued for the next run", trial.number)


def progress(study: Any) -> tuple[int, int, int]:
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


def unresolved(study: Any, spec: StorageSpec) -> int:
    """RUNNING trials a finishing worker waits for: they end, or their worker is found dead
    (heartbeat, or a dead process on this host) and they are queued again and re-run. Without a
    heartbeat, another host's trials cannot be judged, so they are not waited for."""
    from optuna.trial import TrialState

    if spec.kind == "memory":
        return 0
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get("lrkit_worker", ""))
        if not worker:
            if untagged_here(study.study_name, trial.number):
                count += 1  # this process's own: it is failed and queued again
            continue  # no heartbeat or pid to judge it by
        if spec.heartbeat or worker.rpartition(":")[0] == HOST:
            count += 1
    return count
