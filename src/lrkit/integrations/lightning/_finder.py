"""The range test inside ``Trainer.fit``: :class:`LRFinderCallback`; :func:`find_lr` (Tuner)."""

from __future__ import annotations

import logging
import time
from typing import Any

from lrkit._validate import check_choice
from lrkit.finder import METHODS, SCHEDULES, RangeTest
from lrkit.integrations._curve import RampCurve
from lrkit.integrations.lightning._callback import LRCallback
from lrkit.integrations.lightning._excursion import LRDriver, run_excursion, single_optimizer

__all__ = ["LRFinderCallback", "find_lr", "range_test"]

log = logging.getLogger(__name__)

_AMP = {"bf16-mixed": "bf16", "16-mixed": "fp16"}


class _RangeTestDriver(LRDriver):
    """An :class:`LRDriver` along the ramp of a :class:`RampCurve`, stopping where it stops."""

    def __init__(self, curve: RampCurve) -> None:
        super().__init__(curve.lr, curve.num_steps)
        self.curve = curve

    def record(self, lr: float, loss: float) -> bool:
        super().record(lr, loss)
        return self.curve.add(loss)


def range_test(trainer: Any, pl_module: Any, ramp: dict[str, Any]) -> RangeTest:
    """lrkit's range test (``ramp``: :class:`RampCurve`'s keywords) in the Trainer's fit loop,
    undone afterwards (an excursion; call it from a callback's ``on_fit_start``)."""
    optimizer = single_optimizer(trainer)
    curve = RampCurve(**ramp)
    driver = _RangeTestDriver(curve)
    began = time.perf_counter()
    run_excursion(trainer, pl_module, driver)
    precision = str(trainer.precision)
    return curve.result(
        group_ratios=driver.group_ratios,
        settings={
            "optimizer": type(optimizer).__name__,
            "accumulation_steps": trainer.accumulate_grad_batches,
            "amp": _AMP.get(precision),
            "precision": precision,
            "gradient_clip_val": trainer.gradient_clip_val,
            "world_size": trainer.world_size,
            "trainer": "lightning",
        },
        seconds=time.perf_counter() - began,
    )


