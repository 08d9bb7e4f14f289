"""``lrkit advise``: a starting learning rate, range, schedule and warmup, with sources."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lrkit.cli._app import app, console
from lrkit.cli._options import (
    BatchSize,
    Budget,
    FineTuning,
    Quick,
    ReferenceBatchSize,
    complete_architectures,
    complete_optimizers,
)

if TYPE_CHECKING:
    from lrkit.advice import Advice

__all__ = ["advise_command", "render_advice"]


def render_advice(advice: Advice) -> None:
    """Print ``advice`` as rich tables (the numbers, then why, then the notes)."""
    from lrkit.advice import fmt_lr

    low, high = advice.lr_range
    summary = Table(title=f"Advice for {advice.title}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("learning rate", f"[bold green]{fmt_lr(advice.lr)}[/]")
    summary.add_row("search range", f"{fmt_lr(low)} .. {fmt_lr(high)}")
    summary.add_row("schedule", f"[cyan]{advice.schedule}[/]  ({advice.schedule_name})")
    summary.add_row("warmup", f"{advice.warmup_steps} steps")
    if advice.scaling is not None:
        summary.add_row(
            "batch scaling",
            f"{advice.scaling} x{advice.scale_factor:.4g} "
            f"(batch {advice.batch_size} vs {advice.reference_batch_size}; "
            f"table lr {fmt_lr(advice.base_lr)})",
        )
    console.print(summary)
    why = Table(title="Why", title_justify="left")
    why.add_column("what", style="bold")
    why.add_column("value")
    why.add_column("reason")
    why.add_column("source", style="dim")
    for reason in advice.reasons:
        why.add_row(reason.topic, reason.value, reason.why, reason.source)
    console.print(why)
    for note in advice.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


@app.command("advise")
def advise_command(
    optimizer: Annotated[
        str,
        typer.Option(
            "--optimizer",
            "-o",
            help="sgd, sgd+momentum, nesterov, adam, adamw, rmsprop, adagrad, lion",
            autocompletion=complete_optimizers,
        ),
    ],
    arch: Annotated[
        str,
        typer.Option(
            "--arch",
            "-a",
            help="mlp, cnn, resnet, transformer, vit, rnn/lstm, gnn",
            autocompletion=complete_architectures,
        ),
    ],
    fine_tuning: FineTuning = False,
    quick: Quick = False,
    batch_size: BatchSize = None,
    reference_batch_size: ReferenceBatchSize = None,
    steps: Budget = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
) -> None:
    """Starting learning rate, search range, schedule and warmup, each with its source."""
    from lrkit.advice import advise

    advice = advise(
        optimizer,
        arch,
        fine_tuning=fine_tuning,
        batch_size=batch_size,
        reference_batch_size=reference_batch_size,
        total_steps=steps,
        quick=quick,
    )
    if as_json:
        console.print_json(json.dumps(advice.to_dict()))
        return
    render_advice(advice)
