"""Small CPU training tasks used to generate the labelled diagnosis corpus.

Each task is a function ``make_<name>(seed, subset=None)`` returning a :class:`TaskData` with
train/val tensors, a model factory and a loss. They are deliberately tiny (a training step costs
well under a millisecond to a few milliseconds with one thread) so that hundreds of full runs
fit in a few CPU minutes. Data come from scikit-learn's packaged ``digits`` set, seeded synthetic
generators, or text shipped with Python's standard library (no downloads).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


@dataclass
class TaskData:
    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    make_model: Callable[[], nn.Module]
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    batch_size: int
    # how to corrupt one batch: "scale" multiplies inputs by 100, "labels" draws random targets
    corrupt: str


def _split(x: Tensor, y: Tensor, n_val: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(1234 + seed)
    perm = torch.randperm(x.shape[0], generator=g)
    x, y = x[perm], y[perm]
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def _digits(seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    return _split(x, y, 397, 0)


def digits_mlp() -> nn.Module:
    """The digits MLP, 64-128-10 (also timed by benchmarks/guard_overhead.py)."""
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def digits_cnn() -> nn.Module:
    """The digits CNN on 1x8x8 inputs (also timed by benchmarks/guard_overhead.py)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 10),
    )


def make_digits_mlp(seed: int) -> TaskData:
    xt, yt, xv, yv = _digits(seed)
    return TaskData(
        "digits_mlp", xt, yt, xv, yv, digits_mlp, nn.functional.cross_entropy, 64, "scale+labels"
    )


def make_digits_cnn(seed: int) -> TaskData:
    xt, yt, xv, yv = _digits(seed)
    xt = xt.view(-1, 1, 8, 8)
    xv = xv.view(-1, 1, 8, 8)
    return TaskData(
        "digits_cnn", xt, yt, xv, yv, digits_cnn, nn.functional.cross_entropy, 64, "scale+labels"
    )


def make_teacher_reg(seed: int) -> TaskData:
    g = torch.Generator().manual_seed(77)
    x = torch.randn(2500, 16, generator=g)
    w1 = torch.randn(16, 32, generator=g) / 4.0
    w2 = torch.randn(32, 1, generator=g) / math.sqrt(32)
    y = torch.tanh(x @ w1) @ w2 * 3.0 + 0.3 * torch.randn(2500, 1, generator=g)
    xt, yt, xv, yv = _split(x, y, 500, 0)

    def model() -> nn.Module:
        return nn.Sequential(
            nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)
        )

    return TaskData("teacher_reg", xt, yt, xv, yv, model, nn.functional.mse_loss, 64, "scale")


def make_spiral(seed: int) -> TaskData:
    rng = np.random.default_rng(5)
    n_per, k = 600, 3
    xs, ys = [], []
    for c in range(k):
        r = np.linspace(0.05, 1.0, n_per)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, n_per) + rng.normal(0, 0.25, n_per)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(n_per, c))
    x = torch.tensor(np.concatenate(xs), dtype=torch.float32)
    y = torch.tensor(np.concatenate(ys), dtype=torch.long)
    xt, yt, xv, yv = _split(x, y, 400, 0)

    def model() -> nn.Module:
        return nn.Sequential(
            nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3)
        )

    return TaskData(
        "spiral", xt, yt, xv, yv, model, nn.functional.cross_entropy, 64, "scale+labels"
    )


def _text() -> str:
    import argparse
    import json.decoder
    import textwrap

    parts = [inspect.getsource(m) for m in (textwrap, argparse, json.decoder)]
    return "".join(parts)[:60000]


class _CharMLP(nn.Module):
    def __init__(self, vocab: int, context: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 12)
        self.net = nn.Sequential(nn.Linear(12 * context, 128), nn.Tanh(), nn.Linear(128, vocab))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.emb(x).flatten(1))


def make_char_mlp(seed: int) -> TaskData:
    text = _text()
    chars = sorted(set(text))
    idx = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([idx[c] for c in text], dtype=torch.long)
    context = 6
    windows = data.unfold(0, context + 1, 1)
    x, y = windows[:, :context], windows[:, context]
    n = x.shape[0]
    cut = int(n * 0.85)
    # contiguous split (no leakage between overlapping windows); val subsampled for speed
    xt, yt = x[:cut], y[:cut]
    xv, yv = x[cut::4][:2000], y[cut::4][:2000]
    vocab = len(chars)

    def model() -> nn.Module:
        return _CharMLP(vocab, context)

    return TaskData("char_mlp", xt, yt, xv, yv, model, nn.functional.cross_entropy, 64, "labels")


TASKS: dict[str, Callable[[int], TaskData]] = {
    "digits_mlp": make_digits_mlp,
    "digits_cnn": make_digits_cnn,
    "teacher_reg": make_teacher_reg,
    "spiral": make_spiral,
    "char_mlp": make_char_mlp,
}
