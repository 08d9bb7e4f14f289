"""Hostile numbers in every log reader: huge integers, 1e400, nan/inf spellings, hex, digit
separators, other scripts' digits, empty cells, deep nesting; in values and in steps.

Invariants: a number beyond the float range or JSON nested too deeply is a LogFormatError (a
ValueError) of one line naming the file and the line or record, and exit 2 with one line from
the CLI; a spelled nan/inf is read as that value (a diverged run); anything else that is not a
decimal number is a missing cell (the rest of the file is read exactly).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _proc import TALLY

from lrkit.cli import main
from lrkit.diagnosis import LogFormatError, read_log

pytestmark = pytest.mark.faults

HUGE = "9" * 400


# each writer puts ``cell`` (the literal text of a value, or of a step) in row 3 of 6 rows
def _csv(path: Path, loss: str, step: str) -> Path:
    rows = ["step,loss"]
    for i in range(6):
        rows.append(f"{step if i == 3 else i},{loss if i == 3 else repr(1.0 / (i + 1))}")
    (file := path / "log.csv").write_text("\n".join(rows) + "\n")
    return file


def _records(loss: str, step: str) -> list[str]:
    out = []
    for i in range(6):
        s = step if i == 3 else str(i)
        v = loss if i == 3 else repr(1.0 / (i + 1))
        out.append(f'{{"step": {s}, "loss": {v}}}')
    return out


def _jsonl(path: Path, loss: str, step: str) -> Path:
    (file := path / "log.jsonl").write_text("\n".join(_records(loss, step)) + "\n")
    return file


def _json(path: Path, loss: str, step: str) -> Path:
    (file := path / "log.json").write_text("[" + ",\n".join(_records(loss, step)) + "]")
    return file


def _hf(path: Path, loss: str, step: str) -> Path:
    history = ",\n".join(_records(loss, step))
    text = f'{{"best_metric": null, "log_history": [{history}], "global_step": 6}}'
    (file := path / "trainer_state.json").write_text(text)
    return file


WRITERS: dict[str, Callable[[Path, str, str], Path]] = {
    "csv": _csv,
    "jsonl": _jsonl,
    "json": _json,
    "hf": _hf,
}


def _json_cell(text: str) -> str:
    """How a cell is written in JSON: a number literal stays; anything else is a string."""
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text)
    return text


# (cell text, what a loss cell reads as: "error", "missing" or the float)
VALUES = [
    (HUGE, "error"),
    ("-" + HUGE, "error"),
    ("1e400", "error"),
    ("-1e400", "error"),
    ("nan", math.nan),
    ("NaN", math.nan),
    ("inf", math.inf),
    ("-Infinity", -math.inf),
    ('"inf"', math.inf),
    ("0x10", "missing"),
    ("1_000", "missing"),
    ("١٢", "missing"),
    ("１２", "missing"),
    ("", "missing"),
    ("true", "missing"),
    ("[1]", "missing"),
]


def _cell_for(fmt: str, text: str) -> str:
    if fmt == "csv":
        return text.strip('"')
    if text == "":
        return "null"
    if text in ("nan", "inf"):  # JSON spells these NaN / Infinity, or writes a string
        return json.dumps(text)
    return _json_cell(text)


def _one_line_error(file: Path, exc: pytest.ExceptionInfo[LogFormatError]) -> str:
    message = str(exc.value)
    TALLY.check("\n" not in message and str(file) in message, message)
    return message


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize(("text", "expected"), VALUES, ids=[repr(v[0])[:12] for v in VALUES])
def test_hostile_values(tmp_path: Path, fmt: str, text: str, expected: object) -> None:
    TALLY.case()
    if fmt == "csv" and text in ("true", "[1]"):
        text = "true" if text == "true" else "x"
    file = WRITERS[fmt](tmp_path, _cell_for(fmt, text), "3")
    if expected == "error":
        with pytest.raises(LogFormatError) as info:
            read_log(file)
        message = _one_line_error(file, info)
        TALLY.check("out of the float range" in message, message)
        where = {"csv": "line 5", "jsonl": "line 4", "json": "record 4", "hf": "log_history[3]"}
        TALLY.check(where[fmt] in message, message)
        return
    series = read_log(file).series["loss"]
    others = {i: 1.0 / (i + 1) for i in range(6) if i != 3}
    if expected == "missing":
        TALLY.check(series.steps.tolist() == sorted(others), series.steps.tolist())
        TALLY.check(series.values.tolist() == [others[i] for i in sorted(others)])
    else:
        assert isinstance(expected, float)
        TALLY.check(series.steps.tolist() == list(range(6)))
        got = series.values[3]
        TALLY.check(got == expected or (math.isnan(expected) and math.isnan(got)), got)
        TALLY.check(np.delete(series.values, 3).tolist() == [others[i] for i in sorted(others)])


# a step must be a finite decimal number; an empty (null) step skips its row
STEPS = [HUGE, "1e400", "nan", "inf", "0x10", "1_000", "١٢", "abc"]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("text", STEPS, ids=[s[:8] for s in STEPS])
def test_hostile_steps(tmp_path: Path, fmt: str, text: str) -> None:
    TALLY.case()
    cell = (
        text if fmt == "csv" else (json.dumps(text) if text in ("nan", "inf") else _json_cell(text))
    )
    file = WRITERS[fmt](tmp_path, "0.5", cell)
    with pytest.raises(LogFormatError) as info:
        read_log(file)
    message = _one_line_error(file, info)
    TALLY.check("step" in message, message)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_an_empty_step_skips_its_row(tmp_path: Path, fmt: str) -> None:
    TALLY.case()
    file = WRITERS[fmt](tmp_path, "0.5", "" if fmt == "csv" else "null")
    TALLY.check(read_log(file).series["loss"].steps.tolist() == [0, 1, 2, 4, 5])


@pytest.mark.parametrize("fmt", ["jsonl", "json", "hf"])
def test_deep_nesting_and_giant_integers_are_one_line_and_exit_2(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for cell, phrase in [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("9" * 5000, "digits"),  # beyond Python's int-parsing limit
        (HUGE, "out of the float range"),
    ]:
        TALLY.case()
        file = WRITERS[fmt](tmp_path, cell, "3")
        with pytest.raises(LogFormatError) as info:
            read_log(file)
        TALLY.check(phrase in _one_line_error(file, info), str(info.value))
        TALLY.check(main(["diagnose", str(file)]) == 2)
        err = capsys.readouterr().err.strip()
        TALLY.check(err.startswith("lrkit: error: ") and "\n" not in err, err)
        TALLY.check("Traceback" not in err)


def test_tensorboard_nonfinite_scalars_and_non_scalar_tags(tmp_path: Path) -> None:
    TALLY.case()
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    values = [1.0, math.nan, math.inf, -math.inf, 3e38, 0.5]
    for step, v in enumerate(values):
        writer.add_scalar("loss", v, step)
        writer.add_text("notes", f"step {step}", step)  # not a number: not a series
    writer.add_scalar("loss", 0.25, 2**40)  # a huge step is still a step
    writer.close()
    log = read_log(tmp_path)
    TALLY.check(set(log.series) == {"loss"}, log.names())
    got = log.series["loss"]
    TALLY.check(got.steps.tolist() == [*range(6), 2**40])
    want = np.array([*values, 0.25], dtype=np.float32).astype(np.float64)
    TALLY.check(np.array_equal(got.values, want, equal_nan=True), got.values)
