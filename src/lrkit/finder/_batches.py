"""Batches: cycling a loader, moving a batch to a device, and turning a batch into a loss.

Supported batch shapes:

* ``(inputs, targets)`` tuples or lists: ``loss_fn(model(inputs), targets)``; longer tuples are
  ``(*inputs, targets)`` and call ``model(*inputs)``;
* mappings (Hugging Face style): ``model(**batch).loss`` (or ``output["loss"]``);
* anything else through ``step_fn(model, batch) -> loss``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch

__all__ = ["BatchCycler", "batch_loss", "model_device", "move_to"]


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's first parameter (or buffer) lives; CPU for a model without any."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def move_to(batch: Any, device: torch.device) -> Any:
    """Return ``batch`` with every tensor inside moved to ``device`` (structure preserved).

    Example:
        >>> import torch
        >>> out = move_to({"x": torch.zeros(2), "n": 3}, torch.device("cpu"))
        >>> sorted(out)
        ['n', 'x']
    """
    kind = type(batch)
    if kind is tuple or kind is list:  # fast path for the usual (inputs, targets)
        items = [
            x.to(device, non_blocking=True) if isinstance(x, torch.Tensor) else move_to(x, device)
            for x in batch
        ]
        return items if kind is list else tuple(items)
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        moved = {k: move_to(v, device) for k, v in batch.items()}
        if type(batch) is dict:
            return moved
        to = getattr(batch, "to", None)
        if callable(to):  # e.g. transformers.BatchEncoding
            return to(device)
        try:
            return type(batch)(moved)  # type: ignore[call-arg]
        except Exception:
            return moved
    if isinstance(batch, tuple):
        items = [move_to(v, device) for v in batch]
        if hasattr(batch, "_fields"):  # namedtuple
            return type(batch)(*items)
        return tuple(items)
    if isinstance(batch, list):
        return [move_to(v, device) for v in batch]
    return batch


class BatchCycler:
    """Yield batches forever, re-iterating ``loader`` when it runs out.

    Raises ValueError (naming ``name``) when the loader is empty, or when it is a one-shot
    iterator that runs out before the test is done.
    """

    def __init__(self, loader: Iterable[Any], name: str) -> None:
        self.loader = loader
        self.name = name
        self.passes = 0
        self.count = 0
        self._iterator: Iterator[Any] = self._new_iterator()
        self._one_shot = self._iterator is loader

    def _new_iterator(self) -> Iterator[Any]:
        try:
            iterator = iter(self.loader)
        except TypeError:
            raise ValueError(
                f"{self.name} must be an iterable of batches, "
                f"but got {self.name} of type {type(self.loader).__name__}"
            ) from None
        self.passes += 1
        return iterator

    def __next__(self) -> Any:
        try:
            batch = next(self._iterator)
        except StopIteration:
            if self.count == 0:
                raise ValueError(
                    f"{self.name} must yield at least one batch, but got an empty {self.name}"
                ) from None
            if self._one_shot:
                raise ValueError(
                    f"{self.name} ran out after {self.count} batches and is a one-shot iterator "
                    f"that cannot be re-iterated; pass a re-iterable loader (a DataLoader or a "
                    f"list) or fewer steps"
                ) from None
            self._iterator = self._new_iterator()
            try:
                batch = next(self._iterator)
            except StopIteration:
                raise ValueError(
                    f"{self.name} yielded no batches on pass {self.passes}; it must be "
                    f"re-iterable to be cycled"
                ) from None
        self.count += 1
        return batch

    def __iter__(self) -> BatchCycler:
        return self


def _check_loss(loss: object) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise ValueError(
            f"loss must be a scalar tensor, but got loss of type {type(loss).__name__}"
        )
    if loss.ndim != 0:
        raise ValueError(
            f"loss must be a scalar tensor (0-dim), but got loss with shape {tuple(loss.shape)}"
        )
    return loss


def batch_loss(
    model: torch.nn.Module,
    batch: Any,
    loss_fn: Callable[..., torch.Tensor] | None,
    step_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None,
) -> torch.Tensor:
    """Compute the scalar loss of one (already moved) batch; forward only."""
    if step_fn is not None:
        return _check_loss(step_fn(model, batch))
    if isinstance(batch, Mapping):
        output = model(**batch)
        loss = getattr(output, "loss", None)
        if loss is None and isinstance(output, Mapping):
            loss = output.get("loss")
        if loss is None:
            if loss_fn is not None and "labels" in batch:
                return _check_loss(loss_fn(output, batch["labels"]))
            raise ValueError(
                "dict batches need a model output with a .loss (Hugging Face style) or a "
                f"step_fn(model, batch) -> loss, but the model returned {type(output).__name__}"
            )
        return _check_loss(loss)
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        if loss_fn is None:
            raise ValueError(
                "loss_fn must be given for (inputs, targets) batches, but got loss_fn=None"
            )
        *inputs, targets = batch
        return _check_loss(loss_fn(model(*inputs), targets))
    raise ValueError(
        f"batches of type {type(batch).__name__} are not (inputs, targets) or a dict; "
        f"pass step_fn(model, batch) -> loss"
    )
