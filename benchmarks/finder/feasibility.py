"""Can ANY simple range-test rule meet the benchmark's target on every task?

    python benchmarks/finder/feasibility.py            # trains what is not cached (~5 min)
    python benchmarks/finder/feasibility.py --quick    # cached runs only (seconds)

The suggestion benchmark (run.py) scores rules; this script asks whether the target (worst
regret < 20% on every task, both schedules) is reachable at all from what a range test
measures. For each task and schedule, the learning rates with regret below the tolerance form
an interval (regret interpolated linearly in log lr between the grid's points). Each curve gives
8 features (the lr where the lag-free smoothed loss of lrkit's rule has fallen 30/50/70/80/90%
of its descent, the middle of its bottom, its minimum, and the edge where it climbs back by
10%). A rule of the form ``c * f_a ** (1 - w) * f_b ** w`` (any two features, w in steps of
0.05, any constant c; one rule per optimizer family and schedule, as lrkit's rule has) passes
when all 6 range tests of every task of the family land inside the task's interval. The
script reports, per family and schedule, the rule with the widest margin (log10 of the spread
of c that passes; negative = no c passes) and the two tasks that bound it, on the default
(training-loss) curves and on validation-loss curves (Smith's recommendation, ``val_loader``).

It also trains every task's constant-lr grid again (seeds 0-2) and records the final training
loss (mean of the last 10% of batch losses) next to the grid's final validation loss: where the
two optima differ, the best lr is set by generalisation over the whole budget, which a range
test does not see.
Results: ``benchmarks/results/finder_feasibility.json``; tables on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    CACHE,
    FRESH_TASKS,
    GRID_SEEDS,
    SCHEDULES,
    RunCache,
    all_tasks,
    curve_arrays,
    fill_cache,
    get_task,
    lr_key,
    range_curves,
    run_grid,
    setup_threads,
)

from lrkit.finder._rules import _curve, curve_features
from lrkit.tasks import Task, train

RESULTS = Path(__file__).resolve().parents[1] / "results" / "finder_feasibility.json"
SEEDS = [0, 1, 2, 3, 4, 5]
FRACTIONS = (0.3, 0.5, 0.7, 0.8, 0.9)
WEIGHTS = np.linspace(0.0, 1.0, 21)


def ok_interval(grid: dict[str, Any], tolerance: float) -> tuple[float, float]:
    """log10 bounds of the grid's lrs whose (interpolated) regret is below ``tolerance``
    (``grid``: one schedule of :func:`common.run_grid`; a diverged point counts as 1000)."""
    x = np.log10(grid["lrs"])
    y = np.array([v / grid["best"] - 1 if math.isfinite(v) else 1e3 for v in grid["loss"]])
    fine = np.linspace(x[0], x[-1], 4001)
    inside = fine[np.interp(fine, x, y) < tolerance]
    return float(inside.min()), float(inside.max())


def features(entry: dict[str, Any]) -> dict[str, float]:
    """log10 of each feature's lr on one range-test curve."""
    lrs, losses, smoothed = curve_arrays(entry)
    x, y, _ = _curve(lrs, losses, smoothed)
    f = curve_features(x, y)
    out: dict[str, float] = {}
    for frac in FRACTIONS:
        level = f.start - frac * (f.start - f.low)
        out[f"descent_{int(100 * frac)}"] = float(np.log10(x[int(np.argmax(f.curve <= level))]))
    out["bottom_middle"] = float(np.log10(f.lr_bottom))
    out["minimum"] = float(np.log10(x[f.i_min]))
    out["edge"] = float(np.log10(x[f.i_edge] if f.i_edge is not None else x[-1]))
    return out


