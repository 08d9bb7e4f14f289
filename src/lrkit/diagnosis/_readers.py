"""Log readers: TensorBoard event files, Lightning CSVLogger, Hugging Face trainer_state.json,
JSON lines and CSV. Each returns a :class:`Log` of named series (steps, values).

TensorBoard is optional (``pip install 'lrkit[logs]'``) and imported lazily.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import mmap
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrkit._optional import require

__all__ = ["FORMATS", "Log", "Series", "detect_format", "read_log"]

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]

FORMATS = ("tensorboard", "lightning-csv", "hf-trainer-state", "jsonl", "csv")

STEP_NAMES = (
    "step",
    "global_step",
    "steps",
    "iteration",
    "iter",
    "it",
    "Step",
    "trainer/global_step",
)


@dataclass(frozen=True)
class Series:
    """One named metric: strictly increasing ``steps`` and the ``values`` logged there."""

    name: str
    steps: FloatArray
    values: FloatArray

    def __len__(self) -> int:
        return int(self.steps.size)


@dataclass(frozen=True)
class Log:
    """Every numeric series found in a log file, with where it came from.

    Attributes:
        path: the file or directory read.
        format: one of :data:`FORMATS`.
        series: name -> :class:`Series`.
    """

    path: Path
    format: str
    series: dict[str, Series]

    def names(self) -> list[str]:
        """The series names, sorted."""
        return sorted(self.series)


def _series(name: str, steps: Sequence[float], values: Sequence[float]) -> Series:
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    if s.size > 1:
        # a restarted run logs some steps twice: keep the last value logged for each step
        last = np.append(s[1:] != s[:-1], True)
        s, v = s[last], v[last]
    return Series(name, s, v)


def _number(text: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _tb_event_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "tfevents" in p.name)


def detect_format(path: Path) -> str:
    """Guess the log format of ``path`` (a file or a run directory); raise ValueError."""
    if path.is_dir():
        if _tb_event_files(path):
            return "tensorboard"
        if (path / "metrics.csv").is_file() or list(path.rglob("metrics.csv")):
            return "lightning-csv"
        if (path / "trainer_state.json").is_file() or list(path.rglob("trainer_state.json")):
            return "hf-trainer-state"
        raise ValueError(
            f"{path}: no log found in this directory (looked for TensorBoard event files, "
            "metrics.csv and trainer_state.json)"
        )
    name = path.name
    if "tfevents" in name:
        return "tensorboard"
    suffix = path.suffix.lower()
    if name == "metrics.csv":
        return "lightning-csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv" or suffix == ".tsv":
        return "csv"
    if suffix == ".json":
        return "hf-trainer-state" if name == "trainer_state.json" else "json"
    head = _read_text(path)[:1].strip()
    if head in ("{", "["):
        return "jsonl" if head == "{" else "json"
    raise ValueError(
        f"{path}: unknown log format (expected a TensorBoard event file or run directory, "
        "metrics.csv, trainer_state.json, .jsonl or .csv)"
    )


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected a file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    return text


def _pick_dir_file(path: Path, name: str) -> Path:
    if not path.is_dir():
        return path
    direct = path / name
    if direct.is_file():
        return direct
    found = sorted(path.rglob(name))

    def key(p: Path) -> tuple[int, float]:
        numbers = [int(m) for m in re.findall(r"(\d+)", str(p.relative_to(path)))]
        return (numbers[-1] if numbers else -1, p.stat().st_mtime)

    chosen = max(found, key=key)
    logger.info("reading %s (latest of %d)", chosen, len(found))
    return chosen


def _records_to_log(path: Path, fmt: str, records: Iterable[tuple[int, Mapping[str, Any]]]) -> Log:
    columns: dict[str, tuple[list[float], list[float]]] = {}
    step_key: str | None = None
    rows = list(records)
    if not rows:
        raise ValueError(f"{path}: no records found")
    keys: set[str] = set()
    for _, row in rows:
        keys.update(row)
    for candidate in STEP_NAMES:
        if candidate in keys:
            step_key = candidate
            break
    if step_key is None:
        raise ValueError(
            f"{path}: no step column (looked for {', '.join(STEP_NAMES[:5])}); "
            f"found {', '.join(sorted(keys)[:12]) or 'nothing'}"
        )
    for line, row in rows:
        raw_step = row.get(step_key)
        if raw_step is None or raw_step == "":
            continue
        step = raw_step if _is_number(raw_step) else _number(str(raw_step))
        if step is None or not math.isfinite(float(step)):
            raise ValueError(f"{path}: line {line}: step {raw_step!r} is not a number")
        for key, raw in row.items():
            if key == step_key or raw is None or raw == "":
                continue
            if _is_number(raw):
                value: float | None = float(raw)
            elif isinstance(raw, str):
                value = _number(raw)
            else:
                value = None
            if value is None:
                continue
            steps, values = columns.setdefault(key, ([], []))
            steps.append(float(step))
            values.append(value)
    series = {k: _series(k, s, v) for k, (s, v) in columns.items()}
    if not series:
        raise ValueError(f"{path}: no numeric series found")
    return Log(path, fmt, series)


def read_csv(path: Path, fmt: str = "csv") -> Log:
    text = _read_text(path)
    lines = text.splitlines()
    dialect: type[csv.Dialect] | csv.Dialect = csv.excel
    if path.suffix.lower() == ".tsv" or ("\t" in lines[0] and "," not in lines[0]):
        dialect = csv.excel_tab
    reader = csv.reader(lines, dialect)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV header ({exc})") from None
    header = [h.strip() for h in header]
    if len(header) < 2 or len(set(header)) != len(header):
        raise ValueError(
            f"{path}: malformed CSV header {header[:8]!r} (need a step column and at least one "
            "metric, with unique names)"
        )

    def records() -> Iterable[tuple[int, dict[str, str]]]:
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}: line {number} has {len(row)} field(s) but the header has "
                    f"{len(header)} (truncated or malformed file)"
                )
            yield number, dict(zip(header, row, strict=True))

    try:
        return _records_to_log(path, fmt, records())
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None


def read_jsonl(path: Path) -> Log:
    text = _read_text(path)

    def records() -> Iterable[tuple[int, Mapping[str, Any]]]:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}: line {number} is not valid JSON ({exc.msg}; truncated file?)"
                ) from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}: line {number} is not a JSON object")
            yield number, obj

    return _records_to_log(path, "jsonl", records())


def _load_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}; "
            "truncated file?)"
        ) from None


def read_json(path: Path) -> Log:
    data = _load_json(path)
    if isinstance(data, dict) and "log_history" in data:
        return _hf_log(path, data)
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return _records_to_log(path, "json", ((i + 1, r) for i, r in enumerate(data)))
    raise ValueError(
        f"{path}: unsupported JSON layout (expected a trainer_state.json with 'log_history' or a "
        "list of objects with a step key)"
    )


def _hf_log(path: Path, data: Mapping[str, Any]) -> Log:
    history = data.get("log_history")
    if not isinstance(history, list):
        raise ValueError(f"{path}: 'log_history' must be a list of objects")
    if not history:
        raise ValueError(f"{path}: 'log_history' is empty (nothing was logged)")
    rows = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: log_history[{i}] is not an object")
        rows.append((i, entry))
    log = _records_to_log(path, "hf-trainer-state", rows)
    return log


def read_hf(path: Path) -> Log:
    file = _pick_dir_file(path, "trainer_state.json")
    data = _load_json(file)
    if not isinstance(data, dict) or "log_history" not in data:
        raise ValueError(f"{file}: not a trainer_state.json (no 'log_history' key)")
    return _hf_log(file, data)


def _check_event_file(path: Path) -> None:
    """Walk the TFRecord framing (8-byte length, 4-byte CRC, data, 4-byte CRC) of an event file.

    TensorBoard's own reader silently stops at an incomplete record; a file cut short (a copy
    that did not finish, a full disk) would then look like a shorter run, so it is an error.
    """
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path}: the event file is empty")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0
        records = 0
        while pos + 12 <= size:
            (length,) = struct.unpack_from("<Q", data, pos)
            end = pos + 12 + length + 4
            if end > size:
                break
            pos = end
            records += 1
    if pos != size:
        what = (
            "not a TensorBoard event file (malformed first record)"
            if records == 0
            else f"truncated: the record at byte {pos} is incomplete ({size - pos} bytes after "
            f"{records} complete records); if the run is still writing, read it again later"
        )
        raise ValueError(f"{path}: {what}")


def read_tensorboard(path: Path) -> Log:
    files = _tb_event_files(path)
    if not files:
        raise ValueError(f"{path}: no TensorBoard event files found")
    for f in files:
        _check_event_file(f)
    event_accumulator = require("tensorboard.backend.event_processing.event_accumulator", "logs")
    tensor_util = require("tensorboard.util.tensor_util", "logs")
    root = path if path.is_dir() else path.parent
    by_dir: dict[Path, list[Path]] = {}
    for f in files:
        by_dir.setdefault(f.parent, []).append(f)
    series: dict[str, tuple[list[float], list[float]]] = {}
    for directory, dir_files in sorted(by_dir.items()):
        prefix = "" if directory == root else str(directory.relative_to(root)) + "/"
        targets = dir_files if path.is_file() else [directory]
        for target in targets:
            # size_guidance 0 = keep every value (no 10,000-point reservoir sampling)
            acc = event_accumulator.EventAccumulator(
                str(target),
                size_guidance={
                    "scalars": 0,
                    "tensors": 0,
                    "histograms": 1,
                    "images": 1,
                    "audio": 1,
                    "compressedHistograms": 1,
                },
            )
            try:
                acc.Reload()
            except Exception as exc:  # corrupted records raise tensorboard-specific errors
                raise ValueError(f"{target}: unreadable TensorBoard event file ({exc})") from None
            tags = acc.Tags()
            for tag in tags.get("scalars", []):
                steps, values = series.setdefault(prefix + tag, ([], []))
                for event in acc.Scalars(tag):
                    steps.append(float(event.step))
                    values.append(float(event.value))
            for tag in tags.get("tensors", []):
                events = acc.Tensors(tag)
                collected: list[tuple[float, float]] = []
                for event in events:
                    arr = np.asarray(tensor_util.make_ndarray(event.tensor_proto))
                    if arr.size != 1 or arr.dtype.kind not in "fiub":
                        collected = []
                        break
                    collected.append((float(event.step), float(arr.reshape(-1)[0])))
                if collected:
                    steps, values = series.setdefault(prefix + tag, ([], []))
                    steps.extend(c[0] for c in collected)
                    values.extend(c[1] for c in collected)
    if not series:
        raise ValueError(f"{path}: no scalar series in the TensorBoard event files")
    return Log(path, "tensorboard", {k: _series(k, s, v) for k, (s, v) in series.items()})


def read_log(path: str | Path, *, format: str | None = None) -> Log:
    """Read every numeric series of a log file or run directory.

    Args:
        path: a TensorBoard event file or run directory, a Lightning ``metrics.csv`` (or its
            directory), a Hugging Face ``trainer_state.json`` (or checkpoint directory), a
            ``.jsonl`` file or a ``.csv`` file with a step column.
        format: force a format (one of :data:`FORMATS`, or "json"); default: detect it.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: empty, truncated or malformed file, or no numeric series in it.

    Example:
        >>> log = read_log("runs/exp1")  # doctest: +SKIP
        >>> log.format, log.names()  # doctest: +SKIP
        ('tensorboard', ['train/loss', 'val/loss'])
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    fmt = format if format is not None else detect_format(p)
    if fmt == "tensorboard":
        return read_tensorboard(p)
    if fmt == "lightning-csv":
        return read_csv(_pick_dir_file(p, "metrics.csv"), "lightning-csv")
    if fmt == "hf-trainer-state":
        return read_hf(p)
    if fmt == "jsonl":
        return read_jsonl(p)
    if fmt == "json":
        return read_json(p)
    if fmt == "csv":
        return read_csv(p)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, 'json', but got format={fmt!r}")
