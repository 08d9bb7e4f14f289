"""``lrkit schedule``: evaluate a schedule spec, show its key points, plot it, export it.

Examples::

    lrkit schedule "warmup(100, cosine(900, floor=0.05), start=0.01)" --steps 1000 --lr 3e-4
    lrkit schedule "onecycle(5000)" --steps 5000 --plot onecycle.png --csv onecycle.csv
    lrkit schedule --list
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lrkit._validate import check_int, fail
from lrkit.cli._app import app, console
from lrkit.cli._output import plot_path

if TYPE_CHECKING:  # numpy and the schedules load when the verb runs, not for --help
    import numpy as np
    from numpy.typing import NDArray

    from lrkit.schedules._base import Schedule

__all__ = ["schedule_command", "sparkline"]

_BLOCKS = "▁▂▃▄▅▆▇█"
_MAX_STEPS = 10_000_000


def sparkline(values: NDArray[np.float64], width: int = 60) -> str:
    """A unicode sparkline of ``values`` (bucket means, scaled from 0 to the maximum).

    Example:
        >>> import numpy as np
        >>> sparkline(np.array([0.0, 0.5, 1.0]), width=3)
        '▁▅█'
    """
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return ""
    columns = min(width, int(v.size))
    edges = np.linspace(0, v.size, columns + 1).astype(np.int64)
    sums = np.add.reduceat(v, edges[:-1])
    means = sums / np.diff(edges)
    top = float(np.max(means))
    if top <= 0:
        return _BLOCKS[0] * columns
    levels = np.clip(np.rint(means / top * (len(_BLOCKS) - 1)), 0, len(_BLOCKS) - 1)
    return "".join(_BLOCKS[int(level)] for level in levels)


def _parse_steps(raw: str | None) -> int:
    if raw is None:
        fail("steps", raw, "given with --steps N (the number of optimizer steps)")
    text = raw.strip()
    try:
        number: object = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            fail("steps", raw, "a whole number of optimizer steps >= 1")
    if isinstance(number, float) and not number.is_integer():
        fail("steps", raw, "a whole number of optimizer steps >= 1")
    count = check_int("steps", number, minimum=1)
    if count > _MAX_STEPS:
        fail("steps", raw, f"at most {_MAX_STEPS:,} for the CLI (it evaluates every step)")
    return count


def _parse_lr(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        fail("lr", raw, "a finite number >= 0")
    if not math.isfinite(value) or value < 0:
        fail("lr", raw, "a finite number >= 0")
    return value


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _list_kinds(as_json: bool) -> None:
    from lrkit.schedules import kinds

    entries = kinds()
    if as_json:
        rows = [
            {
                "name": k.name,
                "signature": k.signature,
                "summary": k.summary,
                "parameters": [
                    {
                        "name": p.name,
                        "default": p.default,
                        "description": p.description,
                        "choices": list(p.choices),
                    }
                    for p in k.params
                ],
                "example": k.example,
                "torch": k.torch,
                "hf": k.hf,
                "composition": k.composition,
            }
            for k in entries
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(
        title="schedule kinds (parameters without a default are required)",
        title_justify="left",
        show_lines=True,
    )
    table.add_column("kind and parameters", style="bold", overflow="fold")
    table.add_column("what it does")
    table.add_column("example", overflow="fold")
    for k in entries:
        table.add_row(k.signature, k.summary, k.example)
    console.print(table)


@app.command("schedule")
def schedule_command(
    spec: Annotated[
        str | None,
        typer.Argument(
            help="Schedule spec, e.g. 'warmup(100, cosine(900))'.",
            show_default=False,
            metavar="SPEC",
        ),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(
            "--steps",
            "-n",
            help="Number of optimizer steps to evaluate (steps 0..N-1).",
            show_default=False,
            metavar="N",
        ),
    ] = None,
    lr: Annotated[
        str | None,
        typer.Option(
            "--lr",
            help="Initial learning rate (also show lr = LR * multiplier).",
            show_default=False,
            metavar="LR",
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write a PNG plot here.", show_default=False, metavar="FILE.png"
        ),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write step,multiplier[,lr] rows here.",
            show_default=False,
            metavar="FILE.csv",
        ),
    ] = None,
    log: Annotated[bool, typer.Option("--log", help="Logarithmic y axis in the plot.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON object instead of the table.")
    ] = False,
    list_kinds: Annotated[
        bool, typer.Option("--list", help="List every schedule kind and exit.")
    ] = False,
) -> None:
    """Show a schedule: key points, a sparkline, and optionally a plot and a CSV."""
    if list_kinds:
        _list_kinds(as_json)
        return
    if spec is None:
        fail("SPEC", spec, "a schedule spec such as 'cosine(1000)' (or use --list)")
    count = _parse_steps(steps)
    base_lr = _parse_lr(lr)
    _check_output("csv", csv)
    plot = plot_path(plot)
    import numpy as np

    from lrkit.schedules import parse
    from lrkit.schedules._points import key_points

    schedule = parse(spec)
    warmup = _check_fits(schedule, count)
    multipliers = schedule.values(count)
    points, omitted = key_points(multipliers, warmup=warmup)
    scale = 1.0 if base_lr is None else base_lr
    if plot is not None:
        _write_plot(schedule, count, base_lr, plot, log)
    if csv is not None:
        _write_csv(multipliers, base_lr, csv)
    line = sparkline(multipliers)
    if as_json:
        payload: dict[str, Any] = {
            "spec": str(schedule),
            "steps": count,
            "lr": base_lr,
            "points": [
                {
                    "step": p.step,
                    "label": p.label,
                    "multiplier": float(multipliers[p.step]),
                    "lr": None if base_lr is None else float(multipliers[p.step] * scale),
                }
                for p in points
            ],
            "omitted_points": omitted,
            "min_multiplier": float(np.min(multipliers)),
            "max_multiplier": float(np.max(multipliers)),
            "sparkline": line,
            "plot": None if plot is None else str(plot),
            "csv": None if csv is None else str(csv),
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    title = f"{schedule}  ·  {count} steps" + ("" if base_lr is None else f"  ·  lr {base_lr:g}")
    console.print(title, highlight=False, markup=False)
    table = Table()
    table.add_column("step", justify="right")
    table.add_column("point")
    table.add_column("multiplier", justify="right")
    if base_lr is not None:
        table.add_column("lr", justify="right")
    for p in points:
        if omitted and p is points[-1]:
            table.add_row("…", f"{omitted} more", "", *([""] if base_lr is not None else []))
        row = [str(p.step), p.label, _fmt(float(multipliers[p.step]))]
        if base_lr is not None:
            row.append(_fmt(float(multipliers[p.step] * scale)))
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{line}  min {_fmt(float(np.min(multipliers) * scale))}"
        f"  max {_fmt(float(np.max(multipliers) * scale))}",
        highlight=False,
        markup=False,
    )
    for label, path in (("plot", plot), ("csv", csv)):
        if path is not None:
            console.print(f"wrote {label}: {path}", highlight=False, markup=False)


def _check_fits(schedule: Schedule, count: int) -> int | None:
    """Warmup longer than the evaluated steps is almost always a mistake in the command."""
    from lrkit.schedules._points import warmup_steps

    warmup = warmup_steps(schedule)
    if warmup is not None and warmup > count:
        fail("steps", count, f"at least the warmup length ({warmup} steps) of {schedule}")
    return warmup


def _check_output(label: str, path: Path | None) -> None:
    """Fail before any work when ``path`` cannot be a file to write."""
    if path is None:
        return
    if path.is_dir():
        fail(label, str(path), "a file name, not a directory")
    if not path.parent.exists():
        raise FileNotFoundError(f"{label} directory does not exist: {path.parent}")


def _write_plot(schedule: Schedule, count: int, lr: float | None, path: Path, log: bool) -> None:
    from lrkit._optional import require
    from lrkit.plotting._schedule import plot_schedule

    plt: Any = require("matplotlib.pyplot", "plot")
    fig, ax = plt.subplots(figsize=(7.0, 3.6), layout="constrained")
    try:
        plot_schedule(schedule, count, lr=lr, ax=ax, log=log)
        ax.set_title(str(schedule), fontsize=9)
        legend = ax.get_legend()
        if legend is not None:  # the title already names the schedule
            legend.remove()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def _write_csv(multipliers: NDArray[np.float64], lr: float | None, path: Path) -> None:
    import numpy as np

    steps = np.arange(multipliers.size)
    if lr is None:
        data = np.column_stack([steps, multipliers])
        np.savetxt(
            path, data, fmt=["%d", "%.17g"], delimiter=",", header="step,multiplier", comments=""
        )
    else:
        data = np.column_stack([steps, multipliers, multipliers * lr])
        np.savetxt(
            path,
            data,
            fmt=["%d", "%.17g", "%.17g"],
            delimiter=",",
            header="step,multiplier,lr",
            comments="",
        )