class LRFinderCallback(LRCallback[RangeTest]):
    """Run lrkit's range test inside ``Trainer.fit``, before training starts.

    The test runs in the Trainer's own fit loop (see :func:`run_excursion`), so the Trainer's
    precision (``bf16-mixed``, ``16-mixed``), ``accumulate_grad_batches``, gradient clipping and
    strategy (DDP: every rank takes part, the losses are averaged over ranks and rank 0's
    decisions are broadcast, so all ranks get the same curve and suggestion) apply as in the
    training that follows. Afterwards the model, optimizer, GradScaler, RNG states, fit loop
    and data are as they were, and training starts at step 0.

    The suggestion (``method`` for the ``schedule`` you train with; see
    :meth:`lrkit.finder.RangeTest.suggest`) is kept in :attr:`suggested_lr`, the curve in
    :attr:`result`. With ``apply=True`` it is used, as Lightning's ``update_attr`` does: the
    module's ``lr`` / ``learning_rate`` (or ``lr_attr_name``) attribute and ``hparams`` entry
    are set to it, and so are the optimizer's learning rates (other param groups keep their
    ratios; attached schedulers' base lrs are rescaled). Nothing is applied when the curve gives
    no clear answer (the reason is logged). The curve and the suggestion go to the Trainer's
    loggers (metrics ``lrkit/range_test/*`` and ``lrkit/suggested_lr``, hyper-parameter
    ``lrkit_suggested_lr``) and into checkpoints (the callback's state, and ``hparams``); a fit
    resumed from a checkpoint skips the test.

    Example::

        trainer = Trainer(precision="bf16-mixed", accumulate_grad_batches=4,
                          callbacks=[LRFinderCallback(apply=True, num_steps=100)])
        trainer.fit(model, datamodule=dm)      # model.lr / model.hparams.lr now hold the lr
    """

    _work, _chosen = "range test", "suggested"

    def __init__(
        self,
        *,
        apply: bool = False,
        method: str = "lrkit",
        schedule: str = "constant",
        lr_attr_name: str = "",
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_steps: int = 100,
        mode: str = "exp",
        smoothing: float = 0.98,
        diverge_factor: float | None = 4.0,
    ) -> None:
        super().__init__(apply=apply, lr_attr_name=lr_attr_name)
        self.method = check_choice("method", method, METHODS)
        self.schedule = check_choice("schedule", schedule, SCHEDULES)
        self.ramp: dict[str, Any] = dict(
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            mode=mode,
            smoothing=smoothing,
            diverge_factor=diverge_factor,
        )
        RampCurve(**self.ramp)  # validate now, not when fit starts
        self.suggested_lr: float | None = None

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "result": None if self.result is None else self.result.to_dict(),
            "suggested_lr": self.suggested_lr,
            "applied_lr": self.applied_lr,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        result = state_dict.get("result")
        self.result = None if result is None else RangeTest.from_dict(result)
        self.suggested_lr = state_dict.get("suggested_lr")
        self.applied_lr = state_dict.get("applied_lr")
        self._from_checkpoint = True

    # -- the test --------------------------------------------------------------------------
    def _choose(self, trainer: Any, pl_module: Any) -> tuple[float | None, str]:
        self.result = range_test(trainer, pl_module, self.ramp)
        suggestion = self.result.suggest(self.method, schedule=self.schedule)
        lr = suggestion.lr
        if trainer.world_size > 1:
            lr = trainer.strategy.broadcast(lr, src=0)
        self.suggested_lr = lr
        self._log_curve(trainer)
        log.info(
            "LRFinderCallback: %d points (%s), suggestion %s: %s",
            len(self.result),
            self.result.stop_reason,
            "none" if lr is None else f"{lr:.3g}",
            suggestion.reason,
        )
        return lr, suggestion.reason

    def _log_curve(self, trainer: Any) -> None:
        assert self.result is not None
        result = self.result
        for logger in trainer.loggers:
            for i in range(len(result)):
                logger.log_metrics(
                    {
                        "lrkit/range_test/lr": float(result.lrs[i]),
                        "lrkit/range_test/loss": float(result.losses[i]),
                        "lrkit/range_test/smoothed_loss": float(result.smoothed[i]),
                    },
                    step=i,
                )
            if self.suggested_lr is not None:
                logger.log_metrics({"lrkit/suggested_lr": self.suggested_lr}, step=0)
                # next to the module's hparams (Lightning logs their initial values)
                logger.log_hyperparams({"lrkit_suggested_lr": self.suggested_lr})


def find_lr(
    trainer: Any,
    model: Any,
    *,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    datamodule: Any = None,
    update_attr: bool = True,
    lr_attr_name: str = "",
    method: str = "lrkit",
    schedule: str = "constant",
    **ramp: Any,
) -> RangeTest:
    """Range test with ``trainer``, as ``Tuner(trainer).lr_find(model)`` runs Lightning's.

    Runs ``trainer.fit`` with an :class:`LRFinderCallback` that ends the fit right after the
    test, so the Trainer's precision, accumulation, clipping and strategy apply; ``model`` and
    its optimizer are left as they were, and with ``update_attr=True`` (the default, as in
    Lightning's Tuner) ``model.lr`` / ``model.learning_rate`` / ``hparams`` (or
    ``lr_attr_name``) hold the suggestion afterwards, so the next ``trainer.fit(model, ...)``
    trains with it. Keyword arguments ``start_lr``, ``end_lr``, ``num_steps``, ``mode``,
    ``smoothing`` and ``diverge_factor`` set the ramp.

    Example::

        trainer = Trainer(max_steps=1000, precision="bf16-mixed", accumulate_grad_batches=2)
        result = find_lr(trainer, model, datamodule=dm)   # model.lr = result's suggestion
        trainer.fit(model, datamodule=dm)
    """
    callback = LRFinderCallback(
        apply=update_attr,
        method=method,
        schedule=schedule,
        lr_attr_name=lr_attr_name,
        **ramp,
    )
    return callback._fit_once(
        trainer,
        model,
        train_dataloaders=train_dataloaders,
        val_dataloaders=val_dataloaders,
        datamodule=datamodule,
    )
