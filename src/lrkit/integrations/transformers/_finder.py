"""The range test through a Hugging Face ``Trainer``'s own training loop, and what follows it.

- :func:`find_lr` runs ``trainer.train()`` for the test: the Trainer's ``training_step`` and
  ``compute_loss`` (a subclass's overrides included), its accelerator (device placement, mixed
  precision, DDP under ``torchrun``/``accelerate launch``), ``gradient_accumulation_steps``,
  ``max_grad_norm`` clipping, optimizer and ``model_init`` all apply. lrkit sets the learning
  rate right before each optimizer step (``on_pre_optimizer_step``) and reads the step's loss
  from the Trainer's own log (``logging_steps=1`` during the test); afterwards the trainer,
  its model, optimizer, scheduler, state and callbacks are as they were.
- :func:`training_args` turns the result into ``TrainingArguments`` keywords
  (``learning_rate``, ``lr_scheduler_type``, ``warmup_steps``).
- :func:`hp_space` is an Optuna search space for ``trainer.hyperparameter_search``, bounded by
  the range test.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import DefaultFlowCallback, IntervalStrategy, TrainerCallback
from transformers.trainer_utils import SaveStrategy

from lrkit._validate import check_choice, check_int, fail
from lrkit.finder import METHODS, RangeTest, take_snapshot
from lrkit.integrations._curve import RampCurve
from lrkit.integrations._groups import group_ratios, set_lrs

__all__ = ["DriveLR", "find_lr", "hp_space", "range_test_of", "run_excursion", "training_args"]

log = logging.getLogger(__name__)

_TRAINER_ATTRS = ("args", "state", "control", "model", "model_wrapped", "optimizer", "lr_scheduler")
_HANDLER_ATTRS = ("callbacks", "model", "optimizer", "lr_scheduler", "train_dataloader")


class DriveLR(TrainerCallback):  # type: ignore[misc]
    """Sets the reference param group's lr (the largest initial one; the others keep their
    ratios) to ``lr_at(k)`` right before optimizer step ``k`` (from 0)."""

    def __init__(self, lr_at: Callable[[int], float]) -> None:
        self.lr_at = lr_at
        self.group_ratios: tuple[float, ...] = (1.0,)
        self.optimizer_name = ""
        self.stepped = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        optimizer = kwargs["optimizer"]
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer
        self.optimizer_name = type(inner).__name__
        self.group_ratios = group_ratios(optimizer)

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        set_lrs(kwargs["optimizer"], float(self.lr_at(self.stepped)), self.group_ratios)
        self.stepped += 1


class _RampCallback(DriveLR):
    """Sets the ramp's lr before each optimizer step and feeds the logged loss to the curve."""

    def __init__(self, curve: RampCurve) -> None:
        super().__init__(curve.lr)
        self.curve = curve

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs or "loss" not in logs or self.curve.finished:
            return
        if self.curve.step >= self.stepped:  # no optimizer step since the last loss
            return
        # the step's loss: the mean over its micro-batches (and ranks), as the Trainer logs it
        if self.curve.add(float(logs["loss"])):
            control.should_training_stop = True


@contextmanager
def _restored(trainer: Any) -> Iterator[None]:
    """Put the trainer, its model, optimizer, scheduler, callbacks and the RNGs back afterwards."""
    saved = {name: getattr(trainer, name) for name in _TRAINER_ATTRS}
    handler = trainer.callback_handler
    saved_handler = {name: getattr(handler, name) for name in _HANDLER_ATTRS}
    model = trainer.model
    model_dict = dict(vars(model))
    # without an optimizer yet (the Trainer makes one in train()), a stand-in lets the snapshot
    # cover the model, its gradients and train/eval flags, and the RNG states
    optimizer = saved["optimizer"]
    if optimizer is None:
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    snapshot = take_snapshot(model, optimizer, scheduler=saved["lr_scheduler"])
    try:
        yield
    finally:
        snapshot.restore()
        # what preparing the model for training set on it (e.g. accelerate's autocast forward)
        for key in [k for k in vars(model) if k not in model_dict]:
            delattr(model, key)
        for key, value in model_dict.items():
            if vars(model).get(key) is not value:
                vars(model)[key] = value
        for name, value in saved.items():
            setattr(trainer, name, value)
        for name, value in saved_handler.items():
            setattr(handler, name, value)


