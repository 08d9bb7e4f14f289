"""``lrkit.auto``: advise -> range test -> race -> schedule -> guarded check runs -> report.

Each stage is a public lrkit function; this module only chains them and keeps what each found:

1. :func:`lrkit.advice.advise` for the optimizer and architecture (read from the setup when
   not given) gives a starting point, the schedule for the run's length and the range test's
   sweep;
2. :func:`lrkit.finder.find_lr` runs the range test (it restores the model and optimizer);
3. :func:`lrkit.race.run_race` races candidates from that range test on validation loss within
   ``budget`` runs (the verified answer); with ``budget=0`` (``quick``) the range test's own
   suggestion *for the schedule* (``RangeTest.suggest(schedule=...)``) is the answer;
4. optionally guarded check runs (``train_steps``) with that lr and schedule on a copy of the
   model and optimizer, each read by :func:`lrkit.diagnosis.diagnose`: when the diagnosis (or
   the Guard) says the lr is too high or too low, the lr is changed as it says and checked
   again, at most ``max_attempts`` runs;
5. a report (HTML + markdown + PNGs + JSON) when ``out`` is given.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrkit._optional import MissingExtraError
from lrkit._setup import Setup, as_setup
from lrkit._threads import torch_threads
from lrkit._validate import check_int, check_real, fail
from lrkit.advice import advise, fmt_lr
from lrkit.advice._advice import normalize_architecture, normalize_optimizer
from lrkit.finder._rules import schedule_family as finder_schedule
from lrkit.pipeline._infer import choose_name, infer_architecture, infer_optimizer
from lrkit.pipeline._result import Attempt, AutoResult, lr_of, training_curves
from lrkit.pipeline._snippet import optimizer_kwargs

__all__ = ["Progress", "auto", "finder_schedule"]

logger = logging.getLogger(__name__)

#: torch threads while a built-in task runs (restored afterwards)
_TASK_THREADS = 1
#: check runs of the closed loop at most (the first one and two corrections)
MAX_ATTEMPTS = 3
#: the lr change when the Guard saw the loss blow up and the diagnosis named no factor
_GUARD_FACTOR = 1 / 3

#: ``progress(stage, done, total)``: stage is "range test", "race", "training" or "report"
Progress = Callable[[str, int, int], None]


def _resolve(target: object, task: str | None, seed: int) -> tuple[str, Setup, Any, Any]:
    """(name, setup, task object or None, what the race trains) from a task name, a Task, a
    Setup or a mapping (a built-in task travels by name: worker processes can load it)."""
    if task is not None and target is not None:
        fail("task", task, "None when a target is given (give one of them)")
    if task is not None or isinstance(target, str):
        from lrkit.tasks import get_task

        name = task if task is not None else str(target)
        task_obj = get_task(name)
        setup = as_setup(task_obj.setup(seed=seed), source=f"task {name!r}")
        return name, setup, task_obj, name
    if target is None:
        fail("target", target, "a Setup, a mapping with model/optimizer/train_loader, or a task")
    if hasattr(target, "setup") and callable(target.setup) and not isinstance(target, Setup):
        name = str(getattr(target, "name", type(target).__name__))
        return name, as_setup(target.setup(seed=seed), source=f"task {name!r}"), target, target
    setup = as_setup(target, source="target")
    return type(setup.model).__name__, setup, None, setup


def auto(
    target: object = None,
    *,
    task: str | None = None,
    optimizer: str | None = None,
    architecture: str | None = None,
    fine_tuning: bool = False,
    batch_size: int | None = None,
    reference_batch_size: int | None = None,
    total_steps: int | None = None,
    budget: float | None = None,
    quick: bool = False,
    one_cycle: bool = False,
    train_steps: int = 0,
    range_steps: int = 100,
    eval_every: int | None = None,
    seed: int = 0,
    workers: int = 1,
    storage: object = None,
    max_attempts: int = MAX_ATTEMPTS,
    out: str | Path | None = None,
    progress: Progress | None = None,
) -> AutoResult:
    """Answer "what learning rate and schedule should I use?" end to end.

    Args:
        target: a :class:`~lrkit._setup.Setup` (or a mapping / object with ``model``,
            ``optimizer``, ``train_loader`` and optionally ``loss_fn``, ``val_loader``,
            ``step_fn``), a built-in task name, or a task object.
        task: a built-in task name (instead of ``target``), e.g. ``"digits"``.
        optimizer, architecture: the advisor's names; read from the setup when omitted.
        fine_tuning, batch_size, reference_batch_size: passed to :func:`lrkit.advise`.
        total_steps: your run's length in optimizer steps; the schedule is built for it and it
            is the budget's unit (default: ``train_steps``, else a task's budget).
        budget: how many of your runs the search may cost, range test included: the race of
            :func:`lrkit.race.run_race` (default :data:`lrkit.race.DEFAULT_BUDGET`; without a
            run length, or when your run is too short for a race in that budget, the range
            test's quick answer, with a note). An explicit budget too small is an error.
        quick: the range test alone (``budget=0``).
        one_cycle: short training from scratch: the advisor's one-cycle schedule.
        train_steps: length of each guarded check run (0: none).
        range_steps: steps of the range test (>= 10).
        eval_every: validation interval of the check run (default: about 10 evaluations).
        seed: seed of the task setup, the range test, the race and the check runs.
        workers, storage: the race's local worker processes and Optuna storage (see
            :func:`lrkit.race.run_race`).
        max_attempts: check runs at most: a run whose diagnosis says the lr is too high or
            too low is followed by one at the corrected lr.
        out: directory for the report (``report.html``, ``report.md``, PNGs, ``result.json``).
        progress: ``progress(stage, done, total)`` callback (the CLI draws bars with it).

    Returns:
        an :class:`AutoResult` with the advice, the range test, the race, the schedule, the
        check runs (each with its Guard events and diagnosis) and the report paths.

    Example:
        >>> from lrkit.pipeline import auto
        >>> result = auto(task="digits", train_steps=200)  # doctest: +SKIP
        >>> print(result.lr, result.schedule)  # doctest: +SKIP
    """
    from lrkit.race import DEFAULT_BUDGET

    range_steps = check_int("range_steps", range_steps, minimum=10)
    train_steps = check_int("train_steps", train_steps, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    max_attempts = check_int("max_attempts", max_attempts, minimum=1)
    workers = check_int("workers", workers, minimum=1)  # before the range test, not after
    if total_steps is not None:
        total_steps = check_int("total_steps", total_steps, minimum=10)
    if train_steps and train_steps < 10:
        fail("train_steps", train_steps, "0 (no check run) or an integer >= 10")
    if eval_every is not None:
        eval_every = check_int("eval_every", eval_every, minimum=1)
    if not isinstance(quick, bool):
        fail("quick", quick, "True or False")
    if budget is not None:
        budget = check_real("budget", budget, minimum=0.0)
        if quick and budget != 0:
            fail("budget", budget, "0 or None with quick=True (the range test alone)")
    out_dir = None if out is None else Path(out)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        fail("out", str(out_dir), "a directory (it is a file)")

    timings: dict[str, float] = {}
    notes: list[str] = []
    inferred: dict[str, str] = {}
    t0 = time.perf_counter()
    name, setup, task_obj, race_target = _resolve(target, task, seed)
    opt_name = choose_name(
        "optimizer",
        optimizer,
        getattr(task_obj, "optimizer", None),
        normalize_optimizer,
        lambda: (infer_optimizer(setup.optimizer), type(setup.optimizer).__name__),
        inferred,
    )
    arch = choose_name(
        "architecture",
        architecture,
        getattr(task_obj, "model", None),
        normalize_architecture,
        lambda: (infer_architecture(setup.model), f"the layers of {type(setup.model).__name__}"),
        inferred,
    )
    task_budget = getattr(task_obj, "budget", None)
    run_steps = (
        total_steps or train_steps or (task_budget if isinstance(task_budget, int) else None)
    )
    advice = advise(
        opt_name,
        arch,
        fine_tuning=fine_tuning,
        batch_size=batch_size,
        reference_batch_size=reference_batch_size,
        total_steps=run_steps,
        quick=one_cycle,
    )
    timings["setup"] = time.perf_counter() - t0
    if budget and run_steps is not None:  # an explicit budget too small: say so before any work
        from lrkit.race import check_budget

        check_budget(budget, run_steps, range_steps)
    race_possible = _optuna_installed()
    if budget and not race_possible:  # asked for a race that cannot run: say so before any work
        raise MissingExtraError(
            f"budget={budget:g} asks for the race, which needs Optuna: pip install 'lrkit[tune]' "
            "(or budget=0 / --quick for the range test's quick answer)"
        )

    # ------------------------------------------------------------------ range test
    # the built-in tasks are tiny: one thread is several times faster than two on a busy
    # 2-core machine (threads fight over the cores); a user's setup keeps its own setting
    threads = _TASK_THREADS if task_obj is not None else None
    t0 = time.perf_counter()
    with torch_threads(threads):
        range_test = _range_test(setup, advice, range_steps, seed, progress)
    timings["range_test"] = time.perf_counter() - t0
    family = finder_schedule(advice.schedule, run_steps)
    suggestion, reason = _suggest(range_test, family)
    lr_range = _suggest_range(range_test, family)
    low, high = advice.lr_range
    if suggestion is not None and not (low / 10 <= suggestion <= high * 10):
        where = "above" if suggestion > high else "below"
        notes.append(
            f"the range test's {fmt_lr(suggestion)} is more than 10x {where} the advisor's range "
            f"{fmt_lr(low)} .. {fmt_lr(high)}: the table holds generic starting points, the "
            "range test measured this model and data"
        )

    # ------------------------------------------------------------------ race
    spend = 0.0 if quick else (DEFAULT_BUDGET if budget is None else budget)
    race = None
    if spend > 0 and not race_possible:  # the default budget without Optuna: say what was done
        spend = 0.0
        notes.append(
            "the verified answer (the race) needs Optuna, which is not installed "
            "(pip install 'lrkit[tune]'): the range test's quick answer"
        )
    if spend > 0 and run_steps is None:
        if budget is not None:
            fail("total_steps", None, "given for a race (your run's length), or budget=0")
        notes.append(
            "no run length given (total_steps / --steps): the range test's quick answer, not a race"
        )
    elif spend > 0 and run_steps is not None:
        t0 = time.perf_counter()
        race = _race(race_target, advice.schedule, run_steps, spend, budget is None, seed,
                     workers, storage, range_test, progress, notes)  # fmt: skip
        timings["race"] = time.perf_counter() - t0
    lr, lr_source = _answer(race, suggestion, family, advice.lr, reason, notes)

    result = AutoResult(
        name=name,
        optimizer=opt_name,
        architecture=arch,
        advice=advice,
        lr=lr,
        lr_source=lr_source,
        schedule=advice.schedule,
        total_steps=run_steps,
        range_test=range_test,
        suggestion=suggestion,
        suggestion_reason=reason,
        finder_schedule=family,
        lr_range=lr_range,
        budget=0.0 if race is None else race.budget,
        race=race,
        spent_steps=race.spent_steps if race is not None else _steps_of(range_test),
        notes=notes,
        inferred=inferred,
        timings=timings,
        optimizer_kwargs=optimizer_kwargs(setup.optimizer, opt_name),
    )

    # ------------------------------------------------------------------ check runs
    if train_steps:
        train_spec = advice.schedule
        if run_steps != train_steps:
            train_spec = advise(
                opt_name,
                arch,
                fine_tuning=fine_tuning,
                batch_size=batch_size,
                reference_batch_size=reference_batch_size,
                total_steps=train_steps,
                quick=one_cycle,
            ).schedule
            notes.append(
                f"the check run uses the same kind of schedule over {train_steps} steps: "
                f"{train_spec}"
            )
        result.train_steps = train_steps
        result.train_schedule = train_spec
        t0 = time.perf_counter()
        with torch_threads(threads):
            _closed_loop(result, setup, task_obj, train_spec, eval_every, seed, max_attempts,
                         progress)  # fmt: skip
        timings["training"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ report
    if out_dir is not None:
        from lrkit.pipeline._content import build_content
        from lrkit.pipeline._report import write_report

        t0 = time.perf_counter()
        if progress is not None:
            progress("report", 0, 1)
        result.report = write_report(build_content(result), out_dir)
        if progress is not None:
            progress("report", 1, 1)
        timings["report"] = time.perf_counter() - t0
    return result


def _steps_of(range_test: Any) -> int:
    losses = getattr(range_test, "train_losses", None)
    return len(losses if losses is not None else range_test.losses)


def _range_test(setup: Setup, advice: Any, steps: int, seed: int, progress: Progress | None) -> Any:
    from lrkit._seed import seeded
    from lrkit.finder import find_lr

    low, high = advice.lr_range
    # the finder's own defaults (1e-7 .. 10, what its rule is benchmarked on), widened when the
    # advisor's range reaches beyond them; the test stops where the loss blows up
    start_lr, end_lr = min(1e-7, low / 100.0), max(10.0, high * 10.0)
    on_range = None if progress is None else _stage_callback(progress, "range test", steps)
    if progress is not None:
        progress("range test", 0, steps)
    with seeded(seed):  # what the model draws (dropout) depends on the seed alone
        range_test = find_lr(
            setup.model,
            setup.optimizer,
            setup.loss_fn,
            setup.train_loader,
            val_loader=None,
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=steps,
            step_fn=setup.step_fn,
            progress=on_range if on_range is not None else False,
        )
    if progress is not None:
        progress("range test", steps, steps)
    return range_test


def _race(
    target: Any,
    schedule: str,
    run_steps: int,
    budget: float,
    soft: bool,
    seed: int,
    workers: int,
    storage: object,
    range_test: Any,
    progress: Progress | None,
    notes: list[str],
) -> Any:
    """The race, or None (with a note) when the default budget cannot hold one."""
    from lrkit.race import run_race

    try:
        return run_race(
            target,
            schedule=schedule,
            total_steps=run_steps,
            budget=budget,
            seed=seed,
            workers=workers,
            storage=storage,
            range_test=range_test,
            progress=progress,
        )
    except ValueError as exc:
        if not (soft and "is too small" in str(exc)):
            raise
        notes.append(f"no race: {exc} (the default budget); the range test's quick answer")
        return None


def _answer(
    race: Any,
    suggestion: float | None,
    family: str,
    advised: float,
    reason: str | None,
    notes: list[str],
) -> tuple[float, str]:
    """The recommended lr and where it came from: the race, else the range test, else the
    advisor."""
    if race is not None and race.lr is not None:
        n = len(race.candidates)
        return float(race.lr), (
            f"race: the best of {n} candidates on validation loss within "
            f"{race.spent_budgets:.2g} runs"
        )
    if race is not None:
        notes.append(f"the race chose nothing ({race.reason})")
    if suggestion is not None:
        kind = f"a {family} schedule" if family != "constant" else "a constant learning rate"
        return suggestion, f"range test, lrkit's rule for {kind}"
    notes.append(f"range test: no clear answer ({reason}); using the advisor's {fmt_lr(advised)}")
    return advised, "advisor (the range test gave no clear answer)"


def _stage_callback(progress: Progress, stage: str, total: int) -> Callable[..., None]:
    """Adapt ``find_lr``'s ``f(done, num_steps, loss)`` callback to ``progress(stage, ...)``."""

    def callback(done: int, num_steps: int, loss: float) -> None:
        progress(stage, min(int(done), total), total)

    return callback


