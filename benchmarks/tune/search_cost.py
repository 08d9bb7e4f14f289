"""Training steps each search method spends until it first finds a learning rate whose final
validation loss is within 2% of the full grid's best, on the range-test benchmark's tasks.

    nice -n 5 python benchmarks/tune/search_cost.py [--tasks digits diabetes ...] [--seeds 5]

Tasks and ground truth come from the range-test benchmark (benchmarks/finder/): its tasks (the
built-in ones and the held-out ones), and its cached grid of final validation losses (constant
schedule, 3 points per decade over a span that brackets the optimum and reaches divergence).
Every trial here trains with training seed 0, so the ground truth is the grid's seed-0 column:
the grid best is the lowest seed-0 loss on the grid, and a hit is a complete trial whose final
validation loss is at most ``best + 2% * |best|``. Tasks whose grid is not complete in the
cache are skipped (listed in the JSON).

Methods (the sampler seed varies over runs; the training seed does not):
  grid            the full grid (its cost: every point, the task's budget each)
  random          Optuna RandomSampler, log-uniform over the grid's span
  tpe             Optuna TPESampler over the grid's span
  tpe+hyperband   TPE with Hyperband pruning on the reported validation loss, same span
  lrkit           lrkit.tune(space="auto"): the range test first (its steps count; its setup
                  seed is the run's seed), search around its suggestion (tried first), TPE +
                  Hyperband. It is not told the grid's span: when the range test gives no
                  suggestion it searches lrkit's default range 1e-6..1 (the run is marked).
The baselines get the grid's span, i.e. a range someone already knows brackets the optimum:
that favours them. A run that finds no hit within twice the grid's number of trials counts as
"not found" (infinite steps; a median is "not found" when most runs missed).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "finder"))

from common import RunCache, all_tasks, get_task, grid_lrs  # noqa: E402

from lrkit.tasks import Task  # noqa: E402
from lrkit.tuning import TrialRecord, tune  # noqa: E402
from lrkit.tuning._task import TaskObjective  # noqa: E402
from lrkit.tuning._tune import _auto_space  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "tune_search.json"
TOLERANCE = 0.02
TRAIN_SEED = 0
METHODS = ("grid", "random", "tpe", "tpe+hyperband", "lrkit")


class _Hit(Exception):
    pass


def _ground_truth(task: Task) -> dict[str, Any] | None:
    """The seed-0 column of the range-test benchmark's constant-schedule grid, or None."""
    for attempt in range(10):  # the range-test benchmark may be rewriting its cache right now
        try:
            cache = RunCache(task)
            break
        except json.JSONDecodeError:
            if attempt == 9:
                raise
            time.sleep(1.0)
    span = cache.grid.get("constant")
    if span is None:
        return None
    lrs = grid_lrs(*span)
    values = [cache.get("constant", lr, TRAIN_SEED) for lr in lrs]
    if any(v is None for v in values):
        return None
    losses = [float(v) for v in values if v is not None]
    best_i = min(range(len(lrs)), key=lambda i: losses[i])
    best = losses[best_i]
    return {
        "span": [10 ** span[0], 10 ** span[1]],
        "points": len(lrs),
        "steps": len(lrs) * task.budget,
        "best_value": best,
        "best_lr": lrs[best_i],
        "target": best + TOLERANCE * abs(best),
        "values": {f"{lr:.4g}": v for lr, v in zip(lrs, losses, strict=True)},
    }


