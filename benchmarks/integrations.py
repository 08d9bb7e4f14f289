"""Lightning's ``Tuner.lr_find`` vs lrkit's Lightning range test: same module, precision and
accumulation, in one run; time, curves, and each suggestion's regret against a grid.

Task: lrkit's built-in tasks as a ``LightningModule`` (model, optimizer, loss and data of
``lrkit.tasks.get_task(name).setup(seed=...)``), trained by a Lightning ``Trainer`` with
``precision="bf16-mixed"`` and ``accumulate_grad_batches=2`` (micro-batches of half the task's
batch size, so an optimizer step sees the task's batch) for the task's full budget of optimizer
steps at a constant learning rate. Score: the final validation loss.

* Ground truth: that training on a grid of learning rates, 4 per decade, 3 seeds (cached).
* Per seed, on a fresh module and Trainer with those settings, each tool with its defaults:
  ``Tuner(trainer).lr_find(model)`` (1e-8 .. 1, 100 steps, its steepest-slope suggestion) and
  ``lrkit.integrations.lightning.find_lr(trainer, model)`` (1e-7 .. 10, 100 steps, lrkit's
  rule for a constant lr); both timed; then the full training at each suggestion, same seed.
  A control separates Lightning's rule from its handling of accumulation: the Tuner again with
  ``accumulate_grad_batches=1`` and the whole step's batch in one micro-batch (its suggestion
  trained with the benchmark's settings, like the others).
* Regret of a suggestion: its final validation loss minus the best grid point's mean over
  seeds; the noise of the ground truth is the seed-to-seed standard deviation at that point.

Run (a few minutes on 2 cores; the grid is cached, so a rerun only redoes the range tests)::

    nice -n 10 .venv/bin/python benchmarks/integrations.py            # digits
    nice -n 10 .venv/bin/python benchmarks/integrations.py --tasks digits synthetic

It writes ``benchmarks/results/integrations.json`` and the curves of seed 0 to
``benchmarks/results/integrations.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import logging
import math
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import lrkit
from lrkit.tasks import evaluate, get_task, make_optimizer

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import lightning.pytorch as L  # noqa: E402
from lightning.pytorch.tuner import Tuner  # noqa: E402

from lrkit.integrations.lightning import find_lr  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "integrations.json"
PLOT = HERE / "results" / "integrations.png"
SEEDS = (0, 1, 2)
POINTS_PER_DECADE = 4
SPAN = (-4.0, 0.0)  # log10 of the grid's ends
PRECISION = "bf16-mixed"
ACCUMULATE = 2
#: the two tools, and a control: Lightning's Tuner without accumulation (a step's batch in one
#: micro-batch), its suggestion scored like the others (trained with accumulation)
TOOLS = ("lightning", "lrkit", "lightning_no_accumulation")
COLORS = {"lrkit": "C0", "lightning": "C1", "lightning_no_accumulation": "C3"}


class TaskModule(L.LightningModule):  # type: ignore[misc]
    """A built-in lrkit task as a LightningModule (its model, optimizer, loss and data)."""

    def __init__(
        self, task_name: str, seed: int, lr: float = 1e-3, accumulate: int = ACCUMULATE
    ) -> None:
        super().__init__()
        self.task = get_task(task_name)
        self.lr = lr
        self.setup_ = self.task.setup(
            lr=lr, seed=seed, batch_size=self.task.batch_size // accumulate
        )
        self.model = self.setup_.model

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss: torch.Tensor = self.setup_.loss_fn(self.model(x), y)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.task.optimizer, list(self.model.parameters()), self.lr)


def _trainer(root: str, max_steps: int, accumulate: int = ACCUMULATE) -> Any:
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=PRECISION,
        accumulate_grad_batches=accumulate,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )


def _quiet() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def train(task_name: str, lr: float, seed: int) -> float:
    """Final validation loss after the task's full budget at ``lr`` (inf when it diverged)."""
    module = TaskModule(task_name, seed, lr)
    with tempfile.TemporaryDirectory() as root, _quiet():
        _trainer(root, module.task.budget).fit(module, module.setup_.train_loader)
    value = evaluate(module.setup_)
    return value if math.isfinite(value) else math.inf


def _key(lr: float, seed: int) -> str:
    return f"{lr:.6g}/{seed}"


