"""Validation data for the race when the user gave none: hold back part of the training data.

The race scores candidates on validation loss. Without a ``val_loader``, a fixed tenth of the
training data is held back (never trained on by any trial) and scored instead, and the result
says so. That is possible for a torch ``DataLoader`` over a map-style dataset (a fixed random
tenth of the samples), lrkit's ``BatchLoader`` (a tenth of its samples) and a list or tuple of
batches (its last tenth); for any other iterable there is no safe way to hold data back (a
shuffling loader would mix the held-back batches into later epochs), so the race says so and
asks for a ``val_loader``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

__all__ = ["HOLDOUT_FRACTION", "hold_out"]

#: share of the training data held back for validation when no val_loader is given
HOLDOUT_FRACTION = 0.1
_SPLIT_SEED = 20260101


def _split(n: int) -> tuple[list[int], list[int]]:
    """(train, held-back) indices of ``n`` items: a fixed random tenth (at least one) held back."""
    k = max(1, math.floor(n * HOLDOUT_FRACTION))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(_SPLIT_SEED)).tolist()
    return sorted(order[k:]), sorted(order[:k])


def hold_out(train_loader: Iterable[Any]) -> tuple[Iterable[Any], Iterable[Any], str]:
    """``(train_loader, val_loader, description)`` with a tenth of the data held back.

    Raises ValueError when ``train_loader`` is of a kind nothing can be held back from, or too
    small (fewer than 2 samples or batches).
    """
    from torch.utils.data import DataLoader, RandomSampler, Subset

    from lrkit.tasks._data import BatchLoader

    if isinstance(train_loader, BatchLoader):
        n = len(train_loader.inputs)
        if n < 2:
            raise ValueError("train_loader has fewer than 2 samples: nothing can be held back")
        keep, held = _split(n)
        train = BatchLoader(
            train_loader.inputs[keep],
            train_loader.targets[keep],
            batch_size=train_loader.batch_size,
            shuffle=train_loader.shuffle,
            seed=int(train_loader._generator.initial_seed()),
            drop_last=train_loader.drop_last,
        )
        val = BatchLoader(
            train_loader.inputs[held],
            train_loader.targets[held],
            batch_size=max(train_loader.batch_size, 256),
            shuffle=False,
        )
        return train, val, f"{len(held)} of {n} training samples held back (no val_loader)"
    if isinstance(train_loader, DataLoader):
        dataset = train_loader.dataset
        try:
            n = len(dataset)  # type: ignore[arg-type]
            dataset[0]
        except Exception:
            n = -1
        if n < 2 or train_loader.batch_size is None:
            raise ValueError(
                "no validation data: pass val_loader=... (the train_loader's dataset is not a "
                "map-style dataset with at least 2 samples, so none can be held back)"
            )
        keep, held = _split(n)
        shuffle = isinstance(train_loader.sampler, RandomSampler)
        common: dict[str, Any] = {
            "batch_size": train_loader.batch_size,
            "collate_fn": train_loader.collate_fn,
            "num_workers": train_loader.num_workers,
            "pin_memory": train_loader.pin_memory,
        }
        kept: DataLoader[Any] = DataLoader(
            Subset(dataset, keep), shuffle=shuffle, drop_last=train_loader.drop_last, **common
        )
        back: DataLoader[Any] = DataLoader(Subset(dataset, held), shuffle=False, **common)
        return kept, back, f"{len(held)} of {n} training samples held back (no val_loader)"
    if isinstance(train_loader, Sequence) and not isinstance(train_loader, (str, bytes)):
        n = len(train_loader)
        if n < 2:
            raise ValueError(
                "no validation data: pass val_loader=... (train_loader holds fewer than 2 "
                "batches, so none can be held back)"
            )
        k = max(1, math.floor(n * HOLDOUT_FRACTION))
        return (
            list(train_loader[: n - k]),
            list(train_loader[n - k :]),
            f"the last {k} of {n} training batches held back (no val_loader)",
        )
    raise ValueError(
        "no validation data: pass val_loader=... (lrkit can hold training data back only from "
        "a torch DataLoader over a map-style dataset, a list of batches or an lrkit "
        f"BatchLoader, not from a {type(train_loader).__name__})"
    )
