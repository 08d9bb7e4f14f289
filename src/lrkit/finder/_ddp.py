"""Agreement across distributed ranks: every rank sees the same loss and the same stop.

Each step the local loss and a non-finite flag travel in one small tensor through one
``all_reduce(SUM)``; the loss is divided by the world size. A NaN on any rank turns the flag
on for every rank, so all ranks stop at the same step and nobody waits in a collective the
others have left.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Agreement"]


class Agreement:
    """Average a scalar across ranks (a no-op outside ``torch.distributed``)."""

    def __init__(self, process_group: Any | None = None) -> None:
        self.active = bool(dist.is_available() and dist.is_initialized())
        self.group = process_group
        self.world_size = dist.get_world_size(process_group) if self.active else 1
        self.active = self.active and self.world_size > 1

    def reduce(self, loss: torch.Tensor) -> tuple[float, bool]:
        """Return ``(mean loss over ranks, any rank non-finite)``; one host sync."""
        if not self.active:
            value = float(loss.item())
            return value, not math.isfinite(value)
        local = loss.detach().float()
        flag = (~torch.isfinite(local)).float()
        # replace a local non-finite loss by 0 in the sum; the flag carries the news
        packed = torch.stack([torch.where(flag > 0, torch.zeros_like(local), local), flag])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=self.group)
        total, bad = packed.tolist()
        if bad > 0:
            return float("nan"), True
        return total / self.world_size, False
