"""The verified learning rate inside ``Trainer.fit``: lrkit's race, every trial an excursion.

:func:`lrkit.race.run_race` plans the race (range test, plausible interval, lattice of
candidates, successive-halving rungs) and decides it; here its range test and every trial run
in the Trainer's own fit loop (:func:`run_excursion`), from the same starting state, with the
Trainer's precision, accumulation, clipping and strategy, and are scored on the validation loss
the fit's own validation loop computes (``validation_step``, the metric ``monitor``). A trial
is guarded as the race's own trials are (:data:`lrkit.race._trial.GUARD`: it stops at a
non-finite loss or divergence), on the step's loss averaged over micro-batches and ranks.
Under DDP every rank runs every trial; losses and validation scores are averaged over ranks, so
each rank's race takes the same decisions, and rank 0's winner is broadcast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from lrkit._validate import check_int, check_real, fail
from lrkit.integrations._trials import SetupError, race_trainer
from lrkit.integrations.lightning._callback import LRCallback
from lrkit.integrations.lightning._excursion import LRDriver, run_excursion, single_optimizer
from lrkit.integrations.lightning._finder import range_test

if TYPE_CHECKING:
    from lrkit.race import RaceResult, TrialLog

__all__ = ["LRRaceCallback", "verify_lr"]

log = logging.getLogger(__name__)


class _TrialDriver(LRDriver):
    """One race trial: ``lr_at(k)`` at step ``k``, judged by its :class:`lrkit.race.TrialLog`
    (guarded, validated when it says so)."""

    def __init__(self, lr_at: Callable[[int], float], log: TrialLog, monitor: str) -> None:
        super().__init__(lr_at, log.steps)
        self.log = log
        self.monitor = monitor

    def record(self, lr: float, loss: float) -> bool:
        super().record(lr, loss)
        return self.log.step(loss)

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.log.due:
            self.log.due = False
            self.validate_after_this_batch(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        super().on_validation_end(trainer, pl_module)
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise SetupError(
                f"the race scores each trial on the validation metric monitor={self.monitor!r}, "
                f"but validation logged {sorted(metrics) or 'nothing'}: log it in "
                f"validation_step, e.g. self.log({self.monitor!r}, loss), or choose monitor="
            )
        value = torch.as_tensor(metrics[self.monitor], dtype=torch.float32).detach()
        if trainer.world_size > 1:  # the same score on every rank, logged with sync_dist or not
            value = trainer.strategy.reduce(value.to(pl_module.device), reduce_op="mean")
        self.log.validated(float(value))


def _scheduler_schedule(trainer: Any) -> tuple[str | None, str | None]:
    """The lrkit schedule attached to the Trainer's optimizer (per step), else why there is none."""
    from lrkit.schedules import ScheduledLR

    configs = list(trainer.lr_scheduler_configs)
    for config in configs:
        if isinstance(config.scheduler, ScheduledLR) and config.interval == "step":
            return str(config.scheduler.schedule), None
    if configs:
        names = ", ".join(type(c.scheduler).__name__ for c in configs)
        return None, (
            f"the Trainer's scheduler ({names}) is not an lrkit schedule stepped per step: the "
            "race ran a constant lr; pass schedule= (an lrkit spec) to race yours"
        )
    return None, None


