"""``run_race``: the verified learning rate. The range test narrows, a short guarded race decides.

1. A range test (or the one given) shows where the loss falls and where it blows up.
2. Candidates: the points of a fixed log lattice across the plausible interval it shows.
3. Successive halving: every candidate trains a short rung (a fresh copy, the user's schedule
   replayed over the rung's length, a Guard that stops it within a few steps of diverging),
   scored on validation loss; the best third go on to a rung three times longer; the last rung
   decides. Each rung is a batch of trials in one Optuna study, run by :func:`lrkit.tuning.tune`
   (the same engine as ``lrkit tune``): local worker processes, and several machines sharing
   one storage, each take trials from it.
4. The budget counts the user's training runs, range test included; the result says what was
   spent, stage by stage.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import pickle
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lrkit._optional import require
from lrkit._setup import Setup, as_setup
from lrkit._threads import torch_threads
from lrkit._validate import check_choice, check_int, check_real, fail
from lrkit.race._plan import (
    PER_DECADE,
    Interval,
    Rung,
    lattice,
    min_race_steps,
    plan_rungs,
    plausible_interval,
    thin,
)
from lrkit.race._result import RaceCandidate, RaceResult, RungTrial
from lrkit.race._schedule import COMPRESS_MODES, resolve_schedule
from lrkit.race._trial import EVALUATIONS, ExternalTrials, RaceObjective, SetupSource, TaskSource

__all__ = [
    "DEFAULT_BUDGET",
    "RANGE_STEPS",
    "Progress",
    "check_budget",
    "quick_answer",
    "run_race",
]

logger = logging.getLogger(__name__)

#: the default budget, in the user's training runs, range test included (chosen on the design
#: tasks of benchmarks/race_design.py; see docs/readme/auto.md)
DEFAULT_BUDGET = 3.0
#: steps of the race's range test: at most this many ...
RANGE_STEPS = 100
#: ... and at most this share of the budget (a short run cannot afford a 100-step test) ...
RANGE_SHARE = 0.25
#: ... but never fewer than this (30-step curves put the interval decades off on 2 of the 12
#: design tasks; 50 steps did not)
MIN_RANGE_STEPS = 50
#: how a rung plays the schedule: on the design tasks, replaying a whole cosine decay over
#: each rung ("all") sometimes let an lr through that diverged over the full run; the first
#: steps of the schedule ("none") did not, and matched or beat it from budget 3 on
COMPRESS = "warmup"
#: the winner is the lowest lr within this share of the best last-rung validation loss
TOLERANCE = 0.0
#: torch threads for a built-in task (tiny models: one thread beats two on a busy machine)
_TASK_THREADS = 1
_PLAN_KEY = "lrkit_race_plan"
_PLAN_VERSION = 1

#: ``progress(stage, done, total)``: stage "range test" or "race", in optimizer steps
Progress = Callable[[str, int, int], None]


# ------------------------------------------------------------------------------- the target
class _Target:
    """What the race trains: a source of fresh setups, the run length and the data."""

    def __init__(
        self, target: object, total_steps: int | None, val_loader: Any, workers: int
    ) -> None:
        self.notes: list[str] = []
        self.threads: int | None = None
        self.validation = "val_loader"
        self.source: TaskSource | SetupSource | ExternalTrials
        if isinstance(target, ExternalTrials):
            if val_loader is not None:
                fail("val_loader", type(val_loader).__name__, "None for ExternalTrials")
            if total_steps is None:
                fail("total_steps", None, "given for ExternalTrials (your run's optimizer steps)")
            if workers > 1:
                fail("workers", workers, "1 for ExternalTrials (its trials train in this process)")
            self.total_steps = check_int("total_steps", total_steps, minimum=1)
            self.source, self.name, self.validation = target, target.name, target.validation
            return
        if isinstance(target, str) or _is_task(target):
            if isinstance(target, str):
                from lrkit.tasks import get_task

                task: Any = get_task(target)
                self.source = TaskSource(target)
                self.threads = _TASK_THREADS
            else:
                task = target
                self.source = TaskSource(target)
            if val_loader is not None:
                fail("val_loader", type(val_loader).__name__, "None for a task (it brings its own)")
            self.name = str(getattr(task, "name", type(task).__name__))
            budget = getattr(task, "budget", None)
            steps = total_steps if total_steps is not None else budget
            if steps is None:
                fail("total_steps", None, "given for a task without a budget")
            self.total_steps = check_int("total_steps", steps, minimum=1)
            if workers > 1:
                try:
                    pickle.dumps(self.source)
                except Exception as exc:
                    raise ValueError(
                        f"workers={workers} runs trials in new processes, so the task must be "
                        f"picklable (a built-in task name is), but {self.name!r} is not: {exc}"
                    ) from None
            return
        if target is None:
            fail("target", None, "a built-in task name, a task, or a Setup / mapping")
        setup = as_setup(target, source="target")
        if total_steps is None:
            fail("total_steps", None, "given for a Setup target (your run's optimizer steps)")
        self.total_steps = check_int("total_steps", total_steps, minimum=1)
        if workers > 1:
            fail("workers", workers, "1 for a Setup target (its trials train in this process)")
        self.name = type(setup.model).__name__
        train_loader, val = setup.train_loader, val_loader or setup.val_loader
        if val is None:
            from lrkit.race._holdout import hold_out

            train_loader, val, self.validation = hold_out(setup.train_loader)
            self.notes.append(f"validation: {self.validation}")
        self.source = SetupSource(setup, train_loader, val, self.name)
        self.setup = setup

    def range_setup(self, seed: int) -> Setup:
        """A fresh setup (or a copy) for the range test, on the race's training data."""
        assert not isinstance(self.source, ExternalTrials)  # its range test is its own
        return self.source.build(1e-3, seed)


