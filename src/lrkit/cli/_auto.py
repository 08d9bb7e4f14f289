"""``lrkit auto``: advise -> range test -> race -> schedule -> guarded check runs -> report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lrkit.cli._app import app, console
from lrkit.cli._options import (
    BatchSize,
    Budget,
    FineTuning,
    ReferenceBatchSize,
    SetupTarget,
    TaskName,
    complete_architectures,
    complete_optimizers,
)

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["auto_command"]


def _load(target: str | None, task: str | None) -> Any:
    from lrkit.cli._target import exactly_one, setup_from_target

    exactly_one(target, task)
    return None if target is None else setup_from_target(target)


@app.command("auto")
def auto_command(
    target: SetupTarget = None,
    task: TaskName = None,
    optimizer: Annotated[
        str | None,
        typer.Option(
            "--optimizer",
            "-o",
            help="Optimizer name (default: read it).",
            autocompletion=complete_optimizers,
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            "-a",
            help="Architecture (default: read the model).",
            autocompletion=complete_architectures,
        ),
    ] = None,
    fine_tuning: FineTuning = False,
    one_cycle: Annotated[
        bool, typer.Option("--one-cycle", help="Short training from scratch (one-cycle).")
    ] = False,
    batch_size: BatchSize = None,
    reference_batch_size: ReferenceBatchSize = None,
    steps: Budget = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget",
            help="Search budget in runs of --steps, range test included (default 3): "
            "a race of candidate lrs on validation loss.",
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="The range test alone (--budget 0).")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", help="Local worker processes for the race (tasks).")
    ] = 1,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Keep the race's trials here (file or URL; resumable)."),
    ] = None,
    train_steps: Annotated[
        int, typer.Option("--train-steps", help="Steps of the guarded check run (0: none).")
    ] = 0,
    range_steps: Annotated[
        int, typer.Option("--range-steps", help="Steps of the range test.")
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the setup and the run.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the report (HTML + markdown) here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The main job: find the learning rate and schedule for a setup, verify it, report."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.syntax import Syntax

    from lrkit.advice import fmt_lr
    from lrkit.pipeline import auto

    setup = _load(target, task)
    bars: dict[str, TaskID] = {}
    progress = Progress(
        TextColumn("[bold]{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=as_json,
    )

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            if not bars:  # started by the first stage: bad input prints no empty bar display
                progress.start()
            bars[stage] = progress.add_task(stage, total=total)
        progress.update(bars[stage], completed=done, total=total)

    try:
        result = auto(
            setup,
            task=task,
            optimizer=optimizer,
            architecture=arch,
            fine_tuning=fine_tuning,
            batch_size=batch_size,
            reference_batch_size=reference_batch_size,
            total_steps=steps,
            budget=budget,
            quick=quick,
            one_cycle=one_cycle,
            workers=workers,
            storage=storage,
            train_steps=train_steps,
            range_steps=range_steps,
            seed=seed,
            out=out,
            progress=on_progress,
        )
    finally:
        if bars:
            progress.stop()
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return
    table = Table(title=f"lrkit auto: {result.name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("optimizer / model", f"{result.optimizer} + {result.architecture}")
    table.add_row("learning rate", f"[bold green]{fmt_lr(result.lr)}[/]  ({result.lr_source})")
    race = result.race
    if race is not None:
        spent = f"{race.spent_budgets:.2f} of {race.budget:g} runs of {race.total_steps} steps"
        table.add_row("search", f"race of {len(race.candidates)} candidates, {spent}")
    else:
        steps_spent = f"{result.spent_steps} steps"
        table.add_row("search", f"range test only ({steps_spent})")
    if result.lr_range is not None:
        low, high = result.lr_range
        table.add_row("cyclic range", f"{fmt_lr(low)} .. {fmt_lr(high)}")
    table.add_row("schedule", f"[cyan]{result.schedule}[/]  ({result.advice.schedule_name})")
    table.add_row("advisor's start", fmt_lr(result.advice.lr))
    diagnosis = result.diagnosis
    if len(result.attempts) > 1:
        table.add_row(
            "check runs",
            "; ".join(f"{fmt_lr(a.lr)}: {a.verdict}" for a in result.attempts),
        )
    if diagnosis is not None:
        verdict = str(diagnosis.verdict)
        color = "green" if verdict == "healthy" else "yellow"
        table.add_row(f"check run ({result.train_steps} steps)", f"[{color}]{verdict}[/]")
        action = getattr(getattr(diagnosis, "action", None), "text", None)
        if action:
            table.add_row("action", str(action))
        table.add_row("guard events", str(len(result.guard_events)))
    console.print(table)
    console.print(
        Syntax(
            result.snippet,
            "python",
            theme="ansi_dark",
            background_color="default",
            word_wrap=True,
        )
    )
    for note in dict.fromkeys([*result.notes, *result.advice.notes]):
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if result.report:
        console.print(
            f"Report: [bold]{result.report['html']}[/] (markdown: {result.report['markdown']})",
            highlight=False,
            soft_wrap=True,
        )
