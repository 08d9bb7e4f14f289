"""Excursions: a short stretch of training run by the Trainer's own fit loop, then undone.

An excursion runs inside ``Trainer.fit`` (from a callback's ``on_fit_start``, before the real
training starts), through ``trainer.fit_loop.run()``: the Trainer's precision plugin
(``bf16-mixed``, ``16-mixed`` with its GradScaler), gradient accumulation, gradient clipping,
strategy (DDP: the same processes, collectives and samplers) and the module's own hooks all
apply, exactly as in the training that follows. A :class:`LRDriver` callback sets the learning
rate of every optimizer step and hears the loss of every step; when it says it is finished,
the excursion ends and everything it touched is put back: the model's parameters, buffers and
gradients, the optimizer's state and hyper-parameters, the GradScaler, the global RNG states
(:func:`lrkit.finder.take_snapshot`), the fit loop's counters, the callbacks, loggers and
schedulers, the Trainer's metrics (``callback_metrics``, ``logged_metrics``,
``progress_bar_metrics``), and the data: the excursion ends its last epoch and starts an empty
one, which makes the fit loop create a fresh iterator over the training data, so training
starts at step 0 of a fresh pass, as if nothing had run. The random state the first batch of
that pass is drawn with (the global RNGs, the training loaders' own generators) is put back
to what it was before any excursion drew a batch, so several excursions in a row (a race's
trials) leave the run exactly as one does.

The range test (:class:`~lrkit.integrations.lightning.LRFinderCallback`) is one excursion; a
race of candidate learning rates is several (one guarded trial each, e.g. an :class:`LRDriver`
at a fixed lr or schedule with a :class:`~lrkit.integrations.lightning.GuardCallback`).

Only public Lightning names are used. What the user sees while an excursion runs: the module's
``on_train_start``/``on_train_epoch_start``/``on_train_epoch_end``/``on_train_end`` hooks are
called for it (as Lightning's own ``LearningRateFinder`` does; ``on_train_epoch_start`` once
more, for the empty epoch), while the Trainer's other callbacks, its loggers, its lr schedulers and
validation are switched off. With ``validation=True`` the fit's own validation loop stays on
(``validation_step``, the val dataloaders with their distributed samplers, the precision
plugin, the module's validation hooks) but runs only where the driver asks for it:
:meth:`LRDriver.validate_after_this_batch` from its ``on_train_batch_end``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from lightning.pytorch import Callback

from lrkit._validate import check_int
from lrkit.finder import Snapshot, take_snapshot
from lrkit.integrations._groups import group_ratios, set_lrs

__all__ = ["LRDriver", "run_excursion", "single_optimizer"]

#: ``trainer.val_check_batch`` while no validation is asked for (never reached)
_NEVER = 1 << 62

log = logging.getLogger(__name__)


def single_optimizer(trainer: Any, what: str = "the range test") -> torch.optim.Optimizer:
    """The Trainer's one optimizer; ValueError for several or none (as Lightning's finder)."""
    optimizers = list(trainer.optimizers)
    if len(optimizers) != 1:
        raise ValueError(
            f"{what} needs exactly one optimizer from configure_optimizers(), but got "
            f"{len(optimizers)} optimizers"
        )
    return optimizers[0]  # type: ignore[no-any-return]


def _loss_of(outputs: Any) -> torch.Tensor | None:
    """The (accumulation-normalised) loss of ``on_train_batch_end``'s outputs, if any."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping) and isinstance(outputs.get("loss"), torch.Tensor):
        return outputs["loss"]  # type: ignore[no-any-return]
    return None


