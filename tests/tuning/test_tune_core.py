from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from lrkit.tuning import auto_range, load_result, mask_url, tune
from lrkit.tuning._space import parse_space
from lrkit.tuning._tune import _default_study_name

optuna.logging.set_verbosity(optuna.logging.ERROR)


def bowl(params: dict[str, Any], report: Any) -> float:
    """Minimum 0 at lr = 1e-3; intermediate values approach the final one from above."""
    x = math.log10(params["lr"]) + 3.0
    for step in range(1, 9):
        report(step, x * x + 1.0 / step)
    return x * x


def test_grid_finds_the_exact_minimum_and_defaults_to_the_full_grid() -> None:
    result = tune(bowl, strategy="grid", storage=":memory:")
    assert len(result.trials) == 19  # default space 1e-6..1 at 3 points per decade
    assert result.best_params == {"lr": 1e-3}
    assert result.best_value == 0.0
    assert sorted(t.params["lr"] for t in result.trials)[9] == pytest.approx(1e-3)
    assert all(t.state == "complete" and t.steps == 8 for t in result.trials)
    assert result.total_steps == 19 * 8


@pytest.mark.parametrize("strategy", ["random", "qmc", "tpe", "gp"])
def test_every_strategy_minimises_and_is_reproducible(strategy: str) -> None:
    a = tune(bowl, strategy=strategy, n_trials=12, seed=3, storage=":memory:")
    b = tune(bowl, strategy=strategy, n_trials=12, seed=3, storage=":memory:")
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert len(a.trials) == 12
    values = [t.value for t in a.trials if t.state == "complete"]
    assert a.best_value == min(values)
    assert a.best_value < 1.0  # within a decade of 1e-3 in 12 trials on 6 decades


@pytest.mark.parametrize("stopping", ["median", "asha", "hyperband"])
def test_early_stopping_prunes_bad_learning_rates(stopping: str) -> None:
    result = tune(
        bowl,
        strategy="random",
        n_trials=30,
        seed=0,
        early_stopping=stopping,
        storage=":memory:",
        max_steps=8,
    )
    pruned = [t for t in result.trials if t.state == "pruned"]
    complete = [t for t in result.trials if t.state == "complete"]
    assert pruned, "nothing was pruned"
    assert all(t.steps is not None and t.steps < 8 for t in pruned)
    assert all(t.reason and t.reason.startswith("pruned at step") for t in pruned)

    # pruned trials are the worse ones: their lr is on average further from 1e-3
    def dist(t: Any) -> float:
        return abs(math.log10(t.params["lr"]) + 3)

    assert sum(map(dist, pruned)) / len(pruned) > sum(map(dist, complete)) / len(complete)
    assert result.total_steps < 30 * 8


def test_failures_are_recorded_and_the_study_survives() -> None:
    outcomes = iter([RuntimeError("boom"), float("nan"), "abc", True, 2.0, None, 1.0])

    def flaky(params: dict[str, Any], report: Any) -> Any:
        out = next(outcomes)
        if isinstance(out, Exception):
            raise out
        return out

    result = tune(flaky, strategy="random", n_trials=7, seed=0, storage=":memory:")
    states = [(t.state, t.reason) for t in result.trials]
    assert states == [
        ("failed", "RuntimeError: boom"),
        ("failed", "objective returned nan, expected a finite number"),
        ("failed", "objective returned str 'abc', expected a number"),
        ("failed", "objective returned a bool (True), expected a number"),
        ("complete", None),
        ("failed", "objective returned NoneType None, expected a number"),
        ("complete", None),
    ]
    assert result.best_value == 1.0 and result.best_number == 6
    assert result.counts == {"complete": 2, "pruned": 0, "failed": 5, "running": 0, "waiting": 0}


def test_diverging_reports_prune_the_trial() -> None:
    def diverge(params: dict[str, Any], report: Any) -> float:
        report(1, 1.0)
        report(2, float("inf"))
        return 0.0

    result = tune(diverge, strategy="random", n_trials=2, seed=0, storage=":memory:")
    assert [t.state for t in result.trials] == ["pruned", "pruned"]
    assert result.trials[0].reason == "diverged: reported inf at step 2"
    assert result.best_value is None and result.best_params == {}


def test_report_validates_its_arguments() -> None:
    def bad_step(params: dict[str, Any], report: Any) -> float:
        report(-1, 1.0)
        return 0.0

    result = tune(bad_step, strategy="random", n_trials=1, storage=":memory:")
    assert result.trials[0].state == "failed"
    assert "step must be an integer >= 0, but got step=-1" in str(result.trials[0].reason)


def test_optuna_style_objective() -> None:
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        return (math.log10(lr) + 2) ** 2

    result = tune(objective, strategy="tpe", n_trials=15, seed=1, storage=":memory:")
    assert len(result.trials) == 15
    assert abs(math.log10(result.best_params["lr"]) + 2) < 0.5
    with pytest.raises(ValueError, match="Optuna-style"):
        tune(objective, space={"lr": ("log", 1e-5, 1e-1)}, storage=":memory:")


