"""Shared helpers for the range-test tests.

``lrkit.finder._rules`` (the suggestion rules) is developed separately; when it is not there
yet, a minimal stand-in with the same interface is installed so the engine can be tested.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import torch


def _install_stub_rules() -> None:
    try:
        importlib.import_module("lrkit.finder._rules")
        return
    except ModuleNotFoundError as exc:
        if exc.name != "lrkit.finder._rules":
            raise

    @dataclass(frozen=True)
    class Suggestion:
        method: str
        lr: float | None
        index: int | None
        reason: str

    methods = ("lrkit", "steepest", "valley", "minimum", "slide")

    def suggest(lrs, losses, smoothed, method="lrkit", *, schedule="constant"):  # type: ignore[no-untyped-def]
        s = np.asarray(smoothed, dtype=float)
        ok = np.isfinite(s)
        if ok.sum() < 5:
            return Suggestion(method, None, None, "too few points")
        i = int(np.nanargmin(np.where(ok, s, np.nan)))
        return Suggestion(method, float(lrs[i]) / 10, i, "stub: minimum / 10")

    def suggest_range(lrs, losses, smoothed, *, schedule="constant"):  # type: ignore[no-untyped-def]
        hit = suggest(lrs, losses, smoothed)
        return None if hit.lr is None else (hit.lr / 10, hit.lr)

    module = types.ModuleType("lrkit.finder._rules")
    module.Suggestion = Suggestion  # type: ignore[attr-defined]
    module.METHODS = methods  # type: ignore[attr-defined]
    module.suggest = suggest  # type: ignore[attr-defined]
    module.suggest_range = suggest_range  # type: ignore[attr-defined]
    sys.modules["lrkit.finder._rules"] = module


_install_stub_rules()


class ScriptedLoss:
    """``step_fn`` whose losses are a given sequence (each tied to the parameters for grad).

    ``raise_at`` raises ``exc`` at that call; ``calls`` counts the calls.
    """

    def __init__(
        self,
        values: Sequence[float],
        *,
        raise_at: int | None = None,
        exc: BaseException | None = None,
    ) -> None:
        self.values = list(values)
        self.raise_at = raise_at
        self.exc = exc
        self.calls = 0

    def __call__(self, model: torch.nn.Module, batch: object) -> torch.Tensor:
        i = self.calls
        self.calls += 1
        if self.raise_at is not None and i == self.raise_at:
            assert self.exc is not None
            raise self.exc
        tie = sum((p * 0).sum() for p in model.parameters())
        x = batch[0] if isinstance(batch, (tuple, list)) else None
        out = model(x) if isinstance(x, torch.Tensor) else None
        base = (out * 0).sum() if out is not None else 0.0
        return tie + base + torch.tensor(self.values[i % len(self.values)], dtype=torch.float32)


def regression_data(n_batches: int = 4, batch: int = 16, features: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(features, 1, generator=g)
    out = []
    for _ in range(n_batches):
        x = torch.randn(batch, features, generator=g)
        out.append((x, x @ w + 0.1 * torch.randn(batch, 1, generator=g)))
    return out


@pytest.fixture
def data():  # type: ignore[no-untyped-def]
    return regression_data()
