"""One race trial: train a fresh copy at one candidate lr for one rung, guarded, and score it.

:class:`RaceObjective` is the Optuna objective ``objective(trial)`` that :func:`lrkit.tuning.tune`
runs for the race (one engine for ``lrkit tune`` and the race). A trial reads its candidate
(``rung``, ``lr``, ``steps``) from the parameters the race queued, builds a fresh setup at that
lr (a built-in task's ``setup(lr, seed)``, or a deep copy of the user's model and optimizer),
or hands the candidate to another training loop (:class:`ExternalTrials`: a framework's Trainer),
trains it with the user's schedule (its warmup scaled to the rung's length), watched by a
:class:`~lrkit.diagnosis.Guard` that stops it at the first non-finite loss or divergence, and
returns the final validation loss. The validation curve is the trial's intermediate values;
``lrkit_reason`` and ``lrkit_steps`` (optimizer steps trained) are its user attributes, on
every exit path.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lrkit._optional import require
from lrkit._setup import Setup

if TYPE_CHECKING:
    from lrkit.finder import RangeTest
    from lrkit.schedules import Schedule

__all__ = [
    "ExternalTrials",
    "TrialLog",
    "RaceObjective",
    "SetupSource",
    "TaskSource",
    "TrialOutcome",
    "train_candidate",
]

#: validation measurements per trial (the race picture's curve; the last one is the score)
EVALUATIONS = 4
#: the Guard's thresholds for a race trial: it judges from the 10th step on (a diverging
#: candidate stops within a few steps of going wrong), on non-finite losses and divergence
#: (a single spike in a healthy high-lr run is no reason to drop it)
GUARD = {"min_history": 10, "on": ("nonfinite", "divergence")}


@contextlib.contextmanager
def _quiet_guard() -> Iterator[None]:
    """Drop the Guard's warnings inside a trial (a spike in a high-lr candidate is expected;
    what stops a trial is in its reason)."""
    guard_logger = logging.getLogger("lrkit.diagnosis._guard")

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    guard_logger.addFilter(keep)
    try:
        yield
    finally:
        guard_logger.removeFilter(keep)


@dataclass(frozen=True)
class TaskSource:
    """Trials of a built-in task (by name: picklable, so worker processes can run it) or a task
    object with ``setup(lr=, seed=)``."""

    task: Any

    @property
    def name(self) -> str:
        return self.task if isinstance(self.task, str) else str(getattr(self.task, "name", "task"))

    def build(self, lr: float, seed: int) -> Setup:
        task = self.task
        if isinstance(task, str):
            from lrkit.tasks import get_task

            task = get_task(task)
        setup: Setup = task.setup(lr=lr, seed=seed)
        return setup


@dataclass(frozen=True)
class SetupSource:
    """Trials of the user's setup: each trains a deep copy of the model and optimizer (the
    user's own objects are never trained), on the given loaders."""

    setup: Setup = field(repr=False)
    train_loader: Any = field(repr=False)
    val_loader: Any = field(repr=False)
    name: str = "setup"

    def build(self, lr: float, seed: int) -> Setup:
        model, optimizer = copy.deepcopy((self.setup.model, self.setup.optimizer))
        return Setup(
            model=model,
            optimizer=optimizer,
            train_loader=self.train_loader,
            loss_fn=self.setup.loss_fn,
            val_loader=self.val_loader,
            step_fn=self.setup.step_fn,
        )


@dataclass
class TrialOutcome:
    """What one trial trained and measured.

    Attributes:
        steps_done: optimizer steps trained (fewer than asked when it was stopped).
        val_steps, val_losses: the validation curve (steps trained when each was measured;
            the last one is the score).
        value: the score, the last validation loss; ``inf`` for a stopped or diverged trial.
        stop_reason: why the trial was stopped (the Guard, divergence), else None.
    """

    steps_done: int
    val_steps: list[int]
    val_losses: list[float]
    value: float
    stop_reason: str | None = None


#: ``train(lr, steps, schedule, evaluations, counter) -> TrialOutcome``: one guarded trial
TrainTrial = Callable[[float, int, "Schedule", int, list[int]], TrialOutcome]


