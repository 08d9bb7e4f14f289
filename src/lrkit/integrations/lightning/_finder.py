"""The range test inside ``Trainer.fit``: :class:`LRFinderCallback`; :func:`find_lr` (Tuner)."""

from __future__ import annotations

import logging
import time
from typing import Any

from lightning.pytorch import Callback
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr

from lrkit._validate import check_choice, fail
from lrkit.finder import METHODS, SCHEDULES, RangeTest
from lrkit.integrations._curve import RampCurve
from lrkit.integrations.lightning._excursion import LRDriver, run_excursion, single_optimizer

__all__ = ["LRFinderCallback", "apply_lr", "find_lr", "fit_once", "range_test"]

log = logging.getLogger(__name__)

_LR_ATTRS = ("lr", "learning_rate")
_AMP = {"bf16-mixed": "bf16", "16-mixed": "fp16"}


class _RangeTestDriver(LRDriver):
    """An :class:`LRDriver` along the ramp of a :class:`RampCurve`, stopping where it stops."""

    def __init__(self, curve: RampCurve) -> None:
        super().__init__(curve.lr, curve.num_steps)
        self.curve = curve

    def record(self, lr: float, loss: float) -> bool:
        super().record(lr, loss)
        return self.curve.add(loss)


def _lr_attr(pl_module: Any, name: str) -> str | None:
    """The attribute holding the module's lr (``lr_attr_name``, else ``lr``/``learning_rate``)."""
    if name:
        if not lightning_hasattr(pl_module, name):
            fail("lr_attr_name", name, "an attribute of the module or of its hparams")
        return name
    return next((a for a in _LR_ATTRS if lightning_hasattr(pl_module, a)), None)


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


def apply_lr(trainer: Any, pl_module: Any, lr: float, attr: str | None) -> None:
    """Use ``lr`` as Lightning's ``update_attr`` does: the module's ``attr`` (``lr`` /
    ``hparams``) and the optimizer's learning rates (other groups keep their ratios; attached
    schedulers' base lrs are rescaled)."""
    optimizer = single_optimizer(trainer)
    bases = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
    reference = max(bases)
    if reference > 0:
        _scale_lrs(trainer, optimizer, lr / reference)
    else:
        for group in optimizer.param_groups:
            group["lr"] = lr
    if attr is not None:
        lightning_setattr(pl_module, attr, lr)
    else:
        log.info("lrkit: the module has no lr / learning_rate attribute to update")


def fit_once(
    trainer: Any,
    model: Any,
    callback: Any,
    *,
    update_attr: bool,
    lr_attr_name: str,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    datamodule: Any = None,
) -> None:
    """``trainer.fit`` with ``callback`` first, told to end the fit when done (Tuner-style:
    ``callback._stop_fit``); the Trainer's callbacks and limits, and the global RNGs, are put
    back afterwards. With ``update_attr`` the module must have an lr attribute to update."""
    from lrkit._state import _capture_rng, _restore_rng

    if update_attr and _lr_attr(model, lr_attr_name) is None:
        fail(
            "update_attr",
            update_attr,
            "False, or a module with an lr / learning_rate attribute or hparam (or lr_attr_name)",
        )
    callback._stop_fit = True

    rng = _capture_rng()
    saved = (
        trainer.callbacks,
        trainer.num_sanity_val_steps,
        trainer.fit_loop.min_epochs,
        trainer.fit_loop.epoch_loop.min_steps,
    )
    trainer.callbacks = [callback, *trainer.callbacks]
    trainer.num_sanity_val_steps = 0
    trainer.fit_loop.min_epochs = 0  # so that the fit can end right after the callback's work
    trainer.fit_loop.epoch_loop.min_steps = None
    try:
        trainer.fit(
            model,
            train_dataloaders=train_dataloaders,
            val_dataloaders=val_dataloaders,
            datamodule=datamodule,
        )
    finally:
        _restore_rng(rng)
        trainer.callbacks, trainer.num_sanity_val_steps = saved[0], saved[1]
        trainer.fit_loop.min_epochs, trainer.fit_loop.epoch_loop.min_steps = saved[2], saved[3]
        trainer.should_stop = False


def _scale_lrs(trainer: Any, optimizer: Any, factor: float) -> None:
    """Multiply every group's lr (and the schedulers' base lrs) by ``factor``, keeping ratios."""
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
        if "initial_lr" in group:
            group["initial_lr"] = group["initial_lr"] * factor
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if getattr(scheduler, "optimizer", None) is optimizer and hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]


class LRFinderCallback(Callback):
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
        if not isinstance(apply, bool):
            fail("apply", apply, "True or False")
        if not isinstance(lr_attr_name, str):
            fail("lr_attr_name", lr_attr_name, "an attribute name (str)")
        self.apply = apply
        self.method = check_choice("method", method, METHODS)
        self.schedule = check_choice("schedule", schedule, SCHEDULES)
        self.lr_attr_name = lr_attr_name
        self.ramp: dict[str, Any] = dict(
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            mode=mode,
            smoothing=smoothing,
            diverge_factor=diverge_factor,
        )
        RampCurve(**self.ramp)  # validate now, not when fit starts
        self.result: RangeTest | None = None
        self.suggested_lr: float | None = None
        self.applied_lr: float | None = None
        self._from_checkpoint = False
        self._stop_fit = False  # set by find_lr: end the fit after the test

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
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self._from_checkpoint or trainer.ckpt_path is not None:
            log.info("LRFinderCallback: fit resumes from a checkpoint; range test skipped")
            return
        if trainer.fast_dev_run:
            log.info("LRFinderCallback: fast_dev_run; range test skipped")
            return
        attr = _lr_attr(pl_module, self.lr_attr_name) if self.apply else None
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
        if lr is not None and self.apply:
            apply_lr(trainer, pl_module, lr, attr)
            self.applied_lr = lr
        elif lr is None:
            log.warning("LRFinderCallback: no learning rate suggested: %s", suggestion.reason)
        if self._stop_fit:
            trainer.should_stop = True

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
    fit_once(
        trainer,
        model,
        callback,
        update_attr=update_attr,
        lr_attr_name=lr_attr_name,
        train_dataloaders=train_dataloaders,
        val_dataloaders=val_dataloaders,
        datamodule=datamodule,
    )
    if callback.result is None:
        raise RuntimeError("the range test did not run (fast_dev_run, or fit was interrupted)")
    return callback.result
