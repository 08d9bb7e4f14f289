"""Local worker processes: started together, in one process group of their own, and never left
behind.

``tune(workers=N)`` runs trials in this process and in ``N - 1`` new ones. Whatever ends this
process, its workers end too:

- **an exception, Ctrl-C or SIGTERM here**: the workers' process group (the workers and any
  process they started, e.g. DataLoader workers) gets SIGTERM, then SIGKILL after a grace
  period. While workers run, SIGTERM is turned into :class:`Terminated` (a KeyboardInterrupt) in
  this process, so that this cleanup runs and the interrupted trial is queued again;
- **SIGKILL here** (or any death that runs no cleanup): every worker watches this process
  (multiprocessing's parent sentinel, a pipe that closes when it dies) and ends its process
  group at once. multiprocessing's resource tracker then sees its last user go and exits.

The workers' group is apart from the terminal's foreground group, so a Ctrl-C reaches this
process only, which stops the workers in order. Trials left RUNNING by a killed worker are
found dead and queued again (:mod:`lrkit.tuning._recovery`), so the study stays resumable.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from lrkit._optional import require
from lrkit._validate import check_int
from lrkit.tuning._recovery import progress
from lrkit.tuning._result import TrialRecord, records_from_trials
from lrkit.tuning._storage import close_storage, open_storage
from lrkit.tuning._study import WorkerConfig, open_study
from lrkit.tuning._worker import run_worker

__all__ = ["Terminated", "run_workers", "sigterm_raises"]

logger = logging.getLogger(__name__)

#: seconds the workers get to exit after SIGTERM before they are killed
GRACE_S = 3.0


class Terminated(KeyboardInterrupt):
    """SIGTERM reached ``tune`` while it ran: raised in the main thread so that cleanup runs
    (workers stopped, the interrupted trial queued again). The CLI exits with 128 + ``signum``.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (once: a second
    SIGTERM kills at once). Nothing changes off the main thread or when the program installed
    its own SIGTERM handler."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# --------------------------------------------------------------------------------------------
# in the worker process


def _join_group(leader: int | None) -> bool:
    """Join the workers' process group (the first worker founds it). True when this process
    is in a group of tune's workers (not its parent's)."""
    if not hasattr(os, "setpgid"):  # pragma: no cover - Windows
        return False
    deadline = time.monotonic() + 5.0
    while True:
        try:
            os.setpgid(0, leader or 0)
            return True
        except OSError:
            # the leader has not founded the group yet, or is gone: wait a little, else found
            # a group of this worker's own
            if leader is None or time.monotonic() > deadline:
                try:
                    os.setpgid(0, 0)
                    return True
                except OSError:  # pragma: no cover - e.g. a session leader
                    return False
            time.sleep(0.01)


def _watch_parent(own_group: bool) -> None:
    """End this worker (and its group) as soon as the process that started it dies."""
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - not started by multiprocessing
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        # the parent is gone (its end of the pipe closed): nothing will collect this worker's
        # results or stop it; its trial stays RUNNING and is queued again by the next run
        if own_group:
            with contextlib.suppress(OSError):
                os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    threading.Thread(target=watch, name="lrkit-parent-watch", daemon=True).start()


def worker_main(config: WorkerConfig, leader: int | None = None) -> None:
    """Entry point of a local worker process."""
    own_group = _join_group(leader)
    _watch_parent(own_group)
    if config.threads is not None:  # for a torch imported later (run_worker sets a loaded one)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(config.threads)
    logging.basicConfig(level=logging.WARNING)
    require("optuna", "tune").logging.set_verbosity(logging.WARNING)
    storage = open_storage(config.storage)
    try:
        run_worker(config, storage)
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
# in the main process


def _groups(processes: list[Any]) -> tuple[set[int], list[Any]]:
    """The workers' process groups (never this process's own), and the workers outside one."""
    mine = os.getpgrp() if hasattr(os, "getpgrp") else None
    groups: set[int] = set()
    alone = []
    for p in processes:
        try:
            group = os.getpgid(p.pid) if hasattr(os, "getpgid") else None
        except OSError:  # already gone (a zombie keeps its group until it is reaped)
            continue
        if group is None or group == mine:
            alone.append(p)
        else:
            groups.add(group)
    return groups, alone


def _signal_all(groups: set[int], alone: list[Any], signum: int) -> None:
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signum)
    for p in alone:
        if p.is_alive():
            with contextlib.suppress(OSError):
                os.kill(p.pid, signum)


def stop_workers(processes: list[Any]) -> None:
    """SIGTERM to the workers' group, SIGKILL to what is left of it after :data:`GRACE_S`."""
    if not any(p.is_alive() for p in processes):
        return
    # the groups are read once, while their workers live: a reaped worker has no group to read,
    # but a process it started may still be in it
    groups, alone = _groups(processes)
    _signal_all(groups, alone, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.02)
    _signal_all(groups, alone, getattr(signal, "SIGKILL", signal.SIGTERM))


def run_workers(
    config: WorkerConfig,
    storage: Any,
    workers: int,
    threads: int | None,
    start_method: str,
    on_trial: Callable[[TrialRecord], None] | None,
) -> None:
    """Run the study on this process and ``workers - 1`` new ones until it is finished."""
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
    open_study(config, storage)  # create the study (and queue seeds) once, before the workers
    study = optuna.load_study(study_name=config.study_name, storage=storage)
    # on_trial hears of the trials that finish during this call, as with one worker
    seen = {
        r.number
        for r in records_from_trials(study.get_trials(deepcopy=False))
        if r.state in ("complete", "pruned", "failed")
    }

    def report_finished(_record: TrialRecord | None = None) -> None:
        """on_trial for every trial finished since the last call, by any worker (called
        after each of this process's trials: its own is among them)."""
        if on_trial is None:
            return
        for record in records_from_trials(study.get_trials(deepcopy=False)):
            if record.state in ("complete", "pruned", "failed") and record.number not in seen:
                seen.add(record.number)
                on_trial(record)

    context = multiprocessing.get_context(start_method)
    processes: list[Any] = []
    try:
        # worker 0 is this process (it needs no start-up); the others are new processes, in
        # one process group founded by the first of them
        leader: int | None = None
        for index in range(1, workers):
            worker_config = WorkerConfig(
                **{
                    **config.__dict__,
                    "worker_index": index,
                    "threads": threads,
                    "enqueue": [],
                    "fast_exit": True,
                }
            )
            process = context.Process(  # type: ignore[attr-defined]
                target=worker_main, args=(worker_config, leader), daemon=False
            )
            process.start()
            processes.append(process)
            leader = leader or process.pid
        own = WorkerConfig(**{**config.__dict__, "threads": threads, "enqueue": []})
        run_worker(own, storage, report_finished)
        while any(p.is_alive() for p in processes):
            report_finished()
            time.sleep(0.25)
        report_finished()
    except BaseException:
        stop_workers(processes)
        raise
    finally:
        for p in processes:
            p.join(timeout=GRACE_S)
    failed = [p.exitcode for p in processes if p.exitcode not in (0, None)]
    if not failed:
        return
    finished, _, _ = progress(study)
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
