"""lrkit's verified learning rate inside Lightning's Trainer.fit: the range test narrows, a short
guarded race on validation loss decides, every trial in bf16 with gradient accumulation."""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lrkit.integrations.lightning import LRRaceCallback
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
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))  # the race's score

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        sched = attach(opt, "warmup(10, cosine(110))")  # the race trains with this schedule
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


torch.manual_seed(0)
x = torch.randn(1024, 8)
y = x.sum(dim=1, keepdim=True) + 0.3 * torch.randn(1024, 1)
train = DataLoader(TensorDataset(x[:768], y[:768]), batch_size=32, shuffle=True)
val = DataLoader(TensorDataset(x[768:], y[768:]), batch_size=128)

race = LRRaceCallback(budget=3, apply=True)  # at most 3 runs' worth of steps, range test included
trainer = pl.Trainer(max_steps=120, precision="bf16-mixed", accumulate_grad_batches=2,
                     callbacks=[race], logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
model = Regressor()
trainer.fit(model, train, val)  # the race runs first, in the Trainer's loops; then training
result = race.result
print(f"verified lr: {race.verified_lr} (quick answer {result.quick_lr:.3g}); "
      f"{len(result.candidates)} candidates, {result.spent_budgets:.2f} runs spent; "
      f"model.hparams.lr: {model.hparams.lr}")
