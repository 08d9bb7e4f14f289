"""lrkit with PyTorch Lightning: range test before fit, an lrkit schedule, and a live Guard."""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lrkit.integrations.lightning import GuardCallback, LRFinderCallback
from lrkit.schedules import attach


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)
        sched = attach(opt, "warmup(10, cosine(90, floor=0.05), start=0.1)")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


torch.manual_seed(0)
x = torch.randn(512, 8)
y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(512, 1)
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

finder = LRFinderCallback(apply=True, schedule="cosine", num_steps=60)  # opt-in: use the suggestion
guard = GuardCallback(policy="scale_lr", lr_factor=0.5)                # halve the lr on a spike
trainer = pl.Trainer(max_steps=100, callbacks=[finder, guard], logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
trainer.fit(Regressor(), loader)
print(f"suggested peak lr: {finder.applied_lr}, guard events: {len(guard.guard.events)}")
