"""The built-in tasks: small real training problems that run offline on one CPU thread.

They serve the demo (``lrkit auto --task digits``), the tests and the benchmarks. Each task
builds a fresh, deterministic model + optimizer + loaders from a seed in milliseconds, and
trains its full ``budget`` in about a second or two on one CPU thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from lrkit._seed import seeded
from lrkit._setup import Setup
from lrkit._validate import check_choice, check_int, check_real
from lrkit.tasks._data import CHARSET, BatchLoader, load

__all__ = ["OPTIMIZERS", "Task", "get_task", "list_tasks"]

#: optimizer names a task may use, mapped to how they are built
OPTIMIZERS = ("sgd_momentum", "adam", "adamw", "rmsprop")
LOSSES = ("classification", "regression", "language_model")


def make_optimizer(name: str, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``params`` at ``lr``."""
    check_choice("optimizer", name, OPTIMIZERS)
    if name == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    return torch.optim.RMSprop(params, lr=lr)


class SequenceCrossEntropy(nn.Module):
    """Cross-entropy of ``(batch, time, vocab)`` logits against ``(batch, time)`` targets."""

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        )


class CharTransformer(nn.Module):
    """A one-layer causal transformer over characters (pre-norm, learned positions, no dropout)."""

    def __init__(self, vocab: int, seq_len: int, width: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(seq_len, width))
        nn.init.normal_(self.position, std=0.02)
        self.block = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        mask = torch.triu(torch.full((seq_len, seq_len), float("-inf")), diagonal=1)
        self.mask: Tensor
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, ids: Tensor) -> Tensor:
        t = ids.shape[1]
        h = self.embed(ids) + self.position[:t]
        h = self.block(h, src_mask=self.mask[:t, :t], is_causal=True)
        out: Tensor = self.head(self.norm(h))
        return out


