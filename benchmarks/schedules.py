"""Benchmark: lrkit schedules against torch's own schedulers, measured in the same run.

1. Whole curves: ``schedule.values(1_000_000)`` for several kinds (including a composed
   warmup + cosine) against building the same curve the way a torch user would: stepping the
   equivalent ``torch.optim.lr_scheduler`` on a dummy optimizer and reading ``get_last_lr()``.
   torch is stepped ``--torch-steps`` times (default 100,000) and its time scaled linearly to
   1,000,000 steps (``--torch-steps 1000000`` measures the full curve, minutes); medians of
   ``--repeats`` (lrkit) and ``--torch-repeats`` (torch) runs. The first
   ``--torch-steps`` values of both curves are compared (max relative difference reported).
2. Per-step overhead: ``attach(opt, "cosine(N)").step()`` against
   ``CosineAnnealingLR(opt, N).step()`` in the same loop shape, same optimizer layout (several
   param groups), interleaved repeats, medians.

Run: ``.venv/bin/python benchmarks/schedules.py`` (writes benchmarks/results/schedules.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim import lr_scheduler as tls

from lrkit.schedules import attach, parse

RESULTS = Path(__file__).parent / "results" / "schedules.json"
N_VALUES = 1_000_000
LR = 0.1


def _optimizer(groups: int = 1) -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(8)) for _ in range(groups)]
    opt = torch.optim.SGD(
        [{"params": [p], "lr": LR * (i + 1)} for i, p in enumerate(params)], lr=LR, momentum=0.9
    )
    return opt


def _stepped(opt: torch.optim.Optimizer) -> None:
    """One (no-op) optimizer step after the scheduler exists: torch then does not warn."""
    opt.step()


# (name, spec, torch factory (optimizer, total) -> scheduler)
CurveCase = tuple[str, str, Callable[[torch.optim.Optimizer, int], Any]]


def _cases(n: int) -> list[CurveCase]:
    w = n // 100
    return [
        ("cosine", f"cosine({n})", lambda o, _n: tls.CosineAnnealingLR(o, T_max=n)),
        ("step", f"step({n // 10}, gamma=0.5)", lambda o, _n: tls.StepLR(o, n // 10, 0.5)),
        (
            "restarts (SGDR, mult=2)",
            f"restarts({n // 64}, mult=2.0)",
            lambda o, _n: tls.CosineAnnealingWarmRestarts(o, T_0=n // 64, T_mult=2),
        ),
        (
            "onecycle",
            f"onecycle({n})",
            lambda o, _n: tls.OneCycleLR(o, max_lr=LR, total_steps=n, cycle_momentum=False),
        ),
        (
            "warmup + cosine (composed)",
            f"warmup({w}, cosine({n - w}), start=0.01)",
            lambda o, _n: tls.SequentialLR(
                o,
                [
                    tls.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=w),
                    tls.CosineAnnealingLR(o, T_max=n - w),
                ],
                milestones=[w],
            ),
        ),
    ]


def _times(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of ``repeats`` calls (CPU time is what a busy,
    shared machine distorts least)."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(_times(fn, repeats)[0])


def _torch_curve(factory: Callable[[torch.optim.Optimizer, int], Any], steps: int) -> np.ndarray:
    opt = _optimizer(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's epoch deprecation chatter
        sched = factory(opt, steps)
        _stepped(opt)
        out = np.empty(steps, dtype=np.float64)
        for i in range(steps):
            out[i] = sched.get_last_lr()[0]
            if i < steps - 1:
                sched.step()
    return out / LR


def bench_values(torch_steps: int, repeats: int, torch_repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name, spec, factory in _cases(N_VALUES):
        schedule = parse(spec)
        schedule.values(1000)  # warm caches
        ours_wall, ours_cpu = _times(lambda s=schedule: s.values(N_VALUES), repeats)
        ours = statistics.median(ours_wall)
        ref = _torch_curve(factory, torch_steps)
        torch_time = _median_time(lambda f=factory: _torch_curve(f, torch_steps), torch_repeats)
        mine = schedule.values(torch_steps)
        scale = np.maximum(np.abs(ref), 1e-300)
        rows.append(
            {
                "kind": name,
                "spec": spec,
                "lrkit_values_1M_s": ours,
                "lrkit_values_1M_cpu_s": statistics.median(ours_cpu),
                "torch_steps_measured": torch_steps,
                "torch_repeats": torch_repeats,
                "torch_measured_s": torch_time,
                "torch_1M_s_scaled": torch_time * N_VALUES / torch_steps,
                "speedup": torch_time * N_VALUES / torch_steps / ours,
                "max_rel_diff_vs_torch": float(np.max(np.abs(mine - ref) / scale)),
            }
        )
        print(f"  values: {name:<28} {ours * 1e3:8.1f} ms", file=sys.stderr)
    return rows


def bench_step(steps: int, repeats: int, groups: int) -> dict[str, Any]:
    def loop(make: Callable[[torch.optim.Optimizer], Any]) -> float:
        opt = _optimizer(groups)
        sched = make(opt)
        _stepped(opt)
        start = time.perf_counter()
        for _ in range(steps):
            sched.step()
        return time.perf_counter() - start

    makers: dict[str, Callable[[torch.optim.Optimizer], Any]] = {
        "lrkit attach(cosine).step": lambda opt: attach(opt, f"cosine({steps})"),
        "torch CosineAnnealingLR.step": lambda opt: tls.CosineAnnealingLR(opt, T_max=steps),
        "lrkit attach(onecycle).step (lr + momentum)": lambda opt: attach(
            opt, f"onecycle({steps + 1})"
        ),
        "torch OneCycleLR.step (lr + momentum)": lambda opt: tls.OneCycleLR(
            opt, max_lr=[LR * (i + 1) for i in range(groups)], total_steps=steps + 1
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(repeats):  # interleaved, so machine noise hits all loops alike
        for name, make in makers.items():
            samples[name].append(loop(make) / steps)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = medians["lrkit attach(cosine).step"] / medians["torch CosineAnnealingLR.step"]
    ratio_oc = (
        medians["lrkit attach(onecycle).step (lr + momentum)"]
        / medians["torch OneCycleLR.step (lr + momentum)"]
    )
    return {
        "steps_per_repeat": steps,
        "repeats": repeats,
        "param_groups": groups,
        "median_us_per_step": {name: m * 1e6 for name, m in medians.items()},
        "ratio_attach_cosine_vs_torch_cosine": ratio,
        "ratio_attach_onecycle_vs_torch_onecycle": ratio_oc,
        "target_ratio": 1.5,
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1m_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| curve of 1,000,000 steps | lrkit `values()` wall (CPU) | torch scheduler loop "
        "| speed-up | max rel. diff |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["values"]:
        lines.append(
            f"| {row['kind']} `{row['spec']}` | {row['lrkit_values_1M_s'] * 1e3:.1f} ms "
            f"({row['lrkit_values_1M_cpu_s'] * 1e3:.1f} ms) "
            f"| {row['torch_1M_s_scaled']:.2f} s | {row['speedup']:,.0f}x "
            f"| {row['max_rel_diff_vs_torch']:.1e} |"
        )
    step = result["step"]
    lines += [
        "",
        f"| per-step overhead ({step['param_groups']} param groups, "
        f"{step['steps_per_repeat']:,} steps x {step['repeats']} repeats, median) "
        "| us / step |",
        "|---|---:|",
    ]
    for name, us in step["median_us_per_step"].items():
        lines.append(f"| {name} | {us:.2f} |")
    lines.append(
        f"| **ratio attach(cosine) / CosineAnnealingLR** (target <= 1.5) "
        f"| **{step['ratio_attach_cosine_vs_torch_cosine']:.2f}x** |"
    )
    lines.append(
        f"| ratio attach(onecycle) / OneCycleLR "
        f"| {step['ratio_attach_onecycle_vs_torch_onecycle']:.2f}x |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-repeats", type=int, default=3)
    parser.add_argument("--step-loop", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result: dict[str, Any] = {
        "benchmark": "schedules",
        "command": "python benchmarks/schedules.py " + " ".join(argv or sys.argv[1:]),
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    started = time.perf_counter()
    result["values"] = bench_values(args.torch_steps, args.repeats, args.torch_repeats)
    result["step"] = bench_step(args.step_loop, args.repeats + 2, args.groups)
    result["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    load = result["machine"]["load_average_1m_at_start"]
    print(
        f"\nmachine: {result['machine']['processor']}, {result['machine']['cpu_count']} CPUs, "
        f"load average {load}, torch {result['machine']['torch']}, {result['date_utc']}"
    )
    print(f"\nwrote {args.out} in {result['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
