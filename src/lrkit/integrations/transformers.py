"""Hugging Face ``transformers`` integration (``pip install 'lrkit[transformers]'``).

- :func:`find_lr` runs lrkit's range test on a ``PreTrainedModel`` fed dict batches (the loss
  comes from the model's output, ``model(**batch).loss``); :func:`find_lr_for_trainer` does it
  with a ``Trainer``'s own data loader, collator and optimizer.
- :class:`GuardCallback` is a ``TrainerCallback`` that watches the logged loss with
  :class:`lrkit.Guard`, lowers the learning rate or stops training, and records its events in
  the trainer's ``log_history`` (so they land in ``trainer_state.json``).
- :func:`trainer_optimizers` gives the Trainer an lrkit schedule::

      trainer = Trainer(model=model, args=args, train_dataset=ds,
                        optimizers=trainer_optimizers(model, "warmup(50, cosine(950))", lr=3e-4))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from lrkit._optional import MissingExtraError

if TYPE_CHECKING:
    from lrkit.diagnosis import Guard
    from lrkit.finder import RangeTest
    from lrkit.schedules import Schedule, ScheduledLR

try:
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - only without the extra
    raise MissingExtraError(
        "'transformers' is needed for lrkit.integrations.transformers: "
        "pip install 'lrkit[transformers]'"
    ) from exc

__all__ = ["GuardCallback", "find_lr", "find_lr_for_trainer", "trainer_optimizers"]

log = logging.getLogger(__name__)


def find_lr(
    model: torch.nn.Module,
    train_dataloader: Iterable[Any],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    weight_decay: float = 0.0,
    **kwargs: Any,
) -> RangeTest:
    """Range test on a Hugging Face model whose output carries ``.loss``.

    Batches are dicts (``input_ids``, ``labels``, ...); the optimizer defaults to AdamW. Keyword
    arguments go to :func:`lrkit.find_lr`; model, optimizer and RNG states are restored.

    Example::

        model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2))
        result = find_lr(model, loader, num_steps=100)
    """
    from lrkit.finder import find_lr as _find_lr

    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=weight_decay)
    return _find_lr(model, optimizer, None, train_dataloader, **kwargs)


def find_lr_for_trainer(trainer: Any, **kwargs: Any) -> RangeTest:
    """Range test with a ``Trainer``'s model, train data loader (collator included) and optimizer.

    The Trainer's optimizer is created if needed (``trainer.create_optimizer()``) and restored
    afterwards; the suggestion can then go into ``TrainingArguments.learning_rate``.
    """
    if trainer.optimizer is None:
        trainer.create_optimizer()
    loader = trainer.get_train_dataloader()
    return find_lr(trainer.model, loader, optimizer=trainer.optimizer, **kwargs)


def trainer_optimizers(
    model: torch.nn.Module,
    schedule: Schedule | str,
    *,
    lr: float,
    weight_decay: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
) -> tuple[torch.optim.Optimizer, ScheduledLR]:
    """``(optimizer, scheduler)`` for ``Trainer(optimizers=...)`` driven by an lrkit schedule.

    The Trainer steps the scheduler once per optimizer step, as lrkit counts steps, and saves
    its ``state_dict`` in checkpoints, so resumed runs keep the exact learning rates.
    """
    from lrkit.schedules import attach

    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return optimizer, attach(optimizer, schedule)


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
            record = event.to_dict() if hasattr(event, "to_dict") else dict(vars(event))
            state.log_history.append({"step": int(state.global_step), "lrkit_guard": record})