def _is_task(value: object) -> bool:
    return (
        not isinstance(value, (Setup, dict))
        and callable(getattr(value, "setup", None))
        and hasattr(value, "budget")
    )


# ------------------------------------------------------------------------------- safety
@contextlib.contextmanager
def _user_state_kept(loaders: list[Any], rng: bool = True) -> Iterator[None]:
    """Restore the global RNGs (unless ``rng=False``) and the loaders' own generators, whatever
    happens."""
    from lrkit._state import (
        _capture_rng,
        _generator_state,
        _restore_rng,
        _set_generator_state,
        find_generators,
    )

    state = _capture_rng() if rng else None
    generators = [(g, _generator_state(g)) for g in find_generators(*loaders)]
    try:
        yield
    finally:
        for g, kept in generators:
            _set_generator_state(g, kept)
        if state is not None:
            _restore_rng(state)


# ------------------------------------------------------------------------------- storage
class _Storage:
    """The study's storage: this process's handle, and what to hand to ``tune``."""

    def __init__(self, storage: object, workers: int) -> None:
        optuna = require("optuna", "tune")
        from lrkit.tuning._storage import open_storage, resolve_storage

        self.tempdir: str | None = None
        if storage is None and workers == 1:
            self.handle = optuna.storages.InMemoryStorage()
            self.display = ":memory:"
            self.for_tune: Any = self.handle
            return
        if storage is None:  # several local processes need a file; removed afterwards
            self.tempdir = tempfile.mkdtemp(prefix="lrkit-race-")
            storage = str(Path(self.tempdir) / "race.journal")
        spec = resolve_storage(storage, workers=workers)
        self.display = spec.display if self.tempdir is None else "a temporary journal file"
        self.handle = open_storage(spec)
        self.for_tune = self.handle if workers == 1 else storage

    def close(self) -> None:
        from lrkit.tuning._storage import close_storage

        close_storage(self.handle)
        if self.tempdir is not None:
            shutil.rmtree(self.tempdir, ignore_errors=True)


# ------------------------------------------------------------------------------- quick answer
def quick_answer(
    range_test: Any, family: str, optimizer: str | None = None
) -> tuple[float | None, str]:
    """The range test's own answer for the schedule family, and why (or why there is none);
    ``optimizer`` defaults to the one the test ran with."""
    suggestion = range_test.suggest(schedule=family, optimizer=optimizer)
    return suggestion.lr, str(suggestion.reason)


