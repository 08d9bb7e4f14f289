"""How long each built-in task takes to load cold (data + model + loaders), offline.

    .venv/bin/python benchmarks/tasks_load.py

The issue asks for "well under a second" per task. Each task is loaded 5 times with the data
caches cleared (so the data is read from the installed package or generated again), medians
reported, one torch thread. torch's one-time lazy import when the first optimizer of a process is
built (over a second, paid by any training script) is paid before timing. Results:
``benchmarks/results/tasks_load.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from lrkit.tasks import get_task, list_tasks
from lrkit.tasks._data import clear_caches, load

RESULTS = Path(__file__).resolve().parent / "results" / "tasks_load.json"
REPEATS = 5


def cold_load_seconds(name: str) -> float:
    task = get_task(name)
    clear_caches()
    start = time.perf_counter()
    load(task.data or task.name)
    task.setup(seed=1)
    return time.perf_counter() - start


def main() -> int:
    torch.set_num_threads(1)
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # torch's one-time lazy import
    rows = {}
    for task in list_tasks():
        times = [cold_load_seconds(task.name) for _ in range(REPEATS)]
        rows[task.name] = {
            "median_ms": 1000 * statistics.median(times),
            "max_ms": 1000 * max(times),
        }
    print("| task | cold load, median of 5 | slowest |")
    print("|---|---:|---:|")
    for name, row in rows.items():
        print(f"| `{name}` | {row['median_ms']:.1f} ms | {row['max_ms']:.1f} ms |")
    RESULTS.write_text(
        json.dumps(
            {
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "load_average": os.getloadavg()[0],
                "torch": torch.__version__,
                "repeats": REPEATS,
                "tasks": rows,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
