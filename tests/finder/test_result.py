"""RangeTest: JSON round trip (NaN/inf explicit, never pickle), suggestions, plot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import ScriptedLoss, regression_data
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lrkit.finder import RangeTest, _rules, find_lr

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@given(
    values=hnp.arrays(np.float64, st.integers(1, 40), elements=floats),
    reason=st.sampled_from(["completed", "diverged", "non-finite"]),
)
@settings(max_examples=80, deadline=None)
def test_json_round_trip_is_exact(values: np.ndarray, reason: str) -> None:
    n = len(values)
    lrs = np.geomspace(1e-6, 1.0, n) if n > 1 else np.array([1e-3])
    original = RangeTest(
        lrs=lrs,
        losses=values,
        smoothed=values[::-1].copy(),
        stop_reason=reason,
        settings={"start_lr": 1e-6, "diverge_factor": None, "mode": "exp"},
    )
    text = json.dumps(original.to_dict(), allow_nan=False)  # strict JSON: no NaN literals
    back = RangeTest.from_dict(json.loads(text))
    np.testing.assert_array_equal(back.lrs, original.lrs)
    np.testing.assert_array_equal(back.losses, original.losses)  # NaN == NaN here
    np.testing.assert_array_equal(back.smoothed, original.smoothed)
    np.testing.assert_array_equal(back.steps, original.steps)
    assert back.stop_reason == reason and back.settings == original.settings


def test_round_trip_of_a_real_test_with_nan() -> None:
    values = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, float("nan"), 0.1, 0.1]
    model = torch.nn.Linear(6, 1)
    result = find_lr(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        None,
        regression_data(),
        step_fn=ScriptedLoss(values),
        num_steps=10,
    )
    data = result.to_dict()
    assert data["losses"][-1] == "nan" and data["stop_reason"] == "non-finite"
    back = RangeTest.from_dict(json.loads(json.dumps(data)))
    assert math.isnan(back.losses[-1])
    np.testing.assert_array_equal(back.train_losses, result.train_losses)
    assert back.group_ratios == result.group_ratios
    assert back.settings["num_steps"] == 10


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"format": "other"},
        {"format": "lrkit.range_test", "version": 99},
        {"format": "lrkit.range_test", "version": 1, "lrs": [1.0]},
        {
            "format": "lrkit.range_test",
            "version": 1,
            "lrs": [1.0],
            "losses": ["NaN!"],
            "smoothed": [1.0],
            "stop_reason": "completed",
        },
        {
            "format": "lrkit.range_test",
            "version": 1,
            "lrs": [1.0],
            "losses": [1.0],
            "smoothed": [1.0],
            "stop_reason": "bored",
        },
        {
            "format": "lrkit.range_test",
            "version": 1,
            "lrs": [1.0, 2.0],
            "losses": [1.0],
            "smoothed": [1.0],
            "stop_reason": "completed",
        },
    ],
)
def test_from_dict_rejects_bad_data(bad: object) -> None:
    with pytest.raises(ValueError):
        RangeTest.from_dict(bad)  # type: ignore[arg-type]


def test_suggestion_api_delegates_to_the_rules() -> None:
    from lrkit.finder._rules import METHODS, suggest, suggest_range

    lrs = np.geomspace(1e-5, 1.0, 60)
    x = np.log10(lrs)
    losses = 2.0 - np.tanh(x + 3) + np.where(x > -1, 40 * (x + 1) ** 2, 0.0)
    t = RangeTest(lrs=lrs, losses=losses, smoothed=losses.copy(), stop_reason="completed")
    for method in METHODS:
        for schedule in ("constant", "cosine"):
            assert t.suggest(method, schedule=schedule) == suggest(
                lrs, losses, t.smoothed, method, schedule=schedule
            )
    default = suggest(lrs, losses, t.smoothed)
    assert t.suggestion == default.lr and t.suggestion_reason == default.reason
    assert t.suggest_range() == suggest_range(lrs, losses, t.smoothed)
    assert list(t.suggest_all()) == list(METHODS)


def test_the_optimizer_is_recorded_and_steers_the_default_rule() -> None:
    from lrkit.finder._rules import suggest

    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = find_lr(model, opt, torch.nn.functional.mse_loss, regression_data(4), num_steps=60)
    assert result.settings["optimizer"] == "SGD" and result.optimizer == "SGD"
    again = RangeTest.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.optimizer == "SGD"
    args = (result.lrs, result.losses, result.smoothed)
    assert result.suggest() == suggest(*args, optimizer="sgd")
    assert result.suggest(optimizer="Adam") == suggest(*args, optimizer="adaptive")
    # a curve with a clear descent and a wide bottom: the two families answer differently
    lrs = np.geomspace(1e-6, 1.0, 80)
    x = np.log10(lrs)
    losses = 2.0 - np.clip(x + 5, 0, 1) + np.where(x > -1.5, 30 * (x + 1.5) ** 2, 0.0)
    t = RangeTest(lrs, losses, losses.copy(), "completed", settings={"optimizer": "SGD"})
    assert t.suggestion is not None and t.suggest(optimizer="AdamW").lr is not None
    ratio = _rules._FACTORS["sgd"]["constant"] / _rules._FACTORS["adaptive"]["constant"]
    assert t.suggestion == pytest.approx(ratio * t.suggest(optimizer="AdamW").lr)  # type: ignore[operator]
    assert RangeTest(lrs, losses, losses.copy(), "completed").optimizer is None


def test_plot_marks_suggestion_range_and_non_finite_points() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs = np.geomspace(1e-5, 1.0, 40)
    x = np.log10(lrs)
    losses = 2.0 - np.tanh(x + 3) + np.where(x > -1, 40 * (x + 1) ** 2, 0.0)
    losses[-1] = np.nan
    smoothed = losses.copy()
    t = RangeTest(lrs=lrs, losses=losses, smoothed=smoothed, stop_reason="non-finite")
    ax = t.plot()
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert "non-finite loss" in labels
    suggestion = t.suggest()
    assert suggestion.lr is not None and t.suggest_range() is not None
    assert any(label.startswith("lrkit: ") for label in labels)
    assert any(
        line.get_xdata()[0] == suggestion.lr
        for line in ax.get_lines()
        if len(line.get_xdata()) == 2 and line.get_linestyle() == "--"
    )
    assert "suggested range" in labels
    lag_free = [line for line in ax.get_lines() if line.get_label().startswith("lag-free")]
    assert len(lag_free) == 1 and len(lag_free[0].get_xdata()) == 39  # up to the NaN
    assert ax.get_xscale() == "log"
    crosses = [c for c in ax.collections if c.get_label() == "non-finite loss"]
    assert crosses and crosses[0].get_offsets()[0][0] == pytest.approx(lrs[-1])
    plt.close(ax.figure)
