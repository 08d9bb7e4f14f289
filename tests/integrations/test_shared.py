"""What the framework integrations share, without a framework: the range-test curve
(``lrkit.integrations._curve``: its arguments are checked, and default, as ``lrkit.find_lr``'s;
it smooths and stops by find_lr's rule) and the param-group lrs (``_groups``); their examples
run."""

from __future__ import annotations

import doctest
import importlib
import inspect
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lrkit
from lrkit.finder import ema
from lrkit.integrations import _curve, _groups
from lrkit.integrations._curve import RampCurve

RAMP_ARGS = ("start_lr", "end_lr", "num_steps", "mode", "smoothing", "diverge_factor")


def _defaults(fn: Any) -> dict[str, object]:
    params = inspect.signature(fn).parameters
    return {name: params[name].default for name in RAMP_ARGS}


@pytest.mark.parametrize("module", [_curve, _groups], ids=lambda m: m.__name__)
def test_docstring_examples_run(module: Any) -> None:
    failed, tried = doctest.testmod(module)
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


@settings(max_examples=200, deadline=None)
@given(
    losses=st.lists(
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=1, max_size=40
    ),
    smoothing=st.sampled_from([0.0, 0.5, 0.98]),
    factor=st.sampled_from([None, 1.5, 4.0]),
)
def test_the_curve_is_ema_and_stops_where_the_rule_says(
    losses: list[float], smoothing: float, factor: float | None
) -> None:
    curve = RampCurve(num_steps=40, smoothing=smoothing, diverge_factor=factor)
    for loss in losses:
        if curve.add(loss):
            break
    n = len(curve.losses)
    assert curve.losses == losses[:n] and curve.smoothed == ema(losses[:n], smoothing).tolist()
    s = curve.smoothed
    # the first point above best + (factor - 1) * |best| of the points before it
    above = (
        []
        if factor is None
        else [k for k in range(1, n) if s[k] > min(s[:k]) + (factor - 1.0) * abs(min(s[:k]))]
    )
    if above:
        assert n == above[0] + 1 and curve.stop_reason == "diverged"
    else:
        assert n == len(losses) and curve.stop_reason == ("completed" if n == 40 else None)
