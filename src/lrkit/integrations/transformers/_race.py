"""The verified learning rate through a Hugging Face ``Trainer``: lrkit's race, every trial a
short ``trainer.train()``.

:func:`verify_lr` is :func:`lrkit.race.run_race` (range test, plausible interval, lattice of
candidates, successive halving, choice) with its range test (:func:`find_lr`) and every trial
run by the Trainer's own training loop: its ``training_step``/``compute_loss``, accelerator,
mixed precision, ``gradient_accumulation_steps``, ``max_grad_norm``, optimizer and
``model_init`` apply. A trial trains ``steps`` optimizer steps at ``lr * schedule(k)``, is
guarded on the loss the Trainer logs (as the race's own trials are), and is scored by
``trainer.evaluate()``'s ``eval_loss``; the trainer is put back after each.

:func:`race_search` hands the same plan to ``trainer.hyperparameter_search(backend="optuna")``:
the race's candidates queued first, Optuna's successive-halving pruner on the evaluations the
Trainer reports.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lrkit._validate import check_int, check_real, fail
from lrkit.integrations._trials import SetupError, race_trainer
from lrkit.integrations.transformers._finder import DriveLR, find_lr, range_test_of, run_excursion

if TYPE_CHECKING:
    from lrkit.race import RaceResult, TrialLog

__all__ = ["race_search", "trainer_schedule", "verify_lr"]

log = logging.getLogger(__name__)

#: Hugging Face ``lr_scheduler_type`` -> lrkit spec (HF warms up linearly from 0)
_HF_SCHEDULES = {
    "constant": "constant",
    "constant_with_warmup": "warmup({w}, constant, start=0.0)",
    "linear": "warmup({w}, linear, start=0.0)",
    "cosine": "warmup({w}, cosine, start=0.0)",
}


def _run_length(trainer: Any) -> int:
    """The optimizer steps of ``trainer.train()`` (``max_steps``, else its epochs' steps)."""
    args = trainer.args
    if args.max_steps > 0:
        return int(args.max_steps)
    batches = len(trainer.get_train_dataloader())
    per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
    return max(1, int(math.ceil(float(args.num_train_epochs) * per_epoch)))


def trainer_schedule(args: Any, total_steps: int) -> str:
    """The lrkit spec of the schedule ``args`` (``TrainingArguments``) train with: its
    ``lr_scheduler_type`` (constant, constant_with_warmup, linear or cosine) and warmup.

    Example:
        >>> from types import SimpleNamespace
        >>> args = SimpleNamespace(lr_scheduler_type="cosine", warmup_steps=0.1)
        >>> trainer_schedule(args, 200)
        'warmup(20, cosine, start=0.0)'
    """
    kind = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    if kind not in _HF_SCHEDULES:
        fail(
            "lr_scheduler_type",
            kind,
            f"one of {', '.join(_HF_SCHEDULES)} for the race, or pass schedule= (an lrkit spec)",
        )
    warmup = float(args.warmup_steps or 0)
    w = int(warmup) if warmup >= 1 else math.ceil(total_steps * warmup)  # as HF counts it
    if w == 0:
        return kind if kind != "constant_with_warmup" else "constant"
    return _HF_SCHEDULES[kind].format(w=w)


class _Trial(DriveLR):
    """One race trial: ``lr_at(k)`` at step ``k``, judged by its :class:`lrkit.race.TrialLog`
    on the loss the Trainer logs, evaluated when it says so."""

    def __init__(self, lr_at: Callable[[int], float], log: TrialLog, metric: str) -> None:
        super().__init__(lr_at)
        self.log = log
        self.metric = metric

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs or "loss" not in logs or self.log.done >= self.stepped:
            return
        # the step's mean loss over micro-batches (and ranks); the flow callback has just asked
        # for the log (and, at the end, to stop): evaluate now if the trial is due to
        stop = self.log.step(float(logs["loss"]))
        control.should_evaluate = self.log.due
        if stop and self.log.stop_reason is not None:
            control.should_training_stop = True

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        metrics = metrics or {}
        if self.metric not in metrics:
            raise SetupError(
                f"the race scores each trial on metric={self.metric!r}, but evaluate() returned "
                f"{sorted(metrics)}: give the Trainer an eval_dataset (and labels), or choose "
                "metric="
            )
        self.log.validated(float(metrics[self.metric]))


def verify_lr(
    trainer: Any,
    *,
    budget: float | None = None,
    schedule: str | None = None,
    total_steps: int | None = None,
    metric: str = "eval_loss",
    **options: Any,
) -> RaceResult:
    """lrkit's verified learning rate for ``trainer``: a range test narrows, a short guarded race
    on ``eval_loss`` decides (:func:`lrkit.race.run_race`), all through the Trainer's own loop.

    Every trial is a ``trainer.train()`` of a few steps from the same start (``model_init``'s
    fresh model, or ``trainer.model`` put back afterwards) at one candidate ``learning_rate``
    with the schedule of ``trainer.args`` (``lr_scheduler_type`` and warmup; or ``schedule``, an
    lrkit spec), scored by ``trainer.evaluate()`` (``metric``; the Trainer needs an
    ``eval_dataset``). ``total_steps`` defaults to the run ``trainer.args`` describe
    (``max_steps``, else its epochs); ``budget`` (default :data:`lrkit.race.DEFAULT_BUDGET`)
    counts such runs, range test included. ``options``: ``seed``, ``range_steps``,
    ``compress``, ``tolerance``, ``per_decade``, ``evaluations`` (see
    :func:`lrkit.race.run_race`). The trainer is left as it was.

    Returns the :class:`lrkit.race.RaceResult`; :func:`training_args` turns it into
    ``TrainingArguments`` keywords.

    Example::

        result = verify_lr(trainer, budget=3)
        args = TrainingArguments(output_dir="out", **training_args(result))
    """
    from lrkit.race import DEFAULT_BUDGET

    budget = check_real("budget", DEFAULT_BUDGET if budget is None else budget, minimum=0.0)
    if not isinstance(metric, str) or not metric:
        fail("metric", metric, "the name of a metric evaluate() returns, e.g. 'eval_loss'")
    if budget > 0 and trainer.eval_dataset is None:
        raise ValueError(
            "the race scores each trial on the evaluation loss, but the Trainer has no "
            "eval_dataset: give it one, or use budget=0 (the range test's answer alone)"
        )
    total = _run_length(trainer) if total_steps is None else total_steps
    total = check_int("total_steps", total, minimum=1)
    spec = schedule if schedule is not None else trainer_schedule(trainer.args, total)

    def run_trial(lr_at: Callable[[int], float], trial_log: TrialLog) -> None:
        run_excursion(trainer, _Trial(lr_at, trial_log, metric), max_steps=trial_log.steps)

    result = race_trainer(
        run_trial,
        range_test=lambda steps: find_lr(trainer, num_steps=steps),
        name=type(trainer.model).__name__ if trainer.model is not None else "model_init",
        validation=f"the Trainer's evaluate() ({metric!r})",
        schedule=spec,
        total_steps=total,
        budget=budget,
        **options,
    )
    log.info("verify_lr: %s (%s)", result, result.reason)
    return result


def race_search(
    result: Any,
    *,
    max_steps: int,
    budget: float | None = None,
    schedule: str = "cosine",
    eval_steps: int | None = None,
) -> dict[str, Any]:
    """Keywords for ``trainer.hyperparameter_search(backend="optuna", direction="minimize",
    **race_search(result, max_steps=...))``: lrkit's race plan on Optuna's own search.

    From the range test ``result`` (a :class:`lrkit.finder.RangeTest`, e.g. from
    :func:`find_lr`), the race's candidates (:func:`lrkit.race.plausible_interval` for the
    ``schedule`` family, :func:`lrkit.race.lattice`, as many as :func:`lrkit.race.plan_rungs`
    gives ``budget`` runs of ``max_steps``) are queued in a new Optuna study, in order;
    ``hp_space`` draws ``learning_rate`` from the interval (the queued values come first) and
    has the Trainer evaluate every ``eval_steps`` steps (default: the first rung's length), and
    Optuna's ``SuccessiveHalvingPruner`` (``min_resource`` = the first rung, reduction factor
    ``ETA``) stops a trial whose evaluation is not in the best third of those that reached the
    same step. ``n_trials`` is the number of candidates.

    This is Optuna's asynchronous halving (a trial is judged against those that ran before
    it), not lrkit's synchronous race: the first trials cannot be pruned, so it usually spends
    more than ``budget``; :func:`verify_lr` spends at most ``budget``.

    Example::

        kwargs = race_search(find_lr(trainer), max_steps=1000)
        best = trainer.hyperparameter_search(backend="optuna", direction="minimize", **kwargs)
    """
    import optuna

    from lrkit.finder._rules import schedule_family
    from lrkit.race import (
        DEFAULT_BUDGET,
        ETA,
        check_budget,
        lattice,
        plan_rungs,
        plausible_interval,
        resolve_schedule,
    )
    from lrkit.race._plan import thin

    test = range_test_of(result)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    budget = check_real("budget", DEFAULT_BUDGET if budget is None else budget, minimum=0.0)
    if budget == 0:
        fail("budget", budget, "> 0 for a search (budget=0 is the range test's answer)")
    spent = len(test.losses)
    check_budget(budget, max_steps, spent)
    family = schedule_family(resolve_schedule(schedule, max_steps), max_steps)
    interval = plausible_interval(test, family)
    points = lattice(interval.low, interval.high)
    rungs = plan_rungs(len(points), int(budget * max_steps) - spent, max_steps)
    lrs = thin(points, rungs[0].count)
    every = rungs[0].steps if eval_steps is None else check_int("eval_steps", eval_steps, minimum=1)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, direction="minimize")
    for lr in lrs:
        study.enqueue_trial({"learning_rate": lr})
    low, high = min(lrs[0], interval.low), max(lrs[-1], interval.high)

    def hp_space(trial: Any) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", low, high, log=True),
            "max_steps": max_steps,
            "eval_strategy": "steps",
            "eval_steps": every,
        }

    return {
        "hp_space": hp_space,
        "n_trials": len(lrs),
        "storage": storage,
        "study_name": study.study_name,
        "load_if_exists": True,
        "pruner": optuna.pruners.SuccessiveHalvingPruner(
            min_resource=rungs[0].steps, reduction_factor=ETA
        ),
    }
