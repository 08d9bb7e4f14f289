"""What the range-test and race callbacks share: a learning rate chosen when ``fit`` starts.

:class:`LRCallback` skips a resumed fit and ``fast_dev_run``, runs its subclass's
:meth:`~LRCallback._choose` (the range test, the race), uses the answer as Lightning's
``update_attr`` does (:func:`apply_lr`) when asked, and runs Tuner-style in one ``fit`` of its
own (:meth:`~LRCallback._fit_once`, for ``find_lr`` / ``verify_lr``).
"""

from __future__ import annotations

import logging
from typing import Any, Generic, TypeVar

from lightning.pytorch import Callback
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr

from lrkit._validate import fail
from lrkit.integrations.lightning._excursion import single_optimizer

__all__ = ["LRCallback", "apply_lr", "lr_attr"]

log = logging.getLogger(__name__)

_LR_ATTRS = ("lr", "learning_rate")

R = TypeVar("R")


def lr_attr(pl_module: Any, name: str) -> str | None:
    """The attribute holding the module's lr (``lr_attr_name``, else ``lr``/``learning_rate``)."""
    if name:
        if not lightning_hasattr(pl_module, name):
            fail("lr_attr_name", name, "an attribute of the module or of its hparams")
        return name
    return next((a for a in _LR_ATTRS if lightning_hasattr(pl_module, a)), None)


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


class LRCallback(Callback, Generic[R]):
    """A callback that chooses a learning rate when ``fit`` starts, before training.

    Subclasses set ``_work`` and ``_chosen`` (for messages) and implement
    :meth:`_choose`, which keeps its outcome in :attr:`result`.
    """

    #: what the callback runs ("range test", "race") and what its answer is ("suggested", ...)
    _work = ""
    _chosen = ""

    def __init__(self, *, apply: bool, lr_attr_name: str) -> None:
        if not isinstance(apply, bool):
            fail("apply", apply, "True or False")
        if not isinstance(lr_attr_name, str):
            fail("lr_attr_name", lr_attr_name, "an attribute name (str)")
        self.apply = apply
        self.lr_attr_name = lr_attr_name
        self.result: R | None = None
        self.applied_lr: float | None = None
        self._from_checkpoint = False
        self._stop_fit = False  # set by _fit_once: end the fit once the lr is chosen

    def _choose(self, trainer: Any, pl_module: Any) -> tuple[float | None, str]:
        """Run the work (every rank under DDP): the learning rate chosen, the same on every
        rank (None for none), and why."""
        raise NotImplementedError

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        name = type(self).__name__
        if self._from_checkpoint or trainer.ckpt_path is not None:
            log.info("%s: fit resumes from a checkpoint; %s skipped", name, self._work)
            return
        if trainer.fast_dev_run:
            log.info("%s: fast_dev_run; %s skipped", name, self._work)
            return
        attr = lr_attr(pl_module, self.lr_attr_name) if self.apply else None
        lr, reason = self._choose(trainer, pl_module)
        if lr is not None and self.apply:
            apply_lr(trainer, pl_module, lr, attr)
            self.applied_lr = lr
        elif lr is None:
            log.warning("%s: no learning rate %s: %s", name, self._chosen, reason)
        if self._stop_fit:
            trainer.should_stop = True

    def _fit_once(
        self,
        trainer: Any,
        model: Any,
        *,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Any = None,
    ) -> R:
        """``trainer.fit`` with this callback first, ending the fit once the lr is chosen
        (Tuner-style); the Trainer's callbacks and limits, and the global RNGs, are put back
        afterwards. With ``apply`` the module must have an lr attribute to update."""
        from lrkit._state import _capture_rng, _restore_rng

        if self.apply and lr_attr(model, self.lr_attr_name) is None:
            fail(
                "update_attr",
                self.apply,
                "False, or a module with an lr / learning_rate attribute or hparam (or "
                "lr_attr_name)",
            )
        self._stop_fit = True
        rng = _capture_rng()
        loop = trainer.fit_loop
        saved = (
            trainer.callbacks,
            trainer.num_sanity_val_steps,
            loop.min_epochs,
            loop.epoch_loop.min_steps,
        )
        trainer.callbacks = [self, *trainer.callbacks]
        trainer.num_sanity_val_steps = 0
        loop.min_epochs = 0  # so that the fit can end right after the callback's work
        loop.epoch_loop.min_steps = None
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
            loop.min_epochs, loop.epoch_loop.min_steps = saved[2], saved[3]
            trainer.should_stop = False
        if self.result is None:
            raise RuntimeError(
                f"the {self._work} did not run (fast_dev_run, or fit was interrupted)"
            )
        return self.result
