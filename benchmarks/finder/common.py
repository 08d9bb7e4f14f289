"""Shared pieces of the range-test benchmark: the cached LR grid, range-test curves, scoring.

Cache layout (committed, compact): ``cache/<task>.json`` holds, per schedule (``constant`` /
``cosine``), the final validation loss of every trained (lr, seed) pair (grid points and
suggestions alike), and ``cache/curves_<task>.json`` the range-test curves per seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lrkit.tasks import Task, list_tasks, train
from lrkit.tasks import get_task as builtin_task
from lrkit.tasks._data import CHARSET
from lrkit.tasks._tasks import mlp

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
SCHEDULES = ("constant", "cosine")
GRID_SEEDS = (0, 1, 2)
POINTS_PER_DECADE = 3
#: grid span by optimizer (extended automatically until it includes divergence)
SPAN = {
    "sgd_momentum": (-3.0, 1.0),
    "adam": (-4.0, 0.0),
    "adamw": (-4.0, 0.0),
    "rmsprop": (-4.0, 0.0),
}


class CharGRU(nn.Module):
    """A one-layer GRU character model (width 64): the benchmark's recurrent network."""

    def __init__(self, vocab: int, width: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.rnn = nn.GRU(width, width, batch_first=True)
        self.head = nn.Linear(width, vocab)

    def forward(self, ids: Tensor) -> Tensor:
        hidden, _ = self.rnn(self.embed(ids))
        out: Tensor = self.head(hidden)
        return out


def _variant(base: str, name: str, description: str, **changes: Any) -> Task:
    """The built-in task ``base`` (same data, budget, batch size, model unless changed) renamed."""
    return replace(builtin_task(base), name=name, description=description, data=base, **changes)


#: Benchmark-only tasks, added AFTER lrkit's rule was designed on the built-in tasks (design
#: seeds 0-2) and never used to choose its constants: a held-out check of the rule.
HELDOUT_TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        _variant(
            "digits",
            "digits_sgd",
            "scikit-learn digits, MLP 64-128-128-10, SGD + momentum 0.9",
            optimizer="sgd_momentum",
            default_lr=0.03,
        ),
        _variant(
            "synthetic_cls",
            "synthetic_cls_sgd",
            "generated 5-class problem, MLP with BatchNorm 20-64-64-5, SGD + momentum 0.9",
            optimizer="sgd_momentum",
            default_lr=0.03,
        ),
        _variant(
            "charlm",
            "charlm_gru",
            "character language model (sequences of 64), one-layer GRU (width 64), RMSprop",
            optimizer="rmsprop",
            model="rnn",
            build_model=lambda: CharGRU(len(CHARSET)),
        ),
    )
}


#: Benchmark-only tasks added while lrkit's rule was revised (v3) for SGD, and scored ONCE,
#: after that rule was frozen: nobody looked at their grids or curves before (a fresh check).
FRESH_TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        _variant(
            "diabetes",
            "diabetes_sgd",
            "scikit-learn diabetes regression, MLP 10-64-64-1, SGD + momentum 0.9",
            optimizer="sgd_momentum",
            default_lr=0.01,
        ),
        _variant(
            "breast_cancer",
            "breast_cancer_sgd",
            "scikit-learn breast cancer (2 classes), MLP 30-64-64-2 without BatchNorm, "
            "SGD + momentum 0.9",
            optimizer="sgd_momentum",
            default_lr=0.01,
            build_model=lambda: mlp([30, 64, 64, 2]),
        ),
    )
}


def get_task(name: str) -> Task:
    """A built-in task or one of :data:`HELDOUT_TASKS` / :data:`FRESH_TASKS`."""
    if name in HELDOUT_TASKS:
        return HELDOUT_TASKS[name]
    if name in FRESH_TASKS:
        return FRESH_TASKS[name]
    return builtin_task(name)


def all_tasks() -> list[Task]:
    """The built-in tasks (design), the held-out benchmark tasks, then the fresh ones."""
    return [*list_tasks(), *HELDOUT_TASKS.values(), *FRESH_TASKS.values()]


def lr_key(lr: float) -> str:
    """The cache key of a learning rate: 4 significant digits."""
    return f"{lr:.4g}"


def round_lr(lr: float) -> float:
    """Suggestions are trained at 3 significant digits (a <0.5% change) so runs cache well."""
    return float(f"{lr:.3g}")


def grid_lrs(lo_exp: float, hi_exp: float) -> list[float]:
    n = round((hi_exp - lo_exp) * POINTS_PER_DECADE)
    return [float(lr_key(10 ** (lo_exp + k / POINTS_PER_DECADE))) for k in range(n + 1)]


def schedule_spec(name: str, budget: int) -> str | None:
    return None if name == "constant" else f"cosine({budget})"


