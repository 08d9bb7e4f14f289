"""A journal file that survives full disks, power loss and killed processes.

Optuna's ``JournalFileBackend`` appends one JSON record per line. A write cut short (a full disk,
a process killed mid-write, a power loss) leaves a torn last line; Optuna skips it while it is
last, but the next append lands right after it and glues a whole record onto the fragment: the
line in the middle of the file no longer decodes and every later read fails ("Expecting ':'
delimiter", optuna/optuna#5138), so every trial of the study is out of reach.

:class:`RepairingJournalBackend` keeps Optuna's reader and changes the writer:

- **One kernel lock** (``flock`` on the journal file itself) serialises writers. The kernel
  drops it when its process dies, so a killed worker never leaves a lock behind that blocks the
  resumed run (Optuna's symlink lock waits out a 30 s grace period, optuna/optuna#5921). Where
  ``flock`` is missing (Windows) Optuna's ``JournalFileOpenLock`` is used.
- **A torn tail is repaired before anything is appended**, under that lock: a last line without
  its newline (or one that does not decode) is cut off, with one warning that names the file and
  the bytes dropped. A fragment with a whole record glued after it (left by earlier versions,
  anywhere in the file) keeps the record and loses only the fragment.
- **A failed append is rolled back** (the file is truncated to where it was), so a full disk
  leaves the journal as it was before the write; the error is one line that names the file.

Nothing is lost that was written whole: a dropped fragment is a record whose write never
finished (its trial stays running and is queued again as a dead worker's trial).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalFileOpenLock

from lrkit.tuning._errors import StorageError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RepairingJournalBackend"]

logger = logging.getLogger(__name__)

# every record Optuna writes starts with this key (json.dumps of {"op_code": ..., ...})
_RECORD_START = b'{"op_code":'
_TAIL_CHUNK = 1 << 16
# errors of a full disk: no space, a file-size limit, a quota
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class FlockLock:
    """An exclusive ``flock`` on the journal file itself: released by the kernel when the
    holding process exits or is killed, so it can never be left behind."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        assert fcntl is not None
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    @property
    def fd(self) -> int:
        assert self._fd is not None, "the lock is not held"
        return self._fd


