"""A plain training loop for a task or any :class:`~lrkit.Setup`: the reference run.

Used by the benchmarks (grid search ground truth), ``lrkit auto`` (short training with a live
Guard through ``on_step``) and the tuner.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from lrkit._seed import seeded
from lrkit._setup import Setup, as_setup
from lrkit._validate import check_int, check_real, fail
from lrkit.finder._batches import BatchCycler, move_to
from lrkit.finder._batches import batch_loss as _model_batch_loss
from lrkit.finder._batches import model_device as _device

if TYPE_CHECKING:
    from lrkit.schedules import Schedule
    from lrkit.tasks._tasks import Task

__all__ = ["TrainResult", "batch_loss", "evaluate", "train"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` measured.

    ``steps[i]``, ``train_loss[i]`` and ``lrs[i]`` are the optimizer step (from 0), the training
    loss of its batch and the learning rate of the first param group used for it. ``val_steps``
    counts the optimizer updates done when each ``val_loss`` was measured (the last one is the
    number of steps trained). ``final_val_loss`` is ``inf`` when the run ``diverged`` (a
    non-finite training or validation loss) and ``nan`` when the setup has no ``val_loader``.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    final_val_loss: float = math.nan
    diverged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats become the strings ``"inf"``/``"nan"``)."""
        return {k: _json_safe(v) for k, v in asdict(self).items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def batch_loss(setup: Setup, batch: Any) -> torch.Tensor:
    """Scalar loss of one batch, read exactly as the range test reads it: ``step_fn``, else
    ``.loss`` of a dict batch, else ``loss_fn(model(*inputs), targets)``."""
    return _model_batch_loss(setup.model, batch, setup.loss_fn, setup.step_fn)


def _to(batch: Any, device: torch.device) -> Any:
    """``batch`` with its tensors on ``device`` (unchanged on CPU: loaders yield CPU tensors)."""
    if device.type == "cpu":
        return batch
    return move_to(batch, device)


def _batch_size(batch: Any) -> int:
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return int(batch[0].shape[0]) if batch[0].dim() else 1
    return 1


def evaluate(setup: Setup, loader: Iterable[Any] | None = None) -> float:
    """Mean loss over ``loader`` (default ``setup.val_loader``), in eval mode, without grads.

    Batches are weighted by their size for ``(inputs, targets)`` batches. The model's training
    mode is restored afterwards.
    """
    loader = setup.val_loader if loader is None else loader
    if loader is None:
        return math.nan
    was_training = setup.model.training
    setup.model.eval()
    device = _device(setup.model)
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for batch in loader:
                n = _batch_size(batch)
                total += float(batch_loss(setup, _to(batch, device))) * n
                count += n
    finally:
        setup.model.train(was_training)
    if count == 0:
        fail("val_loader", loader, "a non-empty loader")
    return total / count


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the first group's lr to ``lr`` and scale the others by the same factor."""
    groups = optimizer.param_groups
    base = float(groups[0]["lr"])
    for group in groups:
        ratio = float(group["lr"]) / base if base > 0 else 1.0
        group["lr"] = lr * ratio
        group.pop("initial_lr", None)


def train(
    task: Task | Setup,
    *,
    lr: float,
    steps: int | None = None,
    schedule: Schedule | str | None = None,
    seed: int = 0,
    eval_every: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train a built-in task (or a :class:`~lrkit.Setup`) with a plain loop.

    Args:
        task: a :class:`~lrkit.tasks.Task` (a fresh ``task.setup(lr=lr, seed=seed)`` is built)
            or a :class:`~lrkit.Setup` (trained in place; its first param group's lr is set to
            ``lr`` and the other groups keep their ratio to it).
        lr: the (peak) learning rate, > 0.
        steps: optimizer steps; default ``task.budget`` (required for a Setup). The train loader
            is cycled when shorter.
        schedule: a :class:`~lrkit.schedules.Schedule` or spec (e.g. ``"cosine(300)"``), applied
            with :func:`lrkit.schedules.attach` as a multiplier of ``lr``; None = constant.
            Reduce-on-plateau schedules observe the validation loss at each evaluation.
        seed: seeds the task's setup and the global torch RNG inside the run (the caller's RNG
            state is restored afterwards).
        eval_every: also measure the validation loss every this many steps (always at the end).
        on_step: called as ``on_step(step, loss)`` after every step (step from 0); an exception
            it raises propagates (a live Guard stops the run this way).

    Training stops early, with ``diverged=True`` and ``final_val_loss=inf``, at the first
    non-finite training loss.

    Example:
        >>> from lrkit.tasks import get_task, train
        >>> result = train(get_task("digits"), lr=3e-3, steps=20)
        >>> len(result.train_loss), result.diverged
        (20, False)
    """
    from lrkit.tasks._tasks import Task

    lr = check_real("lr", lr, minimum=0.0, min_inclusive=False)
    seed = check_int("seed", seed, minimum=0)
    if isinstance(task, Task):
        setup = task.setup(lr=lr, seed=seed)
        n_steps = task.budget if steps is None else check_int("steps", steps, minimum=1)
    else:
        setup = as_setup(task, source="task")
        if steps is None:
            fail("steps", steps, "an integer >= 1 when training a Setup")
        n_steps = check_int("steps", steps, minimum=1)
        _set_lr(setup.optimizer, lr)
    if eval_every is not None:
        eval_every = check_int("eval_every", eval_every, minimum=1)

    scheduler = None
    if schedule is not None:
        from lrkit.schedules import attach

        scheduler = attach(setup.optimizer, schedule)

    result = TrainResult()
    model, optimizer = setup.model, setup.optimizer
    with seeded(seed):
        model.train()
        batches = BatchCycler(setup.train_loader, "train_loader")
        device = _device(model)  # batches go where the model is, as in the range test
        for step in range(n_steps):
            batch = _to(next(batches), device)
            current_lr = float(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(setup, batch)
            value = float(loss.detach())
            result.steps.append(step)
            result.train_loss.append(value)
            result.lrs.append(current_lr)
            if not math.isfinite(value):
                result.diverged = True
                if on_step is not None:
                    on_step(step, value)
                logger.info("training diverged at step %d (loss %s)", step, value)
                break
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if on_step is not None:
                on_step(step, value)
            done = step + 1
            if eval_every is not None and done % eval_every == 0 and done < n_steps:
                val = evaluate(setup)
                result.val_steps.append(done)
                result.val_loss.append(val)
                if scheduler is not None and scheduler.schedule.stateful and math.isfinite(val):
                    scheduler.observe(val)
        if not result.diverged:
            val = evaluate(setup)
            result.val_steps.append(len(result.steps))
            result.val_loss.append(val)
            if setup.val_loader is not None and not math.isfinite(val):
                result.diverged = True
    if result.diverged:
        result.final_val_loss = math.inf
    elif result.val_loss:
        result.final_val_loss = result.val_loss[-1]
    return result
