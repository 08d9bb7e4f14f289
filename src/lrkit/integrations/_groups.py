"""The learning rates of an optimizer's param groups as the framework integrations drive them:
the reference group is the one with the largest base lr, and every group keeps its ratio to it."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["group_ratios", "set_lrs"]


def group_ratios(optimizer: Any) -> tuple[float, ...]:
    """Each group's base lr (``initial_lr`` where a scheduler set one, else ``lr``) over the
    largest one (all 1.0 when that is 0).

    Example:
        >>> p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
        >>> group_ratios(torch.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=2.0))
        (1.0, 0.25)
    """
    bases = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
    reference = max(bases)
    return tuple(b / reference if reference > 0 else 1.0 for b in bases)


def set_lrs(optimizer: Any, lr: float, ratios: tuple[float, ...]) -> None:
    """Set the reference group's lr to ``lr`` and every other group's to ``lr * ratio`` (a
    tensor lr is filled in place)."""
    for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr * ratio)
        else:
            group["lr"] = lr * ratio