def _decodes(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _salvage(line: bytes) -> bytes | None:
    """The whole record glued after a torn fragment on one line, if there is one."""
    pos = line.rfind(_RECORD_START)
    while pos > 0:
        if _decodes(line[pos:]):
            return line[pos:]
        pos = line.rfind(_RECORD_START, 0, pos)
    return None


def _last_line_start(fd: int, end: int) -> int:
    """Offset of the first byte after the last newline before ``end`` (0 when there is none)."""
    pos = end
    while pos > 0:
        start = max(0, pos - _TAIL_CHUNK)
        chunk = os.pread(fd, pos - start, start)
        found = chunk.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        pos = start
    return 0


class RepairingJournalBackend(BaseJournalBackend):
    """Optuna's journal file with torn-tail repair, a kernel lock and rolled-back failed writes.

    Example:
        >>> from optuna.storages.journal import JournalStorage
        >>> storage = JournalStorage(RepairingJournalBackend("study.journal"))  # doctest: +SKIP
    """

    def __init__(self, path: str) -> None:
        self._path = str(path)
        self._lock: FlockLock | JournalFileOpenLock = (
            FlockLock(self._path) if fcntl is not None else JournalFileOpenLock(self._path)
        )
        try:
            # Optuna's reader (its own writer and lock are never used)
            self._reader = JournalFileBackend(self._path)
        except OSError as exc:
            raise self._error("cannot open", exc) from None

    # -- errors ---------------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> StorageError:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        text = f"{what} journal storage {self._path!r}: {' '.join(reason.split())}"
        if isinstance(exc, OSError) and exc.errno in _FULL:
            text += (
                " (the journal is kept as it was before this write: free space and run the "
                "same command again to resume)"
            )
        return StorageError(text)

    # -- locking and repair ---------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """Hold the writers' lock; yield a descriptor of the journal open for writing."""
        self._lock.acquire()
        try:
            if isinstance(self._lock, FlockLock):
                yield self._lock.fd
            else:  # pragma: no cover - Windows
                fd = os.open(self._path, os.O_RDWR)
                try:
                    yield fd
                finally:
                    os.close(fd)
        finally:
            self._lock.release()

    def _repair_tail(self, fd: int) -> int:
        """Cut a torn last record off (under the lock); return the journal's sound size."""
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        end = size
        if os.pread(fd, 1, size - 1) != b"\n":
            end = _last_line_start(fd, size)
        replacement = b""
        if end > 0:
            start = _last_line_start(fd, end - 1)
            line = os.pread(fd, end - start, start)
            if not _decodes(line):
                salvaged = _salvage(line.rstrip(b"\r\n"))
                replacement = b"" if salvaged is None else salvaged + b"\n"
                end = start
        if end == size and not replacement:
            return size
        dropped = size - end - len(replacement)
        os.ftruncate(fd, end)
        if replacement:
            os.pwrite(fd, replacement, end)
            end += len(replacement)
        os.fsync(fd)
        logger.warning(
            "journal %s: dropped %d bytes of a torn last record (a write cut short by a full "
            "disk or a killed process); the study continues from the records before it",
            self._path,
            dropped,
        )
        return end

    def _repair_middle(self) -> bool:
        """Rewrite the lines that do not decode anywhere in the file (fragments glued to a record
        by earlier versions): keep each glued record, drop the fragment. True if any changed."""
        with self._locked() as fd:
            self._repair_tail(fd)
            with open(self._path, "rb") as f:
                first_bad: int | None = None
                offset = 0
                for line in f:
                    if not _decodes(line):
                        first_bad = offset
                        break
                    offset += len(line)
                if first_bad is None:
                    return False
                f.seek(first_bad)
                fixed: list[bytes] = []
                dropped = 0
                for line in f:
                    if _decodes(line):
                        fixed.append(line)
                        continue
                    salvaged = _salvage(line.rstrip(b"\r\n"))
                    fixed.append(b"" if salvaged is None else salvaged + b"\n")
                    dropped += len(line) - len(fixed[-1])
                # the old tail is kept aside until its rewrite is on disk
                backup = f"{self._path}.repair-{os.getpid()}"
                with open(backup, "wb") as dst:
                    f.seek(first_bad)
                    shutil.copyfileobj(f, dst)
                    dst.flush()
                    os.fsync(dst.fileno())
            body = b"".join(fixed)
            os.pwrite(fd, body, first_bad)
            os.ftruncate(fd, first_bad + len(body))
            os.fsync(fd)
            os.unlink(backup)
        logger.warning(
            "journal %s: dropped %d bytes of torn records inside the file (writes cut short "
            "before this version repaired them); the whole records around them are kept",
            self._path,
            dropped,
        )
        return True

    # -- the backend interface ------------------------------------------------------------

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        for attempt in range(2):
            produced = 0
            try:
                for log in self._reader.read_logs(log_number_from + produced):
                    produced += 1
                    yield log
                return
            except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
                if attempt == 0 and self._repair_middle():
                    log_number_from += produced
                    continue
                line = log_number_from + produced + 1
                raise StorageError(
                    f"cannot read journal storage {self._path!r}: record {line} is corrupt "
                    f"({' '.join(str(exc).split())})"
                ) from None
            except OSError as exc:
                raise self._error("cannot read", exc) from None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        try:
            with self._locked() as fd:
                size = self._repair_tail(fd)
                try:
                    view = memoryview(data)
                    written = 0
                    while written < len(data):
                        written += os.pwrite(fd, view[written:], size + written)
                    os.fsync(fd)
                except BaseException:
                    # roll back a partial write: the journal stays as it was before it
                    try:
                        os.ftruncate(fd, size)
                    except OSError:  # pragma: no cover - the next append repairs the tail
                        pass
                    raise
        except OSError as exc:
            raise self._error("cannot write to", exc) from None
