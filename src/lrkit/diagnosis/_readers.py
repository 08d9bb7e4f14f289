"""Log readers: TensorBoard event files, Lightning CSVLogger, Hugging Face trainer_state.json,
JSON lines and CSV. Each returns a :class:`Log` of named series (steps, values).

Every reader streams: the file is read in chunks and only the numbers of the series asked for
are kept, in growing float arrays, so memory does not grow with the file beyond the arrays
returned (a 1 GB CSV is read in a few times the size of the columns kept; see
``benchmarks/diagnose_bigfile.py``). Pipes, FIFOs and ``-`` (standard input) are read once.

Any problem with a file is a :class:`LogFormatError` (a ValueError): one line naming the file
and, where there is one, the line. Numbers follow one grammar (:mod:`lrkit.diagnosis._numbers`).

TensorBoard is optional (``pip install 'lrkit[logs]'``) and imported lazily.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import math
import mmap
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from lrkit._optional import require
from lrkit.diagnosis._numbers import (
    Columns,
    LogFormatError,
    OutOfRange,
    describe,
    json_floats,
    text_floats,
)
from lrkit.diagnosis._source import Source, open_source, sniff

__all__ = ["FORMATS", "Log", "LogFormatError", "Series", "detect_format", "read_log"]

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

#: characters of text read per chunk (a chunk's parsing needs a few times this, whatever the
#: size of the file)
CHUNK_CHARS = 1 << 20
#: records of a JSON array handled per chunk
CHUNK_RECORDS = 1 << 15


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
    """Every numeric series found in a log file (or those asked for), with where it came from.

    Attributes:
        path: the file or directory read.
        format: one of :data:`FORMATS`.
        series: name -> :class:`Series`.
        columns: every metric name the file holds (besides the step), kept or not.
    """

    path: Path
    format: str
    series: dict[str, Series]
    columns: tuple[str, ...] = field(default=())

    def names(self) -> list[str]:
        """The series names, sorted."""
        return sorted(self.series)


def _series(name: str, steps: FloatArray, values: FloatArray) -> Series:
    """Sort by step and keep the last value logged at each step (a restarted run logs some
    steps twice); no copy when the steps already increase."""
    if steps.size > 1:
        if not bool(np.all(steps[1:] >= steps[:-1])):
            order = np.argsort(steps, kind="stable")
            steps, values = steps[order], values[order]
        repeated = steps[1:] == steps[:-1]
        if bool(repeated.any()):
            last = np.append(~repeated, True)
            steps, values = steps[last], values[last]
    return Series(name, steps, values)


def _log(path: Path, fmt: str, columns: Columns, step_key: str | None = None) -> Log:
    series = {k: _series(k, s, v) for k, (s, v) in columns.arrays().items()}
    names = tuple(n for n in columns.names if n != step_key)
    return Log(path, fmt, series, names)


# --------------------------------------------------------------------------------------------
# format detection


def _tb_event_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "tfevents" in p.name)


def _format_of(path: Path, source: Source | None) -> str:
    if path.is_dir():
        if _tb_event_files(path):
            return "tensorboard"
        if (path / "metrics.csv").is_file() or list(path.rglob("metrics.csv")):
            return "lightning-csv"
        if (path / "trainer_state.json").is_file() or list(path.rglob("trainer_state.json")):
            return "hf-trainer-state"
        raise LogFormatError(
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
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        return "hf-trainer-state" if name == "trainer_state.json" else "json"
    head = (source or Source(path)).head()
    if not head.strip():
        raise LogFormatError(f"{path}: the file is empty")
    sniffed = sniff(head)
    if sniffed is None:
        raise LogFormatError(
            f"{path}: unknown log format (expected a TensorBoard event file or run directory, "
            "metrics.csv, trainer_state.json, .jsonl or .csv)"
        )
    return sniffed


def detect_format(path: Path) -> str:
    """Guess the log format of ``path`` (a file or a run directory); raise ValueError."""
    return _format_of(path, None)


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


# --------------------------------------------------------------------------------------------
# text in chunks


def _text_chunks(raw: BinaryIO, path: Path) -> Iterator[str]:
    """The file's text in chunks of whole lines (UTF-8, a BOM dropped); raises for a file
    that is empty or not text."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    position = 0
    anything = False
    while True:
        data = raw.read(CHUNK_CHARS)
        final = not data
        try:
            text = pending + decoder.decode(data, final=final)
        except UnicodeDecodeError as exc:
            where = position + exc.start
            raise LogFormatError(
                f"{path}: not a text file ({exc.reason} at byte {where})"
            ) from None
        position += len(data)
        if final:
            if text.strip():
                anything = True
                yield text if text.endswith("\n") else text + "\n"
            break
        cut = text.rfind("\n") + 1
        pending = text[cut:]
        if cut:
            chunk = text[:cut]
            if not anything and not chunk.strip():
                continue
            anything = True
            yield chunk
    if not anything:
        raise LogFormatError(f"{path}: the file is empty")


