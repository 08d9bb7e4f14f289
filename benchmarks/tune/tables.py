"""Markdown tables of the tuning benchmarks, from their JSON results (for the READMEs).

    python benchmarks/tune/tables.py
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"
METHODS = ("grid", "random", "tpe", "tpe+hyperband", "lrkit")


def _steps(row: dict[str, Any], seeds: int | None) -> str:
    median = row["median_steps"]
    text = "not found" if median is None or not math.isfinite(median) else f"{median:,.0f}"
    if row.get("found") is not None and seeds:
        text += f" ({row['found']}/{seeds})"
    return text


def _ratio(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0%}"


def search_table(data: dict[str, Any]) -> str:
    seeds = data.get("seeds")
    lines = [
        "| task (optimizer, steps per trial, grid points) | full grid | random | tpe "
        "| tpe + hyperband | lrkit (range test + tpe + hyperband) | lrkit / grid | lrkit / tpe "
        "| suggestion itself hit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    met_grid = met_tpe = met = 0
    for name, task in data["tasks"].items():
        rows = task["methods"]
        lrkit = rows["lrkit"]["median_steps"]
        tpe = rows["tpe"]["median_steps"]
        vs_grid = None if lrkit is None else lrkit / task["grid"]["steps"]
        vs_tpe = None if lrkit is None or tpe is None else lrkit / tpe
        runs = rows["lrkit"]["runs"]
        first = sum(1 for r in runs if r["found"] and r["trials"] == 1)
        ok_grid = vs_grid is not None and vs_grid <= 0.15
        # where tpe's median is "not found", any found lrkit median is under half of it
        ok_tpe = lrkit is not None and (tpe is None or (vs_tpe is not None and vs_tpe <= 0.5))
        met_grid += ok_grid
        met_tpe += ok_tpe
        met += ok_grid and ok_tpe
        lines.append(
            f"| {name} ({task['optimizer']}, {task['budget']}, {task['grid']['points']}) | "
            + " | ".join(_steps(rows[m], seeds) for m in METHODS)
            + f" | {_ratio(vs_grid)} | {_ratio(vs_tpe)} | {first}/{len(runs)} |"
        )
    pooled = []
    for m in METHODS[1:]:
        ratios = []
        for task in data["tasks"].values():
            for r in task["methods"][m]["runs"]:
                steps = r["steps"]
                ratios.append(math.inf if steps is None else steps / task["grid"]["steps"])
        found = sum(math.isfinite(x) for x in ratios)
        pooled.append(f"{m} {_ratio(statistics.median(ratios))} ({found}/{len(ratios)} found)")
    n = len(data["tasks"])
    lines.append("")
    lines.append(
        "All runs of all tasks pooled, median steps as a share of the full grid: "
        + ", ".join(pooled)
        + "."
    )
    lines.append("")
    lines.append(
        f"Median training steps until the first trial within 2% of the grid best ({seeds} sampler "
        "seeds; in brackets how many runs found one within twice the grid's number of trials; "
        "a median is 'not found' when most runs found none). lrkit <= 15% of the full grid on "
        f"{met_grid} of {n} tasks, <= 50% of tpe on {met_tpe} of {n}, both on {met} of {n}."
    )
    return "\n".join(lines)


def workers_table(data: dict[str, Any]) -> str:
    lines = [
        "| task | run | workers | trials | wall s | trials/min | steady trials/min "
        "| 1-min load before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for task, entry in data["tasks"].items():
        for r in entry["runs"]:
            lines.append(
                f"| {task} | {r['repeat']} | {r['workers']} | {r['trials']} | "
                f"{r['seconds']:.1f} | {r['trials_per_minute']:.1f} | "
                f"{r['steady_trials_per_minute']:.1f} | {r['load_before'][0]:.2f} |"
            )
        wall = entry["figures"]["trials_per_minute"]
        steady = entry["figures"]["steady_trials_per_minute"]
        notes.append(
            f"{task}: **{wall['speedup_median_of_ratios']:.2f}x** wall clock including process "
            f"start-up, {steady['speedup_median_of_ratios']:.2f}x steady state"
        )
    lines.append("")
    lines.append(
        "Speed-up of 2 workers over 1 (median of the per-repeat ratios; target >= 1.7x): "
        + "; ".join(notes)
        + "."
    )
    return "\n".join(lines)


def main() -> None:
    search = RESULTS / "tune_search.json"
    workers = RESULTS / "tune_workers.json"
    if search.exists():
        print(search_table(json.loads(search.read_text())))
        print()
    if workers.exists():
        print(workers_table(json.loads(workers.read_text())))


if __name__ == "__main__":
    main()
