"""``find_lr``: Leslie Smith's learning-rate range test, with exact restore afterwards.

Step ``i`` (from 0) of an ``n``-step test sets the reference learning rate to

* ``mode="exp"``:    ``start_lr * (end_lr / start_lr) ** (i / (n - 1))``
* ``mode="linear"``: ``start_lr + (end_lr - start_lr) * i / (n - 1)``

and records the loss of the batch it trains on (computed before that step's update, the
convention of fastai and torch-lr-finder). Param groups keep their ratios: the reference group is
the one with the largest lr, and a group whose lr is ``r`` times the reference's ramps from
``r * start_lr`` to ``r * end_lr``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from lrkit._signals import SignalShield
from lrkit._state import find_generators, take_snapshot
from lrkit._validate import check_choice, check_int, check_real, fail
from lrkit.finder._batches import BatchCycler, batch_loss, model_device, move_to
from lrkit.finder._ddp import Agreement
from lrkit.finder._result import RangeTest

__all__ = ["MAX_STEPS", "find_lr", "ramp", "ema"]

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, float], None]

#: the most steps a range test may take (its curve is preallocated: 8 bytes a step, several
#: arrays); a useful test takes 100 to a few thousand
MAX_STEPS = 1_000_000


def ramp(start_lr: float, end_lr: float, num_steps: int, mode: str = "exp") -> np.ndarray:
    """The reference learning rate at each of ``num_steps`` steps (see the module docstring).

    Example:
        >>> ramp(1e-3, 1.0, 4).round(6).tolist()
        [0.001, 0.01, 0.1, 1.0]
    """
    i = np.arange(num_steps, dtype=np.float64) / (num_steps - 1)
    if mode == "exp":
        return np.asarray(start_lr * (end_lr / start_lr) ** i, dtype=np.float64)
    return np.asarray(start_lr + (end_lr - start_lr) * i, dtype=np.float64)


def ema(values: Iterable[float], smoothing: float) -> np.ndarray:
    """Bias-corrected exponential moving average (``smoothing`` = weight of the past).

    ``avg_k = smoothing * avg_{k-1} + (1 - smoothing) * x_k``, reported as
    ``avg_k / (1 - smoothing ** k)`` (k from 1), so the first value equals ``x_1``.

    Example:
        >>> ema([1.0, 3.0], 0.5).tolist()
        [1.0, 2.3333333333333335]
    """
    out = []
    avg = 0.0
    for k, x in enumerate(values, start=1):
        avg = smoothing * avg + (1.0 - smoothing) * float(x)
        out.append(avg / (1.0 - smoothing**k) if smoothing > 0 else float(x))
    return np.asarray(out, dtype=np.float64)


class StopRule:
    """The range test's smoothing and stop rule, fed one curve point at a time.

    The smoothed value is :func:`ema`'s; the test stops at a non-finite loss or smoothed loss
    (``"non-finite"``), or when the smoothed loss exceeds ``best + (diverge_factor - 1) * |best|``
    (``best``: the lowest smoothed value before it; ``"diverged"``; ``diverge_factor=None``
    never). Every loop that runs a range test (:func:`find_lr`'s, a framework's Trainer's)
    applies it, so the same losses give the same curve and stop.

    Example:
        >>> rule = StopRule(smoothing=0.0, diverge_factor=4.0)
        >>> [rule.add(x) for x in (2.0, 1.0, 9.0)]
        [(2.0, None), (1.0, None), (9.0, 'diverged')]
    """

    def __init__(self, smoothing: float, diverge_factor: float | None) -> None:
        self.smoothing = smoothing
        self.diverge_factor = diverge_factor
        self.count = 0
        self.avg = 0.0
        self.best = math.inf

    def add(self, value: float) -> tuple[float, str | None]:
        """The smoothed value of the next point, and why the test stops there (None: it goes on)."""
        self.count += 1
        if not math.isfinite(value):
            return value, "non-finite"
        beta = self.smoothing
        self.avg = beta * self.avg + (1.0 - beta) * value
        smoothed = self.avg / (1.0 - beta**self.count) if beta > 0 else value
        if not math.isfinite(smoothed):
            return smoothed, "non-finite"
        best, factor = self.best, self.diverge_factor
        if factor is not None and self.count > 1 and smoothed > best + (factor - 1.0) * abs(best):
            return smoothed, "diverged"
        self.best = min(best, smoothed)
        return smoothed, None


def _set_lr(group: dict[str, Any], value: float) -> None:
    current = group["lr"]
    if isinstance(current, torch.Tensor):
        current.fill_(value)
    else:
        group["lr"] = value


def check_ramp(
    start_lr: object,
    end_lr: object,
    num_steps: object,
    mode: object,
    smoothing: object,
    diverge_factor: object,
) -> tuple[float, float, int, str, float, float | None]:
    """The range test's ramp, smoothing and stop settings, checked (every loop that runs a range
    test takes them): ``(start_lr, end_lr, num_steps, mode, smoothing, diverge_factor)``.

    Example:
        >>> check_ramp(1e-7, 10, 100, "exp", 0.98, None)
        (1e-07, 10.0, 100, 'exp', 0.98, None)
        >>> check_ramp(1.0, 0.1, 100, "exp", 0.98, 4.0)
        Traceback (most recent call last):
        ...
        ValueError: end_lr must be a number > start_lr=1, but got end_lr=0.1
    """
    start = check_real("start_lr", start_lr, minimum=0.0, min_inclusive=False)
    end = check_real("end_lr", end_lr)
    if end <= start:
        fail("end_lr", end_lr, f"a number > start_lr={start:g}")
    steps = check_int("num_steps", num_steps, minimum=10)
    if steps > MAX_STEPS:
        fail("num_steps", num_steps, f"an integer in [10, {MAX_STEPS:_}]")
    shape = check_choice("mode", mode, ("exp", "linear"))
    beta = check_real("smoothing", smoothing, minimum=0.0, maximum=1.0, max_inclusive=False)
    factor: float | None = None
    if diverge_factor is not None:
        factor = check_real("diverge_factor", diverge_factor, minimum=1.0, min_inclusive=False)
    return start, end, steps, shape, beta, factor


def _validate(
    model: object,
    optimizer: object,
    start_lr: object,
    end_lr: object,
    num_steps: object,
    mode: object,
    smoothing: object,
    diverge_factor: object,
    accumulation_steps: object,
    amp: object,
    val_every: object,
    val_batches: object,
    snapshot: object,
) -> tuple[float, float, int, float, float | None, int, int, int]:
    if not isinstance(model, torch.nn.Module):
        fail("model", type(model).__name__, "a torch.nn.Module")
    if not isinstance(optimizer, torch.optim.Optimizer):
        fail("optimizer", type(optimizer).__name__, "a torch.optim.Optimizer")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            "model must have trainable parameters (requires_grad=True), but got a model "
            f"{type(model).__name__} with none"
        )
    start, end, steps, _, beta, factor = check_ramp(
        start_lr, end_lr, num_steps, mode, smoothing, diverge_factor
    )
    acc = check_int("accumulation_steps", accumulation_steps, minimum=1)
    if amp is not None:
        check_choice("amp", amp, ("bf16", "fp16"))
    every = check_int("val_every", val_every, minimum=1)
    nval = check_int("val_batches", val_batches, minimum=1)
    check_choice("snapshot", snapshot, ("memory", "disk"))
    for i, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        value = float(lr) if isinstance(lr, (int, float, torch.Tensor)) else math.nan
        if not (math.isfinite(value) and value >= 0):
            fail(f"optimizer.param_groups[{i}]['lr']", lr, "a finite number >= 0")
    return start, end, steps, beta, factor, acc, every, nval


def find_lr(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[..., torch.Tensor] | None,
    train_loader: Iterable[Any],
    *,
    val_loader: Iterable[Any] | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smoothing: float = 0.98,
    diverge_factor: float | None = 4.0,
    accumulation_steps: int = 1,
    amp: str | None = None,
    step_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None = None,
    progress: bool | ProgressFn = False,
    val_every: int = 1,
    val_batches: int = 2,
    snapshot: str = "memory",
    scheduler: Any | None = None,
    device: torch.device | str | None = None,
    process_group: Any | None = None,
) -> RangeTest:
    """Run a learning-rate range test and restore everything it touched.

    The learning rate ramps from ``start_lr`` to ``end_lr`` over ``num_steps`` optimizer steps
    (exponentially or linearly); the loss of each step is recorded and smoothed, and the test
    stops early when the smoothed loss exceeds ``diverge_factor`` times its best value
    (``best + (diverge_factor - 1) * |best|`` for negative losses; ``None`` disables it) or a
    loss is NaN/infinite. Afterwards the model's parameters and buffers, the gradients, the
    optimizer's state and hyper-parameters, every module's train/eval flag, ``scheduler``'s
    state, the python/numpy/torch(/CUDA) RNG states and the generators of the loaders (a
    DataLoader's ``generator``, its sampler's) are exactly what they were, whether the test
    completed, diverged, hit a NaN or was interrupted by an exception, Ctrl-C or SIGTERM. The
    restore cannot be interrupted: a Ctrl-C pressed during it is raised when it has finished.

    Args:
        model: the model (a ``DistributedDataParallel`` wrapper works under ``torchrun``).
        optimizer: its optimizer. With several param groups, the group with the largest lr is
            the reference: ``start_lr``/``end_lr`` and the recorded ``lrs`` are its values, and
            every group keeps its ratio to it.
        loss_fn: ``loss_fn(model(inputs), targets)`` for ``(inputs, targets)`` batches; may be
            None for dict batches whose model output has ``.loss`` or with ``step_fn``.
        train_loader: any re-iterable of batches; cycled when shorter than the test.
        val_loader: validation-loss mode: the first ``val_batches`` batches are evaluated (in
            eval mode, without gradients) after every ``val_every``-th step and the suggestion
            uses that curve. Cost: ``val_batches / val_every`` extra forward passes per step.
        start_lr, end_lr: the reference group's first and last learning rate.
        num_steps: optimizer steps (10 to ``MAX_STEPS`` = 1,000,000).
        mode: ``"exp"`` (log-spaced) or ``"linear"``.
        smoothing: EMA weight of the past (0 disables smoothing); bias-corrected.
        diverge_factor: early-stop factor, or None to run all steps.
        accumulation_steps: micro-batches per optimizer step; the recorded loss is their mean.
        amp: None, ``"bf16"`` (autocast bfloat16, CPU or CUDA) or ``"fp16"`` (CUDA autocast
            float16 with a ``GradScaler``).
        step_fn: ``step_fn(model, batch) -> loss`` for any other batch shape (forward only).
        progress: True for a rich progress bar, or a callback ``f(step, num_steps, loss)``.
        val_every, val_batches: see ``val_loader``.
        snapshot: ``"memory"`` (one CPU copy) or ``"disk"`` (a temporary file, deleted once
            the restore has succeeded; kept, and named in the error, if it fails). A disk
            snapshot that cannot be written raises :class:`~lrkit.finder.SnapshotError` (an
            ``OSError``) before anything is changed.
        scheduler: a torch lr scheduler attached to ``optimizer``; it is not stepped during the
            test (the ramp owns the lr) and its state is restored afterwards.
        device: where batches go (default: the device of the model's first parameter).
        process_group: the group losses are averaged over under ``torch.distributed``.

    Returns:
        a :class:`~lrkit.finder.RangeTest`.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Linear(4, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.01)
        >>> data = [(torch.randn(16, 4), torch.randn(16, 1)) for _ in range(5)]
        >>> result = find_lr(model, opt, torch.nn.functional.mse_loss, data, num_steps=20)
        >>> len(result.lrs) <= 20
        True
    """
    start, end, steps, beta, factor, acc, every, nval = _validate(
        model,
        optimizer,
        start_lr,
        end_lr,
        num_steps,
        mode,
        smoothing,
        diverge_factor,
        accumulation_steps,
        amp,
        val_every,
        val_batches,
        snapshot,
    )
    if not callable(progress) and not isinstance(progress, bool):
        fail("progress", progress, "True, False or a callable f(step, num_steps, loss)")
    dev = torch.device(device) if device is not None else model_device(model)
    if amp == "fp16" and dev.type != "cuda":
        fail("amp", amp, "None or 'bf16' on a CPU model ('fp16' needs CUDA)")
    settings: dict[str, Any] = {
        "start_lr": start,
        "end_lr": end,
        "num_steps": steps,
        "mode": mode,
        "smoothing": beta,
        "diverge_factor": factor,
        "accumulation_steps": acc,
        "amp": amp,
        "val_every": every if val_loader is not None else None,
        "val_batches": nval if val_loader is not None else None,
        "optimizer": type(optimizer).__name__,
    }
    began = time.perf_counter()
    # SIGINT / SIGTERM: the first one stops the test at once; any that follow wait until the
    # restore below has finished (see lrkit._signals), so it is never cut in half
    with SignalShield() as shield:
        snap = None
        try:
            with shield.deferred():  # snap is bound before any signal can stop us
                snap = take_snapshot(
                    model,
                    optimizer,
                    scheduler=scheduler,
                    where=snapshot,
                    generators=find_generators(train_loader, val_loader),
                )
            runner = _Runner(
                model=model,
                optimizer=optimizer,
                loss_fn=loss_fn,
                step_fn=step_fn,
                device=dev,
                amp=amp,
                accumulation_steps=acc,
                process_group=process_group,
            )
            result = runner.run(
                train_loader=train_loader,
                val_loader=val_loader,
                lrs=ramp(start, end, steps, mode),
                smoothing=beta,
                diverge_factor=factor,
                val_every=every,
                val_batches=nval,
                progress=progress,
                settings=settings,
            )
        finally:
            shield.deferring = True  # first statement: a plain store, no signal check before it
            if snap is not None:
                snap.restore()  # deletes a disk copy only once the restore has succeeded
    result.seconds = time.perf_counter() - began
    logger.info(
        "range test: %d points, stopped: %s, %.2fs", len(result), result.stop_reason, result.seconds
    )
    return result


class _Runner:
    """The loop itself; ``find_lr`` wraps it in snapshot/restore."""

    def __init__(
        self,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[..., torch.Tensor] | None,
        step_fn: Callable[[torch.nn.Module, Any], torch.Tensor] | None,
        device: torch.device,
        amp: str | None,
        accumulation_steps: int,
        process_group: Any | None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.step_fn = step_fn
        self.device = device
        self.amp = amp
        self.acc = accumulation_steps
        self.agreement = Agreement(process_group)
        self.scaler: Any | None = None
        if amp == "fp16":
            self.scaler = torch.amp.GradScaler("cuda")
        lrs0 = [float(g["lr"]) for g in optimizer.param_groups]
        reference = max(lrs0)
        self.ratios = tuple(lr / reference if reference > 0 else 1.0 for lr in lrs0)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp is None:
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _loss(self, batch: Any) -> torch.Tensor:
        if self.amp is None:
            return batch_loss(self.model, batch, self.loss_fn, self.step_fn)
        with self._autocast():
            return batch_loss(self.model, batch, self.loss_fn, self.step_fn)

    def _grad_loss(self, batch: Any) -> torch.Tensor:
        """The loss of a training batch; ValueError when it does not depend on the parameters."""
        loss = self._loss(batch)
        if not loss.requires_grad:
            raise ValueError(
                "loss must be a scalar tensor computed from the model's trainable "
                "parameters (requires_grad=True), but got a loss without grad"
            )
        return loss

    def _train_step(self, cycler: BatchCycler) -> torch.Tensor:
        if self.acc == 1 and self.scaler is None:  # the common case, kept lean
            loss = self._grad_loss(move_to(next(cycler), self.device))
            loss.backward()  # type: ignore[no-untyped-call]
            return loss
        total: torch.Tensor | None = None
        no_sync = getattr(self.model, "no_sync", None) if self.agreement.active else None
        for micro in range(self.acc):
            batch = move_to(next(cycler), self.device)
            sync_ctx: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
            if callable(no_sync) and micro < self.acc - 1:
                sync_ctx = no_sync()
            with sync_ctx:
                loss = self._grad_loss(batch)
                scaled = loss / self.acc if self.acc > 1 else loss
                if self.scaler is not None:
                    self.scaler.scale(scaled).backward()  # type: ignore[no-untyped-call]
                else:
                    scaled.backward()  # type: ignore[no-untyped-call]
            detached = loss.detach()
            total = detached if total is None else total + detached
        assert total is not None  # acc >= 1
        return total / self.acc if self.acc > 1 else total

    def _validate_loss(
        self, batches: list[Any], train_modes: list[tuple[torch.nn.Module, bool]]
    ) -> float:
        self.model.eval()
        try:
            with torch.no_grad():
                total: torch.Tensor | None = None
                for batch in batches:
                    loss = self._loss(batch).detach().float()
                    total = loss if total is None else total + loss
                assert total is not None
                value, _ = self.agreement.reduce(total / len(batches))
        finally:
            for module, training in train_modes:
                module.training = training
        return value

    def run(
        self,
        *,
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None,
        lrs: np.ndarray,
        smoothing: float,
        diverge_factor: float | None,
        val_every: int,
        val_batches: int,
        progress: bool | ProgressFn,
        settings: dict[str, Any],
    ) -> RangeTest:
        model, optimizer = self.model, self.optimizer
        if not model.training:
            model.train()
        train_modes = [(m, m.training) for m in model.modules()]
        cycler = BatchCycler(train_loader, "train_loader")
        val_fixed: list[Any] = []
        if val_loader is not None:
            val_cycler = BatchCycler(val_loader, "val_loader")
            for _ in range(val_batches):
                val_fixed.append(move_to(next(val_cycler), self.device))
                if val_cycler.passes > 1:
                    break
            if val_cycler.passes > 1:
                val_fixed.pop()
                logger.info("val_loader has only %d batches; using them all", len(val_fixed))
        groups = optimizer.param_groups
        ratios = self.ratios
        num_steps = len(lrs)
        train_lrs: list[float] = []
        train_losses: list[float] = []
        curve_lrs: list[float] = []
        curve_losses: list[float] = []
        curve_smoothed: list[float] = []
        curve_steps: list[int] = []
        rule = StopRule(smoothing, diverge_factor)
        stop = "completed"
        report, close = _progress(progress, num_steps)

        def add_point(step: int, lr: float, value: float) -> bool:
            """Record one curve point; return True when the test must stop."""
            nonlocal stop
            curve_lrs.append(lr)
            curve_losses.append(value)
            curve_steps.append(step)
            smoothed, reason = rule.add(value)
            curve_smoothed.append(smoothed)
            if reason is None:
                return False
            stop = reason
            return True

        try:
            for step in range(num_steps):
                lr = float(lrs[step])
                optimizer.zero_grad(set_to_none=True)
                loss = self._train_step(cycler)
                value, bad = self.agreement.reduce(loss)
                train_lrs.append(lr)
                train_losses.append(value)
                if bad:  # recorded on the curve too (in validation mode as well)
                    add_point(step, lr, value)
                    report(step, value)
                    break
                if val_loader is None and add_point(step, lr, value):
                    report(step, value)
                    break
                for group, ratio in zip(groups, ratios, strict=True):
                    _set_lr(group, lr * ratio)
                if self.scaler is not None:
                    self.scaler.step(optimizer)
                    self.scaler.update()
                else:
                    optimizer.step()
                if val_loader is not None and (step + 1) % val_every == 0:
                    if add_point(step, lr, self._validate_loss(val_fixed, train_modes)):
                        report(step, value)
                        break
                report(step, value)
        finally:
            close()
        return RangeTest(
            lrs=np.asarray(curve_lrs),
            losses=np.asarray(curve_losses),
            smoothed=np.asarray(curve_smoothed),
            stop_reason=stop,
            steps=np.asarray(curve_steps, dtype=np.int64),
            curve="val" if val_loader is not None else "train",
            train_lrs=np.asarray(train_lrs),
            train_losses=np.asarray(train_losses),
            group_ratios=ratios,
            settings=settings,
        )


def _progress(
    progress: bool | ProgressFn, total: int
) -> tuple[Callable[[int, float], None], Callable[[], None]]:
    """Return ``(report(step, loss), close())`` for the chosen progress display."""
    if callable(progress) and not isinstance(progress, bool):
        callback = progress

        def report_cb(step: int, loss: float) -> None:
            callback(step + 1, total, loss)

        return report_cb, lambda: None
    if not progress:
        return (lambda step, loss: None), lambda: None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("range test", total=total)
    bar.start()

    def report_bar(step: int, loss: float) -> None:
        bar.update(task, completed=step + 1, description=f"range test  loss {loss:.4g}")

    return report_bar, bar.stop
