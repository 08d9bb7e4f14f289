"""``GuardCallback``: lrkit's live :class:`~lrkit.diagnosis.Guard` on the Trainer's logged loss."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

if TYPE_CHECKING:
    from lrkit.diagnosis import Guard

__all__ = ["GuardCallback"]

log = logging.getLogger(__name__)


class GuardCallback(TrainerCallback):
    """A ``TrainerCallback`` that runs :class:`lrkit.Guard` on every logged loss.

    Set ``logging_steps=1`` in ``TrainingArguments`` to watch every step (the Trainer only
    reports the loss when it logs). Policies as in :class:`lrkit.Guard`: ``"warn"``,
    ``"scale_lr"`` (lower the learning rate, the Trainer's scheduler included) and ``"raise"``,
    which here stops training cleanly (``control.should_training_stop``) instead of raising.
    Every event is appended to ``state.log_history`` as ``{"step": ..., "lrkit_guard": {...}}``.

    Example::

        trainer = Trainer(..., callbacks=[GuardCallback(policy="scale_lr", lr_factor=0.5)])
    """

    def __init__(self, guard: Guard | None = None, **guard_kwargs: Any) -> None:
        self._guard = guard
        self._guard_kwargs = guard_kwargs

    @property
    def guard(self) -> Guard:
        """The :class:`lrkit.Guard` in use (created when training starts unless given)."""
        if self._guard is None:
            raise ValueError("GuardCallback.guard is created when training starts")
        return self._guard

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._guard is None:
            from lrkit.diagnosis import Guard

            guard_kwargs = dict(self._guard_kwargs)
            if kwargs.get("model") is not None:
                guard_kwargs.setdefault("model", kwargs["model"])
            if kwargs.get("optimizer") is not None:
                guard_kwargs.setdefault("optimizer", kwargs["optimizer"])
            if kwargs.get("lr_scheduler") is not None:
                guard_kwargs.setdefault("scheduler", kwargs["lr_scheduler"])
            self._guard = Guard(**guard_kwargs)

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not logs or "loss" not in logs:
            return
        from lrkit.diagnosis import GuardError

        guard = self.guard
        before = len(guard.events)
        grad_norm = logs.get("grad_norm")
        try:
            guard.step(
                int(state.global_step),
                float(logs["loss"]),
                grad_norm=None if grad_norm is None else float(grad_norm),
            )
        except GuardError as exc:
            log.error("lrkit Guard stopped training: %s", exc)
            control.should_training_stop = True
        for event in guard.events[before:]:
            state.log_history.append(
                {"step": int(state.global_step), "lrkit_guard": event.to_dict()}
            )
