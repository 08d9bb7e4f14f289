"""Data for the built-in tasks: small, offline, deterministic tensors (cached per process).

Every loader here is built from data that ships with an installed package (scikit-learn's toy
datasets and their description files) or is generated from a fixed seed. Splits are fixed: they
depend on nothing but the task, so every training seed is scored on the same validation set.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lrkit._optional import MissingExtraError, require
from lrkit._validate import check_int

__all__ = ["Arrays", "BatchLoader", "clear_caches", "load"]

#: (x_train, y_train, x_val, y_val)
Arrays = tuple[Tensor, Tensor, Tensor, Tensor]

_SPLIT_SEED = 20240601  # fixed: the split never depends on the training seed


class BatchLoader:
    """A minimal, fast, deterministic loader of ``(inputs, targets)`` batches.

    Iterating yields one epoch. With ``shuffle=True`` each epoch draws a new permutation from the
    loader's own generator (seeded at construction), so two loaders built with the same seed yield
    the same batches, and the global torch RNG is never touched. ``drop_last`` keeps every
    training batch the same size (BatchNorm needs more than one sample).
    """

    def __init__(
        self,
        inputs: Tensor,
        targets: Tensor,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.inputs = inputs
        self.targets = targets
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def generator(self) -> torch.Generator:
        """The loader's own shuffling generator (like ``DataLoader.generator``)."""
        return self._generator

    def __len__(self) -> int:
        n = len(self.inputs)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.inputs)
        if self.shuffle:
            order = torch.randperm(n, generator=self._generator)
        else:
            order = torch.arange(n)
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.inputs[index], self.targets[index]


