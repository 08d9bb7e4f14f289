"""The range-test suggestion benchmark: every rule's suggestion scored against a full LR grid.

    python benchmarks/finder/run.py            # trains whatever is not cached yet (CPU heavy)
    python benchmarks/finder/run.py --quick    # only the cached JSON (seconds); fails if missing

For each task: a log-spaced LR grid (3 points per decade, extended until it includes
divergence; 3 seeds; full budget) under a constant lr and under cosine decay to zero gives the
ground-truth best final validation loss. Range-test curves (``lrkit.finder.find_lr`` with its
defaults) for 6 seeds. lrkit's rule was designed on the 7 built-in tasks with seeds 0-2
("design"); seeds 3-5 of those tasks ("held-out seeds") and the 3 benchmark-only tasks of
``common.HELDOUT_TASKS`` ("held-out tasks", added after the rule was fixed) were not used.
The v3 rule (SGD) was then tuned on all 10 tasks and frozen before the 2 tasks of
``common.FRESH_TASKS`` were scored; their figures are reported separately ("fresh tasks") and
are not in the 10-task median / worst columns.
Every rule's suggestion (snapped to the nearest of 24 log-spaced points per decade, a <5%
change, so equal suggestions share runs) is trained with the same budget and seeds, and scored
by regret = (val loss at the suggestion - best grid val loss) / best grid val loss.
A rule that gives no suggestion scores the worst regret of any finite grid point of the task.
lrkit's rule is told the schedule and the optimizer (as ``RangeTest.suggest`` is); the
published rules ignore both.
Results: ``benchmarks/results/finder.json``; tables on stdout (markdown).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    FRESH_TASKS,
    GRID_SEEDS,
    HELDOUT_TASKS,
    POINTS_PER_DECADE,
    SCHEDULES,
    RunCache,
    all_tasks,
    curve_arrays,
    get_task,
    range_curves,
    run_grid,
    setup_threads,
)

from lrkit.finder._rules import METHODS, suggest

RESULTS = Path(__file__).resolve().parents[1] / "results" / "finder.json"
DESIGN_SEEDS = (0, 1, 2)
HELDOUT_SEEDS = (3, 4, 5)
SNAP_PER_DECADE = 24
#: the optimizer class each task's optimizer name stands for (what find_lr records)
OPTIMIZER_CLASS = {"sgd_momentum": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}


def snap(lr: float) -> float:
    return float(f"{10 ** (round(SNAP_PER_DECADE * math.log10(lr)) / SNAP_PER_DECADE):.4g}")


def score_task(name: str, *, allow_train: bool) -> dict[str, Any]:
    task = get_task(name)
    cache = RunCache(task)
    grid = run_grid(task, cache, allow_train=allow_train)
    curves = range_curves(task, [*DESIGN_SEEDS, *HELDOUT_SEEDS], allow_run=allow_train)
    out: dict[str, Any] = {
        "task": name,
        "description": task.description,
        "heldout_task": name in HELDOUT_TASKS,
        "fresh_task": name in FRESH_TASKS,
        "grid": {},
        "rules": {},
    }
    for schedule in SCHEDULES:
        g = grid[schedule]
        best = g["best"]
        finite = [v for v in g["loss"] if math.isfinite(v)]
        worst = max(finite) / best - 1
        out["grid"][schedule] = {
            "lrs": g["lrs"],
            "val_loss": [v if math.isfinite(v) else None for v in g["loss"]],
            "best_lr": g["best_lr"],
            "best_val_loss": best,
            "none_regret": worst,
            # the grid's own noise: standard error of the mean val loss at the best lr over
            # the seeds, relative to it (regrets within ~2 of these are seed noise)
            "best_rel_stderr": float(
                np.std(
                    [
                        cache.val_loss(schedule, g["best_lr"], s, allow_train=False)
                        for s in GRID_SEEDS
                    ],
                    ddof=1,
                )
                / math.sqrt(len(GRID_SEEDS))
                / best
            ),
        }
        per_rule: dict[str, Any] = {}
        for method in METHODS:
            rows = []
            for seed in (*DESIGN_SEEDS, *HELDOUT_SEEDS):
                lrs, losses, smoothed = curve_arrays(curves[str(seed)])
                s = suggest(
                    lrs,
                    losses,
                    smoothed,
                    method,
                    schedule=schedule,
                    optimizer=OPTIMIZER_CLASS[task.optimizer],
                )
                if s.lr is None:
                    rows.append({"seed": seed, "lr": None, "regret": worst, "reason": s.reason})
                    continue
                trained_lr = snap(s.lr)
                val = cache.mean_val_loss(schedule, trained_lr, allow_train=allow_train)
                regret = val / best - 1 if math.isfinite(val) else math.inf
                rows.append(
                    {
                        "seed": seed,
                        "lr": s.lr,
                        "trained_lr": trained_lr,
                        "val_loss": val,
                        "regret": regret,
                    }
                )
            lrs_given = [r["lr"] for r in rows if r["lr"] is not None]
            per_rule[method] = {
                "runs": rows,
                "stability": (max(lrs_given) / min(lrs_given)) if lrs_given else None,
                "none": sum(r["lr"] is None for r in rows),
            }
        out["rules"][schedule] = per_rule
    return out


def _builtin(res: dict[str, Any]) -> bool:
    return not res["heldout_task"] and not res["fresh_task"]


def _pct(v: float) -> str:
    return "inf" if not math.isfinite(v) else f"{100 * v:.1f}%"


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for schedule in SCHEDULES:
        summary[schedule] = {}
        for method in METHODS:
            entry: dict[str, Any] = {}
            for label, keep in (
                ("all", lambda res, seed: not res["fresh_task"]),
                ("design", lambda res, seed: _builtin(res) and seed in DESIGN_SEEDS),
                ("heldout_seeds", lambda res, seed: _builtin(res) and seed in HELDOUT_SEEDS),
                ("heldout_tasks", lambda res, seed: res["heldout_task"]),
                ("fresh_tasks", lambda res, seed: res["fresh_task"]),
            ):
                regrets = [
                    r["regret"]
                    for res in results
                    for r in res["rules"][schedule][method]["runs"]
                    if keep(res, r["seed"])
                ]
                if regrets:
                    entry[label] = {"median": float(np.median(regrets)), "worst": max(regrets)}
            for label, fresh in (("worst_stability", False), ("fresh_worst_stability", True)):
                stab = [
                    res["rules"][schedule][method]["stability"]
                    for res in results
                    if res["fresh_task"] == fresh
                ]
                if stab:
                    entry[label] = None if any(s is None for s in stab) else max(stab)
            entry["none"] = sum(
                res["rules"][schedule][method]["none"] for res in results if not res["fresh_task"]
            )
            summary[schedule][method] = entry
    return summary


def tables(results: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines: list[str] = []
    for schedule in SCHEDULES:
        lines.append(f"\n### {schedule} learning rate\n")
        parts = [
            p
            for p in ("design", "heldout_seeds", "heldout_tasks", "fresh_tasks")
            if p in summary[schedule]["lrkit"]
        ]
        names = {
            "design": "design: built-in tasks, seeds 0-2",
            "heldout_seeds": "held-out seeds 3-5",
            "heldout_tasks": "held-out tasks",
            "fresh_tasks": "fresh tasks, scored once",
        }
        lines.append(
            "| rule | median regret (10 tasks) | worst regret (10 tasks) | "
            + "".join(f"median / worst ({names[p]}) | " for p in parts)
            + "max/min suggestion across seeds (worst of 10 tasks) | "
            + "max/min (fresh tasks) | no answer |"
        )
        lines.append("|---|---|---|" + "---|" * len(parts) + "---|---|---|")
        for method in METHODS:
            e = summary[schedule][method]
            stab = e["worst_stability"]
            fresh = e.get("fresh_worst_stability")
            lines.append(
                f"| {method}{' (default)' if method == 'lrkit' else ''} | "
                f"{_pct(e['all']['median'])} | {_pct(e['all']['worst'])} | "
                + "".join(f"{_pct(e[p]['median'])} / {_pct(e[p]['worst'])} | " for p in parts)
                + f"{'-' if stab is None else f'{stab:.2f}x'} | "
                + f"{'-' if fresh is None else f'{fresh:.2f}x'} | {e['none']} |"
            )
        lines.append(
            f"\nPer task ({schedule}): grid best lr (val loss, relative standard error of that "
            "mean over the grid seeds), then each rule's "
            "median / worst regret over the 6 range tests\n"
        )
        lines.append("| task | grid best lr | " + " | ".join(METHODS) + " |")
        lines.append("|---|---|" + "---|" * len(METHODS))
        for res in results:
            g = res["grid"][schedule]
            cells = []
            for method in METHODS:
                regs = [r["regret"] for r in res["rules"][schedule][method]["runs"]]
                cells.append(f"{_pct(float(np.median(regs)))} / {_pct(max(regs))}")
            tag = " (held out)" if res["heldout_task"] else " (fresh)" if res["fresh_task"] else ""
            lines.append(
                f"| {res['task']}{tag} | {g['best_lr']:.3g} ({g['best_val_loss']:.4g}, "
                f"s.e. {_pct(g['best_rel_stderr'])}) | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="use only the cached runs")
    parser.add_argument("--tasks", default=",".join(t.name for t in all_tasks()))
    args = parser.parse_args(argv)
    setup_threads()
    start = time.perf_counter()
    results = [score_task(n, allow_train=not args.quick) for n in args.tasks.split(",")]
    summary = summarise(results)
    payload = {
        "benchmark": "finder_suggestions",
        "command": "python benchmarks/finder/run.py"
        + (" --quick" if args.quick else "")
        + (f" --tasks {args.tasks}" if args.tasks != parser.get_default("tasks") else ""),
        "settings": {
            "grid_points_per_decade": POINTS_PER_DECADE,
            "grid_seeds": list(GRID_SEEDS),
            "design_seeds": list(DESIGN_SEEDS),
            "heldout_seeds": list(HELDOUT_SEEDS),
            "heldout_tasks": list(HELDOUT_TASKS),
            "fresh_tasks": list(FRESH_TASKS),
            "snap_points_per_decade": SNAP_PER_DECADE,
            "range_test": "lrkit.finder.find_lr defaults (1e-7 -> 10, 100 steps, exp)",
            "torch_threads": 1,
        },
        "summary": summary,
        "tasks": results,
        "seconds": round(time.perf_counter() - start, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(_finite(payload), indent=1) + "\n")
    print(tables(results, summary))
    print(f"\nwrote {RESULTS} in {payload['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
