"""Overhead of ``lrkit.Guard`` on a small model's training step (snapshots excluded).

Usage (from the repository root)::

    .venv/bin/python benchmarks/guard_overhead.py   # -> benchmarks/results/guard_overhead.json

A small MLP (64-128-10, batch 64, Adam; the digits task's size) is trained on CPU with
``torch.set_num_threads(1)``. Blocks of ``--block`` steps alternate between

* ``plain``: forward, backward, ``loss.item()`` (a loop logs it anyway), optimizer step;
* ``guard``: the same plus ``guard.step(step, loss_value, grad_norm=...)`` (policy "warn");
* ``lightning``: the same plus Lightning's ``SpikeDetection.on_train_batch_end`` (the tool a user
  would otherwise pick; needs a Fabric, replaced here by a minimal single-process stand-in);

and the per-step times are compared as medians over all blocks, in the same run. The guard is
also timed alone (``guard.step`` per call, microseconds) as a check on the difference of medians.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrkit.diagnose._guard import Guard

ROOT = Path(__file__).resolve().parent.parent


class _Strategy:
    root_device = torch.device("cpu")

    def barrier(self) -> None:
        return None

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002
        return decision


class _FabricStandIn:
    """What SpikeDetection touches on a Fabric, for one CPU process."""

    strategy = _Strategy()
    global_rank = 0


def make_lightning_detector() -> Any:
    try:
        from lightning.fabric.utilities.spike import SpikeDetection
    except Exception:  # noqa: BLE001 - optional comparison
        return None
    return SpikeDetection(exclude_batches_path="/tmp/lrkit-guard-bench-skip.json")


def run(steps: int, block: int, seed: int) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = torch.randn(4096, 64)
    y_all = torch.randint(0, 10, (4096,))
    guard = Guard(policy="warn")
    spike = make_lightning_detector()
    fabric = _FabricStandIn()
    modes = ["plain", "guard"] + (["lightning"] if spike is not None else [])
    times: dict[str, list[float]] = {m: [] for m in modes}
    guard_calls: list[float] = []
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    step = 0
    batch_idx = 0
    n_blocks = steps // block
    for b in range(n_blocks * len(modes)):
        mode = modes[b % len(modes)]
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
            times[mode].append(time.perf_counter() - t0)
            step += 1
    # a second guard with gradient norms (the user computes the norm; we time only the guard)
    g2 = Guard(policy="warn")
    gn = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None]).item()
    t0 = time.perf_counter()
    for s in range(20000):
        g2.step(s, 1.0 + 0.001 * (s % 7), grad_norm=gn)
    per_call_gn = (time.perf_counter() - t0) / 20000
    med = {m: statistics.median(v) for m, v in times.items()}
    result: dict[str, Any] = {
        "steps_per_mode": {m: len(v) for m, v in times.items()},
        "median_step_us": {m: 1e6 * v for m, v in med.items()},
        "guard_overhead_pct": 100 * (med["guard"] - med["plain"]) / med["plain"],
        "guard_call_median_us": 1e6 * statistics.median(guard_calls),
        "guard_call_mean_us": 1e6 * statistics.fmean(guard_calls),
        "guard_call_with_grad_norm_mean_us": 1e6 * per_call_gn,
        "guard_call_pct_of_plain_step": 100 * statistics.fmean(guard_calls) / med["plain"],
        "guard_events": len(guard.events),
    }
    if "lightning" in med:
        result["lightning_spike_detection_overhead_pct"] = (
            100 * (med["lightning"] - med["plain"]) / med["plain"]
        )
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000, help="steps per mode")
    ap.add_argument("--block", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "guard_overhead.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = run(args.steps, args.block, seed=0)
    result["config"] = {
        "model": "MLP 64-128-10, batch 64, Adam, CPU",
        "threads": 1,
        "steps_per_mode": args.steps,
        "block": args.block,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
