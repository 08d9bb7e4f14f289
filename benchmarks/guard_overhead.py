"""Overhead of ``lrkit.Guard`` on a small model's training step (snapshots excluded).

Usage (from the repository root)::

    .venv/bin/python benchmarks/guard_overhead.py   # -> benchmarks/results/guard_overhead.json

A small MLP (64-128-10, batch 64, Adam; the digits task's size) is trained on CPU with
``torch.set_num_threads(1)``. Blocks of ``--block`` steps alternate between

* ``plain``: forward, backward, ``loss.item()`` (a loop logs it anyway), optimizer step;
* ``guard``: the same plus ``guard.step(step, loss_value, grad_norm=...)`` (policy "warn");
* ``lightning``: the same plus Lightning's ``SpikeDetection.on_train_batch_end`` (the tool a user
  would otherwise pick; needs a Fabric, replaced here by a minimal single-process stand-in);

and the per-step times are compared in the same run: as medians over all steps of a mode, and
(the robust figure on a shared machine) as the median over rounds of the ratio of one block's
median step time to the median of the ``plain`` block of the same round. The guard is also timed
alone (``guard.step`` per call, microseconds) as a check on the difference of medians.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrkit.diagnosis._guard import Guard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks" / "diagnose"))

from _lightning import FabricStandIn  # noqa: E402
from _tasks import digits_cnn, digits_mlp  # noqa: E402


def make_lightning_detector() -> Any:
    try:
        from lightning.fabric.utilities.spike import SpikeDetection
    except Exception:  # noqa: BLE001 - optional comparison
        return None
    return SpikeDetection(exclude_batches_path="/tmp/lrkit-guard-bench-skip.json")


MODELS = {
    "mlp": "MLP 64-128-10 (digits MLP), batch 64, Adam",
    "cnn": "CNN conv8-conv16-pool-linear on 1x8x8 (digits CNN), batch 64, Adam",
}


def make_model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    return (digits_mlp(), (64,)) if name == "mlp" else (digits_cnn(), (1, 8, 8))


def run(model_name: str, steps: int, block: int, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model, shape = make_model(model_name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = torch.randn(4096, *shape)
    y_all = torch.randint(0, 10, (4096,))
    guard = Guard(policy="warn")
    spike = make_lightning_detector()
    fabric = FabricStandIn()
    modes = ["plain", "guard"] + (["lightning"] if spike is not None else [])
    times: dict[str, list[float]] = {m: [] for m in modes}
    block_medians: dict[str, list[float]] = {m: [] for m in modes}
    guard_calls: list[float] = []
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    step = 0
    batch_idx = 0
    n_blocks = steps // block
    for b in range(n_blocks * len(modes)):
        mode = modes[b % len(modes)]
        this_block: list[float] = []
        for _ in range(block):
            idx = torch.randint(0, 4096, (64,), generator=gen)
            x, y = x_all[idx], y_all[idx]
            t0 = time.perf_counter()
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            value = loss.item()
            if mode == "guard":
                t1 = time.perf_counter()
                guard.step(step, value)
                guard_calls.append(time.perf_counter() - t1)
            elif mode == "lightning":
                spike.on_train_batch_end(fabric, loss.detach(), None, batch_idx)
                batch_idx += 1
            opt.step()
            this_block.append(time.perf_counter() - t0)
            step += 1
        times[mode] += this_block
        block_medians[mode].append(statistics.median(this_block))
    # a second guard with gradient norms (the user computes the norm; we time only the guard)
    g2 = Guard(policy="warn")
    gn = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]).item()
    t0 = time.perf_counter()
    for s in range(20000):
        g2.step(s, 1.0 + 0.001 * (s % 7), grad_norm=gn)
    per_call_gn = (time.perf_counter() - t0) / 20000
    med = {m: statistics.median(v) for m, v in times.items()}
    paired = {
        m: 100
        * (
            statistics.median(
                [a / b for a, b in zip(block_medians[m], block_medians["plain"], strict=True)]
            )
            - 1
        )
        for m in modes
        if m != "plain"
    }
    result: dict[str, Any] = {
        "steps_per_mode": {m: len(v) for m, v in times.items()},
        "median_step_us": {m: 1e6 * v for m, v in med.items()},
        "guard_overhead_pct": 100 * (med["guard"] - med["plain"]) / med["plain"],
        "guard_overhead_paired_pct": paired["guard"],
        "rounds": n_blocks,
        "guard_call_median_us": 1e6 * statistics.median(guard_calls),
        "guard_call_mean_us": 1e6 * statistics.fmean(guard_calls),
        # the slowest 1% of calls are mostly the process being preempted on a shared machine
        "guard_call_trimmed_mean_us": 1e6
        * statistics.fmean(sorted(guard_calls)[: int(0.99 * len(guard_calls))]),
        "guard_call_with_grad_norm_mean_us": 1e6 * per_call_gn,
        "guard_call_pct_of_plain_step": 100 * statistics.fmean(guard_calls) / med["plain"],
        "guard_call_trimmed_pct_of_plain_step": 100
        * statistics.fmean(sorted(guard_calls)[: int(0.99 * len(guard_calls))])
        / med["plain"],
        "guard_events": len(guard.events),
    }
    if "lightning" in med:
        result["lightning_spike_detection_overhead_pct"] = (
            100 * (med["lightning"] - med["plain"]) / med["plain"]
        )
        result["lightning_spike_detection_overhead_paired_pct"] = paired["lightning"]
    return result


LIGHTNING_KEY = "lightning_spike_detection_overhead_paired_pct"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6000, help="steps per mode (the CNN: a quarter)")
    ap.add_argument("--block", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "guard_overhead.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    models: dict[str, Any] = {}
    for name, text in MODELS.items():
        steps = args.steps if name == "mlp" else args.steps // 4
        reps = [run(name, steps, args.block, seed=r) for r in range(args.repeats)]
        summary: dict[str, Any] = {"model": text, "steps_per_mode": steps}
        for key in reps[0]:
            values = [r[key] for r in reps]
            if all(isinstance(v, (int, float)) for v in values):
                summary[key] = statistics.median(values)
                summary[key + "_repeats"] = values
        summary["median_step_us"] = {
            m: statistics.median(r["median_step_us"][m] for r in reps)
            for m in reps[0]["median_step_us"]
        }
        models[name] = summary
        print(
            f"{name}: plain step {summary['median_step_us']['plain']:.0f} us, guard overhead "
            f"{summary['guard_overhead_paired_pct']:.2f}% (paired; repeats "
            f"{[round(v, 2) for v in summary['guard_overhead_paired_pct_repeats']]}), "
            f"guard call median {summary['guard_call_median_us']:.1f} us; Lightning "
            f"SpikeDetection {summary.get(LIGHTNING_KEY, math.nan):.1f}%",
            flush=True,
        )
    result = {
        "benchmark": "guard_overhead",
        "statistic": "median over repeats; overhead = median over rounds of (block median step "
        "time with the hook / block median step time without, same round) - 1",
        "models": models,
        "config": {
            "threads": 1,
            "block": args.block,
            "repeats": args.repeats,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_start": load,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
