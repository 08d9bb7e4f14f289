"""``lrkit find``: run a learning-rate range test on your setup or a built-in task.

Examples::

    lrkit find --task digits
    lrkit find train.py:make_setup --steps 200 --plot lr.png
    lrkit find mypkg.experiments:setup --val --json > range_test.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lrkit.cli._app import app, console, err_console
from lrkit.cli._options import FinderSchedule, Ramp, SetupTarget, TaskName
from lrkit.cli._output import plot_path

if TYPE_CHECKING:
    from lrkit._setup import Setup

__all__ = ["find_command", "load_setup", "render_result"]


def load_setup(target: str | None, task: str | None, seed: int) -> tuple[Setup, str]:
    """The setup named by TARGET or ``--task`` (exactly one of them), and a title for it."""
    from lrkit.cli._target import exactly_one, setup_from_target

    exactly_one(target, task)
    if task is not None:
        from lrkit.tasks import get_task

        return get_task(task).setup(seed=seed), f"task {task!r}"
    assert target is not None
    return setup_from_target(target), target


def _fmt(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:.3g}"


def render_result(result: Any, schedule: str, title: str) -> None:
    """Print every rule's suggestion (the default marked), the range and the stop reason."""
    from lrkit.finder import METHODS

    table = Table(title=f"LR range test: {title}", title_justify="left")
    table.add_column("rule", style="bold")
    table.add_column("lr", justify="right")
    table.add_column("why")
    for method in METHODS:
        s = result.suggest(method, schedule=schedule)
        name = f"{method} (default)" if method == METHODS[0] else method
        lr = f"[bold green]{_fmt(s.lr)}[/]" if method == METHODS[0] else _fmt(s.lr)
        table.add_row(name, lr, s.reason)
    console.print(table)
    span = result.suggest_range(schedule=schedule)
    if span is not None:
        console.print(
            f"suggested range (cyclic / one-cycle): {_fmt(span[0])} .. {_fmt(span[1])}",
            highlight=False,
        )
    else:
        console.print("suggested range: none (no clear descent)", highlight=False)
    curve = "validation" if result.curve == "val" else "training"
    console.print(
        f"{len(result)} points ({curve} loss), lr {_fmt(float(result.lrs[0]))} .. "
        f"{_fmt(float(result.lrs[-1]))}, stopped: {result.stop_reason}, "
        f"{result.seconds:.1f}s; schedule: {schedule}",
        highlight=False,
    )


@app.command("find")
def find_command(
    target: SetupTarget = None,
    task: TaskName = None,
    start_lr: Annotated[float, typer.Option("--start-lr", help="First learning rate.")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", help="Number of optimizer steps.")] = 100,
    mode: Annotated[Ramp, typer.Option("--mode", help="How the learning rate grows.")] = Ramp.exp,
    val: Annotated[
        bool,
        typer.Option("--val", help="Validation-loss mode: use the setup's val_loader."),
    ] = False,
    val_batches: Annotated[
        int, typer.Option("--val-batches", help="Validation batches per evaluation (--val).")
    ] = 2,
    val_every: Annotated[
        int, typer.Option("--val-every", help="Evaluate every k steps (--val).")
    ] = 1,
    schedule: Annotated[
        FinderSchedule, typer.Option("--schedule", help="The schedule you will train with.")
    ] = FinderSchedule.constant,
    no_stop: Annotated[
        bool, typer.Option("--no-stop", help="Run every step (no divergence stop).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed for --task.")] = 0,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the plot to this file (png, svg, pdf).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the curve, suggestions and range as JSON.")
    ] = False,
) -> None:
    """Run a learning-rate range test and show every rule's suggestion."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from lrkit._validate import fail
    from lrkit.finder import MAX_STEPS, METHODS, find_lr

    spec = schedule.value
    if not 10 <= steps <= MAX_STEPS:  # before the setup is built
        fail("--steps", steps, f"an integer in [10, {MAX_STEPS:_}]")
    plot = plot_path(plot)
    setup, title = load_setup(target, task, seed)
    if val and setup.val_loader is None:
        raise ValueError(f"--val needs a val_loader, but {title} has val_loader=None")
    out = err_console if as_json else console
    progress = Progress(
        TextColumn("[bold]range test"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    )
    bar = progress.add_task("find", total=steps, loss="-")

    def report(step: int, total: int, loss: float) -> None:
        progress.update(bar, completed=step, loss=f"{loss:.4g}")

    with progress:
        result = find_lr(
            setup.model,
            setup.optimizer,
            setup.loss_fn,
            setup.train_loader,
            val_loader=setup.val_loader if val else None,
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=steps,
            mode=mode.value,
            diverge_factor=None if no_stop else 4.0,
            step_fn=setup.step_fn,
            val_batches=val_batches,
            val_every=val_every,
            progress=report,
        )
    if plot is not None:
        from lrkit._optional import require

        plt = require("matplotlib.pyplot", "plot")
        ax = result.plot(schedule=spec)
        ax.figure.savefig(plot, dpi=120, bbox_inches="tight")  # type: ignore[union-attr]
        plt.close(ax.figure)
    if as_json:
        suggestions = {
            m: {"lr": s.lr, "reason": s.reason, "default": m == METHODS[0]}
            for m, s in result.suggest_all(schedule=spec).items()
        }
        span = result.suggest_range(schedule=spec)
        payload = {
            "source": title,
            "schedule": spec,
            "suggestion": suggestions[METHODS[0]]["lr"],
            "suggestions": suggestions,
            "range": None if span is None else list(span),
            "result": result.to_dict(),
        }
        if plot is not None:
            payload["plot"] = str(plot)
        console.out(json.dumps(payload, allow_nan=False), highlight=False)
    else:
        render_result(result, spec, title)
        if plot is not None:
            console.print(f"plot written to {plot}", highlight=False)
    lr = result.suggest(schedule=spec).lr
    if lr is None or not math.isfinite(lr):
        raise typer.Exit(1)  # no clear answer: the table / JSON says why
