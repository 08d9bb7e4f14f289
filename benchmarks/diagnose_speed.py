"""Benchmark: ``lrkit.diagnose`` on long curves (up to 10,000,000 points), against the tutorial
baseline rule set (``benchmarks/diagnose/baseline.py``) on the same curves, same run.

Curves: a noisy exponential decay with a spike and (for the "full" variant) steps, a learning
rate, a gradient norm and a validation curve (one evaluation per 1,000 steps). Each timing is
the median of ``--repeats`` runs after one warm-up call. The baseline first reduces the curve to
epoch-like points (the mean loss between evaluations, as benchmarks/diagnose/baseline.py does)
and applies its four rules; that reduction is timed too, since a user must do it.

Run: ``.venv/bin/python benchmarks/diagnose_speed.py`` (writes
benchmarks/results/diagnose_speed.json).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lrkit.diagnosis import diagnose

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "diagnose_speed.json"
sys.path.insert(0, str(HERE / "diagnose"))

from baseline import tutorial_rule  # type: ignore[import-not-found]  # noqa: E402


def make_curve(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.float64)
    loss = 2.0 * np.exp(-steps / (n / 8)) + 0.1 + 0.02 * rng.standard_normal(n)
    loss[int(n * 0.6)] *= 50.0
    every = max(1, n // 1000) if n >= 1000 else 10
    val_steps = np.arange(every - 1, n, every, dtype=np.float64)
    val = 2.0 * np.exp(-val_steps / (n / 8)) + 0.15
    return {
        "loss": loss,
        "steps": steps,
        "lr": np.full(n, 3e-4),
        "grad": np.abs(1.0 + 0.1 * rng.standard_normal(n)),
        "val_steps": val_steps,
        "val": val,
    }


def timeit(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    load_at_start = os.getloadavg()[0]
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,100000,1000000,10000000")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for n in [int(v) for v in args.sizes.split(",")]:
        c = make_curve(n)
        d_loss = timeit(lambda c=c: diagnose(c["loss"]), args.repeats)
        d_full = timeit(
            lambda c=c: diagnose(
                c["loss"],
                steps=c["steps"],
                lr=c["lr"],
                grad_norm=c["grad"],
                val_loss=c["val"],
                val_steps=c["val_steps"],
            ),
            args.repeats,
        )

        def baseline(c: dict[str, np.ndarray] = c) -> str:
            bounds = np.searchsorted(c["steps"], c["val_steps"], side="right")
            sums = np.add.reduceat(c["loss"], np.concatenate([[0], bounds[:-1]]))
            counts = np.diff(np.concatenate([[0], bounds]))
            return str(tutorial_rule(sums / counts, c["val"]))

        b = timeit(baseline, args.repeats)
        verdict = diagnose(c["loss"]).verdict
        rows.append(
            {
                "points": n,
                "lrkit_loss_only_s": d_loss,
                "lrkit_all_series_s": d_full,
                "baseline_s": b,
                "lrkit_verdict": verdict,
                "baseline_verdict": baseline(),
            }
        )
        print(
            f"{n:>10,d} points: lrkit {d_loss * 1e3:8.1f} ms (loss only), "
            f"{d_full * 1e3:8.1f} ms (loss+steps+lr+grad+val); baseline {b * 1e3:7.1f} ms; "
            f"verdicts lrkit={verdict} baseline={rows[-1]['baseline_verdict']}",
            flush=True,
        )
    out = {
        "benchmark": "diagnose_speed",
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_start": load_at_start,
            "platform": platform.platform(),
        },
        "repeats": args.repeats,
        "statistic": "median seconds after one warm-up call",
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