def mlp(sizes: list[int], *, batchnorm: bool = False) -> nn.Module:
    """ReLU MLP through ``sizes`` (BatchNorm before each ReLU if ``batchnorm``); no final act."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _digits_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


@dataclass(frozen=True)
class Task:
    """A small built-in training problem.

    Attributes:
        name: the task's name, as :func:`get_task` knows it.
        description: one line on data, model and optimizer.
        optimizer: one of ``"sgd_momentum"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``.
        loss: ``"classification"``, ``"regression"`` or ``"language_model"``.
        budget: default number of optimizer steps of a full training run.
        default_lr: a good constant learning rate for ``optimizer``, from the benchmark's grid.
        model: the architecture family (``"mlp"``, ``"cnn"``, ``"transformer"``), as
            :func:`lrkit.advise` names it.
        batch_size: default training batch size.

    Example:
        >>> from lrkit.tasks import get_task
        >>> task = get_task("digits")
        >>> setup = task.setup(lr=1e-3, seed=0)
        >>> type(setup.optimizer).__name__
        'Adam'
    """

    name: str
    description: str
    optimizer: str
    loss: str
    budget: int
    default_lr: float
    model: str = "mlp"
    batch_size: int = 64
    build_model: Callable[[], nn.Module] = field(default=nn.Identity, repr=False, compare=False)
    data: str = field(default="", repr=False)

    def setup(
        self, *, lr: float | None = None, seed: int = 0, batch_size: int | None = None
    ) -> Setup:
        """A fresh, deterministic model + optimizer + loaders (+ ``val_loader``) for ``seed``.

        The same ``seed`` gives identical initial weights and the same training batches; the
        global RNG state is left untouched. ``lr`` defaults to :attr:`default_lr`.
        """
        lr = self.default_lr if lr is None else check_real("lr", lr, minimum=0.0)
        seed = check_int("seed", seed, minimum=0)
        batch_size = self.batch_size if batch_size is None else batch_size
        batch_size = check_int("batch_size", batch_size, minimum=2)
        x_train, y_train, x_val, y_val = load(self.data or self.name)
        with seeded(seed):
            model = self.build_model()
        optimizer = make_optimizer(self.optimizer, list(model.parameters()), lr)
        loss_fn: nn.Module
        if self.loss == "classification":
            loss_fn = nn.CrossEntropyLoss()
        elif self.loss == "regression":
            loss_fn = nn.MSELoss()
        else:
            loss_fn = SequenceCrossEntropy()
        train_loader = BatchLoader(
            x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed, drop_last=True
        )
        val_loader = BatchLoader(x_val, y_val, batch_size=512, shuffle=False)
        return Setup(
            model=model,
            optimizer=optimizer,
            train_loader=train_loader,
            loss_fn=loss_fn,
            val_loader=val_loader,
        )


_SEQ_LEN = 64

_TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            name="digits",
            description="scikit-learn digits (8x8 images, 10 classes), MLP 64-128-128-10, Adam",
            optimizer="adam",
            loss="classification",
            budget=300,
            default_lr=3e-3,
            model="mlp",
            batch_size=64,
            build_model=lambda: mlp([64, 128, 128, 10]),
        ),
        Task(
            name="digits_cnn",
            description="scikit-learn digits as 1x8x8 images, 2-layer CNN (8, 16 channels) "
            "with BatchNorm, SGD + momentum 0.9",
            optimizer="sgd_momentum",
            loss="classification",
            budget=150,
            default_lr=0.03,
            model="cnn",
            batch_size=64,
            build_model=_digits_cnn,
            data="digits",
        ),
        Task(
            name="diabetes",
            description="scikit-learn diabetes regression (10 features, standardised target), "
            "MLP 10-64-64-1, RMSprop",
            optimizer="rmsprop",
            loss="regression",
            budget=100,
            default_lr=1e-3,
            model="mlp",
            batch_size=32,
            build_model=lambda: mlp([10, 64, 64, 1]),
        ),
        Task(
            name="breast_cancer",
            description="scikit-learn breast cancer (30 features, 2 classes), MLP with "
            "BatchNorm 30-64-64-2, AdamW (weight decay 0.01)",
            optimizer="adamw",
            loss="classification",
            budget=100,
            default_lr=3e-3,
            model="mlp",
            batch_size=32,
            build_model=lambda: mlp([30, 64, 64, 2], batchnorm=True),
        ),
        Task(
            name="synthetic_cls",
            description="generated 5-class problem (20 features, labels of a random teacher "
            "network, 10% flipped), MLP with BatchNorm 20-64-64-5, AdamW (weight decay 0.01)",
            optimizer="adamw",
            loss="classification",
            budget=300,
            default_lr=3e-3,
            model="mlp",
            batch_size=64,
            build_model=lambda: mlp([20, 64, 64, 5], batchnorm=True),
        ),
        Task(
            name="synthetic",
            description="generated regression onto a random teacher network (16 features, "
            "noise 0.3), MLP 16-64-64-1, SGD + momentum 0.9",
            optimizer="sgd_momentum",
            loss="regression",
            budget=300,
            default_lr=0.03,
            model="mlp",
            batch_size=64,
            build_model=lambda: mlp([16, 64, 64, 1]),
        ),
        Task(
            name="charlm",
            description="character language model on scikit-learn's dataset descriptions "
            f"(sequences of {_SEQ_LEN}), one-layer causal transformer (width 64), Adam",
            optimizer="adam",
            loss="language_model",
            budget=150,
            default_lr=3e-3,
            model="transformer",
            batch_size=16,
            build_model=lambda: CharTransformer(len(CHARSET), _SEQ_LEN),
        ),
    )
}


def list_tasks() -> list[Task]:
    """Every built-in task, ``digits`` (the demo's default) first.

    Example:
        >>> from lrkit.tasks import list_tasks
        >>> [t.name for t in list_tasks()][0]
        'digits'
    """
    return list(_TASKS.values())


def get_task(name: str) -> Task:
    """The built-in task called ``name``; ValueError listing the valid names otherwise.

    Example:
        >>> from lrkit.tasks import get_task
        >>> get_task("charlm").loss
        'language_model'
    """
    if not isinstance(name, str) or name not in _TASKS:
        valid = ", ".join(repr(n) for n in _TASKS)
        raise ValueError(f"task must be one of {valid}, but got task={name!r}")
    return _TASKS[name]