def run_excursion(trainer: Any, callback: Any, *, max_steps: int) -> None:
    """``trainer.train()`` for ``max_steps`` optimizer steps with ``callback`` (and only the
    Trainer's flow callback), logging every step, without saving, evaluating unless
    ``callback`` asks (``control.should_evaluate``) or reporting; the trainer, its model,
    optimizer, scheduler, state, callbacks and the RNG states are put back afterwards."""
    # a shallow copy keeps the devices the Trainer's accelerator was set up with (a new
    # TrainingArguments would reset accelerate's shared state when it sets up its devices)
    run_args = copy.copy(trainer.args)
    for name, value in {
        "max_steps": max_steps,
        "logging_strategy": IntervalStrategy.STEPS,
        "logging_steps": 1,
        "logging_first_step": False,
        "logging_nan_inf_filter": False,
        "save_strategy": SaveStrategy.NO,
        "eval_strategy": IntervalStrategy.NO,
        "eval_on_start": False,
        "load_best_model_at_end": False,
        "push_to_hub": False,
    }.items():
        setattr(run_args, name, value)
    flow = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, DefaultFlowCallback)]
    with _restored(trainer):
        trainer.args = run_args
        trainer.callback_handler.callbacks = [*(flow or [DefaultFlowCallback()]), callback]
        trainer.train()


def find_lr(
    trainer: Any,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smoothing: float = 0.98,
    diverge_factor: float | None = 4.0,
) -> RangeTest:
    """Range test through ``trainer``'s own training loop; the trainer is left as it was.

    Runs ``trainer.train()`` for ``num_steps`` optimizer steps with the learning rate ramped
    from ``start_lr`` to ``end_lr`` (see :func:`lrkit.find_lr` for the ramp, smoothing and stop
    rule), logging every step, without saving, evaluating or reporting, and with only the
    Trainer's flow callback and lrkit's. Everything the Trainer does to a training step applies:
    its ``training_step``/``compute_loss``, accelerator and mixed precision (``bf16``/``fp16``),
    ``gradient_accumulation_steps`` (the loss of a step is the one the Trainer logs: the mean
    over its micro-batches), ``max_grad_norm``, the optimizer it builds (or the one given to
    it) and ``model_init`` (a fresh model for the test). Under ``torchrun`` every rank must
    call it; the Trainer logs the loss averaged over ranks, so all ranks record the same curve
    (multi-process runs of the Hugging Face Trainer are not tested here).

    Afterwards ``trainer.model``, its optimizer and scheduler (if any), ``trainer.args``,
    ``trainer.state``, the callbacks and the RNG states are what they were.

    Example::

        result = find_lr(trainer, num_steps=100)
        args = TrainingArguments(output_dir="out", **training_args(result, max_steps=1000))
    """
    curve = RampCurve(
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        smoothing=smoothing,
        diverge_factor=diverge_factor,
    )
    ramp = _RampCallback(curve)
    args = trainer.args
    began = time.perf_counter()
    run_excursion(trainer, ramp, max_steps=curve.num_steps)
    if curve.step == 0:
        raise ValueError("the range test recorded no loss: the training data gave no batch")
    amp = "bf16" if args.bf16 else "fp16" if args.fp16 else None
    return curve.result(
        group_ratios=ramp.group_ratios,
        settings={
            "optimizer": ramp.optimizer_name,
            "accumulation_steps": args.gradient_accumulation_steps,
            "amp": amp,
            "max_grad_norm": args.max_grad_norm,
            "world_size": args.world_size,
            "trainer": "transformers",
        },
        seconds=time.perf_counter() - began,
    )


_SCHEDULE_RULE = {"cosine": "cosine", "linear": "cosine", "constant_with_warmup": "constant"}


def training_args(
    result: Any,
    *,
    max_steps: int | None = None,
    lr_scheduler_type: str | None = None,
    fine_tuning: bool = False,
    architecture: str = "transformer",
    method: str = "lrkit",
) -> dict[str, Any]:
    """``TrainingArguments`` keywords from a range test or a race: splat them into
    ``TrainingArguments``.

    From a :class:`lrkit.race.RaceResult` (:func:`verify_lr`): ``learning_rate`` is the race's
    winner, and ``lr_scheduler_type`` and ``warmup_steps`` the schedule it raced (the trainer's
    own); ValueError when there is no winner, or the schedule raced has no Hugging Face
    ``lr_scheduler_type`` (train it with :func:`trainer_optimizers`). The other arguments are
    for a range test (``max_steps`` is then required).

    From a :class:`lrkit.finder.RangeTest`: ``learning_rate`` is the range test's suggestion
    for the schedule (the peak of a decaying schedule; linear decay uses the rule for cosine
    decay); ``lr_scheduler_type`` and
    ``warmup_steps`` come from :func:`lrkit.advise` for the optimizer the test ran with,
    ``architecture`` and ``max_steps`` (fine-tuning: linear decay; from scratch: cosine).
    ValueError, with the reason, when the curve gives no learning rate.

    Example::

        kwargs = training_args(result, max_steps=1000)
        # {'learning_rate': 0.00061, 'lr_scheduler_type': 'cosine', 'warmup_steps': 50}
        args = TrainingArguments(output_dir="out", max_steps=1000, **kwargs)
    """
    from lrkit.advice import advise, normalize_optimizer

    if not isinstance(result, RangeTest):
        return _race_args(result)
    if max_steps is None:
        fail("max_steps", None, "your run's optimizer steps (for a range test's advice)")
    total = check_int("max_steps", max_steps, minimum=10)
    check_choice("method", method, METHODS)
    if lr_scheduler_type is None:
        lr_scheduler_type = "linear" if fine_tuning else "cosine"
    check_choice("lr_scheduler_type", lr_scheduler_type, tuple(_SCHEDULE_RULE))
    suggestion = result.suggest(method, schedule=_SCHEDULE_RULE[lr_scheduler_type])
    if suggestion.lr is None:
        raise ValueError(f"the range test suggests no learning rate: {suggestion.reason}")
    try:
        optimizer = normalize_optimizer(result.optimizer or "adamw")
    except ValueError:
        log.info("training_args: optimizer %r not in lrkit's table; warmup as for AdamW", result)
        optimizer = "adamw"
    advice = advise(optimizer, architecture, fine_tuning=fine_tuning, total_steps=total)
    return {
        "learning_rate": suggestion.lr,
        "lr_scheduler_type": lr_scheduler_type,
        "warmup_steps": advice.warmup_steps,
    }


