"""The range-test curve the framework integrations share (``lrkit.integrations._curve``): its
example runs, and its arguments are checked, and default, as ``lrkit.find_lr``'s."""

from __future__ import annotations

import doctest
import importlib
import inspect
from typing import Any

import pytest
import torch

import lrkit
from lrkit.integrations import _curve
from lrkit.integrations._curve import RampCurve

RAMP_ARGS = ("start_lr", "end_lr", "num_steps", "mode", "smoothing", "diverge_factor")


def _defaults(fn: Any) -> dict[str, object]:
    params = inspect.signature(fn).parameters
    return {name: params[name].default for name in RAMP_ARGS}


def test_docstring_examples_run() -> None:
    failed, tried = doctest.testmod(_curve)
    assert failed == 0 and tried > 0


@pytest.mark.parametrize(
    ("extra", "name"),
    [(None, "RampCurve"), ("lightning", "LRFinderCallback"), ("transformers", "find_lr")],
)
def test_the_ramp_defaults_are_lrkit_find_lrs(extra: str | None, name: str) -> None:
    if extra is None:
        fn = RampCurve
    else:
        pytest.importorskip(extra, reason=f"the '{extra}' extra is not installed")
        fn = getattr(importlib.import_module(f"lrkit.integrations.{extra}"), name)
    assert _defaults(fn) == _defaults(lrkit.find_lr)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(start_lr=1.0, end_lr=0.5), "end_lr must be a number > start_lr=1"),
        (dict(num_steps=2_000_000), r"num_steps must be an integer in \[10, 1_000_000\]"),
        (dict(mode="cos"), "mode must be one of 'exp', 'linear'"),
        (dict(diverge_factor=1.0), "diverge_factor must be a number > 1"),
    ],
)
def test_bad_ramps_are_the_finders_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RampCurve(**kwargs)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=message):
        lrkit.find_lr(model, opt, None, [], **kwargs)
