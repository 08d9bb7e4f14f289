"""lrkit schedules for the Trainer: ``Trainer(optimizers=trainer_optimizers(...))``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from lrkit.schedules import Schedule, ScheduledLR

__all__ = ["trainer_optimizers"]


def trainer_optimizers(
    model: torch.nn.Module,
    schedule: Schedule | str,
    *,
    lr: float,
    weight_decay: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
) -> tuple[torch.optim.Optimizer, ScheduledLR]:
    """``(optimizer, scheduler)`` for ``Trainer(optimizers=...)`` driven by an lrkit schedule.

    The Trainer steps the scheduler once per optimizer step, as lrkit counts steps, and saves
    its ``state_dict`` in checkpoints, so resumed runs keep the exact learning rates. Without
    ``optimizer``, an ``AdamW`` over the model's parameters with ``lr`` and ``weight_decay``.

    Example:
        >>> model = torch.nn.Linear(4, 1)
        >>> optimizer, scheduler = trainer_optimizers(model, "warmup(10, cosine(90))", lr=1e-3)
        >>> type(optimizer).__name__, optimizer.param_groups[0]["lr"]  # warmup starts at 1%
        ('AdamW', 1e-05)
    """
    from lrkit.schedules import attach

    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return optimizer, attach(optimizer, schedule)