def hf_schedule(spec: str, total_steps: int) -> tuple[str, int] | None:
    """The Hugging Face ``(lr_scheduler_type, warmup_steps)`` that train as lrkit's ``spec``
    over ``total_steps`` steps, or None when none does.

    Example:
        >>> hf_schedule("warmup(20, cosine(180), start=0.0)", 200)
        ('cosine', 20)
        >>> hf_schedule("cosine(200, floor=0.1)", 200) is None
        True
    """
    from lrkit.schedules import parse

    schedule: Any = parse(spec)
    warmup = 0
    if schedule.kind == "warmup":
        if schedule.start != 0.0 or schedule.shape != "linear":
            return None
        warmup, schedule = schedule.steps, schedule.schedule
    decay = total_steps - warmup
    if schedule.kind == "constant":
        return ("constant_with_warmup" if warmup else "constant"), warmup
    if schedule.kind == "cosine" and schedule.floor == 0.0 and schedule.steps == decay:
        return "cosine", warmup
    if schedule.kind == "linear" and (schedule.start, schedule.end, schedule.steps) == (
        1.0,
        0.0,
        decay,
    ):
        return "linear", warmup
    return None


def _race_args(result: Any) -> dict[str, Any]:
    """``TrainingArguments`` keywords from a :class:`lrkit.race.RaceResult`."""
    if not hasattr(result, "candidates") or not hasattr(result, "schedule"):
        fail("result", type(result).__name__, "a RangeTest (find_lr) or a RaceResult (verify_lr)")
    if result.lr is None:
        raise ValueError(f"the race chose no learning rate: {result.reason}")
    hf = hf_schedule(result.schedule, result.total_steps)
    if hf is None:
        raise ValueError(
            f"the race trained with the lrkit schedule {result.schedule!r}, which no Hugging "
            "Face lr_scheduler_type reproduces: train it with "
            "Trainer(optimizers=trainer_optimizers(model, schedule, lr=...))"
        )
    return {"learning_rate": result.lr, "lr_scheduler_type": hf[0], "warmup_steps": hf[1]}


def range_test_of(result: object) -> RangeTest:
    """``result`` when it is a :class:`lrkit.finder.RangeTest`; else ValueError, one line."""
    if not isinstance(result, RangeTest):
        held = (
            " (a RaceResult holds one: result.range_test)" if hasattr(result, "candidates") else ""
        )
        fail("result", type(result).__name__, f"a RangeTest from find_lr{held}")
    return result


def hp_space(result: RangeTest, *, schedule: str = "cosine") -> Callable[[Any], dict[str, float]]:
    """An Optuna ``hp_space`` for ``trainer.hyperparameter_search``, bounded by the range test.

    The learning rate is searched log-uniformly between the bounds of
    :meth:`lrkit.finder.RangeTest.suggest_range` for ``schedule``. ValueError when the curve
    gives no range.

    Example::

        best = trainer.hyperparameter_search(
            backend="optuna", hp_space=hp_space(result), n_trials=8, direction="minimize")
    """
    bounds = range_test_of(result).suggest_range(schedule=schedule)
    if bounds is None:
        fail("result", result, "a range test whose curve gives a learning-rate range")
    low, high = bounds

    def space(trial: Any) -> dict[str, float]:
        return {"learning_rate": trial.suggest_float("learning_rate", low, high, log=True)}

    return space
