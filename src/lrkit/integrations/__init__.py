"""Integrations with the frameworks people train with; each is an optional extra.

- :mod:`lrkit.integrations.lightning` (``pip install 'lrkit[lightning]'``): the range test and
  the Guard inside ``Trainer.fit``, in the Trainer's own fit loop (its precision, accumulation,
  clipping, strategy and loggers apply), as callbacks or Tuner-style.
- :mod:`lrkit.integrations.transformers` (``pip install 'lrkit[transformers]'``): the range test
  through a ``Trainer``'s own training loop, ``TrainingArguments`` keywords and an Optuna
  ``hp_space`` from it, a ``TrainerCallback`` Guard, and lrkit schedules for the Trainer.

Import the submodule you need; nothing here imports a framework at ``import lrkit`` time.
"""
