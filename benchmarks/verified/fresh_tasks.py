"""Fresh tasks of the verified-lr benchmark: kinds the 12 design tasks lack, frozen before use.

Written blind and committed before any grid, range test or method ran on them: nothing here
was chosen by looking at a loss (budgets and batch sizes by general sense, timed only). Each
offers what ``lrkit.race.run_race`` and the benchmark need: ``setup(lr=, seed=) -> Setup``
(with a validation loader), ``budget``, ``name``. They deliberately have no ``optimizer``
attribute: like a user's own setup, the optimizer is whatever the setup holds
(``optimizer_class`` names it for the benchmark's tables and the published rules only).

- ``digits_finetune``: an MLP trunk first trained on digits 0-4 (fixed recipe, fixed seed),
  fine-tuned with a fresh head on 300 examples of digits 5-9; SGD + Nesterov momentum 0.9,
  weight decay 5e-4.
- ``wine_smooth``: scikit-learn wine (178 samples, 3 classes), MLP 13-64-64-3 with dropout 0.2,
  cross-entropy with label smoothing 0.1; Adagrad.
- ``text_conv1d``: which of scikit-learn's 14 dataset descriptions a 64-character window comes
  from; character embedding + two 1-D convolutions + max pooling; Adamax.
- ``digits_autoencoder``: an autoencoder 64-32-8-32-64 (tanh) of the digits images, binary
  cross-entropy on the pixels; NAdam.
- ``residual_huber``: regression onto a generated teacher with heavy-tailed (Student t) noise,
  a residual MLP (3 pre-norm blocks, GELU), Huber loss; RAdam.
- ``digits_resnet``: digits as 8x8 images, a small residual CNN with BatchNorm and global
  average pooling; Adam with (coupled) L2 weight decay 5e-4.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from lrkit._setup import Setup
from lrkit.tasks import BatchLoader
from lrkit.tasks._data import CHARSET, _digits, _sklearn_datasets_dir, _split, _standardize

Arrays = tuple[Tensor, Tensor, Tensor, Tensor]
OptimizerFactory = Callable[[list[nn.Parameter], float], torch.optim.Optimizer]

_SEED = 7_654_321  # fixed data / pre-training seed: nothing here depends on the task seed


@dataclass(frozen=True)
class FreshTask:
    """A benchmark task built like lrkit's own (deterministic by seed, validation loader)."""

    name: str
    description: str
    optimizer_class: str
    budget: int
    batch_size: int
    data: Callable[[], Arrays] = field(repr=False)
    build_model: Callable[[], nn.Module] = field(repr=False)
    make_optimizer: OptimizerFactory = field(repr=False)
    make_loss: Callable[[], nn.Module] = field(repr=False)

    def setup(self, *, lr: float = 1e-3, seed: int = 0) -> Setup:
        """Fresh model, optimizer and loaders for ``seed``; the global RNG is left untouched."""
        x_train, y_train, x_val, y_val = self.data()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.build_model()
        return Setup(
            model=model,
            optimizer=self.make_optimizer(list(model.parameters()), lr),
            train_loader=BatchLoader(
                x_train,
                y_train,
                batch_size=self.batch_size,
                shuffle=True,
                seed=seed,
                drop_last=True,
            ),
            loss_fn=self.make_loss(),
            val_loader=BatchLoader(x_val, y_val, batch_size=512, shuffle=False),
        )


# ------------------------------------------------------------------ digits_finetune
def _trunk() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())


@functools.cache
def _pretrained_trunk() -> dict[str, Tensor]:
    """The trunk after a fixed recipe on digits 0-4 (Adam 1e-3, 300 steps of 64, fixed seed)."""
    x, y, _, _ = _digits()
    keep = y < 5
    x, y = x[keep], y[keep]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        trunk = _trunk()
        model = nn.Sequential(trunk, nn.Linear(128, 5))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(_SEED)
        for _ in range(300):
            idx = torch.randint(0, len(x), (64,), generator=gen)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()  # type: ignore[no-untyped-call]
            opt.step()
    return {k: v.detach().clone() for k, v in trunk.state_dict().items()}


