"""Trials per minute with 2 local worker processes against 1, on the same study and task.

    python benchmarks/tune/workers_throughput.py [--task digits] [--trials 24] [--repeats 2]

Both runs use a journal-file study (the storage ``workers > 1`` needs), random search with a
fixed seed, no early stopping, one torch thread per worker. Wall time includes starting the
worker processes. The machine's other load is recorded next to the numbers (os.getloadavg
before each run): on a shared 2-core machine the ratio is only as good as the cores are free.
Results: benchmarks/results/tune_workers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from lrkit.tune import tune
from lrkit.tune._task import TaskObjective

RESULTS = Path(__file__).resolve().parents[1] / "results" / "tune_workers.json"


def _run(task: str, trials: int, workers: int, directory: Path, tag: str) -> dict[str, Any]:
    load = os.getloadavg()[0]
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
    return {
        "workers": workers,
        "trials": finished,
        "seconds": round(seconds, 2),
        "trials_per_minute": round(60 * finished / seconds, 2),
        "load_before": round(load, 2),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for workers in (1, 2):
                row = _run(args.task, args.trials, workers, Path(tmp), f"w{workers}-r{repeat}")
                runs.append(row)
                print(row, flush=True)
    best = {w: max(r["trials_per_minute"] for r in runs if r["workers"] == w) for w in (1, 2)}
    speedup = best[2] / best[1]
    out = {
        "benchmark": "tune_workers_throughput",
        "command": "python benchmarks/tune/workers_throughput.py " + " ".join(argv),
        "task": args.task,
        "trials": args.trials,
        "cpu_count": os.cpu_count(),
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
        },
        "runs": runs,
        "best_trials_per_minute": {"1": best[1], "2": best[2]},
        "speedup_2_vs_1": round(speedup, 2),
        "note": "best of repeats; load_before is the 1-minute load average before each run "
        "(other processes on the shared machine)",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    print(
        f"1 worker {best[1]:.1f} trials/min, 2 workers {best[2]:.1f} trials/min: "
        f"{speedup:.2f}x; wrote {RESULTS}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
