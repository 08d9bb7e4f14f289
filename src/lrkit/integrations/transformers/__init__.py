"""Hugging Face ``transformers`` integration (``pip install 'lrkit[transformers]'``).

- :func:`find_lr` runs lrkit's range test through a ``Trainer``'s own training loop (its
  ``training_step``, accelerator, mixed precision, gradient accumulation, clipping, optimizer
  and ``model_init``) and leaves the trainer as it was;
- :func:`training_args` turns the result into ``TrainingArguments`` keywords
  (``learning_rate``, ``lr_scheduler_type``, ``warmup_steps``);
- :func:`hp_space` bounds ``trainer.hyperparameter_search(backend="optuna", ...)`` by it;
- :func:`verify_lr` gives lrkit's verified answer (:func:`lrkit.race.run_race`: the range test
  narrows, a short guarded race on ``eval_loss`` decides), every trial a short
  ``trainer.train()``; :func:`race_search` puts the same plan into
  ``trainer.hyperparameter_search(backend="optuna", ...)`` (queued candidates, Optuna's
  successive-halving pruner);
- :class:`GuardCallback` is a ``TrainerCallback`` that watches the logged loss with
  :class:`lrkit.Guard`, lowers the learning rate or stops training, and records its events in
  the trainer's ``log_history`` (so they land in ``trainer_state.json``);
- :func:`trainer_optimizers` gives the Trainer an lrkit schedule::

      trainer = Trainer(model=model, args=args, train_dataset=ds,
                        optimizers=trainer_optimizers(model, "warmup(50, cosine(950))", lr=3e-4))
"""

from lrkit._optional import MissingExtraError

try:
    import transformers  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the extra
    raise MissingExtraError(
        "'transformers' is needed for lrkit.integrations.transformers: "
        "pip install 'lrkit[transformers]'"
    ) from exc

from lrkit.integrations.transformers._finder import find_lr, hp_space, training_args
from lrkit.integrations.transformers._guard import GuardCallback
from lrkit.integrations.transformers._race import race_search, trainer_schedule, verify_lr
from lrkit.integrations.transformers._schedules import trainer_optimizers

__all__ = [
    "GuardCallback",
    "find_lr",
    "hp_space",
    "race_search",
    "trainer_optimizers",
    "trainer_schedule",
    "training_args",
    "verify_lr",
]
