from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lrkit.cli import main

pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lrkit[tune]')")

OBJECTIVES = """
import math

def objective(params, report):
    x = math.log10(params["lr"]) + 3
    for s in range(1, 5):
        report(s, x * x + 1 / s)
    return x * x

def trial_style(trial):
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    return (math.log10(lr) + 2) ** 2

def broken(params, report):
    raise RuntimeError("out of memory")
"""


@pytest.fixture()
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "objectives.py"
    path.write_text(OBJECTIVES)
    return path


def test_tune_a_file_target_prints_table_and_writes_plot(
    target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "tune.png"
    code = main(
        [
            "tune",
            f"{target}:objective",
            "--trials",
            "8",
            "--strategy",
            "grid",
            "--lr-range",
            "1e-5,1e-1",
            "--plot",
            str(plot),
            "--storage",
            str(tmp_path / "s.db"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "best trials of study" in out
    assert "best: lr=0.001 -> 0 (trial" in out
    assert plot.stat().st_size > 1000


def test_json_output_and_show(
    target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = str(tmp_path / "s.db")
    args = [
        "tune",
        f"{target}:trial_style",
        "--trials",
        "6",
        "--seed",
        "0",
        "--storage",
        storage,
        "--study",
        "mine",
        "--json",
    ]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["study_name"] == "mine" and len(data["trials"]) == 6
    assert data["best_value"] == min(t["value"] for t in data["trials"])
    assert main(["tune", "--show", "--storage", storage, "--study", "mine", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["trials"] == data["trials"]
    assert main(["tune", "--show", "--storage", storage, "--study", "mine"]) == 0
    assert "6 trials (6 complete" in capsys.readouterr().out


def test_failed_trials_are_listed_and_exit_1(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", f"{target}:broken", "--trials", "2", "--storage", ":memory:"]) == 1
    out = capsys.readouterr().out
    assert "trial 0 failed: RuntimeError: out of memory" in out
    assert "0 complete" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "3"], "give either TARGET"),
        (["X:objective", "--task", "digits", "--trials", "3"], "give either TARGET"),
        (["objectives.py:objective"], "--trials N is required"),
        (
            ["objectives.py:objective", "--trials", "3", "--strategy", "bayes"],
            "'bayes' is not one of 'grid', 'random', 'qmc', 'tpe', 'gp'",
        ),
        (
            ["objectives.py:objective", "--trials", "3", "--early-stopping", "x"],
            "'x' is not one of 'none', 'median', 'asha', 'hyperband'",
        ),
        (["objectives.py:objective", "--trials", "3", "--lr-range", "1e-1,1e-3"], "lr-range must"),
        (["objectives.py:nothing", "--trials", "3"], "has no attribute 'nothing'"),
        (["--show", "--storage", "missing.db", "--study", "s"], "does not exist"),
        (["--show", "--storage", "x.db"], "--show needs"),
        (
            ["objectives.py:objective", "--trials", "3", "--storage", "s.db", "--workers", "2"],
            "not safe for 2 concurrent",
        ),
        (["--task", "no-such-task", "--trials", "3"], "no-such-task"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    target: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lrkit: error:") and message in err and "\n" not in err


def test_a_missing_plot_directory_stops_before_any_trial(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tune", "objectives.py:objective", "--trials", "3", "--storage", "s.db"]
    assert main([*argv, "--plot", "no-such-dir/tune.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lrkit: error: --plot directory 'no-such-dir' does not exist"
    assert not (target.parent / "s.db").exists()  # no study was created, no trial ran


def test_unreachable_postgres_masks_the_password(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "tune",
            "objectives.py:objective",
            "--trials",
            "1",
            "--storage",
            "postgresql://tuner:Hunter2Secret@127.0.0.1:1/db",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "Hunter2Secret" not in captured.err + captured.out
    assert "postgresql+psycopg2://tuner:***@127.0.0.1:1/db" in captured.err


def test_workers_run_a_file_target(
    target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = str(tmp_path / "w.journal")
    code = main(
        [
            "tune",
            "objectives.py:objective",
            "--trials",
            "6",
            "--workers",
            "2",
            "--storage",
            storage,
            "--seed",
            "1",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["counts"]["complete"] >= 6
    assert data["storage"] == f"journal:{storage}"


def test_task_objective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sklearn", reason="the built-in tasks need scikit-learn")
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "tune",
            "--task",
            "diabetes",
            "--trials",
            "3",
            "--steps",
            "20",
            "--seed",
            "0",
            "--strategy",
            "random",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["study_name"] == "lrkit-task-diabetes-random-none"
    assert all(t["steps"] in (20, None) or t["state"] == "pruned" for t in data["trials"])
    values = [t["value"] for t in data["trials"] if t["state"] == "complete"]
    assert values and all(math.isfinite(v) for v in values)


def test_auto_runs_the_race_on_tunes_study_and_storage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["tune", "--task", "diabetes", "--auto", "--budget", "2", "--steps", "60"]
    storage = ["--storage", "race.db", "--study", "r"]
    assert main([*args, *storage, "--json", "--schedule", "cosine"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["budget"] == 2 and data["spent_steps"] <= 120 and data["lr"] > 0
    assert data["schedule"] == "cosine(60)" and data["study_name"] == "r"
    winner = [c for c in data["candidates"] if c["winner"]]
    assert len(winner) == 1 and winner[0]["lr"] == data["lr"]
    # the race's trials are an ordinary tune study: --show reads it
    assert main(["tune", "--show", *storage, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["trials"]) == sum(len(c["trials"]) for c in data["candidates"])
    assert {t["params"]["rung"] for t in shown["trials"]} == set(range(len(data["rungs"])))
    # the table
    assert main([*args, "--schedule", "cosine"]) == 0
    out = capsys.readouterr().out
    assert "(winner)" in out and "of 2 runs" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.db"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--trials", "5"],
            "--auto runs the race, whose trials follow from --budget: drop --trials",
        ),
        (["--strategy", "random"], "drop --strategy"),
        (["--budget", "0.1"], "budget=0.1 is too small"),
    ],
)
def test_auto_refuses_the_search_options(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "--task", "diabetes", "--auto", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_budget_without_auto_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", "--task", "diabetes", "--trials", "2", "--budget", "2"]) == 2
    assert "--budget and --schedule apply to --auto" in capsys.readouterr().err


def test_a_resumed_study_starts_its_progress_bar_where_it_was(
    target: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from rich.console import Console

    import lrkit.cli._tune as cli_tune

    args = ["tune", "objectives.py:objective", "--storage", "s.db", "--seed", "0"]
    assert main([*args, "--trials", "3", "--strategy", "random"]) == 0
    first = capsys.readouterr().out
    best = float(first.split("-> ")[1].split()[0])
    stream = io.StringIO()
    monkeypatch.setattr(cli_tune, "err_console", Console(file=stream, force_terminal=True))
    assert main([*args, "--trials", "5", "--strategy", "random"]) == 0
    bar = stream.getvalue()
    # two new trials ran: the bar ends at 5/5 only because it started at the 3 finished ones
    # (intermediate states may not be drawn: rich refreshes ten times a second)
    assert "5/5" in bar and "2/5" not in bar
    done, value = cli_tune._resumed("s.db", "lrkit-objectives-objective")
    assert done == 5 and value <= best * (1 + 1e-5)  # the study now holds 5 finished trials
    assert cli_tune._resumed(":memory:", "x") == (0, math.inf)
    assert cli_tune._resumed("missing.db", "x") == (0, math.inf)
