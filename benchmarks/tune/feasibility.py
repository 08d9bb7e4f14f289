"""Is the search-cost target reachable? Lower bounds from the search-cost benchmark's own numbers.

    nice -n 5 python benchmarks/tune/feasibility.py          # trains the dense scans (~5 min)
    python benchmarks/tune/feasibility.py --quick             # cached runs only

The target (issue 5): lrkit's best method needs at most 15% of the full grid's steps and at most
half of plain TPE's, per task, until it first trains a learning rate whose final validation loss
is within 2% of the grid best. A hit is a *complete* trial, so every method spends at least one
full trial (the task's budget); a range-test-seeded method also spends the range test. From
``results/tune_search.json`` (search_cost.py) this script computes, per task, the allowance
``min(15% of grid, 50% of TPE's median)`` and compares it with those lower bounds:

- ``any method``: one full trial. Above the allowance: no method at all can meet the target.
- ``range test + 1 trial``: lrkit's least possible cost (the median range-test steps of its runs).
- full trials that fit after the range test: below 1 means impossible; exactly 1 means the
  range test's suggestion itself (the first trial) must hit in most runs.

How likely can a single trial hit? A dense scan trains seed 0 (the benchmark's training seed) at
24 points per decade over half a decade each way around the grid's best lr (constant lr, cached
in benchmarks/finder/cache/) and reports the share of those learning rates that hit, overall
and within a quarter decade (a factor 1.8) of the best grid point: with a bumpy landscape even
a suggestion that lands next to the optimum misses more often than not.
Results: benchmarks/results/tune_feasibility.json; a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "finder"))

from common import RunCache, get_task  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
SEARCH = RESULTS_DIR / "tune_search.json"
OUT = RESULTS_DIR / "tune_feasibility.json"
PER_DECADE = 24
HALF_WIDTH = 12  # points each way: half a decade
NEAR = 6  # points each way: a quarter decade


def scan(name: str, best_lr: float, target: float, *, allow_train: bool) -> dict[str, Any]:
    cache = RunCache(get_task(name))
    rows = []
    for k in range(-HALF_WIDTH, HALF_WIDTH + 1):
        lr = float(f"{best_lr * 10 ** (k / PER_DECADE):.4g}")
        value = cache.val_loss("constant", lr, 0, allow_train=allow_train)
        rows.append({"k": k, "lr": lr, "value": value, "hit": value <= target})
    near = [r for r in rows if abs(r["k"]) <= NEAR]
    return {
        "points": rows,
        "hit_share": sum(r["hit"] for r in rows) / len(rows),
        "hit_share_near": sum(r["hit"] for r in near) / len(near),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="use only cached runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    search = json.loads(SEARCH.read_text())
    rows: list[dict[str, Any]] = []
    for name, task in search["tasks"].items():
        grid = task["grid"]
        budget = task["budget"]
        tpe = task["methods"]["tpe"]["median_steps"]
        runs = task["methods"]["lrkit"]["runs"]
        range_steps = statistics.median(r["range_test_steps"] for r in runs)
        cap_grid = 0.15 * grid["steps"]
        cap_tpe = 0.5 * tpe if tpe is not None and math.isfinite(tpe) else math.inf
        allowance = min(cap_grid, cap_tpe)
        fits = (allowance - range_steps) / budget
        row = {
            "task": name,
            "budget": budget,
            "grid_steps": grid["steps"],
            "tpe_median_steps": tpe,
            "allowance": allowance,
            "range_test_steps": range_steps,
            "any_method_possible": budget <= allowance,
            "range_test_plus_one_trial": range_steps + budget,
            "trials_after_range_test": fits,
            "lrkit_first_trial_hits": sum(
                1 for r in runs if r["found"] and r["steps"] <= r["range_test_steps"] + budget
            ),
            "lrkit_runs": len(runs),
        }
        row.update(scan(name, grid["best_lr"], grid["target"], allow_train=not args.quick))
        rows.append(row)
    print(
        "| task (budget) | allowance: min(15% grid, 50% tpe) | any method (1 trial) | "
        "range test + 1 trial | full trials after the range test | lrkit's first trial hit | "
        "hit share, best lr x/÷ 3.2 | x/÷ 1.8 |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['task']} ({r['budget']}) | {r['allowance']:.0f} | "
            f"{'possible' if r['any_method_possible'] else '**impossible**'} | "
            f"{r['range_test_plus_one_trial']:.0f} | {max(r['trials_after_range_test'], 0):.2f} | "
            f"{r['lrkit_first_trial_hits']}/{r['lrkit_runs']} | {100 * r['hit_share']:.0f}% | "
            f"{100 * r['hit_share_near']:.0f}% |"
        )
    impossible = [r["task"] for r in rows if not r["any_method_possible"]]
    no_room = [r["task"] for r in rows if r["trials_after_range_test"] < 1]
    one = [r["task"] for r in rows if 1 <= r["trials_after_range_test"] < 2]
    print(
        f"\nImpossible for any method: {', '.join(impossible) or 'none'}. "
        f"Impossible after a range test: {', '.join(no_room) or 'none'}. "
        f"Only the first trial fits after the range test: {', '.join(one) or 'none'}."
    )
    payload = {
        "benchmark": "tune_feasibility",
        "command": "python benchmarks/tune/feasibility.py" + (" --quick" if args.quick else ""),
        "source": str(SEARCH.relative_to(RESULTS_DIR.parent.parent)),
        "scan": {"per_decade": PER_DECADE, "half_width_points": HALF_WIDTH, "near": NEAR},
        "tasks": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    OUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
