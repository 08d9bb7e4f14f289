"""Training steps each search method spends until it first finds a learning rate whose final
validation loss is within 2% of the full grid's best, on lrkit's built-in tasks.

    python benchmarks/tune/search_cost.py [--tasks diabetes breast_cancer digits] [--seeds 3]

Methods (each a sampler seed per run; every trial trains the task for its full budget unless
pruned; the training seed is fixed, so the grid is the ground truth):
  grid            the full log grid, 3 points/decade over 1e-6..1 (its cost: every point)
  random          Optuna RandomSampler over 1e-6..1 (log)
  tpe             Optuna TPESampler over 1e-6..1 (log)
  tpe+hyperband   TPE with Hyperband pruning on the reported validation loss
  lrkit           lrkit.tune(space="auto"): range test first (its steps are counted), search
                  around its suggestion (tried first), TPE + Hyperband
A run that finds no hit within twice the grid's number of trials counts as "not found"
(infinite steps in the median; the medians say "not found" when most seeds missed). When the
range test gives no suggestion, the lrkit method searches the default range with TPE +
Hyperband instead (its range-test steps still count; the run is marked).
Results: benchmarks/results/tune_search.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from lrkit.tasks import get_task
from lrkit.tune import TrialRecord, tune
from lrkit.tune._task import TaskObjective

RESULTS = Path(__file__).resolve().parents[1] / "results" / "tune_search.json"
TOLERANCE = 0.02
METHODS = ("grid", "random", "tpe", "tpe+hyperband", "lrkit")


class _Hit(Exception):
    pass


def _grid(task: str) -> dict[str, Any]:
    objective = TaskObjective(task)
    result = tune(objective, strategy="grid", storage=":memory:", study_name=f"grid-{task}")
    done = [t for t in result.trials if t.state == "complete"]
    assert result.best_value is not None
    return {
        "best_value": result.best_value,
        "best_lr": result.best_params["lr"],
        "points": len(result.trials),
        "steps": sum(t.steps or 0 for t in result.trials),
        "values": {f"{t.params['lr']:.3g}": t.value for t in done},
    }


def _search(task: str, method: str, seed: int, target: float, max_trials: int) -> dict[str, Any]:
    objective = TaskObjective(task)
    steps = 0
    hit: TrialRecord | None = None
    trials = 0

    def on_trial(record: TrialRecord) -> None:
        nonlocal steps, hit, trials
        trials += 1
        steps += record.steps or 0
        if record.state == "complete" and record.value is not None and record.value <= target:
            hit = record
            raise _Hit

    kwargs: dict[str, Any] = {}
    extra = 0
    if method == "random":
        kwargs = {"strategy": "random"}
    elif method == "tpe":
        kwargs = {"strategy": "tpe"}
    elif method == "tpe+hyperband":
        kwargs = {"strategy": "tpe", "early_stopping": "hyperband"}
    elif method == "lrkit":
        kwargs = {
            "strategy": "tpe",
            "early_stopping": "hyperband",
            "space": "auto",
            "setup": get_task(task),
        }
    storage = optuna.storages.InMemoryStorage()
    range_test = None
    fallback = False
    if method == "lrkit":
        try:
            from lrkit.tune._tune import _auto_space

            _auto_space(get_task(task), seed)
        except ValueError:
            fallback = True
            kwargs = {"strategy": "tpe", "early_stopping": "hyperband"}
            range_test = {"steps": _range_test_steps(task, seed)}
    try:
        result = tune(
            objective,
            n_trials=max_trials,
            seed=seed,
            storage=storage,
            study_name=f"{method}-{task}-{seed}",
            max_steps=objective.budget,
            on_trial=on_trial,
            **kwargs,
        )
        range_test = result.range_test
    except _Hit:
        pass
    if method == "lrkit":
        # the range test ran before the first trial; read its cost again when a hit cut the
        # run short (same task seed: the same curve)
        if range_test is None:
            from lrkit.tune._tune import _auto_space

            range_test = _auto_space(get_task(task), seed)[1]
        extra = int(range_test["steps"])
    return {
        "seed": seed,
        "steps": steps + extra if hit is not None else math.inf,
        "spent": steps + extra,
        "fallback": fallback,
        "range_test_steps": extra,
        "trials": trials,
        "found": hit is not None,
        "hit_lr": None if hit is None else hit.params["lr"],
        "hit_value": None if hit is None else hit.value,
    }


def _range_test_steps(task: str, seed: int) -> int:
    from lrkit.finder import find_lr

    s = get_task(task).setup(seed=seed)
    test = find_lr(s.model, s.optimizer, s.loss_fn, s.train_loader)
    curve = test.train_losses if test.train_losses is not None else test.losses
    return len(curve)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["diabetes", "breast_cancer", "digits"])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out: dict[str, Any] = {
        "benchmark": "tune_search_cost",
        "command": "python benchmarks/tune/search_cost.py " + " ".join(argv),
        "tolerance": TOLERANCE,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "threads": 1,
        },
        "tasks": {},
    }
    for task in args.tasks:
        start = time.perf_counter()
        grid = _grid(task)
        target = grid["best_value"] * (1 + TOLERANCE)
        rows: dict[str, Any] = {"grid": {"median_steps": grid["steps"], "runs": []}}
        for method in METHODS[1:]:
            runs = [
                _search(task, method, seed, target, grid["points"]) for seed in range(args.seeds)
            ]
            rows[method] = {
                "median_steps": _median([r["steps"] for r in runs]),
                "found": sum(r["found"] for r in runs),
                "runs": runs,
            }
        best_method = min(
            (m for m in ("tpe+hyperband", "lrkit")), key=lambda m: rows[m]["median_steps"]
        )
        summary = {
            m: {
                "median_steps": rows[m]["median_steps"],
                "vs_grid": rows[m]["median_steps"] / grid["steps"],
                "vs_tpe": rows[m]["median_steps"] / rows["tpe"]["median_steps"],
            }
            for m in METHODS
        }
        out["tasks"][task] = {
            "budget": TaskObjective(task).budget,
            "grid": grid,
            "methods": rows,
            "summary": summary,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(
            f"{task}: grid best {grid['best_value']:.4f} at lr {grid['best_lr']:.3g}, "
            f"{grid['steps']} steps",
            flush=True,
        )
        for m in METHODS:
            s = summary[m]
            found = "" if m == "grid" else f" found {rows[m]['found']}/{args.seeds}"
            print(
                f"  {m:14s} median steps {s['median_steps']:>8.0f}  {s['vs_grid']:6.1%} of grid"
                f"  {s['vs_tpe']:6.2f}x tpe{found}",
                flush=True,
            )
        print(f"  best of the early-stopping methods: {best_method}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(_finite(out), indent=1))
    print(f"wrote {RESULTS}")


def _finite(value: Any) -> Any:
    """JSON has no infinity: "not found" medians and runs are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    main(sys.argv[1:])
