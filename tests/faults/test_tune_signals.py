"""SIGKILL and SIGTERM to ``lrkit tune --workers 2`` and to its worker, at random moments (seeded),
then a rerun of the same command.

Invariants: no process of the run survives it (workers, their children, multiprocessing's
resource tracker); no trial complete before the fault is lost or changed; the rerun finishes the
study with every trial complete, pruned or failed; the journal holds only whole records; SIGTERM
exits with one line and status 143.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from _proc import CLI, TALLY, Descendants, journal_decodes, one_line, start, wait_for

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lrkit[tune]')")

from lrkit.cli import main  # noqa: E402

pytestmark = pytest.mark.faults

N_TRIALS = 12

# every trial marks its start (pid), then reports four steps; in the main process a trial first
# waits until the new worker process has started one, so that both work when the fault comes
OBJECTIVES = """
import math, multiprocessing, os, time
from pathlib import Path

def objective(params, report):
    Path("markers", f"{os.getpid()}-{time.monotonic_ns()}").touch()
    deadline = time.monotonic() + 120
    while multiprocessing.parent_process() is None and time.monotonic() < deadline:
        if any(not p.name.startswith(str(os.getpid())) for p in Path("markers").iterdir()):
            break
        time.sleep(0.02)
    x = math.log10(params["lr"]) + 3
    for step in range(1, 5):
        time.sleep(0.1)
        report(step, x * x + 1 / step)
    return x * x
"""


@pytest.fixture()
def study_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    (tmp_path / "markers").mkdir()
    monkeypatch.chdir(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return tmp_path


def _argv(workers: int) -> list[str]:
    return [
        "tune",
        "objectives.py:objective",
        "--trials",
        str(N_TRIALS),
        "--strategy",
        "random",
        "--workers",
        str(workers),
        "--storage",
        "study.journal",
        "--study",
        "s",
    ]


def _trials(directory: Path) -> list[Any]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(directory / "study.journal"))
    )
    try:
        return list(optuna.load_study(study_name="s", storage=storage).get_trials())
    except KeyError:  # killed before the study was created
        return []


def _complete(trials: list[Any]) -> dict[int, tuple[dict[str, Any], float]]:
    return {t.number: (t.params, t.value) for t in trials if t.state.name == "COMPLETE"}


def _markers(directory: Path, not_pid: int | None = None) -> list[int]:
    pids = [int(p.name.partition("-")[0]) for p in (directory / "markers").iterdir()]
    return [p for p in pids if p != not_pid]


def _rerun_finishes(directory: Path, before: dict[int, tuple[dict[str, Any], float]]) -> None:
    """The same command again (here, one worker): it finishes the study, loses nothing."""
    assert main(_argv(workers=1)) == 0
    trials = _trials(directory)
    after = _complete(trials)
    TALLY.check(all(after.get(n) == v for n, v in before.items()), "a complete trial was lost")
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
    TALLY.check(len(finished) == len(trials), [t.state for t in trials])  # none left running
    TALLY.check(len([t for t in finished if t.number not in retried]) >= N_TRIALS)
    TALLY.check(all(t.state.name != "FAIL" or t.number in retried for t in trials))
    TALLY.check(journal_decodes(directory / "study.journal") > 0)
    leftovers = {p.name for p in directory.iterdir()} - {
        "objectives.py",
        "markers",
        "study.journal",
        "__pycache__",
    }
    TALLY.check(not leftovers, f"files left behind: {leftovers}")


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_main_process_killed_leaves_no_process_and_a_resumable_study(
    study_dir: Path, signum: int, seed: int
) -> None:
    TALLY.case()
    proc = start([*CLI, *_argv(workers=2)], cwd=study_dir)
    family = Descendants(proc.pid)
    try:
        # the new worker process is running trials: a random moment of the work of both
        wait_for(lambda: bool(_markers(study_dir, proc.pid)), 120, "the worker's first trial")
        _kill_after(proc.pid, signum, random.Random(seed).uniform(0.0, 0.5))
        # the moment the process ends (not when its output pipes close: a surviving worker
        # holds them), whatever it started must end too
        proc.wait(timeout=60)
        survivors = family.survivors(timeout=10)
        _, err = proc.communicate(timeout=60)
    finally:
        family.kill()
        proc.wait()
    TALLY.check(survivors == [], f"processes of the killed run survived it: {survivors}")
    TALLY.check(len(family.seen) >= 2)  # the worker and the resource tracker were followed
    if proc.returncode == 0:
        pytest.skip("the study finished before the signal (machine too fast for this seed)")
    if signum == signal.SIGTERM:
        TALLY.check(proc.returncode == 128 + signal.SIGTERM, (proc.returncode, err))
        TALLY.check(one_line(err).startswith("lrkit: terminated (SIGTERM)"), err)
    else:
        TALLY.check(proc.returncode == -signal.SIGKILL)
    before = _complete(_trials(study_dir))
    _rerun_finishes(study_dir, before)


def _kill_after(pid: int, signum: int, delay: float) -> None:
    time.sleep(delay)
    os.kill(pid, signum)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_worker_is_recovered_in_the_same_run(study_dir: Path, signum: int) -> None:
    TALLY.case()
    proc = start([*CLI, *_argv(workers=2)], cwd=study_dir)
    family = Descendants(proc.pid)
    try:
        wait_for(lambda: bool(_markers(study_dir, proc.pid)), 120, "the worker's first trial")
        worker = _markers(study_dir, proc.pid)[0]
        _kill_after(worker, signum, random.Random(signum).uniform(0.0, 0.15))
        _, err = proc.communicate(timeout=120)
        survivors = family.survivors(timeout=10)
    finally:
        family.kill()
        proc.wait()
    TALLY.check(proc.returncode == 0, err)
    TALLY.check(survivors == [], f"processes of the run survived it: {survivors}")
    trials = _trials(study_dir)
    by_worker = [t for t in trials if t.user_attrs.get("lrkit_worker", "").endswith(f":{worker}")]
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    for t in by_worker:  # the killed worker's trial in flight failed and was run again
        TALLY.check(t.state.name == "COMPLETE" or t.number in retried, t)
    finished = [t for t in trials if t.number not in retried]
    TALLY.check(len(finished) >= N_TRIALS and all(t.state.name == "COMPLETE" for t in finished))
    TALLY.check(journal_decodes(study_dir / "study.journal") > 0)
