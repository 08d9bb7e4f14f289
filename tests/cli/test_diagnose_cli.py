"""``lrkit diagnose`` through ``main([...])``: output, JSON, plot, exit statuses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lrkit.cli import main

N = 300


def _write(path: Path, y: np.ndarray, *, val: bool = False, name: str = "loss") -> Path:
    with path.open("w") as fh:
        for step, value in enumerate(y):
            row: dict[str, float | int] = {"step": step, name: float(value), "lr": 0.1}
            if val and step % 30 == 29:
                # validation improves along with the training loss (a healthy run)
                row["val_loss"] = 0.25 + 2.3 * (1 + step / 8) ** -1.2
            fh.write(json.dumps(row) + "\n")
    return path


def _curve(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    return 2.3 * (1 + t / 8) ** -1.2 * np.exp(0.2 * rng.standard_normal(N))


def test_healthy_run_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "ok.jsonl", _curve(), val=True)
    assert main(["diagnose", str(path)]) == 0
    out = capsys.readouterr().out
    assert "verdict: healthy" in out
    assert "train=loss val=val_loss lr=lr" in out
    assert "action: keep the learning rate" in out


def test_spike_exits_1_with_findings_table_and_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    y = _curve(1)
    y[180] = 80.0
    path = _write(tmp_path / "spike.jsonl", y)
    assert main(["diagnose", str(path)]) == 1
    out = capsys.readouterr().out
    assert "verdict: spiking" in out
    row = next(line for line in out.splitlines() if line.startswith("│ spiking"))
    assert "high" in row and "180" in row
    assert "roll back to before step 180" in out.replace("\n", " ")


def test_json_output_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    y = _curve(2)
    y[200:] = math.nan
    path = _write(tmp_path / "nan.jsonl", y, name="train/loss")
    png = tmp_path / "diag.png"
    assert main(["diagnose", str(path), "--json", "--plot", str(png)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "diverged"
    assert data["findings"][0]["onset_step"] == 200
    assert data["action"]["kind"] == "rollback" and data["action"]["before_step"] == 199
    assert data["statistics"]["series"]["train"] == "train/loss"
    assert data["plot"] == str(png)
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_series_names_are_chosen_with_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "named.jsonl", _curve(3), name="objective")
    assert main(["diagnose", str(path), "--train", "objective", "--lr", "lr", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["statistics"]["series"]["train"] == "objective"
    assert main(["diagnose", str(path)]) == 2
    err = capsys.readouterr().err
    assert "named.jsonl" in err and "no training loss series found" in err


def test_short_run_is_inconclusive_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "short.jsonl", _curve(4)[:8])
    assert main(["diagnose", str(path)]) == 0
    assert "verdict: inconclusive" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "no such file"), ("", "the file is empty"), ('{"step": 0, "lo', "not valid JSON")],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, match: str
) -> None:
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_text(content)
    assert main(["diagnose", str(path)]) == 2
    err = capsys.readouterr().err
    assert match in err and "bad.jsonl" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_plot_into_missing_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    path = _write(tmp_path / "ok.jsonl", _curve())
    assert main(["diagnose", str(path), "--plot", str(tmp_path / "no" / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err == f"lrkit: error: --plot directory {str(tmp_path / 'no')!r} does not exist\n"


@pytest.mark.parametrize("where", ["parent is a file", "target is a directory"])
def test_plot_to_unwritable_path_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    pytest.importorskip("matplotlib")
    path = _write(tmp_path / "ok.jsonl", _curve())
    if where == "parent is a file":
        target = path / "p.png"
    else:
        target = tmp_path / "d.png"
        target.mkdir()
    assert main(["diagnose", str(path), "--plot", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrkit: error: --plot") and len(err.strip().splitlines()) == 1


def test_plot_to_a_directory_is_refused_and_a_bare_name_reports_the_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    path = _write(tmp_path / "ok.jsonl", _curve())
    folder = tmp_path / "plots"
    folder.mkdir()
    assert main(["diagnose", str(path), "--plot", str(folder)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"lrkit: error: --plot must be a file name, not a directory, but got --plot='{folder}'\n"
    )
    assert not (tmp_path / "plots.png").exists()
    assert main(["diagnose", str(path), "--plot", str(folder / "d"), "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["plot"] == str(folder / "d.png")
    assert [p.name for p in folder.iterdir()] == ["d.png"]
