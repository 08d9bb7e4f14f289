"""Hugging Face integration, tested with tiny models built from configs (nothing downloaded)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

tf = pytest.importorskip("transformers", reason="the 'transformers' extra is not installed")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate ('transformers' extra)")

from _hf_setup import Tokens as _Tokens  # noqa: E402
from _hf_setup import cpu_args  # noqa: E402
from _hf_setup import tiny_gpt2 as _gpt2  # noqa: E402

from lrkit.finder import RangeTest, ema, ramp  # noqa: E402
from lrkit.integrations.transformers import (  # noqa: E402
    GuardCallback,
    find_lr,
    hp_space,
    trainer_optimizers,
    training_args,
)
from lrkit.schedules import parse  # noqa: E402


def _loader() -> torch.utils.data.DataLoader[Any]:
    return torch.utils.data.DataLoader(_Tokens(), batch_size=8)


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    return cpu_args(tmp_path, **{"logging_steps": 1, **kwargs})


class _Recorder:
    """A data collator that keeps every batch it builds, in order."""

    def __init__(self) -> None:
        self.batches: list[dict[str, torch.Tensor]] = []

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = tf.default_data_collator(features)
        self.batches.append({k: v.clone() for k, v in batch.items()})
        return batch


def _trainer(tmp_path: Path, *, args: Any = None, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.Trainer(args=args or _args(tmp_path), train_dataset=_Tokens(), **kwargs)


def test_range_test_is_the_trainers_own_step_bf16_accumulation_clipping(tmp_path: Path) -> None:
    """Same curve, bit for bit, as a hand-written loop over the batches the Trainer built, with
    its optimizer, bf16 autocast, 2 micro-batches per step, clipping and model_init."""
    recorder = _Recorder()
    args = _args(tmp_path, bf16=True, gradient_accumulation_steps=2, max_grad_norm=0.5)
    trainer = _trainer(tmp_path, args=args, model_init=lambda: _gpt2(0.0), data_collator=recorder)
    model_before = trainer.model
    weights = {k: v.clone() for k, v in model_before.state_dict().items()}
    callbacks = list(trainer.callback_handler.callbacks)
    result = find_lr(trainer, start_lr=1e-4, end_lr=1.0, num_steps=12, diverge_factor=None)
    assert len(result) == 12 and result.settings["amp"] == "bf16"
    assert result.settings["accumulation_steps"] == 2
    assert len(recorder.batches) == 24

    tf.set_seed(args.seed)  # what train() does before model_init
    model = _gpt2(0.0)
    decay = set(trainer.get_decay_parameter_names(model))
    groups = [
        {"params": [p for n, p in model.named_parameters() if n in decay], "weight_decay": 0.0},
        {"params": [p for n, p in model.named_parameters() if n not in decay], "weight_decay": 0.0},
    ]
    opt_cls, opt_kwargs = tf.Trainer.get_optimizer_cls_and_kwargs(args, model)
    opt = opt_cls(groups, **opt_kwargs)
    model.train()
    losses = []
    for step, lr in enumerate(ramp(1e-4, 1.0, 12)):
        micro = recorder.batches[2 * step : 2 * step + 2]
        # the Trainer normalises by the labels it counts over the step (for this config, with
        # loss_type unset, all of them: it does not discount the causal shift)
        items = sum((b["labels"] != -100).sum() for b in micro)
        total = torch.zeros(())
        for batch in micro:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(**batch, num_items_in_batch=items).loss.float()
            loss.backward()
            total = total + loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        for group in opt.param_groups:
            group["lr"] = float(lr)
        opt.step()
        model.zero_grad()
        losses.append(float(total))
    assert result.losses.tolist() == losses
    # the trainer is as it was: its model (untouched), no optimizer, state, callbacks
    assert trainer.model is model_before and trainer.optimizer is None
    assert all(torch.equal(weights[k], v) for k, v in model_before.state_dict().items())
    assert trainer.state.global_step == 0 and trainer.args is args
    assert trainer.callback_handler.callbacks == callbacks


def test_find_lr_restores_model_optimizer_scheduler_then_trains_as_without_it(
    tmp_path: Path,
) -> None:
    runs = []
    for test_first in (False, True):
        model = _gpt2()
        optimizers = trainer_optimizers(model, "warmup(2, cosine(6))", lr=2e-3)
        args = _args(tmp_path, max_steps=6)
        trainer = _trainer(tmp_path, args=args, model=model, optimizers=optimizers)
        if test_first:
            before = {k: v.clone() for k, v in model.state_dict().items()}
            model_attrs = set(vars(model))
            sched_state = optimizers[1].state_dict()
            result = find_lr(trainer, start_lr=1e-5, end_lr=1.0, num_steps=10)
            assert len(result) >= 5 and result.optimizer == "AdamW"
            assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
            assert set(vars(model)) == model_attrs  # no autocast/forward wrapper left behind
            assert not optimizers[0].state and optimizers[1].state_dict() == sched_state
            assert trainer.optimizer is optimizers[0] and trainer.lr_scheduler is optimizers[1]
        torch.manual_seed(7)  # the Trainer's sampler and dropout draw from the global RNG
        trainer.train()
        runs.append({k: v.clone() for k, v in model.state_dict().items()})
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_an_error_inside_the_range_test_leaves_the_trainer_as_it_was(tmp_path: Path) -> None:
    class Boom(tf.Trainer):  # type: ignore[misc]
        calls = 0

        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            Boom.calls += 1
            if Boom.calls == 4:
                raise RuntimeError("boom")
            return super().compute_loss(*args, **kwargs)

    model = _gpt2()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_attrs = set(vars(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Boom(model=model, args=_args(tmp_path), train_dataset=_Tokens())
    args, state, callbacks = trainer.args, trainer.state, list(trainer.callback_handler.callbacks)
    rng = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"):
        find_lr(trainer, num_steps=10)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(vars(model)) == model_attrs and trainer.model is model
    assert trainer.optimizer is None and trainer.lr_scheduler is None
    assert trainer.args is args and trainer.state is state
    assert trainer.callback_handler.callbacks == callbacks
    assert torch.equal(rng, torch.get_rng_state())


def _valley() -> RangeTest:
    lrs = np.geomspace(1e-6, 1.0, 80)
    x = np.log10(lrs)
    down = 2.0 - 1.5 * (x + 4) / 2.5
    up = 0.5 + 4.5 * ((x + 1.5) / 1.5) ** 2
    losses = np.where(x < -4, 2.0, np.where(x < -1.5, down, up)) + 0.01 * np.sin(np.arange(80))
    return RangeTest(
        lrs=lrs,
        losses=losses,
        smoothed=ema(losses, 0.0),
        stop_reason="completed",
        settings={"optimizer": "AdamW"},
    )


def test_training_args_splat_into_training_arguments(tmp_path: Path) -> None:
    from lrkit.advice import advise

    result = _valley()
    kwargs = training_args(result, max_steps=1000)
    assert kwargs == {
        "learning_rate": result.suggest(schedule="cosine").lr,
        "lr_scheduler_type": "cosine",
        "warmup_steps": advise("adamw", "transformer", total_steps=1000).warmup_steps,
    }
    fine = training_args(result, max_steps=1000, fine_tuning=True)
    assert fine["lr_scheduler_type"] == "linear"
    assert (
        fine["warmup_steps"]
        == advise("adamw", "transformer", fine_tuning=True, total_steps=1000).warmup_steps
    )
    constant = training_args(result, max_steps=1000, lr_scheduler_type="constant_with_warmup")
    assert constant["learning_rate"] == result.suggest(schedule="constant").lr
    args = tf.TrainingArguments(output_dir=str(tmp_path), max_steps=1000, **kwargs)
    assert args.learning_rate == kwargs["learning_rate"]
    flat = RangeTest(
        lrs=result.lrs, losses=np.ones(80), smoothed=np.ones(80), stop_reason="completed"
    )
    with pytest.raises(ValueError, match="no learning rate"):
        training_args(flat, max_steps=1000)
    with pytest.raises(ValueError, match="lr_scheduler_type"):
        training_args(result, max_steps=1000, lr_scheduler_type="polynomial")


def test_hp_space_bounds_hyperparameter_search(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    result = _valley()
    low, high = result.suggest_range(schedule="cosine") or (0.0, 0.0)
    args = _args(tmp_path, max_steps=2, eval_strategy="no")
    trainer = _trainer(tmp_path, args=args, model_init=lambda: _gpt2(0.0))
    trainer.eval_dataset = _Tokens()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = trainer.hyperparameter_search(
        backend="optuna", hp_space=hp_space(result), n_trials=2, direction="minimize"
    )
    assert low <= best.hyperparameters["learning_rate"] <= high
    flat = RangeTest(
        lrs=result.lrs, losses=np.ones(80), smoothed=np.ones(80), stop_reason="completed"
    )
    with pytest.raises(ValueError, match="range"):
        hp_space(flat)


def test_trainer_runs_an_lrkit_schedule_and_logs_guard_events(tmp_path: Path) -> None:
    spec = "warmup(3, cosine(9, floor=0.1), start=0.1)"
    model = _gpt2()
    optimizers = trainer_optimizers(model, spec, lr=2e-3)
    guard_cb = GuardCallback(policy="warn", min_history=5)

    class SpikeOnce(tf.TrainerCallback):  # type: ignore[misc]
        """Multiplies the logged loss at step 10 by 100, as a corrupted batch would."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs and state.global_step == 10:
                logs["loss"] = logs["loss"] * 100.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = tf.Trainer(
            model=model,
            args=_args(tmp_path, max_steps=12),
            train_dataset=_Tokens(),
            optimizers=optimizers,
            callbacks=[SpikeOnce, guard_cb],
        )
        trainer.train()
    logged = [h for h in trainer.state.log_history if "learning_rate" in h]
    expected = 2e-3 * parse(spec).values(12)
    # each logged entry holds the lr used by that optimizer step
    got = [h["learning_rate"] for h in logged]
    assert got[:12] == pytest.approx(list(expected), rel=1e-9)
    guard_entries = [h for h in trainer.state.log_history if "lrkit_guard" in h]
    assert guard_entries and guard_entries[0]["step"] == 10

    trainer.state.save_to_json(str(tmp_path / "trainer_state.json"))
    saved = json.loads((tmp_path / "trainer_state.json").read_text())
    assert any("lrkit_guard" in h for h in saved["log_history"])


