from __future__ import annotations

import math
from typing import Any

import pytest

from lrkit.tune import tune

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is not installed")
matplotlib.use("Agg")


def objective(params: dict[str, Any], report: Any) -> float:
    x = math.log10(params["lr"]) + 3
    for step in range(1, 9):
        report(step, x * x + 1 / step)
    return x * x


def test_plot_draws_every_complete_and_pruned_trial() -> None:
    import matplotlib.pyplot as plt

    result = tune(
        objective,
        n_trials=20,
        strategy="random",
        seed=0,
        early_stopping="median",
        storage=":memory:",
        max_steps=8,
    )
    left, right = result.plot()
    complete = [t for t in result.trials if t.state == "complete"]
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert complete and pruned
    offsets = [c.get_offsets() for c in left.collections]
    # complete, pruned, and the best-trial ring
    assert [len(o) for o in offsets] == [len(complete), len(pruned), 1]
    assert sorted(offsets[0][:, 0]) == pytest.approx(sorted(t.params["lr"] for t in complete))
    assert tuple(offsets[2][0]) == pytest.approx((result.best_params["lr"], result.best_value))
    assert left.get_xscale() == "log"
    best_line = right.lines[0]
    assert best_line.get_ydata()[-1] == pytest.approx(result.best_value)
    assert "pruned" in right.get_title()
    plt.close(left.figure)


def test_plot_into_given_axes_and_rejects_a_wrong_count() -> None:
    import matplotlib.pyplot as plt

    result = tune(objective, n_trials=3, strategy="random", seed=0, storage=":memory:")
    fig, axes = plt.subplots(1, 2)
    assert result.plot(list(axes)) == list(axes)
    with pytest.raises(ValueError, match="two matplotlib Axes"):
        result.plot([axes[0]])
    plt.close(fig)
