"""Run by test_lightning_ddp.py: ``python _lightning_ddp_race_worker.py OUT_DIR``.

Lightning's DDP launcher starts the second rank by running this script again. Both ranks run
lrkit's race (LRRaceCallback) on their own shard of the data, each logging its own shard's
validation loss (no ``sync_dist``), then train; each writes what it saw to
OUT_DIR/rank<N>.json.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

warnings.simplefilter("ignore")
torch.set_num_threads(1)

import lightning.pytorch as L  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lrkit.integrations.lightning import LRRaceCallback  # noqa: E402


class Module(L.LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))  # this rank's shard

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.3 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


race = LRRaceCallback(budget=3, total_steps=60, apply=True)
trainer = L.Trainer(
    accelerator="cpu",
    devices=2,
    strategy="ddp",
    max_steps=6,
    callbacks=[race],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
model = Module()
trainer.fit(
    model,
    DataLoader(data(256, 1), batch_size=16, shuffle=True),
    DataLoader(data(64, 2), batch_size=16),
)
assert race.result is not None
out = {
    "rank": trainer.global_rank,
    "world_size": trainer.world_size,
    "lr": race.verified_lr,
    "reason": race.result.reason,
    "range_losses": race.result.range_test.losses.tolist(),
    "candidates": [c.to_dict() for c in race.result.candidates],
    "hparams_lr": float(model.hparams.lr),
    "global_step": trainer.global_step,
    "weights": [float(p.double().sum()) for p in model.parameters()],
}
Path(sys.argv[1], f"rank{trainer.global_rank}.json").write_text(json.dumps(out))
