"""Ctrl-C storms during ``find_lr``: the user's state comes back bit for bit, no file remains.

One child interpreter (``_child.py``) runs every case: SIGINT at random moments (1 to 5 signals
1-20 ms apart, including during the snapshot and the restore), a first Ctrl-C at a random step
followed 1-20 ms later by more while the restore runs (a model big enough for the restore to
take ~10-20 ms), and a second SIGINT sent from inside the restore at a random line. Each run
checks the ten parts of ``_child.STATE_PARTS`` (parameters and buffers, identities, gradients,
optimizer state, param groups, train/eval flags, python / numpy / torch RNG, the DataLoader's
generator), that no file is left in TMPDIR and that the only outcomes are a result or a
``KeyboardInterrupt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _child import STATE_PARTS, run_child
from _proc import TALLY

pytestmark = pytest.mark.faults

SMALL: dict[str, Any] = {"width": 64, "steps": 30}
BIG: dict[str, Any] = {"width": 1024, "depth": 3, "steps": 10}  # restore ~10-20 ms
CASES = [
    ("storm", "memory", SMALL, 10),
    ("storm", "disk", SMALL, 10),
    ("restore-traced", "memory", SMALL, 10),
    ("restore-traced", "disk", SMALL, 10),
    ("restore-timed", "memory", BIG, 5),
    ("restore-timed", "disk", BIG, 5),
]
#: what each run checks: the state parts, no file left, a clean outcome
INVARIANTS = len(STATE_PARTS) + 2


def test_ctrl_c_storms_never_lose_the_users_state(tmp_path: Path) -> None:
    batch = [
        ["range_sigint", {"mode": mode, "snapshot": snap, "first_seed": 100 * i, "seeds": n, **kw}]
        for i, (mode, snap, kw, n) in enumerate(CASES)
    ]
    report, proc = run_child("batch", batch, tmp_path / "tmp", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    failures = []
    for (mode, snap, _, n), result in zip(CASES, report["results"], strict=True):
        rows = result["rows"]
        assert len(rows) == n
        for row in rows:
            if row["diffs"] or row["files"] or row["outcome"] not in ("completed", "interrupted"):
                failures.append((mode, snap, row))
        if mode.startswith("restore"):
            # every run was interrupted, and the second signal really came during the restore
            assert all(r["outcome"] == "interrupted" for r in rows), (mode, snap, rows)
        if mode == "restore-traced":
            assert sum(r["hit"] for r in rows) >= n // 2, (mode, snap, rows)
        if mode == "storm":
            assert any(r["outcome"] == "interrupted" for r in rows), (mode, snap, rows)
    assert not failures, "\n".join(map(str, failures))
    runs = sum(n for *_, n in CASES)
    TALLY.add(runs, runs * INVARIANTS)
