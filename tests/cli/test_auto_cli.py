from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lrkit.cli import _app, main


@pytest.fixture(autouse=True)
def _wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    # rich wraps at 80 columns under pytest; widen so paths and one-line errors stay whole
    monkeypatch.setattr(_app.console, "width", 400)
    monkeypatch.setattr(_app.err_console, "width", 400)


def test_auto_task_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo-report"
    argv = [
        "auto",
        "--task",
        "digits",
        "--train-steps",
        "30",
        "--range-steps",
        "30",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert f"Report: {out / 'report.html'}" in stdout
    assert "attach(optimizer" in stdout and "learning rate" in stdout
    assert "range test" in stdout and "training" in stdout  # the progress bars
    for name in (
        "report.html",
        "report.md",
        "result.json",
        "range_test.png",
        "schedule.png",
        "training.png",
    ):
        assert (out / name).is_file()


def test_auto_target_file_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "mysetup.py"
    script.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        def make():
            torch.manual_seed(0)
            x = torch.randn(128, 5)
            y = x.sum(1, keepdim=True)
            data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 128, 16)]
            model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
            return {"model": model, "optimizer": torch.optim.Adam(model.parameters()),
                    "loss_fn": nn.MSELoss(), "train_loader": data}
    """)
    )
    argv = ["auto", f"{script}:make", "--range-steps", "20", "--steps", "1000", "--json", "--quick"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["optimizer"] == "adam" and data["architecture"] == "mlp"
    assert data["schedule"] == "cosine(1000)" and data["total_steps"] == 1000
    assert data["training"] is None and data["report"] == {}
    assert data["lr"] > 0 and data["race"] is None and data["budget"] == 0
    assert data["spent_steps"] == len(data["range_test"]["train_losses"])
    # the same setup with a race: a tenth of its 8 batches held back for validation
    argv = ["auto", f"{script}:make", "--range-steps", "20", "--steps", "40", "--budget", "2"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    race = data["race"]
    assert race["budget"] == 2 and race["spent_steps"] <= 80
    assert data["lr"] == race["lr"] and data["lr_source"].startswith("race")
    assert race["validation"] == "the last 1 of 8 training batches held back (no val_loader)"
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "race of" in stdout and "of 2 runs of 40 steps" in stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["auto"], "give exactly one of TARGET"),
        (["auto", "x:y", "--task", "digits"], "give exactly one of TARGET"),
        (["auto", "--task", "nope"], "task must be one of"),
        (["auto", "--task", "digits", "--train-steps", "3"], "train_steps must be"),
        (["auto", "no_such_module_xyz:f"], "cannot import module"),
        (["auto", "--task", "digits", "--arch", "unet"], "architecture must be one of"),
        (["auto", "--task", "digits", "--budget", "-1"], "budget must be a number >= 0"),
        (["auto", "--task", "digits", "--quick", "--budget", "2"], "budget must be 0 or None"),
        (
            ["auto", "--task", "digits", "--steps", "20", "--budget", "1"],
            "budget=1 is too small",
        ),
    ],
)
def test_auto_bad_input_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # not even the empty line of a progress display
    err = captured.err.strip()
    assert err.startswith("lrkit: error:") and message in err
    assert len(err.splitlines()) == 1
