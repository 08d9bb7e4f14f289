"""The verified learning rate through a Hugging Face ``Trainer`` (``verify_lr``, ``race_search``).

The proofs: a race trial is the Trainer's own training (its score is, to the bit, the
``eval_loss`` of a separate ``Trainer`` trained at that lr for that many steps with the same
bf16 and accumulation settings); the trainer is left as it was; the result turns into
``TrainingArguments`` keywords that reproduce the schedule raced; the race's plan runs inside
``trainer.hyperparameter_search`` with its candidates first and Optuna's halving pruner.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

tf = pytest.importorskip("transformers", reason="the 'transformers' extra is not installed")
pytest.importorskip("accelerate", reason="the Trainer needs accelerate ('transformers' extra)")
optuna = pytest.importorskip("optuna", reason="the race needs optuna ('tune' extra)")

from _hf_setup import Tokens as _Tokens  # noqa: E402
from _hf_setup import cpu_args, tiny_gpt2  # noqa: E402

from lrkit.integrations.transformers import (  # noqa: E402
    find_lr,
    race_search,
    trainer_schedule,
    training_args,
    verify_lr,
)
from lrkit.integrations.transformers._finder import hf_schedule  # noqa: E402
from lrkit.race import resolve_schedule  # noqa: E402

STEPS = 40


def _gpt2() -> torch.nn.Module:
    return tiny_gpt2(dropout=0.0)


def _args(tmp_path: Path, **kwargs: Any) -> Any:
    return cpu_args(tmp_path, **{"max_steps": STEPS, "per_device_eval_batch_size": 16, **kwargs})


def _trainer(args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.Trainer(
            args=args, train_dataset=_Tokens(), eval_dataset=_Tokens(32, offset=5), **kwargs
        )


def test_a_trial_is_the_trainers_own_training_with_bf16_and_accumulation(
    tmp_path: Path,
) -> None:
    settings = dict(bf16=True, gradient_accumulation_steps=2, lr_scheduler_type="constant")
    args = _args(tmp_path, learning_rate=1e-3, **settings)
    model = _gpt2()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = _trainer(args, model=model)
    callbacks = list(trainer.callback_handler.callbacks)
    result = verify_lr(trainer, budget=3)
    assert result.lr is not None and "won the race" in result.reason
    assert result.spent_budgets <= 3 and result.schedule == "constant()"
    assert result.range_test.settings["amp"] == "bf16"
    assert result.range_test.settings["accumulation_steps"] == 2
    assert result.validation == "the Trainer's evaluate() ('eval_loss')"
    # the trainer is as it was: its model (untouched), no optimizer, state, args, callbacks
    assert trainer.model is model and trainer.optimizer is None
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert trainer.state.global_step == 0 and trainer.args is args
    assert trainer.callback_handler.callbacks == callbacks
    # each of two trials scored exactly what a separate Trainer run at its lr gives
    checked = [c for c in result.candidates if c.trials[0].state == "complete"][:2]
    assert len(checked) == 2
    for candidate in checked:
        first = candidate.trials[0]
        alone = _trainer(
            _args(
                tmp_path / "alone", learning_rate=candidate.lr, max_steps=first.steps, **settings
            ),
            model=_gpt2(),
        )
        alone.train()
        assert alone.evaluate()["eval_loss"] == first.value
    # and as TrainingArguments keywords: the winner with the schedule raced
    assert training_args(result) == {
        "learning_rate": result.lr,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
    }


@pytest.mark.parametrize("kind", ["constant", "constant_with_warmup", "linear", "cosine"])
@pytest.mark.parametrize("warmup", [0, 7, 0.1])
def test_the_trainers_schedule_is_raced_and_given_back(
    tmp_path: Path, kind: str, warmup: float
) -> None:
    args = _args(tmp_path, lr_scheduler_type=kind, warmup_steps=warmup)
    spec = resolve_schedule(trainer_schedule(args, 200), 200)
    steps = int(warmup) if warmup >= 1 else int(200 * warmup + 0.999)
    # the lrkit schedule is the Trainer's own, step for step
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = tf.get_scheduler(kind, opt, num_warmup_steps=steps, num_training_steps=200)
    theirs = []
    for _ in range(200):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [float(spec(k)) for k in range(200)]
    assert max(abs(a - b) for a, b in zip(theirs, ours, strict=True)) < 1e-12
    back = "constant" if kind == "constant_with_warmup" and steps == 0 else kind
    if kind == "constant" and steps:  # HF's "constant" ignores warmup
        back, steps = "constant", 0
    assert hf_schedule(str(spec), 200) == (back, steps)


def test_bad_setups_are_clear_errors(tmp_path: Path) -> None:
    args = _args(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        no_eval = tf.Trainer(args=args, model=_gpt2(), train_dataset=_Tokens())
    with pytest.raises(ValueError, match="eval_dataset"):
        verify_lr(no_eval, budget=3)
    with pytest.raises(ValueError, match=r"metric='eval_accuracy'.*eval_loss"):
        verify_lr(_trainer(args, model=_gpt2()), budget=3, metric="eval_accuracy")
    with pytest.raises(ValueError, match="lr_scheduler_type"):
        verify_lr(_trainer(_args(tmp_path, lr_scheduler_type="polynomial"), model=_gpt2()))
    with pytest.raises(ValueError, match="no Hugging Face"):
        training_args(
            verify_lr(_trainer(args, model=_gpt2()), budget=0, schedule="cosine(40, floor=0.1)")
        )


def test_a_trial_that_raises_is_a_failed_trial_and_the_trainer_is_kept(tmp_path: Path) -> None:
    class Flaky(tf.Trainer):  # type: ignore[misc]
        calls = 0

        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            Flaky.calls += 1
            if Flaky.calls == 60:  # inside the race's first trial (the range test takes 50)
                raise RuntimeError("a bad batch")
            return super().compute_loss(*args, **kwargs)

    args = _args(tmp_path, lr_scheduler_type="constant")
    model = _gpt2()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Flaky(
            args=args, model=model, train_dataset=_Tokens(), eval_dataset=_Tokens(32, offset=5)
        )
    result = verify_lr(trainer, budget=3)
    failed = [c for c in result.candidates if c.state == "failed"]
    assert len(failed) == 1 and "a bad batch" in failed[0].reason
    assert result.lr is not None and result.lr != failed[0].lr
    assert trainer.model is model and trainer.optimizer is None and trainer.args is args
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert trainer.state.global_step == 0


def test_race_search_runs_the_race_plan_in_hyperparameter_search(tmp_path: Path) -> None:
    args = _args(tmp_path, lr_scheduler_type="constant")
    trainer = _trainer(args, model_init=_gpt2)
    test = find_lr(trainer, num_steps=50)
    kwargs = race_search(test, max_steps=STEPS, budget=3, schedule="constant")
    best = trainer.hyperparameter_search(backend="optuna", direction="minimize", **kwargs)
    study = optuna.load_study(study_name=kwargs["study_name"], storage=kwargs["storage"])
    trials = study.get_trials(deepcopy=False)
    queued = [t.params["learning_rate"] for t in trials]
    # the race's candidates (those verify_lr would race for this test), in order
    race = verify_lr(trainer, budget=3, schedule="constant", range_steps=50)
    assert queued == [c.lr for c in race.candidates] and kwargs["n_trials"] == len(queued)
    first_rung = race.rungs[0].steps
    assert kwargs["pruner"]._min_resource == first_rung
    states = {t.state.name for t in trials}
    assert states <= {"COMPLETE", "PRUNED"} and "COMPLETE" in states
    for t in trials:  # a pruned trial stopped at an evaluation it lost, a finished one ran all
        assert (t.last_step == STEPS) == (t.state.name == "COMPLETE")
        assert min(t.intermediate_values) == first_rung
    assert best.hyperparameters["learning_rate"] in queued


def test_docstring_examples_run() -> None:
    import doctest

    from lrkit.integrations.transformers import _finder, _race

    for module in (_finder, _race):
        failed, tried = doctest.testmod(module)
        assert failed == 0 and tried > 0, module.__name__
