"""One worker's loop: run trials until the study holds ``n_trials`` finished ones, recovering
dead workers' trials on the way; a storage failure ends it with one line naming the storage."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from lrkit._optional import require
from lrkit._threads import torch_threads
from lrkit.tuning._errors import StorageError, StorageFailed
from lrkit.tuning._recovery import fail_stale, progress, requeue_interrupted, unresolved
from lrkit.tuning._result import TrialRecord, records_from_trials
from lrkit.tuning._storage import StorageSpec, storage_error
from lrkit.tuning._study import WorkerConfig, open_study

__all__ = ["run_worker"]

logger = logging.getLogger(__name__)


def run_worker(
    config: WorkerConfig,
    storage: Any,
    on_trial: Callable[[TrialRecord], None] | None = None,
) -> None:
    """Run trials until the study holds ``n_trials`` finished ones (or the timeout)."""
    study = open_study(config, storage)

    def callback(study: Any, trial: Any) -> None:
        if on_trial is not None:
            on_trial(records_from_trials([trial])[0])

    with torch_threads(config.threads):
        try:
            _trial_loop(config, study, storage, callback)
        except BaseException as exc:
            interrupt = _interrupt(exc)
            if interrupt is not None:
                # Ctrl-C or SIGTERM: the trial this process ran is queued again for the next
                # run. A signal that lands inside Optuna's end-of-trial bookkeeping can surface
                # as another error (an UnboundLocalError in its ``finally``); the signal wins.
                try:
                    requeue_interrupted(study, storage, config.storage)
                except Exception as error:  # noqa: BLE001 - the rerun's recovery catches it
                    logger.debug("could not queue the interrupted trial again: %s", error)
                if interrupt is exc:
                    raise
                raise interrupt from None
            if isinstance(exc, StorageFailed):
                raise exc.error from None
            if not isinstance(exc, Exception):
                raise
            failure = _storage_failure(exc, config.storage)
            if failure is None:
                raise
            raise failure from None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it (``__cause__``, else ``__context__``), once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C / SIGTERM (a ``KeyboardInterrupt``) behind ``exc``, if any."""
    return next((e for e in _chain(exc) if isinstance(e, KeyboardInterrupt)), None)


def _storage_failure(exc: BaseException, spec: StorageSpec) -> StorageError | None:
    """The storage failure behind ``exc``, if any, as one line naming the storage.

    Optuna hides a failed write at the end of a trial behind ``AssertionError: Should not
    reach.``; the write's own error is in the exception's context chain.
    """
    for error in _chain(exc):
        if isinstance(error, StorageError):
            return error
        if type(error).__module__.split(".")[0] == "sqlalchemy":
            return storage_error("cannot write to", spec, error)
    return None


def _trial_loop(
    config: WorkerConfig, study: Any, storage: Any, callback: Callable[[Any, Any], None]
) -> None:
    """One trial at a time until nothing is left to run."""
    optuna = require("optuna", "tune")
    start = time.monotonic()
    grid = config.strategy == "grid"
    while True:
        if config.timeout is not None and time.monotonic() - start >= config.timeout:
            logger.info("timeout of %.0f s reached", config.timeout)
            break
        fail_stale(study, storage, config.storage)
        finished, running, waiting = progress(study)
        if waiting == 0:
            exhausted = grid and study.sampler.is_exhausted(study)
            if finished + running >= config.n_trials or exhausted:
                # nothing left to start here: wait until the running trials (here or on other
                # workers) end, or until their worker is found dead and they are queued again
                if unresolved(study, config.storage) == 0:
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
