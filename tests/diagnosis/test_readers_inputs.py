"""What a log can arrive as: a pipe, a FIFO, standard input ("-", /dev/stdin); and what is not a
log to diagnose: an empty path, a log holding no loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from lrkit.cli import main
from lrkit.diagnosis import LogFormatError, diagnose, diagnose_file, read_log

N = 300


def _csv_text(n: int = N) -> str:
    rng = np.random.default_rng(0)
    y = 2.3 * (1 + np.arange(n) / 8) ** -1.2 * np.exp(0.2 * rng.standard_normal(n))
    return "step,loss\n" + "".join(f"{s},{float(y[s])!r}\n" for s in range(n))


RUN = [sys.executable, "-c", "import sys; from lrkit.cli import run; sys.argv[0]='lrkit'; run()"]


@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_standard_input_is_read_once_and_diagnosed(tmp_path: Path, name: str, fmt: str) -> None:
    text = _csv_text()
    if fmt == "jsonl":
        rows = [line.split(",") for line in text.splitlines()[1:]]
        text = "".join(json.dumps({"step": int(s), "loss": float(v)}) + "\n" for s, v in rows)
    reference = tmp_path / f"log.{fmt}"
    reference.write_text(text)
    proc = subprocess.run(
        [*RUN, "diagnose", name, "--json"],
        input=text,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    got = json.loads(proc.stdout)
    want = diagnose_file(reference).to_dict()
    assert got["verdict"] == want["verdict"]
    assert got["statistics"]["points"] == want["statistics"]["points"] == N
    assert got["statistics"]["format"] == fmt


def test_a_fifo_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "log"
    os.mkfifo(fifo)
    text = _csv_text()

    def feed() -> None:
        with open(fifo, "w") as fh:
            fh.write(text)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        log = read_log(fifo)
    finally:
        writer.join(timeout=30)
    assert log.format == "csv" and len(log.series["loss"]) == N
    reference = tmp_path / "log.csv"
    reference.write_text(text)
    np.testing.assert_array_equal(
        log.series["loss"].values, read_log(reference).series["loss"].values
    )


def test_an_empty_path_is_refused_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics.csv").write_text(_csv_text())  # what "." would find
    with pytest.raises(LogFormatError, match="path must name a log file"):
        diagnose_file("")
    assert main(["diagnose", ""]) == 2
    assert capsys.readouterr().err.strip() == (
        "lrkit: error: path must name a log file or run directory, but got path=''"
    )


def test_a_log_without_a_loss_is_refused_naming_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "acc.csv"
    path.write_text("step,accuracy\n" + "".join(f"{s},{0.5 + s / 1000}\n" for s in range(N)))
    with pytest.raises(ValueError, match=r"no training loss series found .*columns are: accuracy"):
        diagnose_file(path)
    # named explicitly, it is diagnosed (the user says what it is)
    assert diagnose_file(path, train="accuracy").statistics["points"] == N
    # a single metric that may be a loss (TensorBoard's CSV export) is still taken
    export = tmp_path / "export.csv"
    export.write_text(
        "Wall time,Step,Value\n" + "".join(f"1.0,{s},{1 / (s + 1)}\n" for s in range(N))
    )
    assert diagnose_file(export).statistics["series"]["train"] == "Value"


def test_only_the_series_diagnose_can_pick_are_read(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    header = "step,loss,lr,phase,throughput,acc"
    rows = "".join(f"{s},{1 / (s + 1)},0.1,train_{s % 3},{s * 3},{s / N}\n" for s in range(N))
    path.write_text(header + "\n" + rows)
    d = diagnose_file(path)
    full = read_log(path)
    assert set(full.series) == {"loss", "lr", "throughput", "acc"}  # all numeric series
    assert full.columns == ("loss", "lr", "phase", "throughput", "acc")
    want = diagnose(full.series["loss"].values, steps=full.series["loss"].steps, lr=[0.1] * N)
    assert d.verdict == want.verdict
    assert d.statistics["series"]["train"] == "loss"