# 3e-2 ends lowest of 1e-3..1e-1 (final loss ~0.002; 3e-3 ends at ~0.65, still falling: too
# slow); at 1e-5 the loss never really falls (plateau); 1.0 is far too high
@pytest.mark.parametrize(
    ("lr", "verdict"), [(3e-2, "healthy"), (1e-5, "plateau"), (1.0, "oscillating")]
)
def test_diagnose_reads_trainer_state_of_a_real_run(
    tmp_path: Path, lr: float, verdict: str
) -> None:
    from lrkit.diagnosis import diagnose_file

    model = _gpt2()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = tf.Trainer(
            model=model,
            args=_args(tmp_path, max_steps=120, learning_rate=lr),
            train_dataset=_Tokens(),
        )
        trainer.train()
    path = tmp_path / "trainer_state.json"
    trainer.state.save_to_json(str(path))
    result = diagnose_file(path)
    assert result.verdict == verdict
    assert result.to_dict()["verdict"] == verdict


class _FakeLoss(tf.TrainerCallback):  # type: ignore[misc]
    """Replaces the logged loss at one step, as a corrupted batch or an overflow would."""

    def __init__(self, step: int, factor: float) -> None:
        self.step, self.factor = step, factor

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if logs and "loss" in logs and state.global_step == self.step:
            logs["loss"] = logs["loss"] * self.factor


