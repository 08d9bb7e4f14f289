"""Journal files cut anywhere: a torn last record (a full disk, a kill, a power loss), a torn
record with later records glued on by earlier versions, a writer killed while it holds the lock.

Invariants: the torn tail is reported once (file and bytes dropped) and repaired before the next
append; every whole record is kept (no complete trial lost); ``--show`` and a rerun work; a
killed lock holder never blocks the next writer; an unrepairable file is one line naming it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _proc import TALLY, journal_decodes

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lrkit[tune]')")

from lrkit.cli import main  # noqa: E402
from lrkit.tuning import StorageError, load_result, tune  # noqa: E402

pytestmark = pytest.mark.faults


def bowl(params: dict[str, Any], report: Any) -> float:
    x = math.log10(params["lr"]) + 3
    for step in range(1, 4):
        report(step, x * x + 1 / step)
    return x * x


def _study(path: Path, n: int = 6, seed: int = 0) -> dict[int, tuple[dict[str, Any], float]]:
    result = tune(bowl, n_trials=n, strategy="random", seed=seed, storage=str(path), study_name="s")
    return {t.number: (t.params, t.value) for t in result.trials if t.state == "complete"}


def _complete(path: Path) -> dict[int, tuple[dict[str, Any], float]]:
    return {
        t.number: (t.params, t.value)
        for t in load_result(str(path), "s").trials
        if t.state == "complete"
    }


@pytest.mark.parametrize("seed", range(6))
def test_a_torn_last_record_is_reported_repaired_and_nothing_whole_is_lost(
    tmp_path: Path, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    TALLY.case()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    path = tmp_path / "study.journal"
    before = _study(path)
    # the next record cut at a random byte (what a full disk or a kill mid-write leaves)
    record = json.dumps({"op_code": 6, "worker_id": "w", "trial_id": 99, "state": 1}).encode()
    cut = random.Random(seed).randrange(1, len(record))
    with path.open("ab") as fh:
        fh.write(record[:cut])
    # reading skips the torn tail; nothing is repaired by a read
    TALLY.check(_complete(path) == before)
    TALLY.check(path.read_bytes().endswith(record[:cut]))
    with caplog.at_level(logging.WARNING, logger="lrkit.tuning._journal"):
        after = _study(path, n=8)  # the rerun appends: the tail is repaired first
    warnings = [r.getMessage() for r in caplog.records if "torn" in r.getMessage()]
    TALLY.check(len(warnings) == 1, warnings)
    TALLY.check(str(path) in warnings[0] and f"dropped {cut} bytes" in warnings[0], warnings)
    TALLY.check(all(after.get(n) == v for n, v in before.items()), "a complete trial was lost")
    TALLY.check(len(after) >= 8)
    TALLY.check(journal_decodes(path) > 0)
    TALLY.check(main(["tune", "--show", "--storage", str(path), "--study", "s"]) == 0)


def test_a_journal_torn_by_earlier_versions_is_salvaged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The defect's own file: a cut record with a later record glued onto it, then more
    records (Optuna reads "Expecting ':' delimiter" and every trial is out of reach)."""
    TALLY.case()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    path = tmp_path / "study.journal"
    before = _study(path, n=4)
    lines = path.read_bytes().splitlines(keepends=True)
    # cut the last record in half, then let plain Optuna (no repair) append two records
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])

    def plain() -> Any:
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend))

    study = plain()
    study.set_user_attr("note0", 0)  # glued onto the fragment (and skipped while last)
    with pytest.raises(ValueError, match="Expecting"):  # written, then the read fails
        study.set_user_attr("note1", 1)
    with pytest.raises(ValueError, match="Expecting"):  # plain Optuna: every trial lost
        plain()
    with caplog.at_level(logging.WARNING, logger="lrkit.tuning._journal"):
        salvaged = _complete(path)
    TALLY.check(any("inside the file" in r.getMessage() for r in caplog.records))
    # every whole record is back: the trials complete before the cut, and the glued record
    TALLY.check(all(salvaged.get(n) == v for n, v in before.items() if n != max(before)))
    TALLY.check(plain().user_attrs == {"note0": 0, "note1": 1})
    TALLY.check(journal_decodes(path) > 0)
    TALLY.check(not list(tmp_path.glob("*.repair-*")))  # the safety copy is removed
    after = _study(path, n=8)
    TALLY.check(len(after) >= 8)


def test_garbage_in_a_journal_is_one_line_naming_the_file(tmp_path: Path) -> None:
    TALLY.case()
    path = tmp_path / "study.journal"
    _study(path, n=2)
    with path.open("ab") as fh:
        fh.write(b"this is not a record\n" + b'{"op_code": 0, "not": "a study"}\n')
    with pytest.raises(StorageError) as info:
        load_result(str(path), "s")
    message = str(info.value)
    TALLY.check("\n" not in message and str(path) in message, message)


HOLD_LOCK = """
import sys, time
from lrkit.tuning._journal import FlockLock
lock = FlockLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_writer_killed_holding_the_lock_never_blocks_the_next(tmp_path: Path) -> None:
    TALLY.case()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    path = tmp_path / "study.journal"
    _study(path, n=2)
    # a lock file left by Optuna's symlink lock (optuna/optuna#5921) does not matter either
    os.symlink(path, str(path) + ".lock")
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        start = time.monotonic()
        _study(path, n=4)
        TALLY.check(time.monotonic() - start < 20)  # no lock grace period was waited out
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    TALLY.check(len(_complete(path)) >= 4)