class LRRaceCallback(LRCallback["RaceResult"]):
    """lrkit's verified learning rate inside ``Trainer.fit``: a range test narrows, a short
    guarded race on validation loss decides, before training starts.

    The race is :func:`lrkit.race.run_race`'s (the same plan, candidates, halving and choice);
    its range test and every trial run in the Trainer's own fit loop, each trial from the same
    starting state and undone afterwards (see :func:`run_excursion`), so the Trainer's
    precision, ``accumulate_grad_batches``, gradient clipping and strategy apply. Each trial is
    scored on ``monitor`` (default ``"val_loss"``), as the fit's own validation loop computes it
    (log it in ``validation_step``); under DDP the score is averaged over ranks and every rank
    takes the same decisions. Trials train at ``lr * schedule(step)``: ``schedule`` is an lrkit
    spec for your run (default: the lrkit schedule attached in ``configure_optimizers``, else
    constant); ``total_steps`` defaults to ``trainer.estimated_stepping_batches``. ``budget``
    counts your training runs, range test included (``0``: the range test's answer alone).

    The result is in :attr:`result` (a :class:`lrkit.race.RaceResult`) and :attr:`verified_lr`;
    with ``apply=True`` the winner is used as Lightning's ``update_attr`` does (``model.lr`` /
    ``hparams``, the optimizer, attached schedulers' base lrs). The winner goes to the loggers
    (metric ``lrkit/verified_lr``, hyper-parameter ``lrkit_verified_lr``) and the race's result
    into checkpoints (the callback's state); a fit resumed from a checkpoint does not race again.

    Example::

        trainer = Trainer(max_steps=1000, precision="bf16-mixed", accumulate_grad_batches=2,
                          callbacks=[LRRaceCallback(budget=3, apply=True)])
        trainer.fit(model, train_loader, val_loader)   # model.hparams.lr: the race's winner
    """

    _work, _chosen = "race", "chosen"

    def __init__(
        self,
        *,
        budget: float | None = None,
        schedule: str | None = None,
        total_steps: int | None = None,
        monitor: str = "val_loss",
        apply: bool = False,
        lr_attr_name: str = "",
        seed: int = 0,
        range_steps: int | None = None,
        compress: str | None = None,
        tolerance: float | None = None,
        per_decade: int | None = None,
        evaluations: int | None = None,
    ) -> None:
        from lrkit.race import DEFAULT_BUDGET

        super().__init__(apply=apply, lr_attr_name=lr_attr_name)
        if not isinstance(monitor, str) or not monitor:
            fail("monitor", monitor, "the name of a metric logged in validation_step")
        if schedule is not None and not isinstance(schedule, str):
            fail("schedule", schedule, "None or an lrkit schedule spec such as 'cosine'")
        self.budget = check_real(
            "budget", DEFAULT_BUDGET if budget is None else budget, minimum=0.0
        )
        self.total_steps = (
            None if total_steps is None else check_int("total_steps", total_steps, minimum=1)
        )
        self.schedule = schedule
        self.monitor = monitor
        self.options: dict[str, Any] = {
            k: v
            for k, v in dict(
                seed=seed,
                range_steps=range_steps,
                compress=compress,
                tolerance=tolerance,
                per_decade=per_decade,
                evaluations=evaluations,
            ).items()
            if v is not None
        }
        self.summary: dict[str, Any] | None = None
        self.verified_lr: float | None = None

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        summary = self.result.to_dict() if self.result is not None else self.summary
        return {
            "result": summary,
            "verified_lr": self.verified_lr,
            "applied_lr": self.applied_lr,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.summary = state_dict.get("result")
        self.verified_lr = state_dict.get("verified_lr")
        self.applied_lr = state_dict.get("applied_lr")
        self._from_checkpoint = True

    # -- the race ----------------------------------------------------------------------------
    def _run_length(self, trainer: Any) -> int:
        if self.total_steps is not None:
            return self.total_steps
        estimated = trainer.estimated_stepping_batches  # inf when unknown
        if not (isinstance(estimated, int) or math.isfinite(estimated)):
            fail(
                "total_steps",
                None,
                "given when the Trainer's run length is unknown (max_steps=-1 and max_epochs=-1, "
                "or an iterable dataset without max_steps)",
            )
        return check_int("total_steps", int(estimated), minimum=1)

    def _plan(self, trainer: Any) -> tuple[int, str, str | None]:
        """Check that this fit can race; its run length, the schedule to race, and a note."""
        single_optimizer(trainer, "the race")
        if self.budget > 0 and not trainer.enable_validation:
            raise ValueError(
                "the race scores each trial on validation loss, but this fit does not validate "
                "(no val_dataloaders, no validation_step, or limit_val_batches=0): pass "
                f"val_dataloaders and log {self.monitor!r} in validation_step, or use budget=0 "
                "(the range test's answer alone)"
            )
        if not isinstance(trainer.val_check_interval, (int, float)):
            fail(
                "val_check_interval",
                trainer.val_check_interval,
                "a number of batches or a fraction of an epoch for a race (not a duration)",
            )
        total = self._run_length(trainer)
        spec, note = (self.schedule, None) if self.schedule else _scheduler_schedule(trainer)
        if spec is not None:
            from lrkit.race import resolve_schedule

            if resolve_schedule(spec, total).stateful:
                fail("schedule", spec, "a schedule without reduce-on-plateau for a race")
        if note is not None:
            log.warning("LRRaceCallback: %s", note)
        return total, spec or "constant", note

    def _choose(self, trainer: Any, pl_module: Any) -> tuple[float | None, str]:
        total, spec, note = self._plan(trainer)

        def run_trial(lr_at: Callable[[int], float], trial_log: TrialLog) -> None:
            driver = _TrialDriver(lr_at, trial_log, self.monitor)
            run_excursion(trainer, pl_module, driver, validation=True)

        result = race_trainer(
            run_trial,
            range_test=lambda steps: range_test(trainer, pl_module, {"num_steps": steps}),
            name=type(pl_module).__name__,
            validation=f"the Trainer's validation loop ({self.monitor!r})",
            schedule=spec,
            total_steps=total,
            budget=self.budget,
            **self.options,
        )
        if note is not None:
            result.notes.append(note)
        lr = result.lr
        if trainer.world_size > 1:
            lr = trainer.strategy.broadcast(lr, src=0)
        self.result, self.verified_lr = result, lr
        log.info("LRRaceCallback: %s (%s)", result, result.reason)
        self._log(trainer)
        return lr, result.reason

    def _log(self, trainer: Any) -> None:
        result = self.result
        assert result is not None
        for logger in trainer.loggers:
            metrics = {"lrkit/race/spent_budgets": float(result.spent_budgets)}
            if self.verified_lr is not None:
                metrics["lrkit/verified_lr"] = float(self.verified_lr)
                logger.log_hyperparams({"lrkit_verified_lr": self.verified_lr})
            logger.log_metrics(metrics, step=0)


def verify_lr(
    trainer: Any,
    model: Any,
    *,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    datamodule: Any = None,
    budget: float | None = None,
    schedule: str | None = None,
    total_steps: int | None = None,
    monitor: str = "val_loss",
    update_attr: bool = True,
    lr_attr_name: str = "",
    **options: Any,
) -> RaceResult:
    """The verified learning rate with ``trainer``, the way ``Tuner(trainer).lr_find(model)`` is
    called: lrkit's race (:func:`lrkit.race.run_race`) run inside ``trainer.fit``.

    Runs ``trainer.fit`` with an :class:`LRRaceCallback` that ends the fit after the race, so
    the range test and every trial use the Trainer's precision, accumulation, clipping and
    strategy, and every trial is scored by its validation loop (``monitor``, logged in
    ``validation_step``). ``model`` and its optimizer are left as they were; with
    ``update_attr=True`` (the default, as in Lightning's Tuner) ``model.lr`` /
    ``model.learning_rate`` / ``hparams`` (or ``lr_attr_name``) hold the winner afterwards, so
    the next ``trainer.fit(model, ...)`` trains with it. ``budget`` (default
    :data:`lrkit.race.DEFAULT_BUDGET`), ``schedule`` and ``total_steps`` as in
    :class:`LRRaceCallback`; ``options``: ``seed``, ``range_steps``, ``compress``,
    ``tolerance``, ``per_decade``, ``evaluations`` (see :func:`lrkit.race.run_race`).

    Example::

        trainer = Trainer(max_steps=1000, precision="bf16-mixed", accumulate_grad_batches=2)
        result = verify_lr(trainer, model, train_dataloaders=train, val_dataloaders=val)
        trainer.fit(model, train, val)        # model.hparams.lr == result.lr
    """
    callback = LRRaceCallback(
        budget=budget,
        schedule=schedule,
        total_steps=total_steps,
        monitor=monitor,
        apply=update_attr,
        lr_attr_name=lr_attr_name,
        **options,
    )
    return callback._fit_once(
        trainer,
        model,
        train_dataloaders=train_dataloaders,
        val_dataloaders=val_dataloaders,
        datamodule=datamodule,
    )
