"""Run a block with a given number of torch threads (auto's stages, tune's workers)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Set ``torch.set_num_threads(threads)`` for the block and restore the count afterwards.

    Nothing happens when ``threads`` is None or torch is not imported (an objective that does
    not use torch must not pay for importing it).

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    torch = sys.modules.get("torch")
    if threads is None or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
