"""PyTorch Lightning integration (``pip install 'lrkit[lightning]'``).

- :func:`find_lr` runs lrkit's range test on a ``LightningModule`` with its own
  ``training_step`` and ``configure_optimizers`` and restores everything afterwards.
- :class:`LRFinderCallback` runs it when ``fit`` starts and, when asked (``apply=True``), sets
  the suggested learning rate on the optimizer and its scheduler.
- :class:`GuardCallback` watches every training step with :class:`lrkit.Guard` and logs its
  events through the module's logger.

lrkit schedules plug into Lightning's scheduler config as they are::

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=3e-4)
        sched = lrkit.schedules.attach(opt, "warmup(100, cosine(900))")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

Checkpoints save the scheduler's ``state_dict`` (step count + spec), so a resumed ``fit``
produces the same learning rates as an uninterrupted one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from lrkit._optional import MissingExtraError

if TYPE_CHECKING:
    from lrkit.diagnosis import Guard
    from lrkit.finder import RangeTest

try:
    from lightning.pytorch import Callback, LightningModule
except ImportError as exc:  # pragma: no cover - only without the extra
    raise MissingExtraError(
        "'lightning' is needed for lrkit.integrations.lightning: pip install 'lrkit[lightning]'"
    ) from exc

__all__ = ["GuardCallback", "LRFinderCallback", "find_lr", "optimizer_from"]

log = logging.getLogger(__name__)


def optimizer_from(module: Any) -> torch.optim.Optimizer:
    """The (first) optimizer that ``module.configure_optimizers()`` returns, in any of its forms.

    Lightning accepts an optimizer, a list or tuple of optimizers, ``(optimizers, schedulers)``,
    a dict with an ``"optimizer"`` key, or a list of such dicts.
    """
    config = module.configure_optimizers()
    found = _first_optimizer(config)
    if found is None:
        raise ValueError(
            "configure_optimizers must return a torch.optim.Optimizer (or a list / dict holding "
            f"one), but got configure_optimizers()={type(config).__name__}"
        )
    return found


def _first_optimizer(config: Any) -> torch.optim.Optimizer | None:
    if isinstance(config, torch.optim.Optimizer):
        return config
    if isinstance(config, Mapping):
        return _first_optimizer(config.get("optimizer"))
    if isinstance(config, (list, tuple)):
        for item in config:
            found = _first_optimizer(item)
            if found is not None:
                return found
    return None


def _loss_of(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        loss = output.get("loss")
        if isinstance(loss, torch.Tensor):
            return loss
    raise ValueError(
        "training_step must return the loss tensor or a dict with a 'loss' tensor for the range "
        f"test, but got training_step(...)={type(output).__name__}"
    )


@contextmanager
def _outside_trainer(module: Any) -> Iterator[None]:
    """Run ``training_step`` outside the fit loop: ``self.log`` calls become no-ops."""
    trainer = getattr(module, "_trainer", None)
    fx_name = getattr(module, "_current_fx_name", None)
    module._trainer = None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*self\.log\(\).*")
            warnings.filterwarnings("ignore", message=r".*self\.trainer.*not registered.*")
            yield
    finally:
        module._trainer = trainer
        module._current_fx_name = fx_name


def _train_loader(module: Any, datamodule: Any, train_dataloaders: Any) -> Iterable[Any]:
    if train_dataloaders is not None:
        return train_dataloaders  # type: ignore[no-any-return]
    if datamodule is not None:
        datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule.train_dataloader()  # type: ignore[no-any-return]
    try:
        return module.train_dataloader()  # type: ignore[no-any-return]
    except Exception as exc:  # Lightning raises MisconfigurationException when undefined
        raise ValueError(
            "find_lr needs training data: pass datamodule= or train_dataloaders=, or define "
            f"train_dataloader() on the module (calling it failed: {exc})"
        ) from exc


def find_lr(
    module: Any,
    *,
    datamodule: Any = None,
    train_dataloaders: Iterable[Any] | None = None,
    val_dataloaders: Iterable[Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    **kwargs: Any,
) -> RangeTest:
    """Range test on a ``LightningModule`` using its ``training_step`` as the loss.

    The optimizer comes from ``configure_optimizers()`` unless given; the data from
    ``train_dataloaders``, the ``datamodule`` or the module's own ``train_dataloader()``.
    ``val_dataloaders`` switches on validation-loss mode (the loss is ``training_step``'s,
    computed without gradients). Other keyword arguments go to :func:`lrkit.find_lr`.
    The module, the optimizer and the RNG states are restored afterwards.

    Example::

        result = find_lr(model, datamodule=dm, num_steps=100)
        print(result.suggestion)
    """
    from lrkit.finder import find_lr as _find_lr

    if not isinstance(module, LightningModule):
        raise ValueError(
            f"module must be a lightning.pytorch.LightningModule, but got {type(module).__name__}"
        )
    opt = optimizer if optimizer is not None else optimizer_from(module)
    loader = _train_loader(module, datamodule, train_dataloaders)
    counter = {"batch_idx": 0}

    def step_fn(model: torch.nn.Module, batch: Any) -> torch.Tensor:
        idx = counter["batch_idx"]
        counter["batch_idx"] = idx + 1
        return _loss_of(module.training_step(batch, idx))

    with _outside_trainer(module):
        return _find_lr(
            module, opt, None, loader, val_loader=val_dataloaders, step_fn=step_fn, **kwargs
        )


def _scale_lrs(trainer: Any, optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Multiply every group's lr (and the schedulers' base lrs) by ``factor``, keeping ratios."""
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
        if "initial_lr" in group:
            group["initial_lr"] = group["initial_lr"] * factor
    for config in getattr(trainer, "lr_scheduler_configs", []):
        scheduler = config.scheduler
        if getattr(scheduler, "optimizer", None) is optimizer and hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]