def _split(n: int, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(_SPLIT_SEED).permutation(n)
    return perm[n_val:], perm[:n_val]


def _standardize(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return (train - mean) / std, (val - mean) / std


def _tabular(x: np.ndarray, y: np.ndarray, n_val: int, *, regression: bool) -> Arrays:
    train_idx, val_idx = _split(len(x), n_val)
    x_train, x_val = _standardize(x[train_idx], x[val_idx])
    if regression:
        y_train, y_val = _standardize(y[train_idx].reshape(-1, 1), y[val_idx].reshape(-1, 1))
        return (
            torch.tensor(x_train, dtype=torch.float32),
            torch.tensor(y_train, dtype=torch.float32),
            torch.tensor(x_val, dtype=torch.float32),
            torch.tensor(y_val, dtype=torch.float32),
        )
    return (
        torch.tensor(x_train, dtype=torch.float32),
        torch.tensor(y[train_idx], dtype=torch.int64),
        torch.tensor(x_val, dtype=torch.float32),
        torch.tensor(y[val_idx], dtype=torch.int64),
    )


def _sklearn_datasets_dir() -> Path:
    """scikit-learn's ``datasets`` folder, found without importing it (that takes over a second)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("'sklearn' is needed for this feature: pip install 'lrkit[tasks]'")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets"


def _csv(name: str, *, delimiter: str = ",", skiprows: int = 0) -> np.ndarray | None:
    """A data file shipped with scikit-learn, read directly; None when it is not there."""
    path = _sklearn_datasets_dir() / "data" / name
    if not path.is_file():
        return None
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        return np.loadtxt(handle, delimiter=delimiter, skiprows=skiprows, dtype=np.float64)


@functools.cache
def _digits() -> Arrays:
    raw = _csv("digits.csv.gz")
    if raw is None:  # pragma: no cover - only if scikit-learn moves its files
        data = require("sklearn.datasets", "tasks").load_digits()
        raw = np.column_stack([data.data, data.target])
    # pixel values are 0..16: scale globally (per-pixel standardisation blows up border pixels)
    x = raw[:, :-1] / 16.0
    y = raw[:, -1].astype(np.int64)
    train_idx, val_idx = _split(len(x), 397)
    return (
        torch.tensor(x[train_idx], dtype=torch.float32),
        torch.tensor(y[train_idx]),
        torch.tensor(x[val_idx], dtype=torch.float32),
        torch.tensor(y[val_idx]),
    )


@functools.cache
def _diabetes() -> Arrays:
    x = _csv("diabetes_data_raw.csv.gz", delimiter=" ")
    y = _csv("diabetes_target.csv.gz")
    if x is None or y is None:  # pragma: no cover - only if scikit-learn moves its files
        data = require("sklearn.datasets", "tasks").load_diabetes()
        x, y = np.asarray(data.data), np.asarray(data.target)
    return _tabular(x, y, 110, regression=True)


@functools.cache
def _breast_cancer() -> Arrays:
    raw = _csv("breast_cancer.csv", skiprows=1)
    if raw is None:  # pragma: no cover - only if scikit-learn moves its files
        data = require("sklearn.datasets", "tasks").load_breast_cancer()
        raw = np.column_stack([data.data, data.target])
    return _tabular(raw[:, :-1], raw[:, -1].astype(np.int64), 169, regression=False)


@functools.cache
def _synthetic() -> Arrays:
    """Regression onto a fixed random teacher network with noise (generated, seed fixed)."""
    gen = torch.Generator().manual_seed(_SPLIT_SEED)
    n, d = 5120, 16
    x = torch.randn(n, d, generator=gen)
    w1 = torch.randn(d, 32, generator=gen) / d**0.5
    w2 = torch.randn(32, 1, generator=gen) / 32**0.5
    y = torch.tanh(x @ w1) @ w2 * 3.0 + 0.3 * torch.randn(n, 1, generator=gen)
    y = (y - y.mean()) / y.std()
    return x[:4096], y[:4096], x[4096:], y[4096:]


@functools.cache
def _synthetic_cls() -> Arrays:
    """5-class labels of a fixed random teacher network, 10% of them flipped (generated)."""
    gen = torch.Generator().manual_seed(_SPLIT_SEED + 1)
    n, d, k = 5120, 20, 5
    x = torch.randn(n, d, generator=gen)
    w1 = torch.randn(d, 64, generator=gen) / d**0.5
    w2 = torch.randn(64, k, generator=gen) / 64**0.5
    y = (torch.relu(x @ w1) @ w2).argmax(dim=1)
    flip = torch.rand(n, generator=gen) < 0.1
    y = torch.where(flip, torch.randint(0, k, (n,), generator=gen), y)
    return x[:4096], y[:4096], x[4096:], y[4096:]


#: characters kept by the character language model; anything else becomes "?"
CHARSET = "\n" + "".join(chr(c) for c in range(32, 127))


@functools.cache
def corpus_text() -> str:
    """The text of the character LM: scikit-learn's dataset description files, sorted by name."""
    root = _sklearn_datasets_dir() / "descr"
    paths = sorted(root.glob("*.rst"))
    if not paths:  # pragma: no cover - only if scikit-learn moves its files
        raise MissingExtraError(f"no dataset descriptions (*.rst) found in {root}")
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in paths)
    return "".join(c if c in CHARSET else "?" for c in text)


@functools.cache
def _charlm(seq_len: int) -> Arrays:
    text = corpus_text()
    lookup = {c: i for i, c in enumerate(CHARSET)}
    ids = torch.tensor([lookup[c] for c in text], dtype=torch.int64)
    n_seq = (len(ids) - 1) // seq_len
    inputs = ids[: n_seq * seq_len].view(n_seq, seq_len)
    targets = ids[1 : n_seq * seq_len + 1].view(n_seq, seq_len)
    # contiguous held-out block at the end of every 10 sequences: a fixed, leak-free split
    is_val = (torch.arange(n_seq) % 10) == 9
    return inputs[~is_val], targets[~is_val], inputs[is_val], targets[is_val]


def load(name: str) -> Arrays:
    """Tensors of a built-in task's data set (cached per process; callers must not modify)."""
    if name == "digits":
        return _digits()
    if name == "diabetes":
        return _diabetes()
    if name == "breast_cancer":
        return _breast_cancer()
    if name == "synthetic":
        return _synthetic()
    if name == "synthetic_cls":
        return _synthetic_cls()
    if name == "charlm":
        return _charlm(64)
    raise KeyError(name)


def clear_caches() -> None:
    """Forget every data set loaded so far: the next :func:`load` reads or generates it again."""
    for value in list(globals().values()):
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()