def _lines(chunk: str) -> list[str]:
    if "\r" in chunk:
        chunk = chunk.replace("\r\n", "\n")
    lines = chunk.split("\n")
    lines.pop()  # the chunk ends with a newline
    return lines


# --------------------------------------------------------------------------------------------
# CSV


def _step_key(keys: Sequence[str] | set[str]) -> str | None:
    return next((k for k in STEP_NAMES if k in keys), None)


def _add_column(
    columns: Columns,
    name: str,
    steps: FloatArray,
    step_ok: NDArray[np.bool_],
    values: FloatArray,
    present: NDArray[np.bool_],
) -> None:
    keep = present & step_ok
    columns.add(name, steps[keep], values[keep])


def _csv_rows(
    path: Path, lines: list[str], first: int, header: list[str], delimiter: str
) -> tuple[list[list[str]], list[int]]:
    """Rows of a chunk through the csv module (quoted fields), with their line numbers."""
    rows: list[list[str]] = []
    numbers: list[int] = []
    try:
        for offset, row in enumerate(csv.reader(lines, delimiter=delimiter)):
            if not row:
                continue
            if len(row) != len(header):
                raise LogFormatError(
                    f"{path}: line {first + offset} has {len(row)} field(s) but the header has "
                    f"{len(header)} (truncated or malformed file)"
                )
            rows.append(row)
            numbers.append(first + offset)
    except csv.Error as exc:
        raise LogFormatError(f"{path}: malformed CSV ({exc})") from None
    return rows, numbers


def _csv_cells(
    path: Path, lines: list[str], first: int, header: list[str], delimiter: str, quoted: bool
) -> tuple[list[str], list[int] | None, int]:
    """The chunk's cells, row after row (fast path: no quotes), the line number of each row
    when blank lines were dropped (else None: row i is line first + i), and the row count."""
    ncols = len(header)
    if quoted:
        rows, row_lines = _csv_rows(path, lines, first, header, delimiter)
        return [c for row in rows for c in row], row_lines, len(rows)
    numbers: list[int] | None = None
    if "" in lines:
        numbers = [first + i for i, line in enumerate(lines) if line]
        lines = [line for line in lines if line]
    counts = np.fromiter(map(str.count, lines, repeat(delimiter)), np.int64, len(lines))
    bad = np.flatnonzero(counts != ncols - 1)
    if bad.size:
        i = int(bad[0])
        number = numbers[i] if numbers is not None else first + i
        raise LogFormatError(
            f"{path}: line {number} has {int(counts[i]) + 1} field(s) but the header has "
            f"{ncols} (truncated or malformed file)"
        )
    cells = delimiter.join(lines).split(delimiter)
    return cells, numbers, len(lines)