def _train_with_guard(tmp_path: Path, guard_cb: GuardCallback, fake: _FakeLoss, steps: int) -> Any:
    model = _gpt2()
    optimizers = trainer_optimizers(model, "constant()", lr=2e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = tf.Trainer(
            model=model,
            args=_args(tmp_path, max_steps=steps),
            train_dataset=_Tokens(),
            optimizers=optimizers,
            callbacks=[fake, guard_cb],
        )
        trainer.train()
    return trainer


def test_guard_callback_lowers_the_lr_through_the_scheduler(tmp_path: Path) -> None:
    guard_cb = GuardCallback(policy="scale_lr", lr_factor=0.5, min_history=5)
    trainer = _train_with_guard(tmp_path, guard_cb, _FakeLoss(10, 100.0), steps=14)
    lrs = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert lrs[:10] == pytest.approx([2e-3] * 10, rel=1e-12)
    # the spike is seen when step 10 logs; every later update runs at half the rate, even
    # though the Trainer's scheduler keeps stepping
    assert lrs[10:] == pytest.approx([1e-3] * (len(lrs) - 10), rel=1e-12)
    assert [e.step for e in guard_cb.guard.events] == [10]


def test_guard_callback_stops_training_on_a_non_finite_loss(tmp_path: Path) -> None:
    guard_cb = GuardCallback(policy="raise", min_history=3)
    trainer = _train_with_guard(tmp_path, guard_cb, _FakeLoss(5, float("nan")), steps=30)
    assert trainer.state.global_step == 5
    assert guard_cb.guard.events[0].kind == "nonfinite"
    assert any("lrkit_guard" in h for h in trainer.state.log_history)


def test_a_race_result_where_a_range_test_is_needed_is_a_one_line_error() -> None:
    from types import SimpleNamespace

    from lrkit.integrations.transformers import race_search

    pytest.importorskip("optuna", reason="race_search needs optuna ('tune' extra)")

    race = SimpleNamespace(candidates=[], range_test=None)  # what verify_lr returns, in short
    for call in (lambda r: hp_space(r), lambda r: race_search(r, max_steps=100)):
        with pytest.raises(ValueError, match=r"^result must be a RangeTest from find_lr \(a "):
            call(race)
        with pytest.raises(ValueError, match="but got result='NoneType'$"):
            call(None)


def test_docstring_examples_run() -> None:
    import doctest

    from lrkit.integrations.transformers import _schedules

    failed, tried = doctest.testmod(_schedules)
    assert failed == 0 and tried > 0
