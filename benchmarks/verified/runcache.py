"""Training runs of the verified-lr benchmark, cached as compact JSON (one file per task).

Every learning rate trained here lies on one log lattice of 24 points per decade (grid points,
suggestions and search trials alike, so equal lrs share runs). A run is identified by
(schedule, lr, seed) and is trained for a prefix of the task's budget: the validation loss is
recorded at the "rung" steps ``r, 3r, 9r, ... < budget`` (``r = budget // 27``, Hyperband's
rungs) and at the end of the prefix. A search that stops a trial early reads the prefix it
needs; training the same run longer later retrains it from step 0 (deterministic: the prefix is
identical, validated in the README), so a cached value never depends on how far a run went.

Cache entry (``cache/runs_<task>.json``, ``runs[schedule][lr][seed]``): ``[steps, values,
diverged_at]``: ``values[i]`` is the validation loss at ``rungs[i]`` for the rungs
``<= steps``; ``diverged_at`` is the step (from 1) at which the loss went non-finite (then the
run is known to the end of its budget: every later value is infinite), else 0.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Protocol

import torch

from lrkit._setup import Setup
from lrkit.tasks import evaluate, train

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
sys.path.append(str(HERE.parent / "finder"))  # the range-test benchmark's task list

LATTICE = 24  # lattice points per decade
SCHEDULES = ("constant", "cosine")


class BenchTask(Protocol):
    """What the benchmark needs of a task (lrkit's built-in Task and FreshTask both fit)."""

    name: str
    budget: int

    def setup(self, *, lr: float = ..., seed: int = ...) -> Setup: ...


def lr_of(index: int) -> float:
    """The learning rate of lattice point ``index`` (``10 ** (index / 24)``, 4 digits)."""
    return float(f"{10 ** (index / LATTICE):.4g}")


def index_of(lr: float) -> int:
    """The nearest lattice point of ``lr`` (at most 4.9% away)."""
    return round(LATTICE * math.log10(lr))


def snap(lr: float) -> float:
    return lr_of(index_of(lr))


def key(lr: float) -> str:
    return f"{lr:.4g}"


def rung_steps(budget: int) -> list[int]:
    """``r, 3r, 9r, ...`` below ``budget`` (``r = max(1, budget // 27)``), then ``budget``: the
    steps at which Hyperband (min resource r, factor 3) compares trials."""
    step, out = max(1, budget // 27), []
    while step < budget:
        out.append(step)
        step *= 3
    return [*out, budget]


def schedule_spec(schedule: str, budget: int) -> str | None:
    return None if schedule == "constant" else f"cosine({budget})"


def _round(value: float) -> float:
    return float(f"{value:.6g}") if math.isfinite(value) else math.inf


def set_threads() -> None:
    torch.set_num_threads(1)


class RunCache:
    """Cached validation losses of one task (``allow_train=False``: KeyError when missing)."""

    def __init__(self, task: BenchTask, *, allow_train: bool = True) -> None:
        self.task = task
        self.allow_train = allow_train
        self.rungs = rung_steps(task.budget)
        self.path = CACHE / f"runs_{task.name}.json"
        data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        if data and (data["budget"] != task.budget or data["rungs"] != self.rungs):
            raise SystemExit(f"{self.path} was made with another budget")
        self.runs: dict[str, dict[str, dict[str, list[Any]]]] = data.get("runs", {})
        self.trained_steps = 0  # optimizer steps trained by this process (for timing)

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        payload = {
            "task": self.task.name,
            "budget": self.task.budget,
            "rungs": self.rungs,
            "runs": self.runs,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
        tmp.replace(self.path)

    def _entry(self, schedule: str, lr: float, seed: int) -> list[Any] | None:
        return self.runs.get(schedule, {}).get(key(lr), {}).get(str(seed))

    def value(self, schedule: str, lr: float, seed: int, step: int | None = None) -> float:
        """Validation loss after ``step`` (a rung; default the full budget) optimizer steps."""
        step = self.task.budget if step is None else step
        if step not in self.rungs:
            raise ValueError(f"step {step} is not a rung of {self.task.name}: {self.rungs}")
        lr = snap(lr)
        entry = self._entry(schedule, lr, seed)
        if entry is None or (entry[0] < step and not entry[2]):
            if not self.allow_train:
                raise KeyError(f"{self.task.name}/{schedule}/lr={key(lr)}/seed={seed}/{step}")
            entry = self._train(schedule, lr, seed, step)
        if entry[2] and step >= entry[2]:
            return math.inf
        return float(entry[1][self.rungs.index(step)])

    def spent(self, schedule: str, lr: float, seed: int, step: int | None = None) -> int:
        """Optimizer steps a run stopped after ``step`` really takes (less when it diverged)."""
        step = self.task.budget if step is None else step
        self.value(schedule, lr, seed, step)
        entry = self._entry(schedule, snap(lr), seed)
        assert entry is not None
        return min(step, entry[2]) if entry[2] else step

    def final(self, schedule: str, lr: float, seed: int) -> float:
        return self.value(schedule, lr, seed)

    def mean_final(self, schedule: str, lr: float, seeds: tuple[int, ...]) -> float:
        """Mean final validation loss over ``seeds``; inf when any of them diverged."""
        values = [self.final(schedule, lr, s) for s in seeds]
        return sum(values) / len(values) if all(math.isfinite(v) for v in values) else math.inf

    def _train(self, schedule: str, lr: float, seed: int, upto: int) -> list[Any]:
        task = self.task
        setup = task.setup(lr=lr, seed=seed)
        values: list[float] = []

        def on_step(step: int, loss: float) -> None:
            done = step + 1
            if done < upto and done in self.rungs and math.isfinite(loss):
                values.append(_round(evaluate(setup)))

        result = train(
            setup,
            lr=lr,
            steps=upto,
            schedule=schedule_spec(schedule, task.budget),
            seed=seed,
            on_step=on_step,
        )
        self.trained_steps += len(result.steps)
        if result.diverged:
            entry: list[Any] = [task.budget, values, len(result.steps)]
        else:
            entry = [upto, [*values, _round(result.final_val_loss)], 0]
        self.runs.setdefault(schedule, {}).setdefault(key(lr), {})[str(seed)] = entry
        self.save()
        return entry