class LRFinderCallback(Callback):
    """Run the range test when ``fit`` starts; with ``apply=True`` use its suggestion.

    The suggestion (``method``, for the ``schedule`` you train with) replaces the first param
    group's learning rate; other groups keep their ratios, and attached schedulers are rescaled.
    Nothing is applied when the test gives no clear answer (``result.suggestion_reason`` says
    why) or when fit resumes from a checkpoint. The result is kept in ``self.result``.

    Example::

        trainer = Trainer(callbacks=[LRFinderCallback(apply=True, num_steps=100)])
    """

    def __init__(
        self,
        *,
        apply: bool = False,
        method: str = "lrkit",
        schedule: str = "constant",
        **find_kwargs: Any,
    ) -> None:
        self.apply = apply
        self.method = method
        self.schedule = schedule
        self.find_kwargs = find_kwargs
        self.result: RangeTest | None = None
        self.applied_lr: float | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.global_step > 0:
            log.info(
                "LRFinderCallback: fit resumes at step %d; range test skipped", trainer.global_step
            )
            return
        optimizer = trainer.optimizers[0]
        loader = trainer.fit_loop._data_source.dataloader()
        self.result = find_lr(
            pl_module, optimizer=optimizer, train_dataloaders=loader, **self.find_kwargs
        )
        suggestion = self.result.suggest(self.method, schedule=self.schedule)
        if suggestion.lr is None:
            log.warning("LRFinderCallback: no learning rate applied: %s", suggestion.reason)
            return
        if self.apply:
            # the suggestion is the group's base (peak) lr: with a scheduler attached the
            # current lr is already scaled by the schedule's multiplier at step 0 (a warmup)
            group = optimizer.param_groups[0]
            base = float(group.get("initial_lr", group["lr"]))
            _scale_lrs(trainer, optimizer, suggestion.lr / base)
            self.applied_lr = suggestion.lr
            log.info(
                "LRFinderCallback: learning rate set to %.3g (%s)", suggestion.lr, suggestion.reason
            )


class GuardCallback(Callback):
    """Watch every training step with a :class:`lrkit.Guard` and apply its policy.

    The loss is taken in ``on_before_backward`` and judged in ``on_before_optimizer_step``,
    i.e. after backward and before the update, as :meth:`lrkit.Guard.step` expects. When the
    guard asks to skip the update (non-finite loss, rollback) the gradients are dropped so the
    optimizer leaves the weights alone. ``policy="rollback"`` restores the model, optimizer and
    scheduler from the guard's last good snapshot; Lightning's own step counter and data loader
    carry on, so the batches after the snapshot are not replayed. ``policy="raise"`` stops
    training cleanly (``trainer.should_stop``) instead of raising. Every event is logged through
    the module's logger (``guard/event_step``, ``guard/lr_scale``) and kept in ``guard.events``.

    Example::

        trainer = Trainer(callbacks=[GuardCallback(policy="scale_lr", lr_factor=0.5)])
    """

    def __init__(self, guard: Guard | None = None, **guard_kwargs: Any) -> None:
        self._guard = guard
        self._guard_kwargs = guard_kwargs
        self._loss: torch.Tensor | None = None

    @property
    def guard(self) -> Guard:
        """The :class:`lrkit.Guard` in use (created when fit starts unless given)."""
        if self._guard is None:
            raise ValueError("GuardCallback.guard is created when fit starts")
        return self._guard

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self._guard is None:
            from lrkit.diagnosis import Guard

            kwargs = dict(self._guard_kwargs)
            kwargs.setdefault("model", pl_module)
            kwargs.setdefault("optimizer", trainer.optimizers[0])
            configs = getattr(trainer, "lr_scheduler_configs", [])
            if configs:
                kwargs.setdefault("scheduler", configs[0].scheduler)
            self._guard = Guard(**kwargs)

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        self._loss = loss.detach()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        from lrkit.diagnosis import GuardError

        if self._loss is None:
            return
        loss, self._loss = self._loss, None
        step = int(trainer.global_step)
        try:
            action = self.guard.step(step, loss)
        except GuardError as exc:
            log.error("lrkit Guard stopped training: %s", exc)
            trainer.should_stop = True
            _drop_grads(optimizer)
            return
        if action.ok:
            return
        if action.skip_update:
            _drop_grads(optimizer)
        metrics = {"guard/event_step": float(step)}
        if action.lr_scale is not None:
            metrics["guard/lr_scale"] = float(action.lr_scale)
        if trainer.logger is not None:
            trainer.logger.log_metrics(metrics, step=step)
        if action.event is not None:
            log.warning("lrkit Guard: %s", action.event.describe())


def _drop_grads(optimizer: Any) -> None:
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None
