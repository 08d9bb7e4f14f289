"""A full disk (RLIMIT_FSIZE) and SIGTERM during range tests with a disk snapshot.

Full disk: ``find_lr(snapshot="disk")`` must fail before touching anything, with a documented
``SnapshotError`` (an ``OSError`` carrying the errno, one line), the user's state identical bit
for bit (``_child.STATE_PARTS``) and no partial file left. SIGTERM at a random moment of a loop
of range tests (forked children): the process still ends by SIGTERM, after the restore, with no
file left behind.
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

import pytest
from _child import STATE_PARTS, run_child
from _proc import TALLY

pytestmark = pytest.mark.faults

#: per-file size limits: nothing fits, a header fits, part of the tensors fit, everything fits
SIZES = [0, 1, 100, 5_000, 20_000, 40_000, 10_000_000]
SIGTERM_SEEDS = 6
INVARIANTS = len(STATE_PARTS) + 3  # + no file left, error type/errno, one line


def test_full_disk_and_sigterm_during_range_tests(tmp_path: Path) -> None:
    batch = [
        ["range_disk_full", {"sizes": SIZES}],
        ["range_sigterm", {"first_seed": 0, "seeds": SIGTERM_SEEDS}],
    ]
    report, proc = run_child("batch", batch, tmp_path / "tmp", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    full, term = (r["rows"] for r in report["results"])
    failures = []
    for row in full:
        ok = not row["diffs"] and not row["files"]
        if row["outcome"] == "completed":
            ok = ok and row["size"] >= 40_000
        else:
            ok = ok and row["outcome"] == "SnapshotError" and row["oserror"]
            ok = ok and row["errno"] == errno.EFBIG and "\n" not in row["error"]
            ok = ok and "cannot save the state to" in row["error"]
            ok = ok and "File too large" in row["error"]
        if not ok:
            failures.append(row)
    assert [r["outcome"] for r in full].count("completed") == 1  # only the 10 MB limit fits
    for row in term:
        if row["signal"] != signal.SIGTERM or row["files"]:
            failures.append(row)
    assert not failures, "\n".join(map(str, failures))
    TALLY.add(len(full) + len(term), len(full) * INVARIANTS + len(term) * 2)