def best_rule(
    tasks: list[str],
    feats: dict[str, list[dict[str, float]]],
    ok: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    names = list(next(iter(feats.values()))[0])
    rules = [(f"c * {a}", a, a, 0.0) for a in names] + [
        (f"c * {a}^{1 - w:.2f} * {b}^{w:.2f}", a, b, float(w))
        for a, b in itertools.combinations(names, 2)
        for w in WEIGHTS[1:-1]
    ]
    best: dict[str, Any] | None = None
    for label, a, b, w in rules:
        lo, hi, lo_task, hi_task = -math.inf, math.inf, "", ""
        for name in tasks:
            vals = [(1 - w) * f[a] + w * f[b] for f in feats[name]]
            need_lo, need_hi = ok[name][0] - min(vals), ok[name][1] - max(vals)
            if need_lo > lo:
                lo, lo_task = need_lo, name
            if need_hi < hi:
                hi, hi_task = need_hi, name
        if best is None or hi - lo > best["margin_decades"]:
            best = {
                "rule": label,
                "margin_decades": hi - lo,
                "c_range": [10**lo, 10**hi],
                "needs_c_at_least": lo_task,
                "needs_c_at_most": hi_task,
            }
    assert best is not None
    return best


def train_losses(task: Task, lrs: list[float], *, allow_train: bool) -> dict[str, list[float]]:
    """Final training loss (mean of the last 10% of batch losses) per grid lr and seed."""

    def run(key: str) -> list[float]:
        values = []
        for seed in GRID_SEEDS:
            result = train(task, lr=float(key), seed=seed)
            tail = result.train_loss[-max(1, len(result.train_loss) // 10) :]
            value = float(np.mean(tail)) if not result.diverged else math.inf
            values.append(float(f"{value:.6g}") if math.isfinite(value) else math.inf)
        return values

    path = CACHE / f"train_loss_{task.name}.json"
    keys = [lr_key(lr) for lr in lrs]
    return fill_cache(path, keys, run, allow=allow_train, what=f"{task.name}: training loss at lr")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="use only the cached runs")
    parser.add_argument("--tolerance", type=float, default=0.2, help="regret target (0.2)")
    args = parser.parse_args(argv)
    setup_threads()
    start = time.perf_counter()
    allow = not args.quick
    tasks = [t.name for t in all_tasks()]
    family = {n: "sgd" if get_task(n).optimizer == "sgd_momentum" else "adaptive" for n in tasks}
    grids = {n: run_grid(get_task(n), RunCache(get_task(n)), allow_train=False) for n in tasks}
    curves: dict[str, dict[str, list[dict[str, float]]]] = {}
    for mode in ("train", "val"):
        curves[mode] = {}
        for n in tasks:
            cached = range_curves(get_task(n), SEEDS, allow_run=allow, val=mode == "val")
            curves[mode][n] = [features(cached[str(s)]) for s in SEEDS]
    ok = {
        schedule: {n: ok_interval(grids[n][schedule], args.tolerance) for n in tasks}
        for schedule in SCHEDULES
    }
    out: dict[str, Any] = {"tolerance": args.tolerance, "rules": [], "optima": []}
    print(f"\nBest rule per family (regret < {100 * args.tolerance:.0f}% on all range tests)\n")
    print(
        "| curves | schedule | family (tasks) | widest-margin rule | margin (decades) | "
        "c from / to | bounded by (needs larger c / smaller c) |"
    )
    print("|---|---|---|---|---:|---|---|")
    for mode in ("train", "val"):
        for schedule in SCHEDULES:
            for fam, members in (
                ("sgd", [n for n in tasks if family[n] == "sgd"]),
                (
                    "sgd without the fresh tasks",
                    [n for n in tasks if family[n] == "sgd" and n not in FRESH_TASKS],
                ),
                ("adaptive", [n for n in tasks if family[n] == "adaptive"]),
            ):
                r = best_rule(members, curves[mode], ok[schedule])
                r.update(curves=mode, schedule=schedule, family=fam, tasks=members)
                out["rules"].append(r)
                print(
                    f"| {mode} | {schedule} | {fam} ({len(members)}) | {r['rule']} | "
                    f"{r['margin_decades']:+.2f} | {r['c_range'][0]:.3g} / {r['c_range'][1]:.3g}"
                    f" | {r['needs_c_at_least']} / {r['needs_c_at_most']} |"
                )
    print(
        "\nPer task: width of the lr interval within the tolerance (decades) against the "
        "smallest spread of any feature over the 6 range tests (training-loss curves)\n"
    )
    print("| task | width, constant | width, cosine | steadiest feature | its spread |")
    print("|---|---:|---:|---|---:|")
    out["spread"] = []
    for n in tasks:
        widths = {sch: ok[sch][n][1] - ok[sch][n][0] for sch in SCHEDULES}
        spreads = {
            k: max(f[k] for f in curves["train"][n]) - min(f[k] for f in curves["train"][n])
            for k in curves["train"][n][0]
        }
        steadiest = min(spreads, key=lambda k: spreads[k])
        out["spread"].append(
            {
                "task": n,
                "width_decades": widths,
                "feature": steadiest,
                "spread_decades": spreads[steadiest],
            }
        )
        print(
            f"| {n} | {widths['constant']:.2f} | {widths['cosine']:.2f} | {steadiest} | "
            f"{spreads[steadiest]:.2f} |"
        )
    print(
        "\nConstant lr: grid lr with the lowest final validation loss vs the lowest final "
        "training loss (means over seeds 0-2)\n"
    )
    print("| task | best lr by val loss | best lr by train loss | ratio |")
    print("|---|---:|---:|---:|")
    for n in tasks:
        g = grids[n]["constant"]
        finite = [lr for lr, v in zip(g["lrs"], g["loss"], strict=True) if math.isfinite(v)]
        tl = train_losses(get_task(n), finite, allow_train=allow)
        means = {lr: float(np.mean(tl[lr_key(lr)])) for lr in finite}
        by_train = min(means, key=lambda lr: means[lr])
        out["optima"].append(
            {
                "task": n,
                "best_lr_val": g["best_lr"],
                "best_lr_train": by_train,
                "train_loss": {lr_key(k): v for k, v in means.items()},
            }
        )
        print(f"| {n} | {g['best_lr']:.3g} | {by_train:.3g} | {by_train / g['best_lr']:.2g}x |")
    out["seconds"] = round(time.perf_counter() - start, 1)
    out["command"] = "python benchmarks/finder/feasibility.py" + (" --quick" if args.quick else "")
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {RESULTS} in {out['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
