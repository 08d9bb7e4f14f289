"""Shared helpers of the fault-injection suite: children under resource limits, the processes
they leave behind, and a tally of the cases tried and invariants checked.

Signals and resource limits never touch the test process itself: each fault runs in a child.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

#: the CLI in a fresh interpreter (what a user's ``lrkit`` runs)
CLI = [sys.executable, "-c", "import sys; from lrkit.cli import run; sys.argv[0] = 'lrkit'; run()"]


def limits(*, fsize: int | None = None, address_space: int | None = None) -> Callable[[], None]:
    """A ``preexec_fn``: a file-size limit (a full disk in miniature: writes past it fail with
    EFBIG, SIGXFSZ ignored) and/or an address-space limit (MemoryError past it)."""

    def apply() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return apply


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}
    env.pop("LRKIT_DEBUG", None)
    return env


def start(
    args: Sequence[str],
    *,
    cwd: Path,
    preexec: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or child_env(),
        preexec_fn=preexec,
    )


class Descendants:
    """Follows every descendant of ``pid`` (children, grandchildren: workers, multiprocessing's
    resource tracker, what they start) from now until :meth:`survivors` is asked."""

    def __init__(self, pid: int, poll_s: float = 0.02) -> None:
        self._root = pid
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._poll_s = poll_s
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            root = psutil.Process(self._root)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                for child in root.children(recursive=True):
                    try:
                        self._seen.setdefault(child.pid, child.create_time())
                    except psutil.NoSuchProcess:
                        pass
            except psutil.NoSuchProcess:
                return
            self._stop.wait(self._poll_s)

    @property
    def seen(self) -> dict[int, float]:
        return dict(self._seen)

    def survivors(self, timeout: float = 10.0) -> list[str]:
        """The followed processes still alive after up to ``timeout`` seconds (a killed parent's
        workers get that long to notice and end)."""
        self._stop.set()
        self._thread.join()
        deadline = time.monotonic() + timeout
        while True:
            alive = []
            for pid, created in self._seen.items():
                try:
                    p = psutil.Process(pid)
                    if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(f"{pid}: {' '.join(p.cmdline())[:120]}")
                except psutil.NoSuchProcess:
                    pass
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    def kill(self) -> None:
        """Clean-up after a failed test: SIGKILL the root and every process followed."""
        self._stop.set()
        for pid, created in [(self._root, None), *self._seen.items()]:
            try:
                p = psutil.Process(pid)
                if created is None or p.create_time() == created:
                    p.kill()
            except psutil.NoSuchProcess:
                pass


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def one_line(err: str) -> str:
    """The error output, asserted to be one line (no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    return lines[0]


def journal_decodes(path: Path) -> int:
    """Assert every line of a journal file is a whole JSON record; return the record count."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} ends in a torn record"
    lines = data.splitlines()
    for number, line in enumerate(lines, 1):
        assert isinstance(json.loads(line), dict), f"{path}: record {number} is not an object"
    return len(lines)


class Tally:
    """Counts the fault cases tried and the invariants checked (the suite reports both)."""

    def __init__(self) -> None:
        self.cases = 0
        self.invariants = 0

    def case(self) -> None:
        self.cases += 1

    def add(self, cases: int, invariants: int) -> None:
        """Count ``cases`` tried and ``invariants`` checked by assertions that already passed."""
        self.cases += cases
        self.invariants += invariants

    def check(self, condition: bool, message: str = "") -> None:
        assert condition, message
        self.invariants += 1


#: the suite's tally; with LRKIT_FAULTS_TALLY=path each test process appends its counts there
TALLY = Tally()


def _write_tally() -> None:
    path = os.environ.get("LRKIT_FAULTS_TALLY")
    if path and TALLY.cases:
        with open(path, "a") as fh:
            fh.write(json.dumps({"cases": TALLY.cases, "invariants": TALLY.invariants}) + "\n")


atexit.register(_write_tally)