# ------------------------------------------------------------------------------- the race
def _default_study_name(name: str, settings: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return f"lrkit-race-{safe}-{digest}"


def _range_steps(budget: float, total_steps: int, given: int | None) -> int:
    if given is not None:
        return check_int("range_steps", given, minimum=10)
    if budget == 0:
        return RANGE_STEPS
    share = round(RANGE_SHARE * budget * total_steps)
    return max(MIN_RANGE_STEPS, min(RANGE_STEPS, share))


def check_budget(budget: float, total_steps: int, range_steps: int) -> None:
    """Raise ValueError, saying the smallest budget that works, when ``budget`` runs of
    ``total_steps`` steps cannot hold a ``range_steps``-step range test and the smallest race.

    Example:
        >>> check_budget(1.5, 100, 100)
        >>> check_budget(1.0, 100, 100)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: budget=1 is too small: ... use budget >= 1.3, or budget=0 for the range ...
    """
    smallest = range_steps + min_race_steps(total_steps)
    if budget * total_steps < smallest:
        raise ValueError(
            f"budget={budget:g} is too small: {budget:g} x {total_steps} steps = "
            f"{budget * total_steps:.0f} steps, but the range test takes {range_steps} and the "
            f"smallest race {smallest - range_steps} more; use budget >= "
            f"{math.ceil(100 * smallest / total_steps) / 100:g}, or budget=0 for the range test "
            "alone"
        )


def _test_steps(test: Any) -> int:
    """Optimizer steps a range test trained."""
    losses = getattr(test, "train_losses", None)
    return len(losses if losses is not None else test.losses)


def _run_range_test(target: _Target, steps: int, seed: int, progress: Progress | None) -> Any:
    from lrkit.finder import find_lr

    if isinstance(target.source, ExternalTrials):
        if progress is not None:
            progress("range test", 0, steps)
        test = target.source.range_test(steps)
        if progress is not None:
            progress("range test", _test_steps(test), steps)
        return test
    setup = target.range_setup(seed)
    callback: Any = False
    if progress is not None:

        def callback(done: int, total: int, loss: float) -> None:
            progress("range test", int(done), int(total))

        progress("range test", 0, steps)
    from lrkit._seed import seeded

    # the seed fixes what the model draws (dropout), as it fixes every trial
    with seeded(seed):
        return find_lr(
            setup.model,
            setup.optimizer,
            setup.loss_fn,
            setup.train_loader,
            num_steps=steps,
            step_fn=setup.step_fn,
            progress=callback,
        )


def _race_trials(study: Any) -> dict[tuple[int, float], Any]:
    """The race's trials by (rung, lr); a retried trial's re-run replaces it."""
    from optuna.trial import TrialState

    out: dict[tuple[int, float], Any] = {}
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if "rung" not in t.params or "lr" not in t.params:
            continue
        key = (int(t.params["rung"]), float(t.params["lr"]))
        old = out.get(key)
        if old is None or old.state != TrialState.COMPLETE:
            out[key] = t
    return out


def _steps_of(trial: Any) -> int:
    done = trial.user_attrs.get("lrkit_steps")
    if isinstance(done, int):
        return done
    return max(trial.intermediate_values) if trial.intermediate_values else 0


def _spent(study: Any) -> int:
    """Optimizer steps of every trial in the study (failed ones and re-runs included)."""
    return sum(_steps_of(t) for t in study.get_trials(deepcopy=False))


def _value(trial: Any) -> float:
    from optuna.trial import TrialState

    if trial is None or trial.state != TrialState.COMPLETE or not trial.values:
        return math.inf
    return float(trial.values[0])


def _pending(study: Any) -> int:
    """The study total ``tune`` must reach: finished trials (a retried one once) + the rest."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {int(n) for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried))


def _run_rung(
    study: Any,
    storage: _Storage,
    objective: RaceObjective,
    rung_index: int,
    rung: Rung,
    lrs: list[float],
    *,
    workers: int,
    seed: int,
    on_trial: Callable[[Any], None] | None,
) -> None:
    from lrkit.tuning import tune

    for lr in lrs:
        study.enqueue_trial(
            {"rung": rung_index, "lr": lr, "steps": rung.steps}, skip_if_exists=True
        )
    tune(
        objective,
        n_trials=_pending(study),
        strategy="random",
        storage=storage.for_tune,
        study_name=study.study_name,
        seed=seed,
        workers=workers,
        threads_per_worker=1 if workers > 1 else None,
        on_trial=on_trial,
    )


def _promote(
    trials: dict[tuple[int, float], Any], rung_index: int, lrs: list[float], count: int
) -> list[float]:
    """The ``count`` best of ``lrs`` on a rung (finite scores only), lowest lr first."""
    scored = sorted((_value(trials.get((rung_index, lr))), lr) for lr in lrs)
    kept = [lr for value, lr in scored[:count] if math.isfinite(value)]
    return sorted(kept)


def _candidates(
    trials: dict[tuple[int, float], Any],
    lrs: list[float],
    rungs: list[Rung],
    winner: float | None,
) -> list[RaceCandidate]:
    from lrkit.tuning._result import STATE_NAMES

    out = []
    for lr in lrs:
        runs: list[RungTrial] = []
        for r, rung in enumerate(rungs):
            t = trials.get((r, lr))
            if t is None:
                continue
            steps = sorted(t.intermediate_values)
            state = STATE_NAMES.get(t.state.name, t.state.name.lower())
            runs.append(
                RungTrial(
                    rung=r,
                    steps=rung.steps,
                    steps_done=_steps_of(t),
                    state=state,
                    value=_value(t) if state == "complete" else None,
                    reason=t.user_attrs.get("lrkit_reason") if state != "complete" else None,
                    val_steps=tuple(int(s) for s in steps),
                    val_losses=tuple(float(t.intermediate_values[s]) for s in steps),
                    number=t.number,
                )
            )
        last = runs[-1] if runs else None
        if last is None:
            state, reason = "pruned", "never ran (the race stopped before it)"
        elif last.state == "failed":
            state, reason = "failed", f"rung {last.rung}: {last.reason or 'raised an error'}"
        elif last.state != "complete":
            state, reason = "pruned", f"rung {last.rung}: {last.reason or last.state}"
        elif last.rung == len(rungs) - 1:
            state = "complete"
            reason = "won the race" if lr == winner else "ran the last rung"
        else:
            state = "pruned"
            peers = [
                _value(trials.get((last.rung, other)))
                for other in lrs
                if (last.rung, other) in trials
            ]
            rank = 1 + sum(v < _value(trials.get((last.rung, lr))) for v in peers)
            reason = (
                f"halved out after rung {last.rung} ({last.steps} steps): validation loss "
                f"{last.value:.4g}, rank {rank} of {len(peers)}"
            )
        out.append(RaceCandidate(lr, state, reason, tuple(runs), winner=lr == winner))
    return out


def _plan_of(study: Any) -> dict[str, Any] | None:
    plan = study.user_attrs.get(_PLAN_KEY)
    return plan if isinstance(plan, dict) and plan.get("version") == _PLAN_VERSION else None


def run_race(
    target: object,
    *,
    schedule: str = "constant",
    total_steps: int | None = None,
    budget: float = DEFAULT_BUDGET,
    seed: int = 0,
    val_loader: Any = None,
    workers: int = 1,
    storage: object = None,
    study_name: str | None = None,
    range_test: Any = None,
    progress: Progress | None = None,
    range_steps: int | None = None,
    compress: str = COMPRESS,
    tolerance: float = TOLERANCE,
    per_decade: int = PER_DECADE,
    evaluations: int = EVALUATIONS,
) -> RaceResult:
    """The verified learning rate: a range test narrows the search, a short guarded race on
    validation loss decides.

    Args:
        target: a built-in task name (``"digits"``), a task object (``setup(lr=, seed=)``,
            ``budget``, ``name``), or a :class:`~lrkit.Setup` / mapping with ``model``,
            ``optimizer``, ``train_loader`` (and ``loss_fn``, ``val_loader``, ``step_fn``). A
            setup is never trained itself: every trial trains a deep copy, and the global RNGs
            and the loaders' own generators are restored. Or :class:`ExternalTrials`: the
            range test and the trials run in another training loop (a framework's Trainer;
            see :mod:`lrkit.integrations`), one worker, ``total_steps`` given.
        schedule: your schedule, applied as a multiplier of the lr: a spec such as
            ``"constant"``, ``"cosine"``, ``"warmup(100, cosine)"`` (a decay without its length
            ends with your run) or a full spec.
        total_steps: your run's optimizer steps (default: the task's budget; required for a
            setup). The budget's unit.
        budget: how many of your runs the search may cost, range test included. ``0``: the
            range test alone (the quick answer). A budget too small for any race raises
            ValueError saying the smallest that works.
        seed: the seed of the range test and of every trial (the same for all candidates, so
            they differ only in the lr).
        val_loader: validation data for a setup; without it (and without ``setup.val_loader``)
            a tenth of the training data is held back and the result says so.
        workers: local worker processes (a built-in task; with ``storage``, or a temporary
            journal file removed afterwards).
        storage: an Optuna storage (path or URL, see :func:`lrkit.tuning.tune`): the study
            survives a crash, a re-run resumes it, and the same command on other machines
            joins it. Default: in memory (nothing is written).
        study_name: the study (default: derived from the target and the settings).
        range_test: a :class:`~lrkit.finder.RangeTest` already run on this setup (its steps
            count toward the budget).
        progress: ``progress(stage, done, total)`` with stage "range test" or "race", in steps.
        range_steps: steps of the range test (default: 100, at most a quarter of the budget,
            at least 30).
        compress: how a rung shorter than your run plays your schedule: ``"warmup"`` (the
            warmup scaled to the rung, then the schedule as your run starts it), ``"all"``
            (the whole schedule replayed over the rung) or ``"none"`` (its first steps).
        tolerance: the winner is the lowest lr whose last-rung validation loss is within this
            share of the best one (a higher lr that is not clearly better is the riskier one
            over a full run).
        per_decade: lattice points per decade of learning rate.
        evaluations: validation measurements per trial.

    Returns:
        a :class:`RaceResult`.

    Example:
        >>> from lrkit.race import run_race
        >>> result = run_race("diabetes", budget=3)  # doctest: +SKIP
        >>> result.lr, result.spent_budgets <= 3  # doctest: +SKIP
    """
    started = time.perf_counter()
    budget = check_real("budget", budget, minimum=0.0)
    seed = check_int("seed", seed, minimum=0)
    workers = check_int("workers", workers, minimum=1)
    per_decade = check_int("per_decade", per_decade, minimum=1)
    evaluations = check_int("evaluations", evaluations, minimum=1)
    compress = check_choice("compress", compress, COMPRESS_MODES)
    tolerance = check_real("tolerance", tolerance, minimum=0.0)
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        fail("study_name", study_name, "a non-empty string")
    if progress is not None and not callable(progress):
        fail("progress", progress, "None or a callable progress(stage, done, total)")
    given_test = range_test
    if given_test is not None and not callable(getattr(given_test, "suggest", None)):
        fail("range_test", type(given_test).__name__, "None or a RangeTest")
    tgt = _Target(target, total_steps, val_loader, workers)
    T = tgt.total_steps
    full = resolve_schedule(schedule, T)
    spec = str(full)
    from lrkit.finder._rules import schedule_family

    family = schedule_family(full, T)
    test_steps = _range_steps(budget, T, range_steps)
    if budget > 0:
        planned = _test_steps(given_test) if given_test is not None else test_steps
        check_budget(budget, T, planned)
    loaders = [getattr(tgt.source, "train_loader", None), getattr(tgt.source, "val_loader", None)]
    if isinstance(tgt.source, SetupSource):
        loaders += [tgt.setup.train_loader, tgt.setup.val_loader]
    # another training loop keeps its own state: each of its excursions is undone, and what it
    # sets up for the run that follows (e.g. Lightning's data iterator) must stay as it is
    external = isinstance(tgt.source, ExternalTrials)
    kept = _user_state_kept([x for x in loaders if x is not None], rng=not external)
    with kept, torch_threads(tgt.threads):
        if budget == 0:
            result = _quick(tgt, spec, family, budget, seed, given_test, test_steps, progress)
        else:
            settings = {
                "schedule": spec,
                "total_steps": T,
                "budget": budget,
                "seed": seed,
                "per_decade": per_decade,
                "compress": compress,
                "tolerance": tolerance,
                "range_steps": test_steps,
            }
            name = study_name.strip() if study_name else _default_study_name(tgt.name, settings)
            result = _race(
                tgt, spec, family, budget, seed, given_test, test_steps, progress, workers,
                storage, name, settings, compress, tolerance, per_decade, evaluations,
            )  # fmt: skip
    result.notes = [*tgt.notes, *result.notes]
    result.validation = tgt.validation
    result.seconds = time.perf_counter() - started
    logger.info("race: %r", result)
    return result


def _quick(
    tgt: _Target,
    spec: str,
    family: str,
    budget: float,
    seed: int,
    given: Any,
    steps: int,
    progress: Progress | None,
) -> RaceResult:
    """``budget=0``: the range test's answer; a longer test when the first shows nothing."""
    test = given if given is not None else _run_range_test(tgt, steps, seed, progress)
    spent = _test_steps(test)
    lr, reason = quick_answer(test, family)
    notes: list[str] = []
    if lr is None and given is None:
        first = reason
        test = _run_range_test(tgt, 3 * steps, seed, progress)
        spent += _test_steps(test)
        lr, reason = quick_answer(test, family)
        notes.append(f"the first range test gave no answer ({first}); a 3x longer one ran")
    if lr is None:
        top = float(test.lrs[-1]) if len(test.lrs) else None
        if top is not None:
            lr = top / 100
            reason = (
                f"no clear descent ({reason}); a conservative 1/100 of the lr where the test "
                f"ended ({top:.3g}): check it with a race (budget > 0)"
            )
    return RaceResult(
        lr=lr,
        reason=f"quick answer (range test only): {reason}",
        schedule=spec,
        total_steps=tgt.total_steps,
        budget=budget,
        spent_steps=spent,
        range_test=test,
        quick_lr=lr,
        quick_reason=reason,
        stage_steps={"range test": spent},
        seed=seed,
        notes=notes,
    )


