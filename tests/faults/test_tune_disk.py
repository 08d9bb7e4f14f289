"""A full disk (RLIMIT_FSIZE in a child) during journal and SQLite writes, then the same run
again once there is room.

Invariants: the failing run ends with one line naming the storage (a documented StorageError
from the library, exit 2 from the CLI), never a traceback; the journal holds only whole
records; every trial complete before the fault is complete after the rerun, with the same
params and value; the rerun (in the same process, and in a new one) finishes the study.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from _proc import CLI, TALLY, child_env, journal_decodes, limits, one_line, start

pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lrkit[tune]')")

pytestmark = pytest.mark.faults

N_TRIALS = 6

# Runs in a child: for each file-size limit, a fresh study is tuned until the "disk" is full,
# then the limit is lifted and the same call runs again, in the same process.
CHILD = r"""
import json, math, resource, signal, sys
from pathlib import Path
import optuna
from lrkit.tuning import StorageError, load_result, tune

optuna.logging.set_verbosity(optuna.logging.ERROR)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
kind, n_trials, limits = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

def objective(params, report):
    x = math.log10(params["lr"]) + 3
    for step in range(1, 4):
        report(step, x * x + 1 / step)
    return x * x

def complete(storage):
    try:
        trials = load_result(storage, "s").trials
    except ValueError:
        return {}
    return {t.number: [t.params, t.value] for t in trials if t.state == "complete"}

for case, limit in enumerate(limits):
    storage = f"case{case}.{'journal' if kind == 'journal' else 'db'}"
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    error = None
    try:
        tune(objective, n_trials=n_trials, strategy="random", seed=case, storage=storage,
             study_name="s")
    except StorageError as exc:
        error = str(exc)
    except Exception as exc:
        error = f"UNEXPECTED {type(exc).__name__}: {exc}"
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    before = complete(storage)
    result = tune(objective, n_trials=n_trials, strategy="random", seed=case, storage=storage,
                  study_name="s")
    print(json.dumps({
        "storage": storage,
        "limit": limit,
        "error": error,
        "before": before,
        "after": {t.number: [t.params, t.value] for t in result.trials if t.state == "complete"},
        "states": [t.state for t in result.trials],
        "retried": [t.number for t in result.trials if t.retried],
    }))
"""


def _limits(seed: int, low: int, high: int, n: int) -> list[int]:
    rng = random.Random(seed)
    return sorted(rng.randrange(low, high) for _ in range(n))


@pytest.mark.parametrize(
    ("kind", "low", "high"),
    [("journal", 1_500, 9_000), ("sqlite", 20_000, 120_000)],
)
def test_a_full_disk_mid_study_is_one_line_and_the_rerun_loses_nothing(
    tmp_path: Path, kind: str, low: int, high: int
) -> None:
    sizes = _limits(seed=len(kind), low=low, high=high, n=5)
    proc = start(
        [sys.executable, "-c", CHILD, kind, str(N_TRIALS), json.dumps(sizes)],
        cwd=tmp_path,
        env=child_env(PYTHONDONTWRITEBYTECODE="1"),
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    cases = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(cases) == len(sizes), out + err
    hit = 0
    for case in cases:
        TALLY.case()
        error = case["error"]
        if error is None:
            continue  # the study fitted under this limit: nothing to check but the rerun
        hit += 1
        # one line, naming the storage file; the documented error type (not "Should not reach")
        TALLY.check("UNEXPECTED" not in error and "\n" not in error, error)
        TALLY.check(case["storage"] in error, error)
        # nothing complete before the fault is lost or changed by the rerun
        after = case["after"]
        TALLY.check(all(after.get(n) == v for n, v in case["before"].items()), case)
        retried = set(case["retried"])
        finished = [s for n, s in enumerate(case["states"]) if n not in retried]
        TALLY.check(len(finished) >= N_TRIALS and set(finished) == {"complete"}, case)
        if kind == "journal":
            TALLY.check(journal_decodes(tmp_path / case["storage"]) > 0)
    assert hit >= 3, "the limits were too generous: the disk never filled"
    leftovers = {p.name for p in tmp_path.iterdir()} - {c["storage"] for c in cases}
    TALLY.check(not leftovers, f"files left behind: {leftovers}")


OBJECTIVES = """
import math

def objective(params, report):
    x = math.log10(params["lr"]) + 3
    for step in range(1, 4):
        report(step, x * x + 1 / step)
    return x * x
"""


@pytest.mark.parametrize("storage", ["study.journal", "study.db"])
def test_the_cli_on_a_full_disk_exits_2_with_one_line(tmp_path: Path, storage: str) -> None:
    TALLY.case()
    (tmp_path / "objectives.py").write_text(OBJECTIVES)
    argv = ["tune", "objectives.py:objective", "--trials", "8", "--storage", storage]
    limit = 3_000 if storage.endswith(".journal") else 40_000
    proc = start([*CLI, *argv], cwd=tmp_path, preexec=limits(fsize=limit))
    _, err = proc.communicate(timeout=300)
    TALLY.check(proc.returncode == 2, err)
    line = one_line(err)
    TALLY.check(line.startswith("lrkit: error: cannot ") and storage in line, line)
    if storage.endswith(".journal"):
        TALLY.check(journal_decodes(tmp_path / storage) > 0)
    rerun = start([*CLI, *argv], cwd=tmp_path)
    out, err = rerun.communicate(timeout=300)
    TALLY.check(rerun.returncode == 0, err)
    TALLY.check("8 complete" in out, out)
