"""run_race end to end on a small setup: the plan, the halving, the accounting, the result."""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lrkit.race import RaceResult, lattice, run_race
from lrkit.race._plan import MIN_RUNG_STEPS


def _state(setup: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return copy.deepcopy(setup["model"].state_dict()), copy.deepcopy(
        setup["optimizer"].state_dict()
    )


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_the_race_picks_the_best_last_rung_score_and_counts_every_step(
    setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = _state(setup)
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    result = run_race(setup, schedule="cosine", total_steps=60, budget=3)
    # nothing touched, nothing written
    assert _equal(_state(setup), before)
    assert random.getstate() == rng[0]
    assert torch.equal(torch.get_rng_state(), rng[2])
    assert np.random.get_state()[1].tolist() == rng[1][1].tolist()  # type: ignore[index]
    assert list(tmp_path.iterdir()) == []
    # the plan: lattice points of the interval, rungs within the budget
    assert isinstance(result, RaceResult)
    assert result.interval is not None and result.rungs
    points = lattice(result.interval.low, result.interval.high)
    lrs = [c.lr for c in result.candidates]
    assert set(lrs) <= set(points) and len(lrs) == result.rungs[0].count
    assert result.rungs[0].steps >= MIN_RUNG_STEPS
    # the accounting: the range test plus every trial's steps, within the budget
    trained = sum(t.steps_done for c in result.candidates for t in c.trials)
    test_steps = len(result.range_test.train_losses)
    assert result.spent_steps == test_steps + trained
    assert result.stage_steps["range test"] == test_steps
    assert sum(v for k, v in result.stage_steps.items() if k.startswith("rung")) == trained
    assert result.spent_budgets == pytest.approx(result.spent_steps / 60)
    assert result.spent_budgets <= 3.0
    # successive halving: each rung's survivors are the best of the rung before
    for r in range(1, len(result.rungs)):
        prev = {c.lr: c.trials[r - 1].value for c in result.candidates if len(c.trials) >= r}
        on = {c.lr for c in result.candidates if len(c.trials) > r}
        assert len(on) <= result.rungs[r].count
        cut = max(prev[lr] for lr in on)  # type: ignore[type-var]
        assert all(v is None or v >= cut for lr, v in prev.items() if lr not in on)  # type: ignore[operator]
    # the winner: the lowest validation loss on the last rung
    last = len(result.rungs) - 1
    finals = {c.lr: c.trials[-1].value for c in result.candidates if len(c.trials) == last + 1}
    assert result.lr == min(finals, key=lambda lr: finals[lr])  # type: ignore[arg-type,return-value]
    winner = result.winner
    assert winner is not None and winner.lr == result.lr and winner.state == "complete"
    assert "won the race" in result.reason
    assert result.validation == "val_loader"
    # every trial has its validation curve, ending at its length
    for c in result.candidates:
        for t in c.trials:
            if t.state == "complete":
                assert t.val_steps[-1] == t.steps == t.steps_done
                assert t.value == pytest.approx(t.val_losses[-1])
    data = json.loads(json.dumps(result.to_dict()))
    assert data["lr"] == result.lr and data["spent_steps"] == result.spent_steps
    assert len(data["candidates"]) == len(result.candidates)


def test_the_same_race_twice_gives_the_same_answer(setup: dict[str, Any]) -> None:
    a = run_race(setup, total_steps=60, budget=2, seed=3)
    b = run_race(setup, total_steps=60, budget=2, seed=3)
    assert a.lr == b.lr and a.spent_steps == b.spent_steps
    assert [c.to_dict() for c in a.candidates] == [c.to_dict() for c in b.candidates]


def test_budget_zero_is_the_range_tests_quick_answer(setup: dict[str, Any]) -> None:
    result = run_race(setup, schedule="cosine", total_steps=200, budget=0)
    assert result.candidates == [] and result.rungs == []
    assert result.lr == result.range_test.suggest(schedule="cosine").lr
    assert result.spent_steps == len(result.range_test.train_losses) <= 100
    assert result.reason.startswith("quick answer")


def test_a_budget_too_small_for_a_race_is_a_clear_error(setup: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"budget=0.5 is too small.*budget >= .*budget=0"):
        run_race(setup, total_steps=100, budget=0.5)


def test_without_validation_data_a_tenth_of_the_training_batches_is_held_back(
    setup: dict[str, Any],
) -> None:
    setup = dict(setup, val_loader=None)
    result = run_race(setup, total_steps=40, budget=3)
    assert "last 2 of 20 training batches held back" in result.validation
    assert any("held back" in n for n in result.notes)
    assert result.lr is not None


def test_no_validation_data_and_nothing_to_hold_back_is_a_clear_error(
    setup: dict[str, Any],
) -> None:
    batches = setup["train_loader"]
    setup = dict(setup, val_loader=None, train_loader=(b for b in batches))
    with pytest.raises(ValueError, match="no validation data: pass val_loader"):
        run_race(setup, total_steps=40, budget=3)


def test_a_torch_dataloader_is_split_by_samples(setup: dict[str, Any]) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from lrkit.race._holdout import hold_out

    x = torch.arange(100.0).reshape(50, 2)
    loader = DataLoader(TensorDataset(x, x.sum(1)), batch_size=8, shuffle=True)
    train, val, text = hold_out(loader)
    seen = torch.cat([b[0] for b in train])  # type: ignore[union-attr]
    held = torch.cat([b[0] for b in val])  # type: ignore[union-attr]
    assert len(seen) == 45 and len(held) == 5 and "5 of 50" in text
    assert set(seen[:, 0].tolist()).isdisjoint(held[:, 0].tolist())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": -1}, "budget must be a number >= 0"),
        ({"budget": float("nan")}, "budget must be a finite number"),
        ({"total_steps": None}, "total_steps must be given for a Setup"),
        ({"workers": 2}, "workers must be 1 for a Setup"),
        ({"schedule": "cosinus"}, "unknown"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"compress": True}, "compress must be one of 'warmup', 'all', 'none'"),
        ({"tolerance": -0.1}, "tolerance must be a number >= 0"),
        ({"study_name": " "}, "study_name must be a non-empty string"),
        ({"range_test": "x"}, "range_test must be None or a RangeTest"),
    ],
)
def test_bad_arguments_are_clear_errors(
    setup: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    options: dict[str, Any] = {"total_steps": 50, "budget": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_race(setup, **options)


def test_a_bad_target_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="task must be one of"):
        run_race("nope")
    with pytest.raises(ValueError, match="target must provide model"):
        run_race({"model": torch.nn.Linear(2, 1)}, total_steps=10)


def test_a_persistent_study_resumes_without_spending_again(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    storage = str(tmp_path / "race.db")
    first = run_race(setup, total_steps=50, budget=2, storage=storage, study_name="r")
    again = run_race(setup, total_steps=50, budget=2, storage=storage, study_name="r")
    assert again.lr == first.lr and again.spent_steps == first.spent_steps
    assert any("resumed" in n for n in again.notes)
    import optuna

    study = optuna.load_study(study_name="r", storage=f"sqlite:///{storage}")
    assert len(study.trials) == sum(len(c.trials) for c in first.candidates)
    with pytest.raises(ValueError, match="other settings"):
        run_race(setup, total_steps=50, budget=3, storage=storage, study_name="r")


def test_the_plot_draws_every_candidate(setup: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    result = run_race(setup, total_steps=50, budget=2)
    ax = result.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("winner" in label for label in labels)
    assert len([x for x in labels if "winner" not in x and "Guard" not in x]) >= 1
    assert "Race" in ax.get_title(loc="left")


def test_the_progress_callback_sees_both_stages(setup: dict[str, Any]) -> None:
    seen: dict[str, list[tuple[int, int]]] = {}
    result = run_race(
        setup,
        total_steps=50,
        budget=2,
        progress=lambda stage, done, total: seen.setdefault(stage, []).append((done, total)),
    )
    assert set(seen) == {"range test", "race"}
    race = seen["race"]
    assert race[0][0] == 0 and race[-1][0] == race[-1][1] == sum(r.cost for r in result.rungs)
    assert all(b[0] >= a[0] for a, b in zip(race, race[1:], strict=False))


def _scripted(monkeypatch: pytest.MonkeyPatch, score: Any) -> list[tuple[float, int]]:
    """Every trial returns ``score(lr)`` without training; returns the (lr, steps) it saw."""
    from lrkit.race import _trial

    seen: list[tuple[float, int]] = []

    def train_candidate(setup: Any, *, lr: float, steps: int, **kwargs: Any) -> Any:
        seen.append((lr, steps))
        value = score(lr)
        return _trial.TrialOutcome(steps, [steps], [value], value, None)

    monkeypatch.setattr(_trial, "train_candidate", train_candidate)
    return seen


def test_halving_keeps_exactly_the_best_third_and_the_best_wins(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _scripted(monkeypatch, lambda lr: 1.0 + (math.log10(lr) + 2.2) ** 2)
    result = run_race(setup, total_steps=300, budget=3)
    lrs = sorted(c.lr for c in result.candidates)
    rung0 = [lr for lr, steps in seen if steps == result.rungs[0].steps]
    assert sorted(rung0) == lrs
    expected = sorted(lrs, key=lambda lr: abs(math.log10(lr) + 2.2))[: result.rungs[1].count]
    assert sorted(c.lr for c in result.candidates if len(c.trials) == 2) == sorted(expected)
    assert result.lr == min(lrs, key=lambda lr: abs(math.log10(lr) + 2.2))
    assert result.spent_steps == len(result.range_test.train_losses) + sum(
        steps for _, steps in seen
    )


def test_a_tolerance_prefers_the_lowest_lr_close_to_the_best(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _scripted(monkeypatch, lambda lr: 1.0 + 0.01 * (math.log10(lr) + 1.75) ** 2)
    exact = run_race(setup, total_steps=300, budget=3)
    loose = run_race(setup, total_steps=300, budget=3, tolerance=0.5)
    finals = [c.lr for c in loose.candidates if len(c.trials) == len(loose.rungs)]
    assert exact.lr == min(finals, key=lambda lr: abs(math.log10(lr) + 1.75))
    assert loose.lr == min(finals) and loose.lr < exact.lr  # type: ignore[operator]
    assert "the lowest lr within 50% of the best" in loose.reason


def test_the_quick_answer_of_an_sgd_task_uses_the_sgd_factors() -> None:
    result = run_race("digits_cnn", budget=0)  # SGD + momentum: "sgd_momentum" to the advisor
    assert result.lr == result.range_test.suggest(schedule="constant", optimizer="SGD").lr
    assert "sgd optimizer" in result.reason


class _Flat(torch.nn.Module):
    """Output ignores the weights: the range test's curve is flat noise."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * 0.0 + x[:, :1]


def test_a_curve_without_answer_is_retested_longer_then_answered_conservatively(
    setup: dict[str, Any],
) -> None:
    model = _Flat()
    flat = dict(setup, model=model, optimizer=torch.optim.Adam(model.parameters()))
    result = run_race(flat, total_steps=100, budget=0, range_steps=20)
    assert any("a 3x longer one ran" in n for n in result.notes)
    assert result.spent_steps == 20 + 60  # both tests are counted
    last = float(result.range_test.lrs[-1])
    assert result.lr == pytest.approx(last / 100)
    assert "conservative 1/100" in result.reason and "budget > 0" in result.reason


def test_the_seed_fixes_the_range_test_of_a_model_with_dropout(setup: dict[str, Any]) -> None:
    """Dropout draws from the global RNG: the caller's RNG state must not change the answer."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(32, 1)
    )
    setup = {**setup, "model": model, "optimizer": torch.optim.Adam(model.parameters())}
    answers = []
    for state in (1, 2):
        torch.manual_seed(state)  # as if the caller had drawn other random numbers before
        result = run_race(setup, total_steps=400, budget=0, seed=5)
        answers.append((result.lr, list(result.range_test.losses)))
    assert answers[0] == answers[1]