class LRDriver(Callback):
    """Drives an excursion: the learning rate of each optimizer step and the loss it gave.

    Before optimizer step ``k`` (from 0, counted within the excursion) the reference param
    group (the one with the largest base lr) gets ``lr_at(k)`` and every other group keeps its
    ratio to it. The loss of step ``k`` is the mean of its micro-batches' training-step losses
    (with ``accumulate_grad_batches``), averaged over all ranks; :meth:`record` hears it and
    says when to stop. Ranks agree: every rank records the same mean, and the decision to stop
    is rank 0's, broadcast. The driver is finished after ``steps`` steps or when
    :meth:`record` returns True.

    Subclass and override :meth:`record` for other stop rules (the range test stops on
    divergence); a race trial is an ``LRDriver(lambda k: lr, steps=budget)`` run with
    :func:`run_excursion`, next to a :class:`~lrkit.integrations.lightning.GuardCallback`.
    """

    def __init__(self, lr_at: Callable[[int], float], steps: int) -> None:
        if not callable(lr_at):
            raise ValueError(f"lr_at must be a callable f(step) -> lr, but got {lr_at!r}")
        self.lr_at = lr_at
        self.steps = check_int("steps", steps, minimum=1)
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.finished = False
        self.group_ratios: tuple[float, ...] = (1.0,)
        self._window: torch.Tensor | None = None
        self._micro = 0
        self._lr: float | None = None

    # -- what subclasses change ------------------------------------------------------------
    def record(self, lr: float, loss: float) -> bool:
        """Keep the loss of the step just taken at ``lr``; return True to end the excursion."""
        self.lrs.append(lr)
        self.losses.append(loss)
        return len(self.losses) >= self.steps

    # -- hooks -------------------------------------------------------------------------------
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.group_ratios = group_ratios(single_optimizer(trainer))

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        lr = float(self.lr_at(len(self.losses)))
        set_lrs(optimizer, lr, self.group_ratios)
        self._lr = lr

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = _loss_of(outputs)
        if loss is not None:
            value = loss.detach().float()
            self._window = value if self._window is None else self._window + value
            self._micro += 1
        if self._lr is None:  # accumulating: no optimizer step in this batch
            return
        lr, self._lr = self._lr, None
        if self._window is None:  # training_step returned None for the whole window
            return
        # Lightning divided each micro-batch's loss by accumulate_grad_batches
        mean = self._window * (trainer.accumulate_grad_batches / self._micro)
        self._window, self._micro = None, 0
        if trainer.world_size > 1:
            mean = trainer.strategy.reduce(mean, reduce_op="mean")
        stop = self.record(lr, float(mean.item()))
        if trainer.world_size > 1:
            stop = bool(trainer.strategy.broadcast(stop, src=0))
        self.finished = stop

    @staticmethod
    def validate_after_this_batch(trainer: Any) -> None:
        """Make the fit loop run its validation loop right after the current training batch
        (an excursion run with ``validation=True``; call it from ``on_train_batch_end``).

        Lightning validates when the batches trained so far are a multiple of
        ``trainer.val_check_batch`` (with ``check_val_every_n_epoch=None``); the excursion
        keeps it out of reach, and this sets it to the current count for one batch: the
        driver's ``on_validation_end`` puts it out of reach again.
        """
        trainer.val_check_batch = trainer.fit_loop.epoch_loop.total_batch_idx + 1

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        trainer.val_check_batch = _NEVER


