"""The tutorial baseline rule set (reference: shared/reference/diagnosis.md), on epoch-like points.

Given train and val loss per epoch:
DIVERGING if mean(last 3) > 2 x mean(first 3); STUCK if relative improvement < 1%;
OSCILLATING if more than 10 points and std/mean of the last 10 > 0.3;
OVERFITTING if the last val loss > 1.1 x its minimum; else OK (first rule that fires wins).

Epoch-like points: the runs log a validation loss every 20 (overfit runs: 25) steps; each point's
train loss is the mean training loss of the steps since the previous evaluation, its val loss the
evaluation. Label mapping to lrkit's classes: DIVERGING -> diverging, STUCK -> too_slow,
OSCILLATING -> oscillating, OVERFITTING -> overfitting, OK -> healthy. The tutorial has no rule
for non-finite values (a NaN makes every comparison false, i.e. OK); to be generous we add one:
a non-finite point -> diverged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAPPING = {
    "NONFINITE": "diverged",
    "DIVERGING": "diverging",
    "STUCK": "too_slow",
    "OSCILLATING": "oscillating",
    "OVERFITTING": "overfitting",
    "OK": "healthy",
}


def epoch_points(run: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    loss = np.array([math.nan if v is None else v for v in run["train_loss"]], dtype=np.float64)
    val = np.array([math.nan if v is None else v for v in run["val_loss"]], dtype=np.float64)
    bounds = [-1, *run["val_steps"]]
    train = np.array(
        [loss[a + 1 : b + 1].mean() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    )
    if len(loss) > bounds[-1] + 1:  # a run stopped after a non-finite loss: the tail as a point
        train = np.append(train, loss[bounds[-1] + 1 :].mean())
    return train, val


def tutorial_rule(train: np.ndarray, val: np.ndarray) -> str:
    if not np.all(np.isfinite(train)) or not np.all(np.isfinite(val)):
        return "NONFINITE"
    if len(train) >= 3 and train[-3:].mean() > 2 * train[:3].mean():
        return "DIVERGING"
    if len(train) >= 2 and (train[0] - train[-1]) / train[0] < 0.01:
        return "STUCK"
    if len(train) > 10 and train[-10:].std() / train[-10:].mean() > 0.3:
        return "OSCILLATING"
    if len(val) and val[-1] > 1.1 * val.min():
        return "OVERFITTING"
    return "OK"


def baseline_verdict(run: dict[str, Any]) -> str:
    train, val = epoch_points(run)
    return MAPPING[tutorial_rule(train, val)]
