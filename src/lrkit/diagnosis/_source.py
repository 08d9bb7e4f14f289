"""Where a log's bytes come from: a file, or a stream read once (a pipe, a FIFO, ``/dev/stdin``,
``-`` for standard input), with its format told from the first bytes when the name does not.

A stream cannot be read twice, so its first bytes are peeked at (kept in a buffer) and the
reader then consumes the same stream from its start.
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lrkit.diagnosis._numbers import LogFormatError

__all__ = ["Source", "open_source"]

_PEEK = 1 << 16
_BUFFER = 1 << 20


class Source:
    """A log file or stream; :meth:`open` gives its bytes from the start (once, for a stream)."""

    def __init__(
        self, path: Path, stream: io.BufferedReader | None = None, *, owned: bool = True
    ) -> None:
        self.path = path
        self._stream = stream
        self._owned = owned  # closed after reading (not standard input)
        self._opened = False

    @property
    def is_stream(self) -> bool:
        return self._stream is not None

    def head(self) -> bytes:
        """Up to the first 64 KiB (a stream keeps them for :meth:`open`)."""
        if self._stream is not None:
            return self._stream.peek(_PEEK)[:_PEEK]
        with self.path.open("rb") as fh:
            return fh.read(_PEEK)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if self._stream is None:
            with self.path.open("rb", buffering=_BUFFER) as fh:
                yield fh
            return
        if self._opened:  # pragma: no cover - readers read a stream once
            raise LogFormatError(f"{self.path}: a stream can be read only once")
        self._opened = True
        try:
            yield self._stream
        finally:
            if self._owned:
                self._stream.close()


def open_source(path: Path) -> Source:
    """A :class:`Source` for ``path`` ("-" is standard input); raises for a missing path."""
    if str(path) == "-":
        stdin = io.BufferedReader(sys.stdin.buffer.raw, _BUFFER)  # type: ignore[union-attr]
        return Source(Path("<stdin>"), stdin, owned=False)
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return Source(path)
    # a pipe, a FIFO, a character device (/dev/stdin on a pipe): read once, in order
    return Source(path, io.BufferedReader(open(path, "rb", buffering=0), _BUFFER))


def sniff(head: bytes) -> str | None:
    """The format of a log from its first bytes: "jsonl", "json", "csv", or None."""
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        first = text.split("\n", 1)[0]
        try:
            json.loads(first)
        except (ValueError, RecursionError):
            return "json"  # one object over several lines (a trainer_state.json)
        return "jsonl"
    first = text.split("\n", 1)[0]
    if ("," in first or "\t" in first) and "\x00" not in first:
        return "csv"
    return None