@dataclass(frozen=True)
class ExternalTrials:
    """Race trials trained by another training loop (a framework's Trainer), in this process.

    The race plans, queues, halves and chooses as for any target; what trains is yours:

    - ``train(lr, steps, schedule, evaluations, counter)`` trains one candidate from the same
      starting state every time: ``steps`` optimizer steps at ``lr * schedule(k)`` for step
      ``k`` (``schedule`` is the rung's :class:`~lrkit.schedules.Schedule`), measuring the
      validation loss ``evaluations`` times (every ``max(1, steps // evaluations)`` steps and
      at the end, as :func:`lrkit.tasks.train` does), stopping it when a Guard sees it diverge,
      keeping ``counter[0]`` at the steps trained so far, and returning a
      :class:`TrialOutcome`; it must leave the starting state as it found it (the race leaves
      the global RNGs to it: a framework may set up, for the run that follows, what draws
      from them).
    - ``range_test(steps)`` runs a ``steps``-step range test in the same loop and returns its
      :class:`~lrkit.finder.RangeTest`.

    ``name`` names the study; ``validation`` says what the candidates are scored on (it goes
    into :attr:`RaceResult.validation`). A :class:`TrialLog` judges a trial as the race's own
    trials are judged (the Guard, when to validate, the outcome): the framework integrations
    (:func:`lrkit.integrations.lightning.verify_lr`,
    :func:`lrkit.integrations.transformers.verify_lr`) are this seam.

    Example:
        >>> from lrkit.race import ExternalTrials
        >>> trials = ExternalTrials(train=lambda *a: None, range_test=lambda n: None)
        >>> trials.name, trials.validation
        ('trainer', 'validation data')
    """

    train: TrainTrial = field(repr=False)
    range_test: Callable[[int], RangeTest] = field(repr=False)
    name: str = "trainer"
    validation: str = "validation data"


