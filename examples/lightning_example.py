"""lrkit with PyTorch Lightning: the range test inside Trainer.fit (bf16, accumulation), an lrkit
schedule and a live Guard."""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lrkit.integrations.lightning import GuardCallback, LRFinderCallback
from lrkit.schedules import attach


class Regressor(pl.LightningModule):
    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        sched = attach(opt, "warmup(10, cosine(90, floor=0.05), start=0.1)")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


torch.manual_seed(0)
x = torch.randn(512, 8)
y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(512, 1)
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

finder = LRFinderCallback(apply=True, schedule="cosine", num_steps=60)  # opt-in: use the suggestion
guard = GuardCallback(policy="rollback", snapshot_every=20)            # undo a spike or a NaN
trainer = pl.Trainer(max_steps=100, precision="bf16-mixed", accumulate_grad_batches=2,
                     callbacks=[finder, guard], logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, accelerator="cpu")
model = Regressor()
trainer.fit(model, loader)  # the range test runs first, in bf16 with 2 micro-batches per step
print(f"suggested peak lr: {finder.suggested_lr}, model.hparams.lr: {model.hparams.lr}, "
      f"guard events: {len(guard.guard.events)}")