def read_csv(
    path: Path,
    fmt: str = "csv",
    keep: Callable[[str], bool] | None = None,
    source: Source | None = None,
) -> Log:
    src = source or open_source(path)
    columns = Columns(keep)
    with src.open() as raw:
        chunks = _text_chunks(raw, path)
        first_chunk = next(chunks)
        header_line, _, rest = first_chunk.partition("\n")
        header_line = header_line.rstrip("\r")
        delimiter = ","
        if path.suffix.lower() == ".tsv" or ("\t" in header_line and "," not in header_line):
            delimiter = "\t"
        try:
            header = next(csv.reader([header_line], delimiter=delimiter))
        except (csv.Error, StopIteration) as exc:
            raise LogFormatError(f"{path}: malformed CSV header ({exc})") from None
        header = [h.strip() for h in header]
        if len(header) < 2 or len(set(header)) != len(header):
            raise LogFormatError(
                f"{path}: malformed CSV header {header[:8]!r} (need a step column and at least "
                "one metric, with unique names)"
            )
        step_key = _step_key(header)
        if step_key is None:
            raise LogFormatError(
                f"{path}: no step column (looked for {', '.join(STEP_NAMES[:5])}); "
                f"found {', '.join(sorted(header)[:12])}"
            )
        step_index = header.index(step_key)
        wanted = [(i, h) for i, h in enumerate(header) if i != step_index and columns.wanted(h)]
        line = 2
        records = 0

        def chunks_after_header() -> Iterator[str]:
            if rest:
                yield rest
            yield from chunks

        layout = _CsvLayout(path, header, delimiter, step_index, wanted)
        for chunk in chunks_after_header():
            records += _csv_chunk(layout, columns, chunk, line)
            line += chunk.count("\n")
    if records == 0:
        raise LogFormatError(f"{path}: no records found")
    log = _log(path, fmt, columns, step_key)
    if not log.series and not columns.filtered:
        raise LogFormatError(f"{path}: no numeric series found")
    return log


@dataclass(frozen=True)
class _CsvLayout:
    path: Path
    header: list[str]
    delimiter: str
    step_index: int
    wanted: list[tuple[int, str]]


def _csv_fast(layout: _CsvLayout, chunk: str, lines: list[str]) -> NDArray[np.float64] | None:
    """The step and kept columns of a dense numeric chunk through numpy's C parser (strict:
    no empty cell, no text); None when the chunk needs the general path."""
    if not layout.wanted or '"' in chunk or "" in lines:
        return None
    usecols = [layout.step_index, *(i for i, _ in layout.wanted)]
    try:
        block = np.loadtxt(
            io.StringIO(chunk),
            delimiter=layout.delimiter,
            usecols=usecols,
            dtype=np.float64,
            ndmin=2,
            comments=None,
        )
    except ValueError:
        return None
    if block.shape[0] != len(lines) or not bool(np.isfinite(block[:, 0]).all()):
        return None  # the general path says which step is wrong
    for row, col in zip(*np.nonzero(np.isinf(block[:, 1:])), strict=True):
        cell = lines[row].split(layout.delimiter)[usecols[col + 1]]
        if not _INF_WORD.fullmatch(cell.strip()):
            return None  # 1e400: the general path reports it with its line
    return block


_INF_WORD = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)


def _csv_chunk(layout: _CsvLayout, columns: Columns, chunk: str, line: int) -> int:
    """Read one chunk of whole lines (the first is line ``line``); return its record count."""
    path, header, delimiter = layout.path, layout.header, layout.delimiter
    lines = _lines(chunk)
    block = _csv_fast(layout, chunk, lines)
    if block is not None:
        # the field counts still have to match the header on every line
        counts = np.fromiter(map(str.count, lines, repeat(delimiter)), np.int64, len(lines))
        if bool((counts == len(header) - 1).all()):
            steps = block[:, 0]
            everywhere = np.ones(len(lines), dtype=bool)
            for k, (_, name) in enumerate(layout.wanted, start=1):
                _add_column(columns, name, steps, everywhere, block[:, k], everywhere)
            return len(lines)
    ncols = len(header)
    cells, numbers, rows = _csv_cells(path, lines, line, header, delimiter, quoted='"' in chunk)
    step_cells = cells[layout.step_index :: ncols]
    try:
        steps, step_present = text_floats(step_cells)
    except OutOfRange as exc:
        raise _out_of_range(
            path, f"line {_line_of(exc.index, numbers, line)}", "step", exc
        ) from None
    blank = np.fromiter(map(bool, step_cells), dtype=bool, count=rows)
    bad = np.flatnonzero((blank & ~step_present) | (step_present & ~np.isfinite(steps)))
    if bad.size:
        i = int(bad[0])
        raise LogFormatError(
            f"{path}: line {_line_of(i, numbers, line)}: step "
            f"{describe(step_cells[i])} is not a number"
        )
    for index, name in layout.wanted:
        try:
            values, present = text_floats(cells[index::ncols])
        except OutOfRange as exc:
            where = f"line {_line_of(exc.index, numbers, line)}"
            raise _out_of_range(path, where, name, exc) from None
        _add_column(columns, name, steps, step_present, values, present)
    return rows


