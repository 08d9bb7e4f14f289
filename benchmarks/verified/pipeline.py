"""One task through the whole protocol: grid, methods, scoring (runs in a worker process)."""

from __future__ import annotations

import math
import time
from typing import Any

from fresh_tasks import FRESH_TASKS
from methods import LADDER, RACES, RULES, Choice, Curves, Races, rule, searches
from runcache import SCHEDULES, BenchTask, RunCache, set_threads, snap
from truth import GRID_SEEDS, grids

SEARCH_SEEDS = (10, 11, 12, 13, 14)
SCORE_SEEDS = (100, 101, 102)
HIT = 0.10  # a hit: regret under 10%


def design_tasks() -> list[BenchTask]:
    """The 12 tasks of the range-test benchmark (lrkit's 7 + its held-out and fresh ones)."""
    from common import all_tasks  # benchmarks/finder/common.py (runcache puts it on the path)

    return list(all_tasks())


def get_task(name: str) -> BenchTask:
    if name in FRESH_TASKS:
        return FRESH_TASKS[name]
    for task in design_tasks():
        if task.name == name:
            return task
    raise SystemExit(f"unknown task {name!r}")


def task_names() -> list[str]:
    """Fresh tasks first, then the design tasks."""
    return [*FRESH_TASKS, *(t.name for t in design_tasks())]


def _sig(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}") if math.isfinite(value) else value


def score(cache: RunCache, schedule: str, grid: dict[str, Any], choice: Choice) -> dict[str, Any]:
    """Train the chosen lr with the scoring seeds; regret against the grid best."""
    row: dict[str, Any] = {
        "lr": None if choice.lr is None else _sig(choice.lr, 6),
        "spent_steps": choice.spent,
        "compute": _sig(choice.spent / cache.task.budget, 4),
    }
    if choice.reason:
        row["reason"] = choice.reason
    if choice.lr is None or not math.isfinite(choice.lr) or choice.lr <= 0:
        row.update(status="no answer", regret=math.inf)
        return row
    trained = snap(choice.lr)
    val = cache.mean_final(schedule, trained, SCORE_SEEDS)
    row.update(trained_lr=trained, val_loss=_sig(val, 6))
    if math.isfinite(val):
        row.update(status="ok", regret=_sig(val / grid["best"] - 1, 4))
    else:
        row.update(status="diverged", regret=math.inf)
    return row


def evaluate_task(
    name: str, methods: list[str], ladder: tuple[float, ...] = LADDER, *, allow_train: bool
) -> dict[str, Any]:
    """Every method on one task, both schedules, every search seed, scored."""
    set_threads()
    start = time.perf_counter()
    task = get_task(name)
    cache = RunCache(task, allow_train=allow_train)
    truth = grids(cache)
    curves = Curves(task, allow_run=allow_train)
    races = Races(task, allow_run=allow_train)
    out: dict[str, Any] = {
        "task": name,
        "fresh": name in FRESH_TASKS,
        "description": getattr(task, "description", ""),
        "budget": task.budget,
        "grid": truth,
        "methods": {s: {} for s in SCHEDULES},
        "skipped": [],
    }
    for schedule in SCHEDULES:
        grid = truth[schedule]
        rows = out["methods"][schedule]
        grid_steps = len(grid["lrs"]) * len(GRID_SEEDS) * task.budget
        oracle = Choice(grid["best_lr"], grid_steps, "the grid's best lr, scored with unseen seeds")
        rows["oracle"] = [score(cache, schedule, grid, oracle)]
        for method in methods:
            if method in RULES:
                rows[method] = [
                    score(cache, schedule, grid, rule(curves, method, schedule, s))
                    for s in SEARCH_SEEDS
                ]
            elif method in RACES:
                try:
                    rows[method] = [
                        score(cache, schedule, grid, races.get(method, schedule, s))
                        for s in SEARCH_SEEDS
                    ]
                except (ImportError, KeyError) as exc:
                    out["skipped"].append(f"{method}/{schedule}: {exc}")
        for kind in ("tpe", "hb"):
            if kind not in methods:
                continue
            for i, seed in enumerate(SEARCH_SEEDS):
                caps = {f"{kind}@{c:g}": c for c in ladder}
                if "lrkit_verified" in rows:
                    caps[f"{kind}@lrkit"] = max(rows["lrkit_verified"][i]["compute"], 1e-9)
                for label, choice in searches(cache, kind, schedule, seed, caps):
                    rows.setdefault(label, []).append(score(cache, schedule, grid, choice))
    out["seconds"] = round(time.perf_counter() - start, 1)
    out["trained_steps"] = cache.trained_steps
    return out
