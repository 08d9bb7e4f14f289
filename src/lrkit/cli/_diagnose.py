"""``lrkit diagnose PATH``: verdict, findings table and recommended action for a training log.

Exit status: 0 healthy (or inconclusive), 1 a problem was found, 2 bad input.

Examples::

    lrkit diagnose runs/exp1                       # TensorBoard run directory
    lrkit diagnose lightning_logs/version_0/metrics.csv --val val_loss --plot diag.png
    lrkit diagnose output/checkpoint-500 --json    # Hugging Face trainer_state.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lrkit.cli._app import UserError, app, console
from lrkit.cli._output import plot_path

__all__ = ["diagnose_command"]

_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
_VERDICT_STYLE = {"healthy": "bold green", "inconclusive": "bold yellow"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:6]) + (", …" if len(value) > 6 else "") + "]"
    if isinstance(value, dict):
        return "{…}"
    return str(value)


def _evidence(stats: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={_fmt(v)}" for k, v in list(stats.items())[:6] if not isinstance(v, dict)
    )


def _write_plot(diagnosis: Any, path: Path) -> None:
    from lrkit._optional import require

    plt: Any = require("matplotlib.pyplot", "plot")
    if not path.parent.is_dir():
        raise UserError(f"--plot: plot directory does not exist: {path.parent}")
    fig, ax = plt.subplots(figsize=(8.0, 4.0), layout="constrained")
    try:
        diagnosis.plot(ax=ax)
        fig.savefig(path, dpi=120)
    except OSError as exc:  # e.g. a directory without write permission
        raise UserError(f"--plot: cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)


@app.command("diagnose")
def diagnose_command(
    path: Annotated[
        str,
        typer.Argument(
            help="Log file or run directory: TensorBoard, Lightning metrics.csv, "
            "trainer_state.json, .jsonl or .csv with a step column; '-' for standard input.",
            show_default=False,
        ),
    ],
    train: Annotated[
        str | None, typer.Option("--train", help="Training-loss series name.", show_default=False)
    ] = None,
    val: Annotated[
        str | None, typer.Option("--val", help="Validation-loss series name.", show_default=False)
    ] = None,
    lr: Annotated[
        str | None, typer.Option("--lr", help="Learning-rate series name.", show_default=False)
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write a PNG with each problem's onset marked.", show_default=False
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the diagnosis as JSON instead of tables.")
    ] = False,
) -> None:
    """Diagnose a training log: verdict, findings, recommended action (exit 1 on a problem)."""
    from lrkit.diagnosis import diagnose_file

    plot = plot_path(plot)
    diagnosis = diagnose_file(path, train=train, val=val, lr=lr)
    if plot is not None:
        _write_plot(diagnosis, plot)
    if as_json:
        payload = diagnosis.to_dict()
        payload["plot"] = None if plot is None else str(plot)
        typer.echo(json.dumps(payload, indent=2))
    else:
        stats = diagnosis.statistics
        series = stats.get("series", {})
        console.print(
            f"{stats.get('source', path)}  ·  {stats.get('format', '?')}  ·  "
            f"train={series.get('train')} val={series.get('val')} lr={series.get('lr')}  ·  "
            f"{stats.get('points')} points",
            highlight=False,
            markup=False,
        )
        style = _VERDICT_STYLE.get(diagnosis.verdict, "bold red")
        console.print(
            f"verdict: [{style}]{diagnosis.verdict}[/]  ({diagnosis.reason})", highlight=False
        )
        if diagnosis.findings:
            table = Table(title="findings", title_justify="left")
            table.add_column("problem", style="bold")
            table.add_column("severity")
            table.add_column("onset step", justify="right")
            table.add_column("what")
            table.add_column("evidence")
            for f in diagnosis.findings:
                table.add_row(
                    f.kind,
                    f"[{_STYLE.get(f.severity, '')}]{f.severity}[/]",
                    "-" if f.onset_step is None else str(f.onset_step),
                    f.message,
                    _evidence(dict(f.statistics)),
                )
            console.print(table)
        console.print(f"action: {diagnosis.action.text}", highlight=False, markup=False)
        if plot is not None:
            console.print(f"wrote plot: {plot}", highlight=False, markup=False)
    if diagnosis.problem:
        raise typer.Exit(1)
