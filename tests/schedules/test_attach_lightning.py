"""``attach`` inside Lightning's ``configure_optimizers`` (per-step interval and plateau)."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from lrkit.schedules import ScheduledLR, attach, parse

pl = pytest.importorskip("lightning.pytorch")
pytestmark = pytest.mark.slow


class _Module(pl.LightningModule):  # type: ignore[misc]
    def __init__(self, spec: str, config: dict[str, object]) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.spec = spec
        self.config = config
        self.seen: list[float] = []

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        self.seen.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self.log("val_loss", torch.tensor(1.0))  # never improves: plateau cuts

    def configure_optimizers(self) -> dict[str, object]:
        opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": attach(opt, self.spec), **self.config},
        }


def _loader() -> torch.utils.data.DataLoader[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=4)


def _fit(module: _Module, epochs: int, tmp_path: object) -> None:
    logging.getLogger("lightning").setLevel(logging.ERROR)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, _loader(), _loader())


def test_per_step_interval_follows_the_schedule(tmp_path: object) -> None:
    spec = "warmup(4, cosine(12), start=0.1)"
    module = _Module(spec, {"interval": "step"})
    _fit(module, 2, tmp_path)
    schedule = parse(spec)
    assert len(module.seen) == 16
    for step, lr in enumerate(module.seen):
        assert math.isclose(lr, 0.1 * schedule(step), rel_tol=1e-12), step
    sched = module.trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(sched, ScheduledLR) and sched.last_epoch == 16


def test_plateau_through_lightning_monitor(tmp_path: object) -> None:
    module = _Module(
        "plateau(factor=0.5, patience=0)",
        {"interval": "epoch", "monitor": "val_loss", "reduce_on_plateau": True},
    )
    _fit(module, 3, tmp_path)
    per_epoch = [module.seen[i * 8] for i in range(3)]
    # epoch 0 sets the best value; each later epoch is no better: one cut per epoch
    assert per_epoch == [0.1, 0.1, 0.05]
