"""CLI arguments and options that several verbs share (one definition, one help text)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "BatchSize",
    "Budget",
    "FineTuning",
    "Quick",
    "ReferenceBatchSize",
    "SetupTarget",
    "TaskName",
]

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
    str | None, typer.Option("--task", help="A built-in task instead of TARGET (digits, ...).")
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
