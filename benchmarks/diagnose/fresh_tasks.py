"""Fresh tasks of the diagnosis benchmark: written and committed BEFORE any scoring.

They differ from the design tasks (lrkit's built-in tasks and the range-test benchmark's
held-out ones) in data, model kind, optimizer and loss, and are scored once, reported
separately. Every one trains its budget in well under two seconds on one CPU thread, on data
generated from a fixed seed or shipped with scikit-learn (no downloads).

* ``wine_logreg``: scikit-learn wine (13 features, 3 classes), logistic regression, plain SGD,
  cross-entropy;
* ``moons_adagrad``: two moons (noise 0.25), MLP 2-32-32-2 with tanh, Adagrad, cross-entropy;
* ``friedman_huber``: Friedman #1 regression (10 features), MLP with LayerNorm and GELU, SGD
  with Nesterov momentum, Huber loss;
* ``adding_lstm``: the "adding problem" (sequences of 20), LSTM (width 32), RAdam, MSE;
* ``signal_cnn1d``: 4 kinds of noisy 1-D signals (length 64), 1-D CNN with global pooling,
  Adamax, cross-entropy;
* ``digits_ae``: scikit-learn digits pixels, autoencoder 64-32-8-32-64, RMSprop, binary
  cross-entropy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lrkit._setup import Setup
from lrkit.tasks import BatchLoader

_SEED = 424242  # data generation and splits: fixed, independent of the training seed


@dataclass(frozen=True)
class FreshTask:
    """A benchmark task with the interface the corpus generator needs (``name``, ``budget``,
    ``optimizer`` and ``setup(lr=, seed=)``)."""

    name: str
    description: str
    optimizer: str
    budget: int
    batch_size: int
    data: Callable[[], tuple[Tensor, Tensor, Tensor, Tensor]]
    build_model: Callable[[], nn.Module]
    build_optimizer: Callable[[list[nn.Parameter], float], torch.optim.Optimizer]
    loss_fn: Callable[[], nn.Module]

    def setup(self, *, lr: float, seed: int = 0) -> Setup:
        x_train, y_train, x_val, y_val = self.data()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.build_model()
        return Setup(
            model=model,
            optimizer=self.build_optimizer(list(model.parameters()), lr),
            train_loader=BatchLoader(
                x_train,
                y_train,
                batch_size=self.batch_size,
                shuffle=True,
                seed=seed,
                drop_last=True,
            ),
            loss_fn=self.loss_fn(),
            val_loader=BatchLoader(x_val, y_val, batch_size=512, shuffle=False),
        )


def _split(x: np.ndarray, y: np.ndarray, n_val: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    perm = np.random.default_rng(_SEED).permutation(len(x))
    tr, va = perm[n_val:], perm[:n_val]
    y_dtype = torch.int64 if y.dtype.kind in "iu" else torch.float32
    return (
        torch.tensor(x[tr], dtype=torch.float32),
        torch.tensor(y[tr], dtype=y_dtype),
        torch.tensor(x[va], dtype=torch.float32),
        torch.tensor(y[va], dtype=y_dtype),
    )


def _standardize(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return np.asarray((x - x.mean(axis=0)) / std)


_CACHE: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]] = {}


def _cached(
    name: str, make: Callable[[], tuple[Tensor, Tensor, Tensor, Tensor]]
) -> Callable[[], tuple[Tensor, Tensor, Tensor, Tensor]]:
    def get() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if name not in _CACHE:
            _CACHE[name] = make()
        return _CACHE[name]

    return get


def _wine() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from sklearn.datasets import load_wine

    d = load_wine()
    return _split(_standardize(np.asarray(d.data)), np.asarray(d.target, dtype=np.int64), 48)


def _moons() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=2400, noise=0.25, random_state=_SEED % 1000)
    return _split(np.asarray(x), np.asarray(y, dtype=np.int64), 600)


def _friedman() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=3000, n_features=10, noise=1.0, random_state=_SEED % 1000)
    y = (y - y.mean()) / y.std()
    return _split(np.asarray(x), np.asarray(y, dtype=np.float32).reshape(-1, 1), 600)


def _adding() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The adding problem: two channels (uniform values, two markers); target: the marked sum."""
    rng = np.random.default_rng(_SEED)
    n, t = 3000, 20
    values = rng.uniform(0.0, 1.0, (n, t))
    marks = np.zeros((n, t))
    for i in range(n):
        a, b = rng.choice(t, size=2, replace=False)
        marks[i, a] = marks[i, b] = 1.0
    x = np.stack([values, marks], axis=2)
    y = (values * marks).sum(axis=1, keepdims=True)
    return _split(x, y.astype(np.float32), 600)


