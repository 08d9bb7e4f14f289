"""PyTorch Lightning integration (``pip install 'lrkit[lightning]'``).

Everything runs inside ``Trainer.fit``, in the Trainer's own fit loop, so its precision
(``bf16-mixed``, ``16-mixed``), ``accumulate_grad_batches``, gradient clipping, strategy (DDP)
and loggers apply:

- :class:`LRFinderCallback` runs lrkit's range test when ``fit`` starts, puts everything back,
  and with ``apply=True`` uses the suggestion (``model.lr`` / ``hparams``, the optimizer);
- :func:`find_lr` does the same the way ``Tuner(trainer).lr_find(model)`` does;
- :class:`LRRaceCallback` and :func:`verify_lr` give lrkit's verified answer
  (:func:`lrkit.race.run_race`: the range test narrows, a short guarded race on validation loss
  decides), every trial trained and validated by the Trainer's own loops;
- :class:`GuardCallback` watches every step with :class:`lrkit.Guard`;
- :func:`run_excursion` and :class:`LRDriver` run any short, undone stretch of training (the
  range test is one; a race trial at a candidate learning rate is another, validated by the
  fit's own validation loop where its driver asks).

lrkit schedules plug into Lightning's scheduler config as they are::

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=3e-4)
        sched = lrkit.schedules.attach(opt, "warmup(100, cosine(900))")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

Checkpoints save the scheduler's ``state_dict`` (step count + spec), so a resumed ``fit``
produces the same learning rates as an uninterrupted one.
"""

from lrkit._optional import MissingExtraError

try:
    import lightning.pytorch  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the extra
    raise MissingExtraError(
        "'lightning' is needed for lrkit.integrations.lightning: pip install 'lrkit[lightning]'"
    ) from exc

from lrkit.integrations.lightning._excursion import LRDriver, run_excursion
from lrkit.integrations.lightning._finder import LRFinderCallback, find_lr
from lrkit.integrations.lightning._guard import GuardCallback
from lrkit.integrations.lightning._race import LRRaceCallback, verify_lr

__all__ = [
    "GuardCallback",
    "LRDriver",
    "LRFinderCallback",
    "LRRaceCallback",
    "find_lr",
    "run_excursion",
    "verify_lr",
]
