"""``lrkit tune``: search the learning rate with Optuna, on one process, several, or machines.

Examples::

    lrkit tune --task digits --trials 20 --early-stopping hyperband --plot tune.png
    lrkit tune train.py:objective --trials 50 --workers 2 --storage study.journal
    lrkit tune train.py:objective --trials 200 --storage postgresql://me:pw@db/hpo --study lr1
    lrkit tune --show --storage postgresql://me:pw@db/hpo --study lr1
    lrkit tune --task digits --auto --budget 3 --workers 2     # the race (lrkit.race.run_race)
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from lrkit._optional import require
from lrkit._validate import fail
from lrkit.cli._app import UserError, app, console, err_console
from lrkit.cli._options import EarlyStopping, Strategy, complete_tasks
from lrkit.cli._output import plot_path

if TYPE_CHECKING:  # the tuning modules load when the verb runs, not for --help
    from rich.progress import Progress

    from lrkit.tuning._result import TrialRecord, TuneResult

__all__ = ["tune_command"]


@dataclass(frozen=True)
class _TargetParamsObjective:
    """A ``file.py:function`` / ``module:function`` objective(params, report), loaded lazily in
    each worker process (file targets are not importable by name, so they cannot be pickled)."""

    target: str
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _func(self) -> Any:
        if "func" not in self._cache:
            from lrkit.cli._target import load_target

            self._cache["func"] = load_target(self.target)
        return self._cache["func"]

    def __call__(self, params: dict[str, Any], report: Any) -> Any:
        return self._func()(params, report)

    def __getstate__(self) -> dict[str, Any]:
        return {"target": self.target, "_cache": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "target", state["target"])
        object.__setattr__(self, "_cache", {})


@dataclass(frozen=True)
class _TargetTrialObjective(_TargetParamsObjective):
    """The same for an Optuna-style ``objective(trial)``."""

    def __call__(self, trial: Any) -> Any:  # type: ignore[override]
        return self._func()(trial)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _best_table(result: TuneResult, k: int = 5) -> Table:
    params: list[str] = []
    for trial in result.trials:
        for name in trial.params:
            if name not in params:
                params.append(name)
    table = Table()
    table.add_column("trial", justify="right")
    for name in params:
        table.add_column(name, justify="right")
    table.add_column("value", justify="right")
    table.add_column("steps", justify="right")
    for trial in result.best_trials(k):
        table.add_row(
            str(trial.number),
            *[_fmt(trial.params.get(n, "")) for n in params],
            _fmt(trial.value),
            "" if trial.steps is None else str(trial.steps),
        )
    return table


def _summary(result: TuneResult) -> str:
    counts = result.counts
    parts = [f"{counts['complete']} complete", f"{counts['pruned']} pruned"]
    if counts["failed"]:
        retried = sum(1 for t in result.trials if t.retried)
        parts.append(f"{counts['failed']} failed" + (f" ({retried} retried)" if retried else ""))
    for state in ("running", "waiting"):
        if counts[state]:
            parts.append(f"{counts[state]} {state}")
    text = (
        f"study {result.study_name!r} in {result.storage}: {len(result.trials)} trials ("
        + ", ".join(parts)
        + f"), {result.total_steps} steps reported"
    )
    test = result.range_test
    if test:
        low, high = test["range"]
        text += (
            f"\nrange test: suggestion {test['suggestion']:.3g}, searched {low:.3g}..{high:.3g}"
            f" ({test['steps']} steps)"
        )
    if result.best_value is not None:
        best = ", ".join(f"{k}={_fmt(v)}" for k, v in result.best_params.items())
        text += f"\nbest: {best} -> {result.best_value:.6g} (trial {result.best_number})"
    return text


def _failures(result: TuneResult, k: int = 3) -> list[str]:
    failed = [t for t in result.trials if t.state == "failed" and not t.retried]
    lines = [f"trial {t.number} failed: {t.reason}" for t in failed[:k]]
    if len(failed) > k:
        lines.append(f"... and {len(failed) - k} more failed trials")
    return lines


def _save_plot(result: TuneResult, path: Path) -> None:
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = result.plot()
    fig = axes[0].get_figure(root=True)
    assert fig is not None
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _parse_range(raw: str | None) -> tuple[float, float] | None:
    if raw is None:
        return None
    parts = raw.replace(":", ",").split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        fail("lr-range", raw, "two numbers LOW,HIGH such as 1e-5,1e-1")
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or low >= high:
        fail("lr-range", raw, "two numbers 0 < LOW < HIGH such as 1e-5,1e-1")
    return low, high


def _output(result: TuneResult, as_json: bool, plot: Path | None) -> int:
    if plot is not None:
        _save_plot(result, plot)
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
    else:
        if result.best_trials(1):
            # a heading line, not the table's title: a title would wrap to the table's width
            console.print(
                f"best trials of study {result.study_name!r}", highlight=False, soft_wrap=True
            )
            console.print(_best_table(result))
        console.print(_summary(result), highlight=False, soft_wrap=True)
        for line in _failures(result):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        if plot is not None:
            console.print(f"plot written to {plot}", highlight=False)
    return 0 if result.best_value is not None else 1


def _resumed(storage: str | None, study: str) -> tuple[int, float]:
    """Finished trials and best value already in the study (a resumed run's progress bar
    starts there); (0, inf) when there is no such study yet or it cannot be read."""
    from lrkit.tuning._tune import load_result

    if storage == ":memory:":
        return 0, math.inf
    try:
        result = load_result(storage, study)
    except ValueError:
        return 0, math.inf
    done = sum(
        1
        for t in result.trials
        if t.state in ("complete", "pruned") or (t.state == "failed" and not t.retried)
    )
    return done, math.inf if result.best_value is None else result.best_value


@app.command("tune")
def tune_command(
    target: Annotated[
        str | None,
        typer.Argument(
            help="The objective: 'module:function' or 'path/file.py:function', taking "
            "(params, report) or an Optuna trial; or use --task.",
            show_default=False,
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="Tune a built-in task (lrkit.tasks) instead.",
            autocompletion=complete_tasks,
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", "-n", help="Finished trials the study should hold (its total)."),
    ] = None,
    strategy: Annotated[
        Strategy, typer.Option("--strategy", help="How trials are chosen (the sampler).")
    ] = Strategy.tpe,
    early_stopping: Annotated[
        EarlyStopping,
        typer.Option("--early-stopping", help="Which trials stop early (the pruner)."),
    ] = EarlyStopping.none,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="study.db (SQLite), study.journal (several local workers), "
            "postgresql://user:pw@host/db (many machines). Default: lrkit-tune.db here.",
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name to create, resume or --show.")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Local workers: this process and N-1 new ones.")
    ] = 1,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampler (and task) seed.")] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop starting trials after SECONDS.")
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Training steps per trial for --task.")
    ] = None,
    lr_range: Annotated[
        str | None, typer.Option("--lr-range", help="LOW,HIGH of the log-uniform lr range.")
    ] = None,
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            help="With --task: the race (range test, then successive halving of candidate lrs "
            "on validation loss), within --budget runs.",
        ),
    ] = False,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="With --auto: the search budget in runs (default 3)."),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule", help="With --auto: your schedule, e.g. cosine (default constant)."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write lr-vs-value and history plots here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    show: Annotated[
        bool, typer.Option("--show", help="Print an existing study (--storage, --study).")
    ] = False,
) -> int:
    """Search the learning rate with Optuna (grid, random, qmc, tpe, gp; early stopping)."""
    from lrkit.tuning._tune import _objective_style, load_result, tune
    from lrkit.tuning._workers import Terminated

    optuna = require("optuna", "tune")
    if not logging.getLogger().isEnabledFor(logging.INFO):
        # lrkit reports trials itself (progress bar, table, failure reasons)
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    plot = plot_path(plot)  # checked before any trial runs
    if show:
        if target is not None or task is not None:
            raise UserError("--show prints an existing study: give --storage and --study only")
        if storage is None or study is None:
            raise UserError("--show needs --storage URL and --study NAME")
        return _output(load_result(storage, study), as_json, plot)

    if (target is None) == (task is None):
        raise UserError("give either TARGET (module:function or file.py:function) or --task NAME")
    if not auto and (budget is not None or schedule is not None):
        raise UserError("--budget and --schedule apply to --auto (the race) only")
    if auto:
        if task is None:
            raise UserError("--auto needs --task (the race trains the task's setup)")
        given = [
            name
            for name, value, default in (
                ("--trials", trials, None),
                ("--lr-range", lr_range, None),
                ("--strategy", strategy, "tpe"),
                ("--early-stopping", early_stopping, "none"),
                ("--timeout", timeout, None),
            )
            if value != default
        ]
        if given:
            raise UserError(
                f"--auto runs the race, whose trials follow from --budget: drop {', '.join(given)}"
            )
        return _race(task, budget, schedule, steps, seed, workers, storage, study, as_json, plot)
    if trials is None and strategy != "grid":
        raise UserError("--trials N is required (the number of finished trials to reach)")
    if steps is not None and task is None:
        raise UserError("--steps applies to --task only (a TARGET controls its own training)")
    bounds = _parse_range(lr_range)
    space: Any = None if bounds is None else {"lr": ("log", *bounds)}

    objective: Any
    max_steps: int | None = None
    study_name = study
    if task is not None:
        from lrkit.tuning._task import TaskObjective

        objective = TaskObjective(task, steps=steps, seed=0 if seed is None else seed)
        max_steps = objective.budget
        if study_name is None:
            study_name = f"lrkit-task-{task}-{strategy.value}-{early_stopping.value}"
    else:
        assert target is not None
        from lrkit.cli._target import load_target

        style = _objective_style(load_target(target))
        objective = (
            _TargetTrialObjective(target) if style == "optuna" else _TargetParamsObjective(target)
        )
        if study_name is None:
            stem = target.rpartition(":")[2]
            study_name = f"lrkit-{Path(target.rpartition(':')[0]).stem}-{stem}"

    total = trials
    with _progress("[bold]tune[/] {task.description}", as_json) as progress:
        done, best = _resumed(storage, study_name) if total is not None else (0, math.inf)
        text = "best -" if best == math.inf else f"best {best:.5g}"
        bar = progress.add_task(text, total=total, completed=done)

        def on_trial(record: TrialRecord) -> None:
            nonlocal best
            if record.state == "complete" and record.value is not None:
                best = min(best, record.value)
            text = "best -" if best == math.inf else f"best {best:.5g}"
            progress.update(bar, advance=1, description=text)

        try:
            result = tune(
                objective,
                space=space,
                n_trials=trials,
                strategy=strategy.value,
                early_stopping=None if early_stopping == "none" else early_stopping.value,
                storage=storage,
                study_name=study_name,
                seed=seed,
                timeout=timeout,
                workers=workers,
                max_steps=max_steps,
                threads_per_worker=1 if workers > 1 else None,
                on_trial=on_trial,
            )
        except Terminated as exc:
            # tune stopped its workers and queued the interrupted trial: say so in one line
            err_console.print(
                f"lrkit: terminated ({exc}); the study is saved: run the same command again "
                "to resume it",
                highlight=False,
            )
            raise typer.Exit(128 + exc.signum) from None
    return _output(result, as_json, plot)


def _progress(label: str, as_json: bool) -> Progress:
    """The progress display of ``lrkit tune`` on stderr (off for --json and off a terminal)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json or not err_console.is_terminal,
    )