def _loaders(value: Any) -> list[Any]:
    """The data loaders in ``trainer.train_dataloader`` (one, or a list / dict of them)."""
    if isinstance(value, Mapping):
        return [x for v in value.values() for x in _loaders(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _loaders(v)]
    return [] if value is None else [value]


@dataclass
class _DataState:
    """The random state the first batch of a pass is drawn with: the global RNGs and the
    training loaders' own generators (a shuffling sampler draws from them at the first batch,
    not when its iterator is made)."""

    rng: Any
    generators: list[tuple[Any, Any]]

    @classmethod
    def capture(cls, trainer: Any) -> _DataState:
        from lrkit._state import _capture_rng, _generator_state, find_generators

        found = find_generators(*_loaders(trainer.train_dataloader))
        return cls(_capture_rng(), [(g, _generator_state(g)) for g in found])

    def restore(self) -> None:
        from lrkit._state import _restore_rng, _set_generator_state

        for generator, state in self.generators:
            _set_generator_state(generator, state)
        _restore_rng(self.rng)


class _Control(Callback):
    """Ends the excursion at the first batch after the driver finished, then restores state."""

    def __init__(
        self,
        driver: LRDriver,
        snapshot: Snapshot,
        scaler: Any,
        scaler_state: Any,
        origin: _DataState | None,
    ):
        self.driver = driver
        self.snapshot = snapshot
        self.scaler = scaler
        self.scaler_state = scaler_state
        self.restored = False
        self.val_check_batch: Any = None
        self.origin = origin

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # the fit loop has set up its data, and with it trainer.val_check_batch (the first
        # time it runs): keep the Trainer's value, and validation out of reach until the
        # driver asks for it
        self.val_check_batch = trainer.val_check_batch
        trainer.val_check_batch = _NEVER
        if self.origin is None:  # the first pass's iterator was just made: no batch drawn yet
            self.origin = _DataState.capture(trainer)

    def restore(self) -> None:
        if self.restored:
            return
        self.restored = True
        self.snapshot.restore()
        if self.scaler is not None:
            self.scaler.load_state_dict(self.scaler_state)

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.driver.finished:
            raise StopIteration  # ends the epoch, as a module's on_train_batch_start -> -1 does

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self.driver.finished:
            return
        if not self.restored:
            # the excursion's last epoch: restore now, so that the fresh pass over the data
            # the next epoch starts draws its seeds from the restored RNG states
            self.restore()
            return
        # the empty epoch that started that fresh pass: leave the fit loop before the
        # module's own on_train_epoch_end sees an epoch without batches
        raise StopIteration

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.driver.finished:
            # this epoch creates a fresh iterator over the training data (every epoch after
            # the first does), then ends before fetching a batch: the real run's first epoch
            # reads that iterator from its start
            trainer.should_stop = True


def _metric_dicts(trainer: Any) -> list[dict[str, Any]]:
    """The Trainer's live metric dicts (its properties return them)."""
    return [trainer.callback_metrics, trainer.logged_metrics, trainer.progress_bar_metrics]


@dataclass
class _Settings:
    """The Trainer attributes an excursion changes, saved to be put back."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def save(cls, trainer: Any) -> _Settings:
        loop = trainer.fit_loop
        return cls(
            {
                "callbacks": trainer.callbacks,
                "loggers": trainer.loggers,
                "schedulers": trainer.strategy.lr_scheduler_configs,
                "max_steps": loop.epoch_loop.max_steps,
                "min_steps": loop.epoch_loop.min_steps,
                "max_epochs": loop.max_epochs,
                "min_epochs": loop.min_epochs,
                "limit_val_batches": trainer.limit_val_batches,
                "check_val_every_n_epoch": trainer.check_val_every_n_epoch,
                "should_stop": trainer.should_stop,
            }
        )

    @staticmethod
    def apply(trainer: Any, values: Mapping[str, Any]) -> None:
        loop = trainer.fit_loop
        trainer.callbacks = values["callbacks"]
        trainer.loggers = values["loggers"]
        trainer.strategy.lr_scheduler_configs = values["schedulers"]
        loop.epoch_loop.max_steps = values["max_steps"]
        loop.epoch_loop.min_steps = values["min_steps"]
        loop.max_epochs = values["max_epochs"]
        loop.min_epochs = values["min_epochs"]
        trainer.limit_val_batches = values["limit_val_batches"]
        trainer.check_val_every_n_epoch = values["check_val_every_n_epoch"]
        trainer.should_stop = values["should_stop"]

    def restore(self, trainer: Any) -> None:
        self.apply(trainer, self.values)


def _check_can_run(trainer: Any, pl_module: Any) -> None:
    if not pl_module.automatic_optimization:
        raise ValueError(
            "an lrkit excursion (range test, race trial) needs automatic optimization, but got "
            "a module with automatic_optimization=False"
        )
    loop = trainer.fit_loop
    if trainer.global_step != 0 or loop.epoch_progress.total.started != 0:
        raise ValueError(
            "an lrkit excursion runs before training starts (from a callback's on_fit_start), "
            f"but got trainer.global_step={trainer.global_step}"
        )


def run_excursion(
    trainer: Any,
    pl_module: Any,
    driver: LRDriver,
    *,
    callbacks: Sequence[Callback] = (),
    validation: bool = False,
) -> None:
    """Run ``driver``'s stretch of training in the Trainer's own fit loop, then undo it.

    Call it from a callback's ``on_fit_start``. ``callbacks`` run with the driver (e.g. a
    :class:`~lrkit.integrations.lightning.GuardCallback` for a guarded trial); the Trainer's
    own callbacks, loggers and lr schedulers are off meanwhile, and so is validation, unless
    ``validation=True``: then the fit's validation loop runs where the driver asks for it
    (:meth:`LRDriver.validate_after_this_batch`), on the Trainer's ``limit_val_batches``.
    Everything is put back on every exit path (see the module docstring); exceptions
    propagate.
    """
    _check_can_run(trainer, pl_module)
    optimizer = single_optimizer(trainer)
    saved = _Settings.save(trainer)
    loop_state = copy.deepcopy(trainer.fit_loop.state_dict())
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    scaler_state = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
    # the random state the real run's first batch will be drawn with, once the iterator it
    # reads exists (an earlier excursion made it; else the fit loop makes it when this one
    # starts): every excursion ends by putting it back, so excursions compose
    origin = _DataState.capture(trainer) if trainer.train_dataloader is not None else None
    control = _Control(driver, take_snapshot(pl_module, optimizer), scaler, scaler_state, origin)
    metrics = [dict(d) for d in _metric_dicts(trainer)]
    completed = False
    val_check_batch = trainer.val_check_batch  # None until the fit loop first sets up its data
    try:
        _Settings.apply(
            trainer,
            {
                "callbacks": [driver, *callbacks, control],
                "loggers": [],
                "schedulers": [],
                "max_steps": -1,
                "min_steps": None,
                "max_epochs": -1,
                "min_epochs": 0,
                "limit_val_batches": trainer.limit_val_batches if validation else 0,
                "check_val_every_n_epoch": None,
                "should_stop": False,
            },
        )
        trainer.fit_loop.run()
        completed = True
        if not driver.finished:
            log.warning("lrkit excursion: the training data ran out before the driver finished")
    finally:
        control.restore()
        if completed and control.origin is not None:
            control.origin.restore()
        saved.restore(trainer)
        trainer.val_check_batch = (
            val_check_batch if val_check_batch is not None else control.val_check_batch
        )
        trainer.fit_loop.load_state_dict(loop_state)
        trainer.fit_loop.restarting = False
        for live, kept in zip(_metric_dicts(trainer), metrics, strict=True):
            live.clear()
            live.update(kept)