def _race(
    tgt: _Target,
    spec: str,
    family: str,
    budget: float,
    seed: int,
    given: Any,
    test_steps: int,
    progress: Progress | None,
    workers: int,
    storage: object,
    name: str,
    settings: dict[str, Any],
    compress: str,
    tolerance: float,
    per_decade: int,
    evaluations: int,
) -> RaceResult:
    optuna = require("optuna", "tune")
    from lrkit.finder import RangeTest

    T = tgt.total_steps
    store = _Storage(storage, workers)
    verbosity = optuna.logging.get_verbosity()
    if verbosity <= logging.INFO and not logger.isEnabledFor(logging.DEBUG):
        optuna.logging.set_verbosity(logging.WARNING)  # the result lists every trial
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(
                study_name=name, storage=store.handle, direction="minimize", load_if_exists=True
            )
        plan = _plan_of(study)
        notes: list[str] = []
        if plan is not None:  # resumed, or another machine made the plan: follow it
            if plan["settings"] != settings:
                raise ValueError(
                    f"study {name!r} in {store.display} holds a race with other settings "
                    f"({plan['settings']}); choose another study_name"
                )
            test = RangeTest.from_dict(plan["range_test"])
            interval = Interval(**plan["interval"])
            lrs = [float(v) for v in plan["candidates"]]
            rungs = [Rung(**r) for r in plan["rungs"]]
            notes.append(f"resumed study {name!r} ({store.display})")
        else:
            test = given if given is not None else _run_range_test(tgt, test_steps, seed, progress)
            spent_test = _test_steps(test)
            interval = plausible_interval(test, family)
            points = lattice(interval.low, interval.high, per_decade=per_decade)
            rungs = plan_rungs(len(points), int(budget * T) - spent_test, T)
            if not rungs:  # pragma: no cover - the budget check above prevents it
                raise ValueError(f"budget={budget:g} leaves no room for a race")
            lrs = thin(points, rungs[0].count)
            if len(lrs) < len(points):
                notes.append(
                    f"the budget runs {len(lrs)} of the {len(points)} lattice points in the "
                    "interval (spread evenly)"
                )
            study.set_user_attr(
                _PLAN_KEY,
                {
                    "version": _PLAN_VERSION,
                    "settings": settings,
                    "range_test": test.to_dict(),
                    "interval": interval.to_dict(),
                    "candidates": lrs,
                    "rungs": [r.to_dict() for r in rungs],
                },
            )
        spent_test = _test_steps(test)
        quick_lr, quick_reason = quick_answer(test, family)
        objective = RaceObjective(
            source=tgt.source,
            schedule=spec,
            total_steps=T,
            seed=seed,
            compress=compress,
            candidates={},
            evaluations=evaluations,
        )
        planned = sum(r.cost for r in rungs)
        done = 0
        on_trial = None
        if progress is not None:
            progress("race", 0, planned)

            def on_trial(record: Any) -> None:
                nonlocal done
                done += int(record.steps or 0)
                progress("race", min(done, planned), planned)

        alive = list(lrs)
        stage_steps = {"range test": spent_test}
        last_run = 0
        for r, rung in enumerate(rungs):
            if r > 0:
                trials = _race_trials(study)
                alive = _promote(trials, r - 1, alive, rung.count)
                if not alive:
                    notes.append(f"no candidate of rung {r - 1} finished: the race stopped there")
                    break
            objective.candidates[r] = [(lr, rung.steps) for lr in alive]
            before = _spent(study)
            _run_rung(
                study, store, objective, r, rung, alive,
                workers=workers, seed=seed, on_trial=on_trial,
            )  # fmt: skip
            stage_steps[f"rung {r}"] = _spent(study) - before
            last_run = r
        trials = _race_trials(study)
        winner, reason = _choose(trials, rungs, lrs, last_run, tolerance)
        spent = spent_test + _spent(study)
        return RaceResult(
            lr=winner,
            reason=reason,
            schedule=spec,
            total_steps=T,
            budget=budget,
            spent_steps=spent,
            range_test=test,
            quick_lr=quick_lr,
            quick_reason=quick_reason,
            interval=interval,
            rungs=rungs,
            candidates=_candidates(trials, lrs, rungs, winner),
            compress=compress,
            stage_steps=stage_steps,
            study_name=name,
            storage=store.display,
            seed=seed,
            notes=notes,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
        store.close()


def _choose(
    trials: dict[tuple[int, float], Any],
    rungs: list[Rung],
    lrs: list[float],
    last: int,
    tolerance: float,
) -> tuple[float | None, str]:
    """On the highest rung with a finite score: the lowest lr whose score is within
    ``tolerance`` (relative) of the best one, and the reason."""
    for r in range(last, -1, -1):
        scored = sorted((_value(trials.get((r, lr))), lr) for lr in lrs if (r, lr) in trials)
        finite = [(v, lr) for v, lr in scored if math.isfinite(v)]
        if not finite:
            continue
        best, best_lr = finite[0]
        close = [lr for v, lr in finite if v <= best + tolerance * abs(best)]
        lr = min(close)
        value = next(v for v, x in finite if x == lr)
        where = "the last rung" if r == len(rungs) - 1 else f"rung {r} (the last one that ran)"
        steps = rungs[r].steps
        field = f"{len(scored)} on {where}, from {len(lrs)} candidates"
        if lr != best_lr:
            return lr, (
                f"won the race: the lowest lr within {100 * tolerance:g}% of the best validation "
                f"loss of the {field} ({value:.4g} after {steps} steps; the best, {best:.4g}, at "
                f"lr {best_lr:.3g}: a higher lr that is not clearly better is the riskier one)"
            )
        runner = (
            f"; next best {finite[1][0]:.4g} at lr {finite[1][1]:.3g}" if len(finite) > 1 else ""
        )
        return lr, (
            f"won the race: the lowest validation loss of the {field} ({value:.4g} after "
            f"{steps} steps{runner})"
        )
    reasons = [
        str(t.user_attrs.get("lrkit_reason"))
        for t in trials.values()
        if t.user_attrs.get("lrkit_reason")
    ]
    why = reasons[0] if reasons else "no trial completed"
    return None, f"no candidate finished a rung (first reason: {why})"
