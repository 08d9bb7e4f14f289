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
    its ``state_dict`` in checkpoints, so resumed runs keep the exact learning rates.
    """
    from lrkit.schedules import attach

    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return optimizer, attach(optimizer, schedule)