def _suggest(range_test: Any, family: str) -> tuple[float | None, str | None]:
    """The range test's suggestion for the schedule ``family`` and why (or why there is none)."""
    value = range_test.suggest(schedule=family)
    lr = lr_of(value)
    if lr is not None:
        why = getattr(value, "reason", None)
        return lr, str(why) if why else None
    reason = getattr(value, "reason", None) or getattr(range_test, "stop_reason", None)
    return None, str(reason) if reason else "no usable descent in the curve"


def _suggest_range(range_test: Any, family: str) -> tuple[float, float] | None:
    value = range_test.suggest_range(schedule=family)
    if value is None:
        return None
    low, high = lr_of(value[0]), lr_of(value[1])
    if low is None or high is None:
        return None
    return low, high


# ---------------------------------------------------------------------------------- check runs
def _lr_factor(diagnosis: Any, guard_events: list[dict[str, Any]]) -> float | None:
    """The lr change the diagnosis asks for (scale_lr, or a rollback with a lower lr); else a
    third when the Guard saw the loss blow up; else None."""
    action = getattr(diagnosis, "action", None)
    params = getattr(action, "params", None) or {}
    kind = getattr(action, "kind", None)
    factor = params.get("factor") if kind == "scale_lr" else params.get("lr_factor")
    if isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0 and factor != 1:
        return float(factor)
    if any(e.get("kind") in ("nonfinite", "divergence") for e in guard_events):
        return _GUARD_FACTOR
    return None


