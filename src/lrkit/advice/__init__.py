"""Starting points: learning rate, search range, schedule and warmup by optimizer and model.

Example:
    >>> from lrkit.advice import advise
    >>> print(advise("sgd+momentum", "resnet", batch_size=1024).lr)
    0.4
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.advice._advice import (
        Advice,
        Reason,
        advise,
        fmt_lr,
        normalize_architecture,
        normalize_optimizer,
    )
    from lrkit.advice._table import ARCHITECTURES, OPTIMIZERS

__all__ = [
    "ARCHITECTURES",
    "OPTIMIZERS",
    "Advice",
    "Reason",
    "advise",
    "fmt_lr",
    "normalize_architecture",
    "normalize_optimizer",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.advice._advice": [
                "Advice",
                "Reason",
                "advise",
                "fmt_lr",
                "normalize_architecture",
                "normalize_optimizer",
            ],
            "lrkit.advice._table": ["ARCHITECTURES", "OPTIMIZERS"],
        },
    )
