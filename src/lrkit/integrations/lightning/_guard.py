"""``GuardCallback``: lrkit's live :class:`~lrkit.diagnosis.Guard` on every step of ``fit``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch import Callback

from lrkit.integrations.lightning._excursion import single_optimizer

if TYPE_CHECKING:
    from lrkit.diagnosis import Guard

__all__ = ["GuardCallback"]

log = logging.getLogger(__name__)


def _drop_grads(optimizer: Any) -> None:
    """Make the coming ``optimizer.step()`` a no-op: torch optimizers skip params without grad.

    Under ``16-mixed`` the GradScaler has already unscaled the gradients when the hook runs, so
    its ``step`` then calls ``optimizer.step()`` with no gradients too.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None


class GuardCallback(Callback):
    """Watch every optimizer step of ``Trainer.fit`` with an :class:`lrkit.Guard`.

    The loss of a step is the mean of its micro-batches' training-step losses (with
    ``accumulate_grad_batches``; unscaled under ``16-mixed``), averaged over ranks under DDP, so
    every rank's guard sees the same value and takes the same decision. It is judged in
    ``on_before_optimizer_step``, after backward and before the update, as
    :meth:`lrkit.Guard.step` expects. When the guard asks to skip the update (non-finite loss,
    rollback) the gradients are dropped so the optimizer leaves the weights alone.
    ``policy="rollback"`` restores the model, optimizer and scheduler from the guard's last good
    snapshot (one is taken when training starts, and every ``snapshot_every`` steps); Lightning's
    step counter and data loader carry on, so the batches after the snapshot are not replayed.
    ``policy="raise"`` stops training cleanly (``trainer.should_stop``) instead of raising.

    Every event is logged through the Trainer's loggers (``guard/event_step``,
    ``guard/lr_scale``) and kept in ``guard.events``; the events are saved in checkpoints (the
    callback's state) and come back when fit resumes from one.

    Example::

        trainer = Trainer(callbacks=[GuardCallback(policy="rollback", snapshot_every=100)])
    """

    def __init__(self, guard: Guard | None = None, **guard_kwargs: Any) -> None:
        self._guard = guard
        self._guard_kwargs = guard_kwargs
        self._window: torch.Tensor | None = None
        self._micro = 0
        self._loaded_events: list[dict[str, Any]] | None = None

    @property
    def guard(self) -> Guard:
        """The :class:`lrkit.Guard` in use (created when training starts unless given)."""
        if self._guard is None:
            raise ValueError("GuardCallback.guard is created when training starts")
        return self._guard

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self._guard is None:
            return {"events": list(self._loaded_events or [])}
        return {"events": [e.to_dict() for e in self._guard.events]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded_events = list(state_dict.get("events", []))

    # -- hooks -----------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        from lrkit.diagnosis import Guard, GuardEvent

        if self._guard is None:
            optimizer = single_optimizer(trainer, "GuardCallback")
            kwargs = dict(self._guard_kwargs)
            kwargs.setdefault("model", pl_module)
            kwargs.setdefault("optimizer", optimizer)
            for config in trainer.lr_scheduler_configs:
                if getattr(config.scheduler, "optimizer", None) is optimizer:
                    kwargs.setdefault("scheduler", config.scheduler)
                    break
            self._guard = Guard(**kwargs)
        if self._loaded_events is not None:
            self._guard.events[:0] = [GuardEvent(**e) for e in self._loaded_events]
            self._loaded_events = None
        if self._guard.policy == "rollback":
            self._guard.take_snapshot(int(trainer.global_step))
        self._window, self._micro = None, 0

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        value = loss.detach().float()
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None:  # 16-mixed hands the hook the loss scaled for backward
            value = value / scaler.get_scale()
        self._window = value if self._window is None else self._window + value
        self._micro += 1

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        from lrkit.diagnosis import GuardError

        if self._window is None:
            return
        # Lightning divided each micro-batch's loss by accumulate_grad_batches before backward
        loss = self._window * (trainer.accumulate_grad_batches / self._micro)
        self._window, self._micro = None, 0
        if trainer.world_size > 1:
            loss = trainer.strategy.reduce(loss, reduce_op="mean")
        step = int(trainer.global_step)
        before = len(self.guard.events)
        try:
            action = self.guard.step(step, loss)
        except GuardError as exc:
            log.error("lrkit Guard stopped training: %s", exc)
            trainer.should_stop = True
            _drop_grads(optimizer)
            self._log_events(trainer, before)
            return
        if action.skip_update:
            _drop_grads(optimizer)
        self._log_events(trainer, before, action.lr_scale)

    def _log_events(self, trainer: Any, before: int, lr_scale: float | None = None) -> None:
        for event in self.guard.events[before:]:
            metrics = {"guard/event_step": float(event.step)}
            if lr_scale is not None:
                metrics["guard/lr_scale"] = float(lr_scale)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=event.step)
            log.warning("lrkit Guard: %s -> %s", event.describe(), event.action)
