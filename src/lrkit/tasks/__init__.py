"""Small built-in training tasks on data shipped with packages (offline, CPU, seconds).

They serve the demo (``lrkit auto --task digits``), the tests and the benchmarks. Each
:class:`Task` builds a fresh, deterministic :class:`~lrkit.Setup` from a seed; :func:`train`
runs a plain training loop on a task or any setup. scikit-learn (``pip install 'lrkit[tasks]'``)
provides the data of every task except ``synthetic``.

Example:
    >>> from lrkit.tasks import get_task, train
    >>> task = get_task("digits")
    >>> result = train(task, lr=task.default_lr, steps=30)
    >>> result.final_val_loss < 2.3
    True
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.tasks._data import BatchLoader
    from lrkit.tasks._tasks import OPTIMIZERS, Task, get_task, list_tasks, make_optimizer
    from lrkit.tasks._train import TrainResult, evaluate, train

__all__ = [
    "Task",
    "get_task",
    "list_tasks",
    "TrainResult",
    "train",
    "evaluate",
    "BatchLoader",
    "OPTIMIZERS",
    "make_optimizer",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.tasks._data": ["BatchLoader"],
            "lrkit.tasks._tasks": [
                "OPTIMIZERS",
                "Task",
                "get_task",
                "list_tasks",
                "make_optimizer",
            ],
            "lrkit.tasks._train": ["TrainResult", "evaluate", "train"],
        },
    )