def train_candidate(
    setup: Setup,
    *,
    lr: float,
    steps: int,
    schedule: Any,
    seed: int,
    evaluations: int = EVALUATIONS,
    counter: list[int] | None = None,
) -> TrialOutcome:
    """Train ``setup`` at ``lr`` for ``steps`` steps with ``schedule``, guarded; measure the
    validation loss ``evaluations`` times (the last at the end). ``counter[0]`` follows the
    steps trained (so a trial that raises still counts what it spent)."""
    from lrkit.diagnosis import Guard, GuardError
    from lrkit.tasks import train

    guard = Guard(policy="raise", **GUARD)  # type: ignore[arg-type]
    done = 0

    def on_step(step: int, loss: float) -> None:
        nonlocal done
        done = step + 1
        if counter is not None:
            counter[0] = done
        guard.step(step, loss)

    every = max(1, steps // evaluations)
    try:
        with _quiet_guard():
            result = train(
                setup,
                lr=lr,
                steps=steps,
                schedule=schedule,
                seed=seed,
                eval_every=every,
                on_step=on_step,
            )
    except GuardError as exc:
        event = exc.event
        return TrialOutcome(
            done, [], [], math.inf, f"stopped by the Guard at step {event.step}: {event.describe()}"
        )
    curve = dict(zip(result.val_steps, result.val_loss, strict=True))
    steps_done = len(result.steps) if not result.diverged else result.steps[-1] + 1
    value = float(result.final_val_loss)
    reason = None
    if result.diverged or not math.isfinite(value):
        value = math.inf
        last = result.train_loss[-1] if result.train_loss else math.nan
        reason = (
            f"diverged: training loss {last} at step {steps_done - 1}"
            if not math.isfinite(last)
            else "diverged: non-finite validation loss"
        )
    val_steps = sorted(curve)
    return TrialOutcome(steps_done, val_steps, [curve[s] for s in val_steps], value, reason)


class TrialLog:
    """One trial of :class:`ExternalTrials` as the race's own trials are judged: a
    :class:`~lrkit.diagnosis.Guard` (:data:`GUARD`) on every step's loss, the validation loss
    every ``max(1, steps // evaluations)`` steps and at the end (as :func:`lrkit.tasks.train`),
    ``counter[0]`` kept at the steps trained, and the :class:`TrialOutcome`.

    The training loop calls :meth:`step` after each optimizer step (True: stop now), validates
    when :attr:`due` says so and hands the value to :meth:`validated`, then returns
    :meth:`outcome`.

    Example:
        >>> log = TrialLog(steps=4, evaluations=2)
        >>> [log.step(loss) or log.due for loss in (2.0, 1.5, 1.2, 1.0)]
        [False, True, False, True]
        >>> log.validated(1.1)
        >>> log.outcome()
        TrialOutcome(steps_done=4, val_steps=[4], val_losses=[1.1], value=1.1, stop_reason=None)
    """

    def __init__(self, steps: int, evaluations: int, counter: list[int] | None = None) -> None:
        from lrkit.diagnosis import Guard

        self.steps = steps
        self.every = max(1, steps // evaluations)
        self.counter = counter if counter is not None else [0]
        self.guard = Guard(policy="raise", **GUARD)  # type: ignore[arg-type]
        self.losses: list[float] = []
        self.val_steps: list[int] = []
        self.val_losses: list[float] = []
        self.stop_reason: str | None = None
        self.guarded = False
        self.due = False

    @property
    def done(self) -> int:
        """Optimizer steps recorded."""
        return len(self.losses)

    def step(self, loss: float) -> bool:
        """Record the loss of the step just taken; True when the trial must stop (the Guard
        stopped it, or the loss is not finite) or has trained all its steps."""
        from lrkit.diagnosis import GuardError

        self.losses.append(float(loss))
        done = self.counter[0] = len(self.losses)
        self.due = False
        try:
            with _quiet_guard():
                self.guard.step(done - 1, loss)
        except GuardError as exc:
            self.stop_reason = f"stopped by the Guard at step {exc.event.step}: " + (
                exc.event.describe()
            )
            self.guarded = True
            return True
        if not math.isfinite(loss):
            self.stop_reason = f"diverged: training loss {loss} at step {done - 1}"
            return True
        self.due = done % self.every == 0 or done >= self.steps
        return done >= self.steps

    def validated(self, value: float) -> None:
        """The validation loss measured after the last step."""
        self.val_steps.append(len(self.losses))
        self.val_losses.append(float(value))
        self.due = False

    def outcome(self) -> TrialOutcome:
        """The trial as the race reads it; RuntimeError when it ended early for no reason."""
        done = len(self.losses)
        if self.guarded:
            return TrialOutcome(done, [], [], math.inf, self.stop_reason)
        if self.stop_reason is not None:
            return TrialOutcome(done, self.val_steps, self.val_losses, math.inf, self.stop_reason)
        if done < self.steps or not self.val_losses:
            raise RuntimeError(f"a race trial trained {done} of {self.steps} steps")
        value = self.val_losses[-1]
        if not math.isfinite(value):
            reason = "diverged: non-finite validation loss"
            return TrialOutcome(done, self.val_steps, self.val_losses, math.inf, reason)
        return TrialOutcome(done, self.val_steps, self.val_losses, value)


@dataclass
class RaceObjective:
    """The race's ``objective(trial)`` for :func:`lrkit.tuning.tune` (picklable for a task source).

    ``candidates`` maps each rung to its ``(lr, steps)`` pairs; a trial whose parameters are not
    among them (an extra trial a worker may start while racing others for the last queued one)
    is pruned at once, without training.
    """

    source: Any
    schedule: str
    total_steps: int
    seed: int
    compress: str
    candidates: dict[int, list[tuple[float, int]]]
    evaluations: int = EVALUATIONS

    def train(self, lr: float, steps: int, counter: list[int] | None = None) -> TrialOutcome:
        """Build a fresh setup at ``lr`` and train one rung (the benchmark caches this)."""
        from lrkit.race._schedule import resolve_schedule, rung_schedule

        full = resolve_schedule(self.schedule, self.total_steps)
        schedule = rung_schedule(full, self.total_steps, steps, self.compress)
        if isinstance(self.source, ExternalTrials):
            return self.source.train(
                lr, steps, schedule, self.evaluations, counter if counter is not None else [0]
            )
        setup = self.source.build(lr, self.seed)
        return train_candidate(
            setup,
            lr=lr,
            steps=steps,
            schedule=schedule,
            seed=self.seed,
            evaluations=self.evaluations,
            counter=counter,
        )

    def __call__(self, trial: Any) -> float:
        optuna = require("optuna", "tune")
        rung = trial.suggest_int("rung", 0, 1_000_000)
        known = self.candidates.get(rung, [])
        lr = trial.suggest_float("lr", 1e-12, 1e6, log=True) if known else math.nan
        steps = trial.suggest_int("steps", 1, 1 << 40) if known else 0
        if (lr, steps) not in known:
            trial.set_user_attr("lrkit_steps", 0)
            trial.set_user_attr("lrkit_reason", "not a race candidate (not queued by the race)")
            raise optuna.TrialPruned("not a race candidate")
        counter = [0]
        try:
            outcome = self.train(lr, steps, counter)
            counter[0] = outcome.steps_done
        finally:  # a trial that raises still counts the steps it trained
            trial.set_user_attr("lrkit_steps", counter[0])
        for step, value in zip(outcome.val_steps, outcome.val_losses, strict=True):
            if math.isfinite(value):
                trial.report(value, step)
        if outcome.stop_reason is not None:
            trial.set_user_attr("lrkit_reason", outcome.stop_reason)
            raise optuna.TrialPruned(outcome.stop_reason)
        return outcome.value