def _search(
    task: Task, method: str, seed: int, truth: dict[str, Any], max_trials: int
) -> dict[str, Any]:
    objective = TaskObjective(task, seed=TRAIN_SEED)
    steps = 0
    trials = 0
    hit: TrialRecord | None = None

    def on_trial(record: TrialRecord) -> None:
        nonlocal steps, hit, trials
        trials += 1
        steps += record.steps or 0
        if (
            record.state == "complete"
            and record.value is not None
            and record.value <= truth["target"]
        ):
            hit = record
            raise _Hit

    span = {"lr": ("log", *truth["span"])}
    kwargs: dict[str, Any] = {
        "random": {"strategy": "random", "space": span},
        "tpe": {"strategy": "tpe", "space": span},
        "tpe+hyperband": {"strategy": "tpe", "early_stopping": "hyperband", "space": span},
        "lrkit": {"strategy": "tpe", "early_stopping": "hyperband", "space": "auto"},
    }[method]
    range_steps = 0
    fallback = False
    suggestion = None
    if method == "lrkit":
        # the same range test tune() runs first (same setup seed: the same curve), read here
        # for its cost, which a hit cuts short of tune()'s result
        try:
            _, info = _auto_space(task, seed)
            range_steps, suggestion = int(info["steps"]), info["suggestion"]
            kwargs["setup"] = task
        except ValueError:
            fallback = True
            kwargs["space"] = None
            range_steps = _range_test_steps(task, seed)
    start = time.perf_counter()
    try:
        tune(
            objective,
            n_trials=max_trials,
            seed=seed,
            storage=optuna.storages.InMemoryStorage(),
            study_name=f"{method}-{task.name}-{seed}",
            max_steps=objective.budget,
            on_trial=on_trial,
            **kwargs,
        )
    except _Hit:
        pass
    total = steps + range_steps
    return {
        "seed": seed,
        "steps": total if hit is not None else math.inf,
        "spent": total,
        "range_test_steps": range_steps,
        "suggestion": suggestion,
        "fallback": fallback,
        "trials": trials,
        "found": hit is not None,
        "hit_lr": None if hit is None else hit.params["lr"],
        "hit_value": None if hit is None else hit.value,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _range_test_steps(task: Task, seed: int) -> int:
    from lrkit.finder import find_lr

    s = task.setup(seed=seed)
    test = find_lr(s.model, s.optimizer, s.loss_fn, s.train_loader, step_fn=s.step_fn)
    curve = test.train_losses if test.train_losses is not None else test.losses
    return len(curve)


def _finder_version() -> dict[str, Any]:
    """The commit of the range-test code the suggestions came from (its rule may change)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        log = subprocess.run(
            ["git", "log", "-1", "--format=%h %cI", "--", "src/lrkit/finder"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src/lrkit/finder"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": log[0], "date": log[1], "uncommitted_changes": bool(dirty)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=[t.name for t in all_tasks()])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out: dict[str, Any] = {
        "benchmark": "tune_search_cost",
        "command": "nice -n 5 python benchmarks/tune/search_cost.py " + " ".join(argv),
        "tolerance": TOLERANCE,
        "train_seed": TRAIN_SEED,
        "seeds": args.seeds,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "threads": 1,
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "finder_code": _finder_version(),
        "skipped": {},
        "tasks": {},
    }
    truths = {name: _ground_truth(get_task(name)) for name in args.tasks}
    for name in args.tasks:
        task = get_task(name)
        truth = truths[name]
        if truth is None:
            out["skipped"][name] = "the range-test benchmark's grid is not complete in its cache"
            print(f"{name}: skipped (grid not cached)", flush=True)
            continue
        start = time.perf_counter()
        rows: dict[str, Any] = {"grid": {"median_steps": truth["steps"], "found": None}}
        for method in METHODS[1:]:
            runs = [
                _search(task, method, seed, truth, 2 * truth["points"])
                for seed in range(args.seeds)
            ]
            rows[method] = {
                "median_steps": float(statistics.median(r["steps"] for r in runs)),
                "found": sum(r["found"] for r in runs),
                "runs": runs,
            }
        summary = {
            m: {
                "median_steps": rows[m]["median_steps"],
                "vs_grid": rows[m]["median_steps"] / truth["steps"],
                "vs_tpe": rows[m]["median_steps"] / rows["tpe"]["median_steps"]
                if math.isfinite(rows["tpe"]["median_steps"])
                else 0.0,
            }
            for m in METHODS
        }
        out["tasks"][name] = {
            "budget": task.budget,
            "optimizer": task.optimizer,
            "grid": truth,
            "methods": rows,
            "summary": summary,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(
            f"{name}: grid best {truth['best_value']:.4f} at lr {truth['best_lr']:.3g}, "
            f"{truth['points']} points, {truth['steps']} steps",
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
