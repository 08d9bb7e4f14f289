from __future__ import annotations

import pytest
import torch

pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lrkit[tune]')")


def regression_batches(
    n: int, seed: int, batch: int = 16
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches of a noisy linear regression in 6 features (fixed teacher)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.linspace(-1.0, 1.0, 6).reshape(6, 1)
    out = []
    for _ in range(n):
        x = torch.randn(batch, 6, generator=g)
        out.append((x, x @ w + 0.1 * torch.randn(batch, 1, generator=g)))
    return out


@pytest.fixture()
def setup() -> dict[str, object]:
    """A small SGD regression: model, optimizer, loss, 20 training and 4 validation batches."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return {
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        "loss_fn": torch.nn.functional.mse_loss,
        "train_loader": regression_batches(20, 1),
        "val_loader": regression_batches(4, 2),
    }