def _signals() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sine, square, sawtooth and decaying bursts at random frequency / phase, plus noise."""
    rng = np.random.default_rng(_SEED + 1)
    n, t = 3200, 64
    k = rng.integers(0, 4, n)
    freq = rng.uniform(1.0, 4.0, n)[:, None]
    phase = rng.uniform(0.0, 2 * math.pi, n)[:, None]
    s = np.linspace(0.0, 1.0, t)[None, :]
    arg = 2 * math.pi * freq * s + phase
    sig = np.where(
        k[:, None] == 0,
        np.sin(arg),
        np.where(
            k[:, None] == 1,
            np.sign(np.sin(arg)),
            np.where(
                k[:, None] == 2,
                2.0 * ((arg / (2 * math.pi)) % 1.0) - 1.0,
                np.exp(-5.0 * ((arg / (2 * math.pi)) % 1.0)) * np.sin(4 * arg),
            ),
        ),
    )
    x = sig + 0.6 * rng.standard_normal((n, t))
    return _split(x[:, None, :], k.astype(np.int64), 800)


def _digits_pixels() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from sklearn.datasets import load_digits

    x = np.asarray(load_digits().data) / 16.0
    xt, _, xv, _ = _split(x, np.zeros(len(x), dtype=np.int64), 397)
    return xt, xt, xv, xv


class _AddingLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(2, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)
        result: Tensor = self.head(out[:, -1])
        return result


def _cnn1d() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(1, 8, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(8, 16, 5, padding=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )


def _friedman_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(10, 64),
        nn.LayerNorm(64),
        nn.GELU(),
        nn.Linear(64, 64),
        nn.GELU(),
        nn.Linear(64, 1),
    )


def _autoencoder() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 8),
        nn.ReLU(),
        nn.Linear(8, 32),
        nn.ReLU(),
        nn.Linear(32, 64),
    )


FRESH: dict[str, FreshTask] = {
    t.name: t
    for t in (
        FreshTask(
            "wine_logreg",
            "scikit-learn wine, logistic regression, plain SGD",
            "sgd",
            200,
            16,
            _cached("wine", _wine),
            lambda: nn.Linear(13, 3),
            lambda p, lr: torch.optim.SGD(p, lr=lr),
            nn.CrossEntropyLoss,
        ),
        FreshTask(
            "moons_adagrad",
            "two moons, MLP 2-32-32-2 with tanh, Adagrad",
            "adagrad",
            300,
            32,
            _cached("moons", _moons),
            lambda: nn.Sequential(
                nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2)
            ),
            lambda p, lr: torch.optim.Adagrad(p, lr=lr),
            nn.CrossEntropyLoss,
        ),
        FreshTask(
            "friedman_huber",
            "Friedman #1 regression, MLP with LayerNorm and GELU, SGD Nesterov 0.9, Huber loss",
            "sgd_nesterov",
            300,
            64,
            _cached("friedman", _friedman),
            _friedman_mlp,
            lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
            nn.SmoothL1Loss,
        ),
        FreshTask(
            "adding_lstm",
            "the adding problem (sequences of 20), LSTM width 32, RAdam, MSE",
            "radam",
            300,
            32,
            _cached("adding", _adding),
            _AddingLSTM,
            lambda p, lr: torch.optim.RAdam(p, lr=lr),
            nn.MSELoss,
        ),
        FreshTask(
            "signal_cnn1d",
            "noisy 1-D signals of 4 kinds, 1-D CNN with global pooling, Adamax",
            "adamax",
            200,
            32,
            _cached("signals", _signals),
            _cnn1d,
            lambda p, lr: torch.optim.Adamax(p, lr=lr),
            nn.CrossEntropyLoss,
        ),
        FreshTask(
            "digits_ae",
            "digits pixels, autoencoder 64-32-8-32-64, RMSprop, binary cross-entropy on logits",
            "rmsprop",
            300,
            32,
            _cached("digits_pixels", _digits_pixels),
            _autoencoder,
            lambda p, lr: torch.optim.RMSprop(p, lr=lr),
            nn.BCEWithLogitsLoss,
        ),
    )
}