def _closed_loop(
    result: AutoResult,
    setup: Setup,
    task_obj: Any,
    spec: str,
    eval_every: int | None,
    seed: int,
    max_attempts: int,
    progress: Progress | None,
) -> None:
    """Check runs until one needs no lr change (at most ``max_attempts``); keep each."""
    lr = result.lr
    for number in range(max_attempts):
        attempt = _check_run(lr, setup, task_obj, spec, result.train_steps, eval_every, seed,
                             progress)  # fmt: skip
        result.attempts.append(attempt)
        if attempt.factor is None:
            attempt.decision = "keep the learning rate"
            break
        if number == max_attempts - 1:
            attempt.decision = (
                f"the diagnosis asks for x{attempt.factor:.3g}; stopped after "
                f"{max_attempts} check runs"
            )
            break
        attempt.decision = f"multiply the learning rate by {attempt.factor:.3g} and check again"
        lr = lr * attempt.factor
    chosen = result.attempts[-1]
    if chosen.factor is not None:  # never settled: the attempt with the lowest val loss
        scored = [a for a in result.attempts if math.isfinite(a.final_val_loss)]
        if scored:
            chosen = min(scored, key=lambda a: a.final_val_loss)
    if chosen.lr != result.lr:
        result.notes.append(
            f"the check runs moved the learning rate from {fmt_lr(result.lr)} to "
            f"{fmt_lr(chosen.lr)} ({len(result.attempts)} runs; see the check-run table)"
        )
        result.lr_source += f"; then {fmt_lr(chosen.lr)} after the check runs' diagnosis"
        result.lr = chosen.lr
    last = result.attempts[-1]
    result.training = last.training
    result.guard_events = last.guard_events
    result.diagnosis = last.diagnosis