def _encode(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"


def _decode(value: float | str) -> float:
    return float(value)


def grid_lrs() -> list[float]:
    low, high = SPAN
    n = int(round((high - low) * POINTS_PER_DECADE)) + 1
    return [float(v) for v in np.logspace(low, high, n)]


def _lightning(task_name: str, seed: int, root: str, accumulate: int) -> dict[str, Any]:
    """Lightning's ``Tuner(trainer).lr_find(model)`` with its defaults, timed."""
    module = TaskModule(task_name, seed, accumulate=accumulate)
    trainer = _trainer(root, module.task.budget, accumulate=accumulate)
    began = time.perf_counter()
    finder = Tuner(trainer).lr_find(module, train_dataloaders=module.setup_.train_loader)
    seconds = time.perf_counter() - began
    assert finder is not None
    return {
        "seconds": seconds,
        "suggestion": finder.suggestion(),
        "lrs": [float(v) for v in finder.results["lr"]],
        "smoothed": [float(v) for v in finder.results["loss"]],
    }


def run_tools(task_name: str, seed: int) -> dict[str, Any]:
    """Both range tests on fresh, identical modules and Trainers; wall time of each."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as root, _quiet():
        out["lightning"] = _lightning(task_name, seed, root, ACCUMULATE)
        # control: Lightning's Tuner on the same batches per step without accumulation
        out["lightning_no_accumulation"] = _lightning(task_name, seed, root, 1)
        module = TaskModule(task_name, seed)
        trainer = _trainer(root, module.task.budget)
        began = time.perf_counter()
        result = find_lr(trainer, module, train_dataloaders=module.setup_.train_loader)
        seconds = time.perf_counter() - began
        saved = result.to_dict()
        out["lrkit"] = {
            "seconds": seconds,
            "suggestion": result.suggestion,
            "reason": result.suggestion_reason,
            "stop_reason": result.stop_reason,
            "lrs": saved["lrs"],
            "losses": saved["losses"],
            "smoothed": saved["smoothed"],
        }
    return out


def score(task_name: str, cache: dict[str, float | str], fresh: bool) -> dict[str, Any]:
    def val(lr: float, seed: int) -> float:
        key = _key(lr, seed)
        if fresh or key not in cache:
            cache[key] = _encode(train(task_name, lr, seed))
        return _decode(cache[key])

    began = time.perf_counter()
    grid = grid_lrs()
    table = {lr: [val(lr, s) for s in SEEDS] for lr in grid}
    grid_seconds = time.perf_counter() - began
    means = {
        lr: statistics.fmean(v) if all(map(math.isfinite, v)) else math.inf
        for lr, v in table.items()
    }
    best_lr = min(means, key=lambda lr: means[lr])
    best = means[best_lr]
    noise = statistics.stdev(table[best_lr])
    runs = {seed: run_tools(task_name, seed) for seed in SEEDS}
    tools: dict[str, Any] = {}
    for tool in TOOLS:
        rows = []
        for seed in SEEDS:
            lr = runs[seed][tool]["suggestion"]
            loss = val(lr, seed) if lr is not None else math.nan
            rows.append(
                {
                    "seed": seed,
                    "suggestion": lr,
                    "seconds": runs[seed][tool]["seconds"],
                    "val_loss": _encode(loss) if not math.isnan(loss) else None,
                    "regret": _encode(loss - best) if not math.isnan(loss) else None,
                }
            )
        regrets = [_decode(r["regret"]) for r in rows if r["regret"] is not None]
        tools[tool] = {
            "rows": rows,
            "median_seconds": statistics.median(r["seconds"] for r in rows),
            "mean_regret": _encode(statistics.fmean(regrets)) if regrets else None,
            "no_suggestion": sum(r["suggestion"] is None for r in rows),
        }
    return {
        "task": task_name,
        "description": get_task(task_name).description,
        "budget_steps": get_task(task_name).budget,
        "grid": {
            "lrs": grid,
            "val_loss": {f"{lr:.6g}": [_encode(v) for v in vs] for lr, vs in table.items()},
            "best_lr": best_lr,
            "best_mean_val_loss": best,
            "seed_std_at_best": noise,
            "seconds_this_run": grid_seconds,  # ~0 when the grid came from the cache
        },
        "tools": tools,
        "curves_seed0": runs[0],
    }


def plot(report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = report["tasks"]
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks, strict=True):
        curves = task["curves_seed0"]
        ax = row[0]
        ours = curves["lrkit"]
        theirs = curves["lightning"]
        ax.plot(
            ours["lrs"],
            [float(v) for v in ours["losses"]],
            color="C0",
            alpha=0.3,
            label="lrkit: loss of each step",
        )
        ax.plot(
            ours["lrs"], [float(v) for v in ours["smoothed"]], color="C0", label="lrkit: smoothed"
        )
        ax.plot(theirs["lrs"], theirs["smoothed"], color="C1", label="Lightning Tuner: smoothed")
        control = curves["lightning_no_accumulation"]
        ax.plot(
            control["lrs"],
            control["smoothed"],
            color="C1",
            ls=":",
            label="Lightning Tuner without accumulation (control)",
        )
        for tool, color in (("lrkit", "C0"), ("lightning", "C1")):
            lr = curves[tool]["suggestion"]
            if lr is not None:
                ax.axvline(lr, color=color, ls="--", lw=1)
        ax.axvline(task["grid"]["best_lr"], color="k", ls=":", lw=1, label="grid's best lr")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title(f"{task['task']}: range tests, seed 0 ({PRECISION}, accumulate {ACCUMULATE})")
        finite = [float(v) for v in ours["smoothed"] if math.isfinite(float(v))]
        if finite:
            ax.set_ylim(0, 2.5 * max(finite[: max(1, len(finite) // 2)]))
        ax.legend(fontsize=8)
        ax = row[1]
        grid = task["grid"]
        lrs = grid["lrs"]
        for seed in SEEDS:
            ax.plot(
                lrs,
                [float(grid["val_loss"][f"{lr:.6g}"][seed]) for lr in lrs],
                "o-",
                color="0.6",
                ms=3,
                lw=0.8,
            )
        for tool, color in COLORS.items():
            for r in task["tools"][tool]["rows"]:
                if r["suggestion"] is not None and r["val_loss"] is not None:
                    ax.plot(r["suggestion"], float(r["val_loss"]), "D", color=color, ms=6)
        ax.plot([], [], "D", color="C0", label="lrkit's suggestions")
        ax.plot([], [], "D", color="C1", label="Lightning's suggestions")
        ax.plot([], [], "D", color="C3", label="Lightning's, without accumulation")
        ax.plot([], [], "o-", color="0.6", label="grid (3 seeds)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("learning rate (constant, full budget)")
        ax.set_ylabel("final validation loss")
        ax.set_title(f"{task['task']}: ground truth")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["digits"])
    parser.add_argument("--fresh", action="store_true", help="retrain the grid (ignore the cache)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    caches: dict[str, dict[str, float | str]] = previous.get("cache", {})
    report: dict[str, Any] = {
        "benchmark": "integrations",
        "command": "nice -n 10 .venv/bin/python benchmarks/integrations.py --tasks "
        + " ".join(args.tasks),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "lrkit": lrkit.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M"),
        "load_average_1min": os.getloadavg()[0],
        "threads": 1,
        "precision": PRECISION,
        "accumulate_grad_batches": ACCUMULATE,
        "grid": {"points_per_decade": POINTS_PER_DECADE, "span_log10": SPAN, "seeds": SEEDS},
        "tasks": [],
    }
    for name in args.tasks:
        cache = caches.setdefault(name, {})
        task = score(name, cache, args.fresh)
        report["tasks"].append(task)
        for tool in TOOLS:
            t = task["tools"][tool]
            print(
                f"{name:10s} {tool:25s} {t['median_seconds']:5.2f}s  mean regret "
                f"{t['mean_regret']}  suggestions "
                f"{[r['suggestion'] and round(r['suggestion'], 5) for r in t['rows']]}",
                flush=True,
            )
        g = task["grid"]
        print(
            f"{name:10s} grid best lr {g['best_lr']:.3g}: val {g['best_mean_val_loss']:.4f} "
            f"+- {g['seed_std_at_best']:.4f} (seed std)",
            flush=True,
        )
    report["cache"] = caches
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    plot(report)


if __name__ == "__main__":
    main()
