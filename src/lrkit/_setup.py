"""The training setup that the range test, the tuner, ``lrkit auto`` and the CLI pass around."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Setup", "StepFn", "as_setup"]

#: ``step_fn(model, batch) -> loss``: computes the scalar loss of one batch (forward only).
StepFn = Callable[[torch.nn.Module, Any], torch.Tensor]

_FIELDS = ("model", "optimizer", "loss_fn", "train_loader", "val_loader", "step_fn")


@dataclass
class Setup:
    """Everything a range test or a short training run needs.

    ``loss_fn(outputs, targets)`` is used for ``(inputs, targets)`` batches; dict batches whose
    model output has ``.loss`` (Hugging Face style) need no ``loss_fn``; anything else goes
    through ``step_fn(model, batch) -> loss``.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_loader: Iterable[Any]
    loss_fn: Callable[..., torch.Tensor] | None = None
    val_loader: Iterable[Any] | None = None
    step_fn: StepFn | None = None


def as_setup(value: object, *, source: str = "setup") -> Setup:
    """Accept a :class:`Setup`, a mapping or any object with the same attributes.

    Raises ValueError naming ``source`` and what is missing or of the wrong type.
    """
    if isinstance(value, Setup):
        setup = value
    else:
        if isinstance(value, Mapping):
            fields = dict(value)
        else:
            fields = {k: getattr(value, k) for k in _FIELDS if hasattr(value, k)}
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            raise ValueError(
                f"{source} has unknown fields {unknown}; valid fields are {list(_FIELDS)}"
            )
        missing = [k for k in ("model", "optimizer", "train_loader") if fields.get(k) is None]
        if missing:
            raise ValueError(
                f"{source} must provide model, optimizer and train_loader, but {missing} "
                f"missing (got {type(value).__name__})"
            )
        setup = Setup(**fields)
    if not isinstance(setup.model, torch.nn.Module):
        raise ValueError(
            f"{source}.model must be a torch.nn.Module, but got {type(setup.model).__name__}"
        )
    if not isinstance(setup.optimizer, torch.optim.Optimizer):
        raise ValueError(
            f"{source}.optimizer must be a torch.optim.Optimizer, "
            f"but got {type(setup.optimizer).__name__}"
        )
    return setup