def test_more_parameters_and_constants_reach_the_objective() -> None:
    seen: list[dict[str, Any]] = []

    def objective(params: dict[str, Any], report: Any) -> float:
        seen.append(params)
        penalty = 0.0 if params["schedule"] == "cosine(1000)" else 1.0
        return (math.log10(params["lr"]) + 3) ** 2 + penalty + params["warmup"]

    space = {
        "lr": ("log", 1e-5, 1e-1),
        "warmup": ("float", 0.0, 0.1),
        "schedule": ["cosine(1000)", "constant()"],
        "batch_size": [32, 64],
        "momentum": 0.9,
    }
    result = tune(objective, space=space, strategy="tpe", n_trials=20, seed=0, storage=":memory:")
    assert all(set(p) == {"lr", "warmup", "schedule", "batch_size", "momentum"} for p in seen)
    assert all(p["momentum"] == 0.9 for p in seen)
    assert result.best_params["momentum"] == 0.9
    assert result.best_params["schedule"] == "cosine(1000)"
    small = {k: v for k, v in space.items() if k != "batch_size"}
    small["lr"] = ("log", 1e-4, 1e-2)
    grid = tune(objective, space=small, strategy="grid", storage=":memory:", grid_per_decade=1)
    assert len(grid.trials) == 3 * 5 * 2
    assert grid.best_params == {
        "lr": 1e-3,
        "warmup": 0.0,
        "schedule": "cosine(1000)",
        "momentum": 0.9,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "bayes"}, "strategy must be one of 'grid', 'random', 'qmc', 'tpe', 'gp'"),
        ({"early_stopping": "patient"}, "early_stopping must be None or one of"),
        ({"n_trials": 0}, "n_trials must be an integer >= 1"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"space": {"lr": ("log", 1e-1, 1e-3)}}, "inverted"),
        ({"space": "wide"}, "space must be None, 'auto'"),
        ({"space": "auto"}, "setup must be a Setup or a task"),
        ({"storage": "ftp://x/y"}, "storage must be"),
        ({"storage": "results.txt"}, "storage must be"),
        ({"timeout": -1}, "timeout must be"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tune(bowl, **{"storage": ":memory:", **kwargs})


def test_objective_signature_is_checked() -> None:
    with pytest.raises(ValueError, match="objective must be"):
        tune(lambda: 0.0, storage=":memory:")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="objective must be"):
        tune(42, storage=":memory:")  # type: ignore[arg-type]


def test_sqlite_study_resumes_and_counts_toward_the_study_total(tmp_path: Path) -> None:
    storage = str(tmp_path / "study.db")
    first = tune(bowl, n_trials=5, strategy="random", seed=0, storage=storage, study_name="s")
    assert len(first.trials) == 5
    second = tune(bowl, n_trials=8, strategy="random", seed=1, storage=storage, study_name="s")
    assert len(second.trials) == 8
    assert [t.to_dict() for t in second.trials[:5]] == [t.to_dict() for t in first.trials]
    again = tune(bowl, n_trials=8, strategy="random", storage=storage, study_name="s")
    assert len(again.trials) == 8  # already finished: nothing runs
    shown = load_result(storage, "s")
    assert shown.best_value == second.best_value and len(shown.trials) == 8
    with pytest.raises(ValueError, match=r"studies there: s\)"):
        load_result(storage, "nope")
    with pytest.raises(ValueError, match="does not exist"):
        load_result(str(tmp_path / "missing.db"), "s")


def test_default_storage_is_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = tune(bowl, n_trials=3, strategy="random", seed=0)
    assert (tmp_path / "lrkit-tune.db").is_file()
    assert result.storage == "sqlite:///lrkit-tune.db"
    resumed = tune(bowl, n_trials=4, strategy="random", seed=0)
    assert resumed.study_name == result.study_name and len(resumed.trials) == 4


def test_default_study_name_depends_on_objective_space_and_strategy() -> None:
    space = parse_space(None)
    name = _default_study_name(bowl, space, "tpe")
    assert name == _default_study_name(bowl, space, "tpe")
    assert name.startswith("lrkit-bowl-")
    assert name != _default_study_name(bowl, space, "random")
    assert name != _default_study_name(bowl, parse_space({"lr": ("log", 1e-4, 1)}), "tpe")


def test_timeout_stops_starting_trials() -> None:
    import time

    def slow(params: dict[str, Any], report: Any) -> float:
        time.sleep(0.1)
        return 1.0

    result = tune(slow, n_trials=1000, strategy="random", timeout=0.35, storage=":memory:")
    assert 1 <= len(result.trials) <= 6


