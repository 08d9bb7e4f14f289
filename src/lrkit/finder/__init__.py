"""The learning-rate range test: :func:`find_lr` runs it, :class:`RangeTest` holds the curve.

Example:
    >>> import torch
    >>> from lrkit.finder import find_lr
    >>> model = torch.nn.Linear(4, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.01)
    >>> data = [(torch.randn(16, 4), torch.randn(16, 1)) for _ in range(5)]
    >>> result = find_lr(model, opt, torch.nn.functional.mse_loss, data, num_steps=30)
    >>> result.stop_reason in ("completed", "diverged", "non-finite")
    True
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit._state import Snapshot, SnapshotError, take_snapshot
    from lrkit.finder._range_test import MAX_STEPS, ema, find_lr, ramp
    from lrkit.finder._result import STOP_REASONS, RangeTest
    from lrkit.finder._rules import METHODS, SCHEDULES, Suggestion, suggest, suggest_range

__all__ = [
    "MAX_STEPS",
    "METHODS",
    "SCHEDULES",
    "STOP_REASONS",
    "RangeTest",
    "Snapshot",
    "SnapshotError",
    "Suggestion",
    "ema",
    "find_lr",
    "ramp",
    "suggest",
    "suggest_range",
    "take_snapshot",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit._state": ["Snapshot", "SnapshotError", "take_snapshot"],
            "lrkit.finder._range_test": ["MAX_STEPS", "ema", "find_lr", "ramp"],
            "lrkit.finder._result": ["STOP_REASONS", "RangeTest"],
            "lrkit.finder._rules": [
                "METHODS",
                "SCHEDULES",
                "Suggestion",
                "suggest",
                "suggest_range",
            ],
        },
    )