def _check_run(
    lr: float,
    setup: Setup,
    task_obj: Any,
    spec: str,
    steps: int,
    eval_every: int | None,
    seed: int,
    progress: Progress | None,
) -> Attempt:
    """Train a copy for ``steps`` steps at ``lr`` with the schedule and a live Guard (warn
    policy: it records, it does not intervene); diagnose the run."""
    from lrkit.diagnosis import Guard, diagnose
    from lrkit.tasks import train

    guard = Guard(policy="warn")
    losses: list[float] = []

    def on_step(step: int, loss: float) -> None:
        losses.append(float(loss))
        guard.step(step, float(loss))
        if progress is not None:
            progress("training", step + 1, steps)

    if task_obj is not None:
        source: Any = task_obj
    else:
        model, optimizer = copy.deepcopy((setup.model, setup.optimizer))
        source = Setup(
            model=model,
            optimizer=optimizer,
            train_loader=setup.train_loader,
            loss_fn=setup.loss_fn,
            val_loader=setup.val_loader,
            step_fn=setup.step_fn,
        )
    every = eval_every if eval_every is not None else max(1, steps // 10)
    if progress is not None:
        progress("training", 0, steps)
    training = train(
        source, lr=lr, steps=steps, schedule=spec, seed=seed, eval_every=every, on_step=on_step
    )
    events = [_event_dict(e) for e in getattr(guard, "events", [])]
    train_loss, val_steps, val_loss, lrs = training_curves(training, losses)
    if setup.val_loader is None and task_obj is None:  # no validation data: no val curve
        val_steps, val_loss = [], []
    diagnosis = diagnose(
        train_loss,
        steps=list(range(len(train_loss))),
        val_loss=val_loss or None,
        val_steps=val_steps or None,
        lr=lrs,
    )
    return Attempt(
        lr=lr,
        schedule=spec,
        training=training,
        guard_events=events,
        diagnosis=diagnosis,
        verdict=str(getattr(diagnosis, "verdict", None)),
        factor=_lr_factor(diagnosis, events),
    )


def _event_dict(event: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(event.to_dict())
    data["message"] = event.describe()
    return data


def _optuna_installed() -> bool:
    """Whether the race's engine can be imported (without importing it yet)."""
    return importlib.util.find_spec("optuna") is not None