@functools.cache
def _finetune_data() -> Arrays:
    x_train, y_train, x_val, y_val = _digits()
    train, val = y_train >= 5, y_val >= 5
    return x_train[train][:300], y_train[train][:300] - 5, x_val[val], y_val[val] - 5


def _finetune_model() -> nn.Module:
    trunk = _trunk()
    trunk.load_state_dict(_pretrained_trunk())
    return nn.Sequential(trunk, nn.Linear(128, 5))


# ------------------------------------------------------------------ wine_smooth
@functools.cache
def _wine() -> Arrays:
    raw = np.loadtxt(_sklearn_datasets_dir() / "data" / "wine_data.csv", delimiter=",", skiprows=1)
    x, y = raw[:, :-1], raw[:, -1].astype(np.int64)
    train_idx, val_idx = _split(len(x), 58)
    x_train, x_val = _standardize(x[train_idx], x[val_idx])
    return (
        torch.tensor(x_train, dtype=torch.float32),
        torch.tensor(y[train_idx]),
        torch.tensor(x_val, dtype=torch.float32),
        torch.tensor(y[val_idx]),
    )


def _wine_model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(13, 64),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(64, 3),
    )


# ------------------------------------------------------------------ text_conv1d
_WINDOW = 64


@functools.cache
def _text_windows() -> Arrays:
    """64-character windows (stride 32) of each description file, labelled by file; the last
    20% of every file (by characters) gives the validation windows."""
    paths = sorted((_sklearn_datasets_dir() / "descr").glob("*.rst"))
    lookup = {c: i for i, c in enumerate(CHARSET)}
    parts: dict[str, tuple[list[list[int]], list[int]]] = {"train": ([], []), "val": ([], [])}
    for label, path in enumerate(paths):
        text = path.read_text(encoding="utf-8", errors="replace")
        ids = [lookup.get(c, lookup["?"]) for c in text]
        cut = int(0.8 * len(ids))
        for part, chunk in (("train", ids[:cut]), ("val", ids[cut:])):
            for start in range(0, len(chunk) - _WINDOW + 1, _WINDOW // 2):
                parts[part][0].append(chunk[start : start + _WINDOW])
                parts[part][1].append(label)
    return (
        torch.tensor(parts["train"][0]),
        torch.tensor(parts["train"][1]),
        torch.tensor(parts["val"][0]),
        torch.tensor(parts["val"][1]),
    )


class TextConv(nn.Module):
    """Character embedding, two 1-D convolutions (64 channels, width 5), max over time."""

    def __init__(self, vocab: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.convs = nn.Sequential(
            nn.Conv1d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(64, 64, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveMaxPool1d(1),
        )
        self.head = nn.Linear(64, classes)

    def forward(self, ids: Tensor) -> Tensor:
        h = self.convs(self.embed(ids).transpose(1, 2)).squeeze(-1)
        out: Tensor = self.head(h)
        return out


def _text_model() -> nn.Module:
    classes = len(list((_sklearn_datasets_dir() / "descr").glob("*.rst")))
    return TextConv(len(CHARSET), classes)


# ------------------------------------------------------------------ digits_autoencoder
@functools.cache
def _digits_pixels() -> Arrays:
    x_train, _, x_val, _ = _digits()
    return x_train, x_train, x_val, x_val


def _autoencoder() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 32),
        nn.Tanh(),
        nn.Linear(32, 8),
        nn.Tanh(),
        nn.Linear(8, 32),
        nn.Tanh(),
        nn.Linear(32, 64),
    )


# ------------------------------------------------------------------ residual_huber
@functools.cache
def _heavy_tailed() -> Arrays:
    gen = torch.Generator().manual_seed(_SEED)
    n, d = 3000, 12
    x = torch.randn(n, d, generator=gen)
    w1 = torch.randn(d, 32, generator=gen) / d**0.5
    w2 = torch.randn(32, 1, generator=gen) / 32**0.5
    y = torch.sin(x @ w1) @ w2 * 3.0
    # Student t with 2 degrees of freedom: normal / sqrt(chi2_2 / 2)
    chi2 = -2.0 * torch.log(torch.rand(n, 1, generator=gen).clamp_min(1e-12))
    y = y + 0.3 * torch.randn(n, 1, generator=gen) / torch.sqrt(chi2 / 2)
    y = (y - y[:2400].median()) / y[:2400].std()
    return x[:2400], y[:2400], x[2400:], y[2400:]


class ResidualMLP(nn.Module):
    """Linear in, 3 pre-norm residual blocks (LayerNorm, Linear, GELU, Linear), norm, head."""

    def __init__(self, d_in: int, width: int = 64, blocks: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, width)
            )
            for _ in range(blocks)
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        out: Tensor = self.head(self.norm(h))
        return out


