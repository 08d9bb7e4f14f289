"""Run by test_lightning_ddp.py: ``python _lightning_ddp_worker.py OUT_DIR``.

Lightning's DDP launcher starts the second rank by running this script again. Each rank runs
a range test (LRFinderCallback) and then guarded training in which ONLY rank 1 sees a spike at
step 12; it writes what it saw to OUT_DIR/rank<N>.json.
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

from lrkit.integrations.lightning import GuardCallback, LRFinderCallback  # noqa: E402


class Module(L.LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        if self.global_step == 12 and self.global_rank == 1 and finder.result is not None:
            loss = loss * 1000.0  # a corrupted batch on one rank only
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


g = torch.Generator().manual_seed(1)
x = torch.randn(256, 4, generator=g)
y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(256, 1, generator=g)
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)

finder = LRFinderCallback(apply=True, start_lr=1e-3, end_lr=3.0, num_steps=30)
guard = GuardCallback(policy="scale_lr", lr_factor=0.5, min_history=5)
trainer = L.Trainer(
    accelerator="cpu",
    devices=2,
    strategy="ddp",
    max_steps=16,
    accumulate_grad_batches=2,
    callbacks=[finder, guard],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
model = Module()
trainer.fit(model, loader)
assert finder.result is not None
out = {
    "rank": trainer.global_rank,
    "world_size": trainer.world_size,
    "losses": finder.result.losses.tolist(),
    "stop_reason": finder.result.stop_reason,
    "suggested_lr": finder.suggested_lr,
    "hparams_lr": float(model.hparams.lr),
    "global_step": trainer.global_step,
    "events": [[e.step, e.kind, e.action] for e in guard.guard.events],
    "lr_after": trainer.optimizers[0].param_groups[0]["lr"],
    "weights": [float(p.double().sum()) for p in model.parameters()],
}
Path(sys.argv[1], f"rank{trainer.global_rank}.json").write_text(json.dumps(out))
