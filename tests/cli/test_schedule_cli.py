"""``lrkit schedule`` through ``main([...])``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lrkit.cli import main
from lrkit.cli._schedule import sparkline
from lrkit.schedules import parse

WARMUP_COSINE = "warmup(100, cosine(900, floor=0.05), start=0.01)"


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["schedule", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_table_shows_key_points_and_sparkline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", WARMUP_COSINE, "--steps", "1000", "--lr", "3e-4"]) == 0
    out = capsys.readouterr().out
    for text in ("start", "warmup end", "end", "lr", "multiplier"):
        assert text in out
    # the warmup end is step 100 at the full learning rate 3e-4
    row = next(line for line in out.splitlines() if "warmup end" in line)
    assert "100" in row and "0.0003" in row
    spark = next(line for line in out.splitlines() if line and line[0] in "▁▂▃▄▅▆▇█")
    assert "█" in spark and "▁" in spark


def test_json_values_come_from_the_schedule(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, WARMUP_COSINE, "--steps", "1000", "--lr", "0.5")
    schedule = parse(WARMUP_COSINE)
    assert data["spec"] == str(schedule)
    assert data["steps"] == 1000
    points = data["points"]
    assert isinstance(points, list)
    labels = [p["label"] for p in points]
    assert labels[0] == "start" and labels[-1] == "end" and "warmup end" in labels
    for p in points:
        assert p["multiplier"] == schedule(p["step"])
        assert p["lr"] == schedule(p["step"]) * 0.5
    assert points[-1]["step"] == 999
    assert data["max_multiplier"] == 1.0
    assert math.isclose(float(data["min_multiplier"]), 0.01)  # type: ignore[arg-type]


def test_milestones_and_restarts_are_key_points(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, "multistep([300, 700], gamma=0.1)", "--steps", "1000")
    assert [(p["step"], p["label"]) for p in data["points"]] == [  # type: ignore[union-attr]
        (0, "start"),
        (300, "drop"),
        (700, "drop"),
        (999, "end"),
    ]
    data = _json(capsys, "restarts(250)", "--steps", "1000")
    assert [p["step"] for p in data["points"] if p["label"] == "restart"] == [  # type: ignore[union-attr]
        250,
        500,
        750,
    ]


def test_csv_and_plot_are_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_csv, out_png = tmp_path / "s.csv", tmp_path / "s.png"
    code = main(
        [
            "schedule",
            "step(10, gamma=0.5)",
            "--steps",
            "35",
            "--lr",
            "0.2",
            "--csv",
            str(out_csv),
            "--plot",
            str(out_png),
        ]
    )
    assert code == 0
    assert "wrote plot" in capsys.readouterr().out
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["step", "multiplier", "lr"]
    assert len(rows) == 36
    for step, mult, lr in rows[1:]:
        want = 0.5 ** (int(step) // 10)
        assert float(mult) == want and float(lr) == want * 0.2
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_without_lr_has_no_lr_column(tmp_path: Path) -> None:
    out_csv = tmp_path / "s.csv"
    assert main(["schedule", "cosine(10)", "--steps", "10", "--csv", str(out_csv)]) == 0
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["step", "multiplier"]
    assert [float(r[1]) for r in rows[1:]] == parse("cosine(10)").values(10).tolist()


def test_list_shows_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from lrkit.schedules import kinds

    assert main(["schedule", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {row["name"] for row in rows}
    for name in (
        "constant",
        "step",
        "multistep",
        "exponential",
        "linear",
        "polynomial",
        "cosine",
        "restarts",
        "cyclic",
        "onecycle",
        "inverse_sqrt",
        "wsd",
        "plateau",
        "warmup",
    ):
        assert name in names
    assert len(rows) == len(list(kinds()))
    for row in rows:  # every example parses
        parse(row["example"])
    assert main(["schedule", "--list"]) == 0
    assert "onecycle" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["cosine(100)", "--steps", "-5"], "steps"),
        (["cosine(100)", "--steps", "1.5"], "steps"),
        (["cosine(100)", "--steps", "ten"], "steps"),
        (["cosine(100)", "--steps", "0"], "steps"),
        (["cosine(100)", "--steps", "100000000000"], "steps"),
        (["cosine(100)"], "steps"),
        (["warmup(500, cosine(100))", "--steps", "100"], "warmup"),
        (["nosuchkind(3)", "--steps", "10"], "nosuchkind"),
        (["cosine(100", "--steps", "10"], "cosine"),
        (["cosine(100, bogus=1)", "--steps", "10"], "bogus"),
        (["cosine(100)", "--steps", "10", "--lr", "nan"], "lr"),
        (["cosine(100)", "--steps", "10", "--lr", "-0.1"], "lr"),
        (["--steps", "10"], "SPEC"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(["schedule", *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("lrkit: error:") and needle in err


def test_missing_plot_directory_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nope" / "x.png"
    assert main(["schedule", "cosine(10)", "--steps", "10", "--plot", str(target)]) == 2
    assert "nope" in capsys.readouterr().err


def test_output_paths_are_checked_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "x.png"
    args = ["schedule", "cosine(10)", "--steps", "10", "--plot", str(plot)]
    assert main([*args, "--csv", str(tmp_path)]) == 2  # a directory is no file
    err = capsys.readouterr().err.strip()
    expected = f"csv must be a file name, not a directory, but got csv='{tmp_path}'"
    assert err == f"lrkit: error: {expected}"
    assert not plot.exists()  # nothing written when one of the outputs is wrong
    assert main(["schedule", "cosine(10)", "--steps", "10", "--plot", str(tmp_path)]) == 2
    assert "plot must be a file name, not a directory" in capsys.readouterr().err
    assert main([*args, "--csv", str(tmp_path / "nope" / "x.csv")]) == 2
    assert "csv directory does not exist" in capsys.readouterr().err
    assert not plot.exists()


def test_plot_without_suffix_reports_the_file_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "cosine(10)", "--steps", "10", "--plot", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote plot: {tmp_path / 'x.png'}" in capsys.readouterr().out


def test_sparkline_levels() -> None:
    assert sparkline(np.array([0.0, 0.5, 1.0]), width=3) == "▁▅█"
    assert sparkline(np.zeros(5)) == "▁▁▁▁▁"
    assert sparkline(np.array([])) == ""
    line = sparkline(np.linspace(1.0, 0.0, 1000), width=40)
    assert len(line) == 40 and line[0] == "█" and line[-1] == "▁"
