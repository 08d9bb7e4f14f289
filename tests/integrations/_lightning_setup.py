"""What the Lightning tests share (import it after ``pytest.importorskip("lightning.pytorch")``):
a quiet one-device CPU Trainer, a copy of a module's weights and buffers, and the test modules'
validation step and optimizer."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch

from lrkit.schedules import attach


def cpu_trainer(tmp_path: Path, **kwargs: Any) -> Any:
    """``L.Trainer(**kwargs)`` on one CPU, without logger, progress bar, summary, checkpoints
    or warnings, writing under ``tmp_path``."""
    defaults: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    defaults.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return L.Trainer(**defaults)


def weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """A copy of ``module``'s state (parameters and buffers), in order."""
    return [t.detach().clone() for t in module.state_dict().values()]


class RegressionSteps:
    """The test modules' validation and optimizer (mix in before ``L.LightningModule``): the
    validation step logs ``val_loss`` (MSE of ``self.net``); SGD with momentum 0.9 at
    ``hparams.lr``, and the lrkit schedule ``self.spec`` attached per step when it is set."""

    net: torch.nn.Module
    spec: str | None
    hparams: Any

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))  # type: ignore[attr-defined]

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)  # type: ignore[attr-defined]
        if self.spec is None:
            return opt
        sched = attach(opt, self.spec)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
