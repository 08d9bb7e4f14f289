"""The errors of ``lrkit.tune`` (kept apart so that importing them costs nothing)."""

from __future__ import annotations

__all__ = ["StorageError", "StorageFailed"]


class StorageError(ValueError):
    """A study's storage cannot be opened, read or written: a full disk, a corrupt file, an
    unreachable server. The message is one line naming the storage (password masked).

    A ValueError, so that callers catching bad input catch it too.
    """


class StorageFailed(BaseException):
    """Carries a :class:`StorageError` raised inside a trial out of Optuna's ``optimize``
    (which would record an ``Exception`` as the objective's failure and count the trial as
    finished): the trial stays RUNNING and is queued again by the next run."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.error = error
