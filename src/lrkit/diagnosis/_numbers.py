"""Numbers out of log files, chunk by chunk, into growing float arrays.

One grammar for every reader: a cell is a number when it is an ASCII decimal literal
(``-1.5e-3``, ``7``, ``.5``) or a spelling of infinity or NaN (``inf``, ``-Infinity``, ``nan``;
a loss of inf or NaN is what a diverged run logs). Anything else (``0x1F``, ``1_000``, digits of
other scripts, text, lists) is not a number: the cell is treated as missing, as an empty one is.
A literal beyond the float range (``1e400``, a 400-digit integer) is an error: a log never
writes one, so the file is corrupt.

Conversions run on whole columns of a chunk (numpy over Python floats, the same parser as
``float``); only chunks holding something unusual take the per-cell path.
"""

from __future__ import annotations

import math
import operator
import re
from array import array
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Columns", "LogFormatError", "json_floats", "text_floats"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE | re.ASCII
)
_INFINITY = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)


class LogFormatError(ValueError):
    """A log file that cannot be read: empty, truncated, malformed, not text, a number out of
    range, JSON nested too deeply. The message is one line naming the file (and the line)."""


class OutOfRange(Exception):
    """A number literal beyond the float range at ``index`` of a column (internal)."""

    def __init__(self, index: int, text: str) -> None:
        super().__init__(text)
        self.index = index
        self.text = text


def describe(text: object) -> str:
    """A short, printable form of a bad cell for an error message."""
    s = str(text)
    return repr(s if len(s) <= 40 else f"{s[:18]}...{s[-12:]} ({len(s)} characters)")


def _cell(text: str) -> float | None:
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        return None
    return float(stripped)


def _check_infinities(values: FloatArray, cells: Sequence[str]) -> None:
    """Raise OutOfRange where an inf came from a finite literal (``1e400``), not ``inf``."""
    for index in np.flatnonzero(np.isinf(values)).tolist():
        if not _INFINITY.fullmatch(cells[index].strip()):
            raise OutOfRange(index, cells[index])


def _slow_text(cells: Sequence[str]) -> tuple[FloatArray, BoolArray]:
    values = np.full(len(cells), np.nan)
    present = np.zeros(len(cells), dtype=bool)
    for i, text in enumerate(cells):
        if not text:
            continue
        value = _cell(text)
        if value is None:
            continue
        if math.isinf(value) and not _INFINITY.fullmatch(text.strip()):
            raise OutOfRange(i, text)
        values[i] = value
        present[i] = True
    return values, present


def text_floats(cells: Sequence[str]) -> tuple[FloatArray, BoolArray]:
    """Column of text cells -> (values, present); a missing or non-number cell is not present.

    Raises OutOfRange for a literal beyond the float range.
    """
    n = len(cells)
    full = "" not in cells
    present = np.ones(n, dtype=bool) if full else np.fromiter(map(bool, cells), bool, n)
    nonempty = cells if full else list(compress(cells, present))
    joined = "".join(nonempty)
    if joined.isascii() and "_" not in joined:  # float() would take "1_000" and other scripts
        try:
            dense = np.array(nonempty, dtype=np.float64)
        except ValueError:  # a cell that is not a number: the per-cell path decides
            pass
        else:
            _check_infinities(dense, nonempty)
            if full:
                return dense, present
            values = np.full(n, np.nan)
            values[present] = dense
            return values, present
    return _slow_text(cells)


def json_floats(raw: Sequence[Any]) -> tuple[FloatArray, BoolArray]:
    """Column of JSON values -> (values, present): numbers (not booleans), number strings;
    None, booleans, lists, objects and other strings are missing.

    Raises OutOfRange for an integer beyond the float range (JSON's ``1e400`` is checked by
    the reader, which sees the literal).
    """
    n = len(raw)
    types = set(map(type, raw))
    if types <= {float, int, type(None)}:
        present = np.fromiter(map(operator.is_not, raw, repeat(None)), dtype=bool, count=n)
        full = bool(present.all())
        dense_raw = raw if full else list(compress(raw, present))
        try:
            dense = np.array(dense_raw, dtype=np.float64)
        except OverflowError:
            pass
        else:
            if full:
                return dense, present
            values = np.full(n, np.nan)
            values[present] = dense
            return values, present
    values = np.full(n, np.nan)
    present = np.zeros(n, dtype=bool)
    for i, v in enumerate(raw):
        t = type(v)
        if t is float or t is int:
            try:
                values[i] = float(v)
            except OverflowError:
                raise OutOfRange(i, str(v)) from None
            present[i] = True
        elif t is str:
            value = _cell(v)
            if value is not None:
                if math.isinf(value) and not _INFINITY.fullmatch(v.strip()):
                    raise OutOfRange(i, v)
                values[i] = value
                present[i] = True
    return values, present


class Columns:
    """The series a log streams into: per name, steps and values in ``array('d')`` (grown
    geometrically, 8 bytes a number, no Python object per value).

    ``keep(name)`` picks the series to store; every name seen is listed in :attr:`names`.
    """

    def __init__(self, keep: Callable[[str], bool] | None = None) -> None:
        self._keep = keep
        self._wanted: dict[str, bool] = {}
        self._data: dict[str, tuple[array[float], array[float]]] = {}

    def wanted(self, name: str) -> bool:
        known = self._wanted.get(name)
        if known is None:
            known = self._wanted[name] = self._keep is None or bool(self._keep(name))
        return known

    @property
    def filtered(self) -> bool:
        """True when only some series are kept."""
        return self._keep is not None

    @property
    def names(self) -> list[str]:
        """Every series name seen, kept or not, in the order first seen."""
        return list(self._wanted)

    def add(self, name: str, steps: FloatArray, values: FloatArray) -> None:
        if steps.size == 0:
            return
        acc = self._data.get(name)
        if acc is None:
            acc = self._data[name] = (array("d"), array("d"))
        acc[0].frombytes(np.ascontiguousarray(steps, dtype=np.float64).view(np.uint8).data)
        acc[1].frombytes(np.ascontiguousarray(values, dtype=np.float64).view(np.uint8).data)

    def arrays(self) -> dict[str, tuple[FloatArray, FloatArray]]:
        """name -> (steps, values), as numpy views of the stored buffers (no copy)."""
        return {
            name: (np.frombuffer(s, dtype=np.float64), np.frombuffer(v, dtype=np.float64))
            for name, (s, v) in self._data.items()
        }
