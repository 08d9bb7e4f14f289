"""The errors of ``lrkit.tune`` (kept apart so that importing them costs nothing)."""

from __future__ import annotations

__all__ = ["StorageError"]


class StorageError(ValueError):
    """A study's storage cannot be opened, read or written: a full disk, a corrupt file, an
    unreachable server. The message is one line naming the storage (password masked).

    A ValueError, so that callers catching bad input catch it too.
    """