class RunCache:
    """Final validation losses by task, schedule, lr and seed, saved as JSON after each run."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.path = CACHE / f"{task.name}.json"
        data: dict[str, Any] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text())
        self.grid: dict[str, list[float]] = data.get("grid", {})
        self.runs: dict[str, dict[str, dict[str, float]]] = data.get(
            "runs", {s: {} for s in SCHEDULES}
        )
        self.budget = data.get("budget", task.budget)
        if self.budget != task.budget:
            raise SystemExit(f"cache {self.path} was made with budget {self.budget}")

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        payload = {
            "task": self.task.name,
            "budget": self.budget,
            "grid": self.grid,
            "runs": self.runs,
        }
        self.path.write_text(json.dumps(payload, indent=None, separators=(",", ":")) + "\n")

    def get(self, schedule: str, lr: float, seed: int) -> float | None:
        value = self.runs.get(schedule, {}).get(lr_key(lr), {}).get(str(seed))
        return None if value is None else float(value)

    def val_loss(self, schedule: str, lr: float, seed: int, *, allow_train: bool = True) -> float:
        cached = self.get(schedule, lr, seed)
        if cached is not None:
            return cached
        if not allow_train:
            raise KeyError(f"{self.task.name}/{schedule}/lr={lr_key(lr)}/seed={seed} not cached")
        result = train(
            self.task,
            lr=float(lr_key(lr)),
            seed=seed,
            schedule=schedule_spec(schedule, self.task.budget),
        )
        value = result.final_val_loss
        stored = float(f"{value:.6g}") if math.isfinite(value) else math.inf
        self.runs.setdefault(schedule, {}).setdefault(lr_key(lr), {})[str(seed)] = stored
        self.save()
        return stored

    def mean_val_loss(
        self,
        schedule: str,
        lr: float,
        seeds: tuple[int, ...] = GRID_SEEDS,
        *,
        allow_train: bool = True,
    ) -> float:
        values = [self.val_loss(schedule, lr, s, allow_train=allow_train) for s in seeds]
        return float(np.mean(values)) if all(math.isfinite(v) for v in values) else math.inf


def run_grid(task: Task, cache: RunCache, *, allow_train: bool = True) -> dict[str, Any]:
    """Train the full grid for both schedules (extending it until it brackets the optimum and
    reaches divergence); return ``{schedule: {"lrs": [...], "loss": [...], "best_lr", "best"}}``."""
    lo, hi = SPAN[task.optimizer]
    out: dict[str, Any] = {}
    for schedule in SCHEDULES:
        s_lo, s_hi = cache.grid.get(schedule, [lo, hi])
        while True:
            lrs = grid_lrs(s_lo, s_hi)
            losses = [cache.mean_val_loss(schedule, lr, allow_train=allow_train) for lr in lrs]
            best_i = int(np.argmin(losses))
            best = losses[best_i]
            top_bad = not math.isfinite(losses[-1]) or losses[-1] > 3 * best
            if best_i == 0 and s_lo > -7:
                s_lo -= 1
            elif (best_i >= len(lrs) - 2 or not top_bad) and s_hi < 3:
                s_hi += 1
            else:
                break
        if cache.grid.get(schedule) != [s_lo, s_hi]:
            cache.grid[schedule] = [s_lo, s_hi]
            cache.save()
        out[schedule] = {"lrs": lrs, "loss": losses, "best_lr": lrs[best_i], "best": best}
    return out


def fill_cache(
    path: Path, keys: list[str], compute: Callable[[str], Any], *, allow: bool, what: str
) -> dict[str, Any]:
    """The JSON mapping at ``path`` with ``compute(key)`` added for every missing key (saved
    once at the end); KeyError naming ``what`` when one is missing and ``allow`` is False."""
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    missing = [k for k in keys if k not in data]
    if missing and not allow:
        raise KeyError(f"{what} {missing[0]} not cached ({path.name})")
    for key in missing:
        data[key] = compute(key)
    if missing:
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return data


def range_curves(
    task: Task, seeds: list[int], *, allow_run: bool = True, val: bool = False
) -> dict[str, Any]:
    """Range-test curves (lrkit.finder.find_lr with its defaults) per seed, cached.

    ``val=True``: validation-loss mode (the task's validation loader, 2 batches after every
    step); the recorded losses are then validation losses.
    """
    from lrkit.finder import find_lr

    def run(seed: str) -> dict[str, Any]:
        setup = task.setup(seed=int(seed))
        start = time.perf_counter()
        test = find_lr(
            setup.model,
            setup.optimizer,
            setup.loss_fn,
            setup.train_loader,
            val_loader=setup.val_loader if val else None,
        )
        return {
            "lrs": [float(f"{v:.6g}") for v in test.lrs],
            "losses": [float(f"{v:.6g}") if math.isfinite(v) else str(v) for v in test.losses],
            "stop_reason": test.stop_reason,
            "seconds": round(time.perf_counter() - start, 3),
        }

    path = CACHE / f"curves_{'val_' if val else ''}{task.name}.json"
    keys = [str(seed) for seed in seeds]
    return fill_cache(path, keys, run, allow=allow_run, what=f"range-test curve {task.name} seed")


def curve_arrays(entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lrs, losses, smoothed)`` of a cached curve; smoothing as find_lr's default (0.98)."""
    from lrkit.finder import ema

    lrs = np.asarray(entry["lrs"], dtype=np.float64)
    losses = np.asarray([float(v) for v in entry["losses"]], dtype=np.float64)
    smoothed = ema(losses, 0.98)
    return lrs, losses, smoothed


def setup_threads() -> None:
    torch.set_num_threads(1)


__all__ = ["all_tasks", "get_task"]
