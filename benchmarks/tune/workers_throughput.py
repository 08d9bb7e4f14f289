"""Trials per minute with 2 local worker processes against 1, on the same task and study setup.

    nice -n 5 python benchmarks/tune/workers_throughput.py [--tasks digits_cnn digits]
        [--trials 32] [--repeats 3] [--wait-load 1.0] [--out results/tune_workers.json]

Every run is a fresh journal-file study (the storage ``workers > 1`` uses) of ``--trials``
trials of a built-in task at its full budget (digits_cnn: about 0.8 s per trial on one thread,
digits: about 0.3 s, where per-trial storage overhead weighs more), random search with a
fixed seed, no early stopping, one torch thread per worker. The 1-worker run trains in this
process (as
``lrkit tune --workers 1`` does); the 2-worker run trains in this process too and starts one
more worker process (as ``tune(workers=2)`` does), and its wall time includes starting it
(importing torch, lrkit and Optuna). Two figures per run:
``trials_per_minute`` from wall time, and ``steady_trials_per_minute`` from the first trial's
start to the last trial's end (without process start-up).

The machine is shared (2 cores, other people's benchmarks): the 1-minute load average is
recorded before and after every run, ``--wait-load`` waits (up to 5 minutes) for the load to
fall below a threshold before each run, runs alternate 1, 2, 2, 1, ... so that drifting load
hits both alike, and the speed-up is reported as the median of the per-repeat ratios (and the
ratio of the best runs). Results: benchmarks/results/tune_workers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from lrkit.tuning import tune
from lrkit.tuning._task import TaskObjective

RESULTS = Path(__file__).resolve().parents[1] / "results" / "tune_workers.json"


def _wait_for_load(threshold: float | None, max_wait: float = 300.0) -> float:
    """Wait until the 1-minute load average is below ``threshold``; return the waited seconds."""
    start = time.monotonic()
    while threshold is not None and os.getloadavg()[0] >= threshold:
        if time.monotonic() - start > max_wait:
            break
        time.sleep(5)
    return round(time.monotonic() - start, 1)


def _run(task: str, trials: int, workers: int, directory: Path, tag: str) -> dict[str, Any]:
    load = os.getloadavg()
    start = time.perf_counter()
    result = tune(
        TaskObjective(task),
        n_trials=trials,
        strategy="random",
        seed=0,
        storage=str(directory / f"{tag}.journal"),
        study_name=tag,
        workers=workers,
        threads_per_worker=1,
    )
    seconds = time.perf_counter() - start
    finished = result.counts["complete"] + result.counts["pruned"] + result.counts["failed"]
    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(directory / f"{tag}.journal"))
    )
    frozen = optuna.load_study(study_name=tag, storage=journal).get_trials(deepcopy=False)
    first = min(t.datetime_start for t in frozen if t.datetime_start is not None)
    last = max(t.datetime_complete for t in frozen if t.datetime_complete is not None)
    steady = (last - first).total_seconds()
    return {
        "workers": workers,
        "trials": finished,
        "seconds": round(seconds, 2),
        "trials_per_minute": round(60 * finished / seconds, 2),
        "steady_seconds": round(steady, 2),
        "steady_trials_per_minute": round(60 * finished / steady, 2),
        "load_before": [round(v, 2) for v in load],
        "load_after": [round(v, 2) for v in os.getloadavg()],
    }


def _task_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def per(workers: int, key: str) -> list[float]:
        return [r[key] for r in runs if r["workers"] == workers]

    figures: dict[str, Any] = {}
    for key in ("trials_per_minute", "steady_trials_per_minute"):
        ratios = [b / a for a, b in zip(per(1, key), per(2, key), strict=True)]
        figures[key] = {
            "median_1": statistics.median(per(1, key)),
            "median_2": statistics.median(per(2, key)),
            "speedup_median_of_ratios": round(statistics.median(ratios), 3),
            "speedup_best_runs": round(max(per(2, key)) / max(per(1, key)), 3),
            "ratios": [round(r, 3) for r in ratios],
        }
    return figures


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["digits_cnn", "digits"])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--wait-load", type=float, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out: dict[str, Any] = {
        "benchmark": "tune_workers_throughput",
        "command": "nice -n 5 python benchmarks/tune/workers_throughput.py " + " ".join(argv),
        "trials": args.trials,
        "cpu_count": os.cpu_count(),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": ">= 1.7x trials/minute with 2 workers vs 1",
        "note": "load_before/load_after: the 1/5/15-minute load averages around each run (the "
        "machine's 2 cores are shared with other processes; a load above ~1 during a 2-worker "
        "run means a worker shared its core)",
        "tasks": {},
    }
    for task in args.tasks:
        runs: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                order = (1, 2) if repeat % 2 == 0 else (2, 1)
                for workers in order:
                    waited = _wait_for_load(args.wait_load)
                    row = _run(task, args.trials, workers, Path(tmp), f"w{workers}-r{repeat}")
                    row["repeat"] = repeat
                    row["waited_for_load_s"] = waited
                    runs.append(row)
                    print(task, row, flush=True)
        figures = _task_figures(runs)
        out["tasks"][task] = {"figures": figures, "runs": runs}
        wall = figures["trials_per_minute"]
        steady = figures["steady_trials_per_minute"]
        print(
            f"{task}: 1 worker {wall['median_1']:.1f}, 2 workers {wall['median_2']:.1f} "
            f"trials/min, {wall['speedup_median_of_ratios']:.2f}x (median of ratios); "
            f"steady state {steady['speedup_median_of_ratios']:.2f}x",
            flush=True,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