def _out_of_range(path: Path, where: str, what: str, exc: OutOfRange) -> LogFormatError:
    return LogFormatError(f"{path}: {where}: {what} {describe(exc.text)} is out of the float range")


def _line_of(index: int, numbers: list[int] | None, first: int) -> int:
    return numbers[index] if numbers is not None else first + index


# --------------------------------------------------------------------------------------------
# JSON records (JSON lines, a JSON array, trainer_state.json's log_history)


def _strict_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise OutOfRange(0, text)
    return value


_STRICT = json.JSONDecoder(parse_float=_strict_float)


def _json_error(path: Path, where: str, exc: BaseException) -> LogFormatError:
    if isinstance(exc, RecursionError):
        return LogFormatError(f"{path}: {where} is nested too deeply to read")
    if isinstance(exc, OutOfRange):
        return LogFormatError(
            f"{path}: {where}: the number {describe(exc.text)} is out of the float range"
        )
    if isinstance(exc, json.JSONDecodeError):
        if where.startswith("line"):
            return LogFormatError(f"{path}: {where} is not valid JSON ({exc.msg}; truncated file?)")
        return LogFormatError(f"{path}: not valid JSON ({exc.msg} in {where}; truncated file?)")
    text = " ".join(str(exc).split())  # e.g. an integer of more than 4300 digits
    return LogFormatError(f"{path}: {where}: {text}")


class _Records:
    """Collects JSON records chunk by chunk into :class:`Columns` (the step key is fixed by the
    first chunk that has one)."""

    def __init__(self, path: Path, columns: Columns, strict: Callable[[int], Any]) -> None:
        self.path = path
        self.columns = columns
        self.step_key: str | None = None
        self.keys: set[str] = set()
        self.count = 0
        self._strict = strict  # re-reads record i of the chunk with a strict float parser

    def add(self, records: list[Any], where: Sequence[str]) -> None:
        """Add a chunk of records; ``where[i]`` names record i in messages ("line 7")."""
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise LogFormatError(f"{self.path}: {where[i]} is not a JSON object")
        if not records:
            return
        keys = set().union(*records)
        self.keys |= keys
        self.count += len(records)
        if self.step_key is None:
            self.step_key = _step_key(self.keys)
            if self.step_key is None:
                return
        step_key = self.step_key
        raw_steps = [r.get(step_key) for r in records]
        try:
            steps, step_present = json_floats(raw_steps)
        except OutOfRange as exc:
            raise _out_of_range(self.path, where[exc.index], "step", exc) from None
        given = np.fromiter((s is not None and s != "" for s in raw_steps), bool, len(records))
        bad = np.flatnonzero((given & ~step_present) | (step_present & ~np.isfinite(steps)))
        if bad.size:
            i = int(bad[0])
            raise LogFormatError(
                f"{self.path}: {where[i]}: step {describe(raw_steps[i])} is not a number"
            )
        for name in sorted(keys - {step_key}, key=str):
            if not self.columns.wanted(name):
                continue
            raw = [r.get(name) for r in records]
            try:
                values, present = json_floats(raw)
            except OutOfRange as exc:
                raise _out_of_range(self.path, where[exc.index], name, exc) from None
            for index in np.flatnonzero(np.isinf(values) & present).tolist():
                if isinstance(raw[index], float):
                    self._strict(index)  # 1e400 parses as inf: raises unless written inf
            _add_column(self.columns, name, steps, step_present, values, present)

    def log(self, fmt: str) -> Log:
        if self.count == 0:
            raise LogFormatError(f"{self.path}: no records found")
        if self.step_key is None:
            raise LogFormatError(
                f"{self.path}: no step column (looked for {', '.join(STEP_NAMES[:5])}); "
                f"found {', '.join(sorted(self.keys)[:12]) or 'nothing'}"
            )
        log = _log(self.path, fmt, self.columns, self.step_key)
        if not log.series and not self.columns.filtered:
            raise LogFormatError(f"{self.path}: no numeric series found")
        return log


