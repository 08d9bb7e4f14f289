"""Hugging Face integration, tested with tiny models built from configs (nothing downloaded)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

tf = pytest.importorskip("transformers", reason="the 'transformers' extra is not installed")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate ('transformers' extra)")

from lrkit.integrations.transformers import (  # noqa: E402
    GuardCallback,
    find_lr,
    find_lr_for_trainer,
    trainer_optimizers,
)
from lrkit.schedules import parse  # noqa: E402

VOCAB = 48


def _gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    config = tf.GPT2Config(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return tf.GPT2LMHeadModel(config)


class _Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Deterministic, learnable sequences: each token is the previous one plus 1 (mod VOCAB)."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = (torch.arange(16) + i) % VOCAB
        return {"input_ids": ids, "labels": ids.clone()}


def _loader() -> torch.utils.data.DataLoader[Any]:
    return torch.utils.data.DataLoader(_Tokens(), batch_size=8)


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    defaults: dict[str, Any] = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    defaults.update(kwargs)
    return tf.TrainingArguments(**defaults)


def test_find_lr_on_pretrained_model_with_dict_batches() -> None:
    model = _gpt2()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = find_lr(model, _loader(), num_steps=30, end_lr=1.0)
    assert len(result.losses) >= 10
    assert float(result.losses[0]) == pytest.approx(torch.log(torch.tensor(VOCAB)).item(), rel=0.2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_find_lr_for_trainer_uses_trainer_optimizer_and_restores_it(tmp_path: Path) -> None:
    model = _gpt2()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = tf.Trainer(
            model=model, args=_args(tmp_path, max_steps=2), train_dataset=_Tokens()
        )
    result = find_lr_for_trainer(trainer, num_steps=20, end_lr=1.0)
    assert len(result.lrs) >= 10
    assert trainer.optimizer is not None
    assert all(g["lr"] == trainer.args.learning_rate for g in trainer.optimizer.param_groups)
    assert not trainer.optimizer.state  # the test's Adam moments were rolled back


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
    from lrkit.diagnose import diagnose_file

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