def test_to_dict_is_json_and_complete() -> None:
    result = tune(
        bowl,
        n_trials=4,
        strategy="grid",
        storage=":memory:",
        space={"lr": ("log", 1e-4, 1e-1)},
        grid_per_decade=1,
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["best_params"] == {"lr": 1e-3} and data["best_value"] == 0.0
    assert data["strategy"] == "grid" and data["early_stopping"] == "none"
    assert data["space"] == {"lr": ["log", 1e-4, 1e-1]}
    assert data["counts"]["complete"] == 4 and data["total_steps"] == 32
    assert {t["number"] for t in data["trials"]} == {0, 1, 2, 3}
    assert set(data["trials"][0]) == {
        "number",
        "params",
        "state",
        "value",
        "steps",
        "reason",
        "duration_s",
        "retry_of",
        "retried",
    }


def test_on_trial_sees_every_trial() -> None:
    seen: list[int] = []
    tune(
        bowl,
        n_trials=5,
        strategy="random",
        storage=":memory:",
        on_trial=lambda r: seen.append(r.number),
    )
    assert seen == [0, 1, 2, 3, 4]


def test_auto_range_is_a_decade_each_way_or_the_finder_range() -> None:
    # bounds are rounded to 6 significant digits so that they print and store cleanly
    assert auto_range(1e-2, (3e-3, 3e-2)) == (1e-3, 0.1)
    assert auto_range(1e-2, (1e-4, 1.0)) == (1e-4, 1.0)
    assert auto_range(3e-3, None) == (3e-4, 0.03)
    assert auto_range(2 / 3, None) == (0.0666667, 6.66667)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://me:s3cret@db:5432/hpo", "postgresql://me:***@db:5432/hpo"),
        ("postgresql+psycopg2://me:p%40ss@db/hpo", "postgresql+psycopg2://me:***@db/hpo"),
        ("postgresql://me:pa@ss:word@db:5432/hpo", "postgresql://me:***@db:5432/hpo"),
        ("postgresql://me:pa/ss@db", "postgresql://me:***@db"),
        ("postgresql://me@db/hpo", "postgresql://me@db/hpo"),
        ("postgresql://db/hpo?user=me&password=s3cret", "postgresql://db/hpo?user=me&password=***"),
        ("sqlite:///study.db", "sqlite:///study.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_unreachable_storage_is_a_clear_error_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql://tuner:TopSecret99@127.0.0.1:1/nowhere"
    with caplog.at_level("DEBUG"), pytest.raises(ValueError) as info:
        tune(bowl, n_trials=1, storage=url, study_name="x")
    message = str(info.value)
    assert message.startswith("cannot open storage 'postgresql+psycopg2://tuner:***@127.0.0.1:1/")
    assert "TopSecret99" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "TopSecret99" not in caplog.text
    with pytest.raises(ValueError) as info:
        load_result(url, "x")
    assert "TopSecret99" not in str(info.value)


def test_a_password_with_an_unencoded_at_sign_is_refused_unprinted() -> None:
    url = "postgresql://tuner:Top@Secret:99@127.0.0.1:1/nowhere"
    with pytest.raises(ValueError) as info:
        tune(bowl, n_trials=1, storage=url, study_name="x")
    message = str(info.value)
    assert message == (
        "storage must be a URL with each '@' of its password as %40, "
        "but got storage='postgresql://tuner:***@127.0.0.1:1/nowhere'"
    )


def test_postgres_study_runs_and_masks_its_url(postgres_url: str, study_name: str) -> None:
    result = tune(
        bowl, n_trials=4, strategy="random", seed=0, storage=postgres_url, study_name=study_name
    )
    password = postgres_url.split("@")[0].rpartition(":")[2]
    assert password not in json.dumps(result.to_dict())
    assert result.storage.startswith("postgresql+psycopg2://") and ":***@" in result.storage
    assert len(load_result(postgres_url, study_name).trials) == 4


def test_auto_space_runs_the_range_test_and_searches_around_its_suggestion() -> None:
    from lrkit.finder import find_lr
    from lrkit.tasks import get_task

    task = get_task("synthetic")
    result = tune(
        bowl, space="auto", setup=task, n_trials=5, strategy="random", seed=0, storage=":memory:"
    )
    # the same range test, run independently on the same seeded setup
    s = task.setup(seed=0)
    test = find_lr(s.model, s.optimizer, s.loss_fn, s.train_loader, step_fn=s.step_fn)
    assert test.suggestion is not None
    expected = auto_range(test.suggestion, test.suggest_range())
    assert result.range_test is not None
    assert result.range_test["suggestion"] == pytest.approx(test.suggestion, rel=1e-12)
    assert tuple(result.range_test["range"]) == expected
    assert result.range_test["steps"] == len(test.train_losses)
    assert result.space == {"lr": ["log", *expected]}
    # the suggestion itself is the first trial; every trial stays inside the range
    assert result.trials[0].params["lr"] == pytest.approx(test.suggestion, rel=1e-12)
    assert all(expected[0] <= t.params["lr"] <= expected[1] for t in result.trials)
    assert len(result.trials) == 5
    with pytest.raises(ValueError, match="setup must be None unless space='auto'"):
        tune(bowl, setup=task, storage=":memory:")
