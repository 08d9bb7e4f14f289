"""Integrations with the frameworks people train with; each is an optional extra.

- :mod:`lrkit.integrations.lightning` (``pip install 'lrkit[lightning]'``): the range test on a
  LightningModule, a callback that runs it before fit, and a Guard callback.
- :mod:`lrkit.integrations.transformers` (``pip install 'lrkit[transformers]'``): the range test
  on a ``PreTrainedModel``, a ``TrainerCallback`` Guard, and lrkit schedules for the Trainer.

Import the submodule you need; nothing here imports a framework at ``import lrkit`` time.
"""
