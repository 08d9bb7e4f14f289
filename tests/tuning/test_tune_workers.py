"""Several worker processes on one study: PostgreSQL across "machines" (3 processes, one killed
mid-trial with SIGKILL) and journal files on one host."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import optuna
import pytest
from optuna.trial import TrialState

from lrkit.tuning import load_result, tune

WORKER = Path(__file__).with_name("tune_worker.py")


def _start(
    storage: str, study: str, n_trials: int, markers: Path, seed: int, wait_for: Path | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    args = [str(WORKER), storage, study, str(n_trials), str(markers), str(seed)]
    return subprocess.Popen(
        [sys.executable, *args, *([str(wait_for)] if wait_for else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _wait_for_second_trial(proc: subprocess.Popen[str], markers: Path, timeout: float) -> None:
    """Block until ``proc`` has started its second trial (so it finished one and is mid-trial)."""
    marker = markers / f"started-{proc.pid}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and len(marker.read_text()) >= 2:
            time.sleep(0.15)  # a step into the trial
            return
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    pytest.fail(f"worker {proc.pid} did not start a second trial within {timeout} s")


def _check_study(
    storage: object,
    lrkit_storage: str,
    study_name: str,
    n_trials: int,
    killed_pid: int,
    reason: str,
) -> None:
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    states = {t.state for t in trials}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL}, states

    killed = [t for t in trials if t.user_attrs.get("lrkit_worker", "").endswith(f":{killed_pid}")]
    finished_by_killed = [t for t in killed if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    failed_by_killed = [t for t in killed if t.state == TrialState.FAIL]
    # the trial it was running when killed failed, and was queued again and finished elsewhere
    assert len(failed_by_killed) == 1, [(t.number, t.state) for t in killed]
    lost = failed_by_killed[0]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retries) == 1
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].params == lost.params
    # the trial it finished before dying is still there
    assert finished_by_killed, "the killed worker's finished trial was lost"

    # every trial is accounted for: the study total counts the retry, not the killed attempt
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    assert retried == {lost.number}
    finished = [t for t in trials if t.number not in retried]
    assert len(finished) >= n_trials
    failed_other = [t for t in finished if t.state == TrialState.FAIL]
    assert failed_other == []

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    result = load_result(lrkit_storage, study_name)
    assert result.best_value == min(t.value for t in complete)
    assert result.best_params == min(complete, key=lambda t: t.value).params
    record = {r.number: r for r in result.trials}[lost.number]
    assert record.state == "failed" and record.retried
    assert record.reason is not None and reason in record.reason, record.reason


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_on_postgres_survive_a_sigkill(
    postgres_url: str, study_name: str, tmp_path: Path
) -> None:
    n_trials = 12
    procs = [_start(postgres_url, study_name, n_trials, tmp_path, 1)]
    first = tmp_path / f"started-{procs[0].pid}"  # the others start trials after its first one
    procs += [_start(postgres_url, study_name, n_trials, tmp_path, s, first) for s in (2, 3)]
    try:
        _wait_for_second_trial(procs[0], tmp_path, timeout=30)
        os.kill(procs[0].pid, signal.SIGKILL)
        outputs = [p.communicate(timeout=60)[0] for p in procs[1:]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs[1:], outputs, strict=True):
        assert p.returncode == 0, out
        password = urlsplit(postgres_url).password
        assert password and password not in out
        assert ":***@" in out  # the worker printed the masked storage URL
    assert procs[0].returncode == -signal.SIGKILL
    _check_study(
        postgres_url.replace("postgresql://", "postgresql+psycopg2://", 1),
        postgres_url,
        study_name,
        n_trials,
        procs[0].pid,
        reason="heartbeat",  # found by the missing heartbeat, not by its pid on this host
    )


@pytest.mark.slow
def test_journal_workers_recover_a_killed_local_worker(study_name: str, tmp_path: Path) -> None:
    """Journal storage has no heartbeat: lrkit notices the dead pid on this host instead."""
    n_trials = 8
    storage = str(tmp_path / "study.journal")
    procs = [_start(storage, study_name, n_trials, tmp_path, 1)]
    procs.append(
        _start(storage, study_name, n_trials, tmp_path, 2, tmp_path / f"started-{procs[0].pid}")
    )
    try:
        _wait_for_second_trial(procs[0], tmp_path, timeout=30)
        os.kill(procs[0].pid, signal.SIGKILL)
        out = procs[1].communicate(timeout=60)[0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert procs[1].returncode == 0, out
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    _check_study(journal, storage, study_name, n_trials, procs[0].pid, reason="died")


def objective_sleepy(params: dict[str, float], report: object) -> float:
    """Module level, so ``workers=2`` can run it in a spawned process."""
    time.sleep(0.25)
    return (math.log10(params["lr"]) + 2.0) ** 2


def objective_both_workers(params: dict[str, float], report: object) -> float:
    """Module level, for ``workers=2``. In the calling process (pid in LRKIT_TEST_PARENT) a trial
    first waits until the other worker has started one (it touches LRKIT_TEST_MARKER), so both
    workers run trials however slowly the new process starts on a busy machine."""
    marker = Path(os.environ["LRKIT_TEST_MARKER"])
    if os.getpid() == int(os.environ["LRKIT_TEST_PARENT"]):
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        marker.touch()
    time.sleep(0.05)
    return (math.log10(params["lr"]) + 2.0) ** 2


@pytest.mark.slow
def test_workers_2_share_one_journal_study(
    study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = str(tmp_path / "w.journal")
    monkeypatch.setenv("LRKIT_TEST_MARKER", str(tmp_path / "child-started"))
    monkeypatch.setenv("LRKIT_TEST_PARENT", str(os.getpid()))
    seen: list[int] = []
    result = tune(
        objective_both_workers,
        n_trials=10,
        strategy="random",
        seed=0,
        storage=storage,
        study_name=study_name,
        workers=2,
        on_trial=lambda r: seen.append(r.number),
    )
    study = optuna.load_study(
        study_name=study_name,
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage)),
    )
    pids = {t.user_attrs["lrkit_worker"] for t in study.trials}
    assert len(pids) == 2, pids  # both workers ran trials: this process and a new one
    assert os.getpid() in {int(p.rpartition(":")[2]) for p in pids}
    assert result.counts["complete"] >= 10
    assert sorted(seen) == sorted(t.number for t in result.trials)
    best = min(t.value for t in result.trials if t.value is not None)
    assert result.best_value == best
    # re-running the finished study resumes it: nothing new runs
    again = tune(
        objective_sleepy, n_trials=10, strategy="random", storage=storage, study_name=study_name
    )
    assert len(again.trials) == len(result.trials)
    # a larger total runs only the missing trials, and on_trial hears of those only
    later: list[int] = []
    more = tune(
        objective_sleepy,
        n_trials=len(result.trials) + 2,
        strategy="random",
        storage=storage,
        study_name=study_name,
        workers=2,
        on_trial=lambda r: later.append(r.number),
    )
    new = sorted(t.number for t in more.trials if t.number not in set(seen))
    assert len(new) >= 2 and sorted(later) == new


def test_workers_need_a_picklable_objective(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="picklable"):
        tune(lambda p, r: 0.0, n_trials=2, storage=str(tmp_path / "x.journal"), workers=2)


def test_workers_refuse_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not safe for 2 concurrent"):
        tune(objective_sleepy, n_trials=2, storage=str(tmp_path / "x.db"), workers=2)


def test_a_worker_trains_with_its_thread_count_and_restores_it() -> None:
    import torch

    from lrkit.tuning._space import parse_space
    from lrkit.tuning._storage import StorageSpec
    from lrkit.tuning._tune import _Objective, _objective_style, _run_worker, _WorkerConfig  # noqa: F401

    def threads_seen(params: dict[str, float], report: object) -> float:
        return float(torch.get_num_threads())

    original = torch.get_num_threads()
    torch.set_num_threads(2)  # so that a worker at 1 thread is visible
    config = _WorkerConfig(
        objective=_Objective(threads_seen, _objective_style(threads_seen), parse_space(None)),
        strategy="random",
        early_stopping="none",
        storage=StorageSpec("memory", ""),
        study_name="threads",
        n_trials=2,
        seed=0,
        timeout=None,
        max_steps=None,
        grid_per_decade=3,
        threads=1,
    )
    storage = optuna.storages.InMemoryStorage()
    try:
        _run_worker(config, storage)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(original)
    values = [t.value for t in optuna.load_study(study_name="threads", storage=storage).trials]
    assert values == [1.0, 1.0]
    assert after == 2


def test_a_signal_inside_optunas_bookkeeping_still_ends_tune_as_the_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM landing in Optuna's end-of-trial ``finally`` surfaces as an UnboundLocalError
    there; tune must still end with the signal (Terminated), not that error."""
    from lrkit.tuning import _worker
    from lrkit.tuning._workers import Terminated

    def interrupted_bookkeeping(*args: object, **kwargs: object) -> None:
        try:
            raise Terminated(15)
        finally:
            raise UnboundLocalError("cannot access local variable 'updated_state'")

    monkeypatch.setattr(_worker, "_trial_loop", interrupted_bookkeeping)
    with pytest.raises(Terminated):
        tune(
            lambda params, report: params["lr"],
            space={"lr": ("log", 1e-4, 1e-1)},
            n_trials=2,
            seed=0,
        )
