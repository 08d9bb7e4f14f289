"""Fill the grid cache for some tasks: ``python benchmarks/finder/grid.py [TASK ...]``."""

from __future__ import annotations

import sys
import time

from common import RunCache, all_tasks, get_task, run_grid, setup_threads


def main(argv: list[str]) -> None:
    setup_threads()
    names = argv or [t.name for t in all_tasks()]
    for name in names:
        task = get_task(name)
        start = time.perf_counter()
        grid = run_grid(task, RunCache(task))
        for schedule, g in grid.items():
            print(
                f"{name:14s} {schedule:8s} best lr {g['best_lr']:.3g} val {g['best']:.4f} "
                f"({len(g['lrs'])} lrs, {time.perf_counter() - start:.0f}s)",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
