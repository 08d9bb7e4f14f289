"""One seeded block: the global torch RNG seeded inside it, the caller's state restored after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["seeded"]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with ``torch.manual_seed(seed)`` and restore the caller's CPU RNG state
    afterwards (on every exit path), so what the block draws (initial weights, dropout) depends
    on ``seed`` alone and the caller's own draws are unaffected.

    Example:
        >>> import torch
        >>> before = torch.get_rng_state()
        >>> with seeded(3):
        ...     a = torch.rand(2)
        >>> with seeded(3):
        ...     b = torch.rand(2)
        >>> torch.equal(a, b), torch.equal(torch.get_rng_state(), before)
        (True, True)
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