def _race(
    task: str,
    budget: float | None,
    schedule: str | None,
    steps: int | None,
    seed: int | None,
    workers: int,
    storage: str | None,
    study: str | None,
    as_json: bool,
    plot: Path | None,
) -> int:
    """``lrkit tune --task NAME --auto``: the race of :func:`lrkit.race.run_race` (the engine
    of ``lrkit auto``), on ``tune``'s Optuna study, workers and storage."""
    from lrkit.race import DEFAULT_BUDGET, run_race

    with _progress("[bold]{task.description:<10}", as_json) as progress:
        bars: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done, total=total)

        result = run_race(
            task,
            schedule=schedule or "constant",
            total_steps=steps,
            budget=DEFAULT_BUDGET if budget is None else budget,
            seed=0 if seed is None else seed,
            workers=workers,
            storage=storage,
            study_name=study,
            progress=on_progress,
        )
    if plot is not None:
        require("matplotlib", "plot")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = result.plot()
        fig = ax.get_figure(root=True)
        assert fig is not None
        fig.savefig(plot, dpi=120, bbox_inches="tight")
        plt.close(fig)
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
        return 0 if result.lr is not None else 1
    table = Table(title=f"race on {task!r} ({result.schedule}, {result.total_steps} steps)")
    for column in ("lr", "outcome", "validation loss per rung", "why"):
        table.add_column(column, justify="right" if column == "lr" else "left")
    for c in result.candidates:
        table.add_row(
            f"{c.lr:.4g}",
            c.state + (" (winner)" if c.winner else ""),
            ", ".join(f"{t.value:.4g}" if t.value is not None else t.state for t in c.trials),
            c.reason,
        )
    console.print(table)
    console.print(
        f"lr {'-' if result.lr is None else f'{result.lr:.4g}'}: {result.reason}\n"
        f"spent {result.spent_steps} steps = {result.spent_budgets:.2f} of {result.budget:g} "
        f"runs (range test {result.stage_steps.get('range test', 0)}); study "
        f"{result.study_name!r} in {result.storage}",
        highlight=False,
        soft_wrap=True,
    )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if plot is not None:
        console.print(f"plot written to {plot}", highlight=False)
    return 0 if result.lr is not None else 1