def read_jsonl(
    path: Path, keep: Callable[[str], bool] | None = None, source: Source | None = None
) -> Log:
    src = source or open_source(path)
    line = 1
    current: list[str] = []

    def strict(i: int) -> None:
        try:
            _STRICT.decode(current[i])
        except OutOfRange as exc:
            raise _json_error(path, f"line {current_numbers[i]}", exc) from None

    current_numbers: list[int] = []
    records = _Records(path, Columns(keep), strict)
    with src.open() as raw:
        for chunk in _text_chunks(raw, path):
            lines = _lines(chunk)
            numbers = [line + i for i, text in enumerate(lines) if text.strip()]
            current = [lines[n - line] for n in numbers]
            current_numbers = numbers
            line += len(lines)
            try:
                objs = json.loads("[" + ",".join(current) + "]")
                if len(objs) != len(current):
                    raise ValueError("a line holds more than one value")
            except (ValueError, RecursionError):
                objs = []
                for number, text in zip(numbers, current, strict=True):
                    try:
                        objs.append(json.loads(text))
                    except (ValueError, RecursionError) as exc:
                        raise _json_error(path, f"line {number}", exc) from None
            records.add(objs, [f"line {n}" for n in numbers])
    return records.log("jsonl")


class _JsonStream:
    """A JSON document read piece by piece with ``raw_decode``: the top-level array's elements
    (or ``log_history``'s) are decoded one at a time, never the whole document at once."""

    def __init__(self, raw: BinaryIO, path: Path) -> None:
        self._chunks = _text_chunks(raw, path)
        self._path = path
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._decoder = _STRICT

    def _more(self) -> bool:
        if self._eof:
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ("" at the end)."""
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in " \t\r\n":
                self._pos += 1
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if c == "" or c not in chars:
            found = "the end of the file" if c == "" else repr(c)
            raise LogFormatError(
                f"{self._path}: not valid JSON (expected {' or '.join(map(repr, chars))}, found "
                f"{found}; truncated file?)"
            )
        self._pos += 1
        return c

    def value(self, where: str) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._more():  # the value may run on in the next chunk
                    continue
                raise _json_error(self._path, where, exc) from None
            except (OutOfRange, RecursionError, ValueError) as exc:
                raise _json_error(self._path, where, exc) from None
            if end == len(self._buf) and not self._eof and self._more():
                continue  # a number cut at the chunk's end: decode it again whole
            self._pos = end
            return obj

    def array(self, label: Callable[[int], str]) -> Iterator[list[Any]]:
        """The elements of the array starting here, in lists of up to CHUNK_RECORDS
        (``label(i)`` names element i in messages)."""
        self.expect("[")
        batch: list[Any] = []
        index = 0
        if self.peek() == "]":
            self._pos += 1
            return
        while True:
            batch.append(self.value(label(index)))
            index += 1
            if len(batch) >= CHUNK_RECORDS:
                yield batch
                batch = []
            if self.expect(",]") == "]":
                break
        if batch:
            yield batch


def _records_from_stream(
    stream: _JsonStream, path: Path, keep: Callable[[str], bool] | None
) -> tuple[Log | None, bool]:
    """Read a JSON array of records or a trainer_state.json; (log, had log_history)."""

    def strict(_i: int) -> None:  # the stream already parses floats strictly
        return

    records = _Records(path, Columns(keep), strict)
    first = stream.peek()
    if first == "[":
        for batch in stream.array(lambda i: f"record {i + 1}"):
            if not all(isinstance(r, dict) for r in batch):
                raise LogFormatError(
                    f"{path}: unsupported JSON layout (expected a trainer_state.json with "
                    "'log_history' or a list of objects with a step key)"
                )
            start = records.count + 1
            records.add(batch, [f"record {start + i}" for i in range(len(batch))])
        return records.log("json"), False
    if first != "{":
        raise LogFormatError(f"{path}: unsupported JSON layout (expected an object or a list)")
    stream.expect("{")
    history: Log | None = None
    seen_history = False
    if stream.peek() == "}":
        stream.expect("}")
        return None, False
    while True:
        key = stream.value("a key")
        if not isinstance(key, str):
            raise LogFormatError(f"{path}: not valid JSON (an object key is not a string)")
        stream.expect(":")
        if key == "log_history":
            seen_history = True
            if stream.peek() != "[":
                raise LogFormatError(f"{path}: 'log_history' must be a list of objects")
            for batch in stream.array(lambda i: f"log_history[{i}]"):
                for i, entry in enumerate(batch):
                    if not isinstance(entry, dict):
                        raise LogFormatError(
                            f"{path}: log_history[{records.count + i}] is not an object"
                        )
                start = records.count
                records.add(batch, [f"log_history[{start + i}]" for i in range(len(batch))])
            if records.count == 0:
                raise LogFormatError(f"{path}: 'log_history' is empty (nothing was logged)")
            history = records.log("hf-trainer-state")
        else:
            stream.value(key)  # any other key of the state: read and dropped
        if stream.expect(",}") == "}":
            break
    if stream.peek() != "":
        raise LogFormatError(f"{path}: not valid JSON (extra data after the document)")
    return history, seen_history


def read_json(
    path: Path, keep: Callable[[str], bool] | None = None, source: Source | None = None
) -> Log:
    src = source or open_source(path)
    with src.open() as raw:
        log, had_history = _records_from_stream(_JsonStream(raw, path), path, keep)
    if log is None:
        raise LogFormatError(
            f"{path}: unsupported JSON layout (expected a trainer_state.json with 'log_history' "
            "or a list of objects with a step key)"
        )
    return log


def read_hf(
    path: Path, keep: Callable[[str], bool] | None = None, source: Source | None = None
) -> Log:
    file = _pick_dir_file(path, "trainer_state.json")
    src = source or open_source(file)
    with src.open() as raw:
        log, had_history = _records_from_stream(_JsonStream(raw, file), file, keep)
    if log is None or log.format != "hf-trainer-state":
        raise LogFormatError(f"{file}: not a trainer_state.json (no 'log_history' key)")
    return log


# --------------------------------------------------------------------------------------------
# TensorBoard


def _check_event_file(path: Path) -> None:
    """Walk the TFRecord framing (8-byte length, 4-byte CRC, data, 4-byte CRC) of an event file.

    TensorBoard's own reader silently stops at an incomplete record; a file cut short (a copy
    that did not finish, a full disk) would then look like a shorter run, so it is an error.
    """
    size = path.stat().st_size
    if size == 0:
        raise LogFormatError(f"{path}: the event file is empty")
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
        raise LogFormatError(f"{path}: {what}")


class _TagData:
    """One tag's points while an event file streams by (8 bytes a number)."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.values: list[float] = []
        self.usable = True


