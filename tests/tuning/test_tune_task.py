"""The objective behind ``lrkit tune --task NAME``."""

from __future__ import annotations

import math

import pytest
import torch

from lrkit.tasks import get_task, train
from lrkit.tuning import tune
from lrkit.tuning._task import TaskObjective


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_task_objective_trains_the_task_and_reports_its_validation_loss() -> None:
    reports: list[tuple[int, float]] = []
    objective = TaskObjective("synthetic", steps=18, reports=3)
    value = objective({"lr": 0.02}, lambda step, v: reports.append((step, v)))
    plain = train(get_task("synthetic"), lr=0.02, steps=18, seed=0)
    assert value == pytest.approx(plain.final_val_loss, rel=1e-6)
    assert [s for s, _ in reports] == [6, 12, 18]
    assert reports[-1][1] == value
    # a Task object works the same as its name (e.g. the benchmark's held-out tasks)
    same = TaskObjective(get_task("synthetic"), steps=18, reports=3)({"lr": 0.02}, lambda *a: 0)
    assert same == value
    assert TaskObjective(get_task("synthetic")).budget == get_task("synthetic").budget


def test_task_objective_prunes_a_diverging_learning_rate() -> None:
    result = tune(
        TaskObjective("synthetic", steps=30),
        space={"lr": [1e-2, 1e4]},
        strategy="grid",
        storage=":memory:",
    )
    by_lr = {t.params["lr"]: t for t in result.trials}
    assert by_lr[1e-2].state == "complete"
    assert by_lr[1e4].state == "pruned"
    assert by_lr[1e4].reason is not None and by_lr[1e4].reason.startswith("diverged")
    assert by_lr[1e4].steps is not None and by_lr[1e4].steps <= 30


def test_task_objective_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="no-such"):
        TaskObjective("no-such")
    with pytest.raises(ValueError, match="steps must be"):
        TaskObjective("synthetic", steps=0)
    assert math.isfinite(TaskObjective("synthetic", steps=3)({"lr": 1e-3}, lambda *a: None))
