"""CLI arguments and options that several verbs share (one definition, one help text)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Annotated

import typer

__all__ = [
    "BatchSize",
    "Budget",
    "FineTuning",
    "EarlyStopping",
    "FinderSchedule",
    "Ramp",
    "Strategy",
    "Quick",
    "ReferenceBatchSize",
    "SetupTarget",
    "TaskName",
    "complete_architectures",
    "complete_optimizers",
    "complete_tasks",
]


class _Choice(str, enum.Enum):
    """A fixed set of values: ``--help`` lists them, the shell completes them."""

    def __str__(self) -> str:
        return str(self.value)


# The values are the library's own (tests/cli/test_choices.py checks they stay equal); they
# are spelled out here because the modules that define them import numpy or Optuna, which
# ``lrkit --help`` should not wait for.
class Ramp(_Choice):
    """``find --mode``: how the learning rate grows (:func:`lrkit.finder.ramp`)."""

    exp = "exp"
    linear = "linear"


class FinderSchedule(_Choice):
    """``find --schedule``: the schedule a suggestion is for (:data:`lrkit.finder.SCHEDULES`)."""

    constant = "constant"
    cosine = "cosine"


class Strategy(_Choice):
    """``tune --strategy`` (:data:`lrkit.tuning.STRATEGIES`)."""

    grid = "grid"
    random = "random"
    qmc = "qmc"
    tpe = "tpe"
    gp = "gp"


class EarlyStopping(_Choice):
    """``tune --early-stopping`` (:data:`lrkit.tuning.EARLY_STOPPING`)."""

    none = "none"
    median = "median"
    asha = "asha"
    hyperband = "hyperband"


def _complete(load: Callable[[], Sequence[str]]) -> Callable[[str], list[str]]:
    """Shell completion from a list of names (for options that also take other spellings)."""

    def complete(incomplete: str) -> list[str]:
        return [name for name in load() if name.startswith(incomplete)]

    return complete


def _task_names() -> list[str]:
    from lrkit.tasks import list_tasks

    return [task.name for task in list_tasks()]


def _optimizer_names() -> tuple[str, ...]:
    from lrkit.advice import OPTIMIZERS

    return OPTIMIZERS


def _architecture_names() -> tuple[str, ...]:
    from lrkit.advice import ARCHITECTURES

    return ARCHITECTURES

# ``advise`` and ``auto`` accept other spellings too (``sgd+momentum``, ``lstm``): the shell
# completes the canonical names, the advisor normalises whatever is typed
complete_optimizers = _complete(_optimizer_names)
complete_architectures = _complete(_architecture_names)
complete_tasks = _complete(_task_names)

#: TARGET of ``find`` and ``auto``: a callable returning the setup
SetupTarget = Annotated[
    str | None,
    typer.Argument(
        help="'module:function' or 'path/file.py:function' returning the setup "
        "(model, optimizer, loss_fn, train_loader[, val_loader, step_fn]).",
        show_default=False,
    ),
]
TaskName = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="A built-in task instead of TARGET (digits, ...).",
        autocompletion=complete_tasks,
    ),
]
# the advisor's inputs (``advise`` and ``auto``)
FineTuning = Annotated[bool, typer.Option("--fine-tuning", help="Fine-tuning a pre-trained model.")]
Quick = Annotated[bool, typer.Option("--quick", help="Short training from scratch (one-cycle).")]
BatchSize = Annotated[
    int | None, typer.Option("--batch-size", help="Your batch size (for scaling).")
]
ReferenceBatchSize = Annotated[
    int | None,
    typer.Option("--reference-batch-size", help="Batch size the lr was tuned for."),
]
Budget = Annotated[
    int | None, typer.Option("--steps", help="Your training budget in optimizer steps.")
]