def _scalar(value: Any, tensor_util: Any) -> float | None:
    """The number a summary value holds: a legacy simple_value or a one-element numeric
    tensor; None for anything else (images, text, histograms)."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        arr = np.asarray(tensor_util.make_ndarray(value.tensor))
        if arr.size == 1 and arr.dtype.kind in "fiub":
            return float(arr.reshape(-1)[0])
    return None


def read_tensorboard(path: Path, keep: Callable[[str], bool] | None = None) -> Log:
    files = _tb_event_files(path)
    if not files:
        raise LogFormatError(f"{path}: no TensorBoard event files found")
    for f in files:
        _check_event_file(f)
    loader = require("tensorboard.backend.event_processing.event_file_loader", "logs")
    tensor_util = require("tensorboard.util.tensor_util", "logs")
    root = path if path.is_dir() else path.parent
    columns = Columns(keep)
    unusable: set[str] = set()
    for f in files:
        prefix = "" if f.parent == root else str(f.parent.relative_to(root)) + "/"
        steps: dict[str, list[float]] = {}
        values: dict[str, list[float]] = {}
        try:
            for event in loader.EventFileLoader(str(f)).Load():
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    name = prefix + value.tag
                    if name in unusable or not columns.wanted(name):
                        continue
                    number = _scalar(value, tensor_util)
                    if number is None:  # a tag of images, text or histograms is not a series
                        unusable.add(name)
                        continue
                    steps.setdefault(name, []).append(float(event.step))
                    values.setdefault(name, []).append(number)
                    if len(steps[name]) >= CHUNK_RECORDS:
                        columns.add(name, np.array(steps.pop(name)), np.array(values.pop(name)))
        except Exception as exc:  # corrupted records raise tensorboard-specific errors
            raise LogFormatError(f"{f}: unreadable TensorBoard event file ({exc})") from None
        for name in steps:
            columns.add(name, np.array(steps[name]), np.array(values[name]))
    arrays = {k: v for k, v in columns.arrays().items() if k not in unusable}
    series = {k: _series(k, s, v) for k, (s, v) in arrays.items()}
    names = tuple(n for n in columns.names if n not in unusable)
    if not series and keep is None:
        raise LogFormatError(f"{path}: no scalar series in the TensorBoard event files")
    return Log(path, "tensorboard", series, names)


# --------------------------------------------------------------------------------------------
# the entry point


def read_log(
    path: str | Path,
    *,
    format: str | None = None,
    keep: Callable[[str], bool] | None = None,
) -> Log:
    """Read the numeric series of a log file, run directory or stream.

    Args:
        path: a TensorBoard event file or run directory, a Lightning ``metrics.csv`` (or its
            directory), a Hugging Face ``trainer_state.json`` (or checkpoint directory), a
            ``.jsonl`` file or a ``.csv`` file with a step column; a pipe or FIFO; ``"-"`` for
            standard input.
        format: force a format (one of :data:`FORMATS`, or "json"); default: detect it (from
            the name, else from the first bytes).
        keep: ``keep(name)`` picks the series to read (default: all). The others are skipped
            without converting a value; :attr:`Log.columns` still lists them.

    Raises:
        FileNotFoundError: the path does not exist.
        LogFormatError: (a ValueError) empty, truncated or malformed file, a number out of the
            float range, JSON nested too deeply, or no numeric series in it.

    Example:
        >>> log = read_log("runs/exp1")  # doctest: +SKIP
        >>> log.format, log.names()  # doctest: +SKIP
        ('tensorboard', ['train/loss', 'val/loss'])
    """
    if isinstance(path, str) and not path.strip():
        raise LogFormatError("path must name a log file or run directory, but got path=''")
    p = Path(path)
    if str(path) != "-" and not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if format is not None and format not in (*FORMATS, "json"):
        raise LogFormatError(
            f"format must be one of {', '.join(FORMATS)}, 'json', but got format={format!r}"
        )
    source = open_source(p) if str(path) == "-" or not p.is_dir() else None
    if source is not None:
        p = source.path
    stream = source if source is not None and source.is_stream else None
    fmt = format if format is not None else _format_of(p, stream)
    try:
        if fmt == "tensorboard":
            return read_tensorboard(p, keep)
        if fmt == "lightning-csv":
            file = _pick_dir_file(p, "metrics.csv")
            return read_csv(file, "lightning-csv", keep, stream)
        if fmt == "hf-trainer-state":
            return read_hf(p, keep, stream)
        if fmt == "jsonl":
            return read_jsonl(p, keep, stream)
        if fmt == "json":
            return read_json(p, keep, stream)
        return read_csv(p, "csv", keep, stream)
    except IsADirectoryError:
        raise LogFormatError(f"{p}: is a directory, expected a file") from None
    except MemoryError:
        raise LogFormatError(
            f"{p}: out of memory while reading it (the series kept need more memory than is "
            "available; name fewer series)"
        ) from None
    except OSError as exc:
        raise LogFormatError(f"{p}: cannot read it ({exc.strerror or exc})") from None