# ------------------------------------------------------------------ digits_resnet
class _Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = torch.relu(x + self.body(x))
        return out


def _resnet() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        _Block(16),
        _Block(16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


FRESH_TASKS: dict[str, FreshTask] = {
    t.name: t
    for t in (
        FreshTask(
            name="digits_finetune",
            description="MLP trunk pre-trained on digits 0-4, fine-tuned with a new head on 300 "
            "examples of digits 5-9; SGD + Nesterov momentum 0.9, weight decay 5e-4",
            optimizer_class="SGD",
            budget=150,
            batch_size=32,
            data=_finetune_data,
            build_model=_finetune_model,
            make_optimizer=lambda p, lr: torch.optim.SGD(
                p, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4
            ),
            make_loss=nn.CrossEntropyLoss,
        ),
        FreshTask(
            name="wine_smooth",
            description="scikit-learn wine (3 classes), MLP 13-64-64-3 with dropout 0.2, "
            "label smoothing 0.1; Adagrad",
            optimizer_class="Adagrad",
            budget=200,
            batch_size=16,
            data=_wine,
            build_model=_wine_model,
            make_optimizer=lambda p, lr: torch.optim.Adagrad(p, lr=lr),
            make_loss=lambda: nn.CrossEntropyLoss(label_smoothing=0.1),
        ),
        FreshTask(
            name="text_conv1d",
            description="which of scikit-learn's dataset descriptions a 64-character window "
            "comes from (14 classes), 1-D CNN over character embeddings; Adamax",
            optimizer_class="Adamax",
            budget=200,
            batch_size=32,
            data=_text_windows,
            build_model=_text_model,
            make_optimizer=lambda p, lr: torch.optim.Adamax(p, lr=lr),
            make_loss=nn.CrossEntropyLoss,
        ),
        FreshTask(
            name="digits_autoencoder",
            description="autoencoder 64-32-8-32-64 (tanh) of the digits images, binary "
            "cross-entropy on the pixels; NAdam",
            optimizer_class="NAdam",
            budget=300,
            batch_size=64,
            data=_digits_pixels,
            build_model=_autoencoder,
            make_optimizer=lambda p, lr: torch.optim.NAdam(p, lr=lr),
            make_loss=nn.BCEWithLogitsLoss,
        ),
        FreshTask(
            name="residual_huber",
            description="generated regression with heavy-tailed noise, residual MLP (3 pre-norm "
            "blocks, width 64, GELU), Huber loss; RAdam",
            optimizer_class="RAdam",
            budget=200,
            batch_size=64,
            data=_heavy_tailed,
            build_model=lambda: ResidualMLP(12),
            make_optimizer=lambda p, lr: torch.optim.RAdam(p, lr=lr),
            make_loss=nn.HuberLoss,
        ),
        FreshTask(
            name="digits_resnet",
            description="digits as 8x8 images, residual CNN (16 channels, 2 blocks, BatchNorm, "
            "global average pooling); Adam with L2 weight decay 5e-4",
            optimizer_class="Adam",
            budget=150,
            batch_size=64,
            data=_digits,
            build_model=_resnet,
            make_optimizer=lambda p, lr: torch.optim.Adam(p, lr=lr, weight_decay=5e-4),
            make_loss=nn.CrossEntropyLoss,
        ),
    )
}

__all__ = ["FRESH_TASKS", "FreshTask"]
