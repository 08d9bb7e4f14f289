from __future__ import annotations

import math
from typing import Any

import pytest

from lrkit.tuning import tune

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


def test_diverged_values_are_clipped_to_the_top_edge() -> None:
    import matplotlib.pyplot as plt

    from lrkit.tuning import TrialRecord, TuneResult

    trials = [
        TrialRecord(0, {"lr": 1e-3}, "complete", 0.5, 8),
        TrialRecord(1, {"lr": 1e-2}, "complete", 0.7, 8),
        TrialRecord(2, {"lr": 1e-1}, "pruned", 1e9, 1),
        TrialRecord(3, {"lr": 1e-4}, "pruned", 0.9, 2),
    ]
    result = TuneResult({"lr": 1e-3}, 0.5, 0, trials, study_name="s", storage=":memory:")
    left, _ = result.plot()
    # the axis ends twice the complete trials' spread above the worst of them: 0.7 + 2 * 0.2
    assert left.get_ylim() == pytest.approx((0.5 - 0.05 * 0.6, 1.1))
    complete, pruned, off_scale, best = (c.get_offsets() for c in left.collections)
    assert complete.tolist() == [[1e-3, 0.5], [1e-2, 0.7]]
    assert pruned.tolist() == [[1e-4, 0.9]]
    assert off_scale.tolist() == [[1e-1, pytest.approx(1.1)]]
    assert best.tolist() == [[1e-3, 0.5]]
    plt.close(left.figure)

    # nothing far above the complete trials: no clipping, matplotlib's own limits
    calm = TuneResult({"lr": 1e-3}, 0.5, 0, trials[:2], study_name="s", storage=":memory:")
    left, _ = calm.plot()
    assert len(left.collections) == 2 and left.get_ylim()[1] < 1.1  # complete, best
    plt.close(left.figure)
