"""Ground truth: a log grid of learning rates, 3 seeds, full budget, per schedule.

The grid is built in two passes, so that the points far from the optimum cost less:

1. coarse, 2 points per decade from 1e-5 to 1, extended a decade at a time until the lowest
   point is clearly worse than the best (mean regret >= 20%, or 1e-7 reached) and the highest
   has diverged or is at least 3x the best loss (or 1e3 reached);
2. fine, 4 points per decade within one decade of the coarse best on each side, extended by
   half a decade while the best point is at an end of the fine region.

The grid best is the point with the lowest mean final validation loss over the grid seeds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from runcache import LATTICE, SCHEDULES, RunCache, key, lr_of

GRID_SEEDS = (0, 1, 2)
COARSE = LATTICE // 2  # lattice steps between coarse points (2 per decade)
FINE = LATTICE // 4  # 4 per decade
LOW, HIGH = -5 * LATTICE, 0  # initial coarse span 1e-5 .. 1
FLOOR, CEIL = -7 * LATTICE, 3 * LATTICE
LOW_WORSE = 0.2  # the lowest grid point's regret must reach this ...
HIGH_WORSE = 3.0  # ... and the highest must diverge or reach this many times the best


def _mean(cache: RunCache, schedule: str, index: int) -> float:
    return cache.mean_final(schedule, lr_of(index), GRID_SEEDS)


def grid(cache: RunCache, schedule: str) -> dict[str, Any]:
    """Build (train or read) the grid of one schedule; return its points and the best."""
    lo, hi = LOW, HIGH
    while True:
        coarse = list(range(lo, hi + 1, COARSE))
        losses = [_mean(cache, schedule, i) for i in coarse]
        best = min(losses)
        b = int(np.argmin(losses))
        low_ok = losses[0] >= (1 + LOW_WORSE) * best and b > 0
        high_ok = (not math.isfinite(losses[-1]) or losses[-1] >= HIGH_WORSE * best) and b < len(
            coarse
        ) - 1
        if not low_ok and lo > FLOOR:
            lo -= LATTICE
        elif not high_ok and hi < CEIL:
            hi += LATTICE
        else:
            break
    centre = coarse[b]
    f_lo, f_hi = centre - LATTICE, centre + LATTICE
    while True:
        fine = list(range(f_lo, f_hi + 1, FINE))
        values = {i: _mean(cache, schedule, i) for i in fine}
        b_fine = min(values, key=lambda i: values[i])
        if b_fine == f_lo and f_lo > FLOOR:
            f_lo -= COARSE
        elif b_fine == f_hi and f_hi < CEIL:
            f_hi += COARSE
        else:
            break
    points = sorted(set(coarse) | set(fine))
    means = [_mean(cache, schedule, i) for i in points]
    best_i = int(np.argmin(means))
    best_lr, best = lr_of(points[best_i]), means[best_i]
    per_seed = [cache.final(schedule, best_lr, s) for s in GRID_SEEDS]
    return {
        "lrs": [lr_of(i) for i in points],
        "val_loss": [float(f"{v:.6g}") for v in means],
        "fine_span": [lr_of(f_lo), lr_of(f_hi)],
        "best_lr": best_lr,
        "best": best,
        # the grid's own noise at its best point, in regret units: each grid seed's loss there
        # relative to the mean (std over seeds, and max - min)
        "seed_spread": {
            "std": float(np.std(per_seed, ddof=1) / best),
            "range": float((max(per_seed) - min(per_seed)) / best),
            "per_seed": [float(v) for v in per_seed],
        },
    }


def grids(cache: RunCache) -> dict[str, dict[str, Any]]:
    return {schedule: grid(cache, schedule) for schedule in SCHEDULES}


__all__ = ["GRID_SEEDS", "grid", "grids", "key"]
