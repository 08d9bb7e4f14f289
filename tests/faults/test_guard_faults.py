"""The Guard under SIGINT storms, a full disk, bad paths, and every way a program ends.

Rollback: a SIGINT sent from inside the rollback (at a random line) or 0-3 ms after it starts,
followed by more 1-20 ms apart, leaves the model and optimizer either exactly at the snapshot or
(a signal before the rollback began) exactly as they were, never a mix. Full disk: from a random
step on no file can grow (RLIMIT_FSIZE); ``guard.step`` raises nothing but ``GuardError``, a
rollback lands exactly on the last snapshot that was written, no partial or temporary file
remains. Leaks: ``Guard(snapshot="disk")`` without a folder leaves nothing behind after
``close()``, a ``with`` block, garbage collection, interpreter exit, or an uncaught GuardError.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _child import run_child
from _proc import TALLY

pytestmark = pytest.mark.faults

SIGINT_CASES = [("traced", "memory", 10), ("traced", "disk", 10), ("timed", "memory", 8),
                ("timed", "disk", 8)]  # fmt: skip
DISK_FULL_CASES = [("snapshot", 14), ("log", 8)]
LEAK_CASES = ["with", "close", "gc", "exit", "guard_error"]
INVARIANTS = {"sigint": 6, "disk_full": 6, "leaks": 2}  # per run, see the asserts


def test_guard_under_signals_a_full_disk_and_every_exit(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    batch: list[list[object]] = []
    for i, (mode, snap, n) in enumerate(SIGINT_CASES):
        folder = str(work / f"sigint{i}") if snap == "disk" else None
        args = {"mode": mode, "snapshot": snap, "folder": folder, "first_seed": 50 * i, "seeds": n}
        batch.append(["guard_sigint", args])
    for what, n in DISK_FULL_CASES:
        batch.append(["guard_disk_full", {"what": what, "first_seed": 0, "seeds": n,
                                          "folder": str(work / f"full-{what}")}])  # fmt: skip
    for how in LEAK_CASES:
        batch.append(["guard_leaks", {"how": how, "folder": str(work)}])
    report, proc = run_child("batch", batch, tmp_path / "tmp", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = iter(report["results"])
    failures: list[object] = []

    for mode, snap, n in SIGINT_CASES:
        rows = next(results)["rows"]
        assert len(rows) == n
        for row in rows:
            ok = row["outcome"] in ("rolled back", "interrupted") and not row["diffs"]
            ok = ok and (row["restored"] or (row["untouched"] and row["outcome"] == "interrupted"))
            ok = ok and not row["files"] and row["error"] is None
            if snap == "disk":  # while open: only the guard's complete snapshot files
                ok = ok and all(
                    re.fullmatch(r"guard-step\d{9}\.pt", f) for f in row["files_while_open"]
                )
            if not ok:
                failures.append(("sigint", mode, snap, row))
        if mode == "traced":  # the signal really came during the rollback, which still finished
            hits = [r for r in rows if r["hit"]]
            assert len(hits) >= n // 2 and all(r["restored"] for r in hits), rows

    for what, n in DISK_FULL_CASES:
        rows = next(results)["rows"]
        assert len(rows) == n
        for row in rows:
            ok = row["outcome"] in ("rolled back", "GuardError") and not row["diffs"]
            ok = ok and row["complete"] and not row["left_after_close"]
            ok = ok and not any(f.endswith(".tmp") for f in row["files"])
            if row["outcome"] == "GuardError":  # only when no snapshot could be written at all
                ok = ok and what == "snapshot" and "could not be saved" in row["error"]
                ok = ok and row["failures"] >= 1 and "\n" not in row["error"]
            if not ok:
                failures.append(("disk full", what, row))
        outcomes = {r["outcome"] for r in rows}
        assert "rolled back" in outcomes, rows
        if what == "snapshot":  # some runs lost every snapshot, others only the later ones
            assert "GuardError" in outcomes and any(r["failures"] for r in rows), rows

    for how in LEAK_CASES:
        row = next(results)
        ok = len(row["while_open"]) >= 3 and row["files"] == []  # a folder and two snapshots
        if how == "close":
            ok = ok and len(row["reopened"]) >= 3 and row["files_after_reuse"] == []
        if how in ("exit", "guard_error"):
            ok = ok and row["exit"] == (0 if how == "exit" else 1)
        if not ok:
            failures.append(("leak", how, row))
    assert not failures, "\n".join(map(str, failures))
    sigint_runs = sum(n for *_, n in SIGINT_CASES)
    full_runs = sum(n for _, n in DISK_FULL_CASES)
    TALLY.add(
        sigint_runs + full_runs + len(LEAK_CASES),
        sigint_runs * INVARIANTS["sigint"]
        + full_runs * INVARIANTS["disk_full"]
        + len(LEAK_CASES) * INVARIANTS["leaks"],
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp, "log_path must be a file path, not a directory"),
        (lambda tmp: str(tmp), "log_path must be a file path, not a directory"),
        (lambda tmp: "", "log_path must be a path"),
        (lambda tmp: tmp / "file.txt" / "guard.json", "log_path must be a path whose folder"),
        (lambda tmp: "/dev/null", "log_path must be a path to a regular file"),
        (lambda tmp: 42, "log_path must be a path"),
        (lambda tmp: "a\0b", "log_path must be a path without NUL"),
    ],
)
def test_bad_log_paths_are_refused_at_construction(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    from lrkit.diagnosis import Guard

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        Guard(policy="warn", log_path=make(tmp_path))
    assert "\n" not in str(info.value)


def test_a_snapshot_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    import torch

    from lrkit.diagnosis import Guard

    (tmp_path / "f").write_text("x")
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="snapshot_dir must be a folder, not a file"):
        Guard(policy="rollback", model=model, optimizer=opt, snapshot="disk",
              snapshot_dir=tmp_path / "f")  # fmt: skip
    # a folder that does not exist yet is created at the first snapshot, and removed by close
    guard = Guard(policy="rollback", model=model, optimizer=opt, snapshot="disk",
                  snapshot_dir=tmp_path / "new" / "snaps")  # fmt: skip
    assert not (tmp_path / "new").exists()
    guard.take_snapshot(0)
    assert [p.name for p in (tmp_path / "new" / "snaps").iterdir()] == ["guard-step000000000.pt"]
    guard.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_an_unreadable_snapshot_is_a_guard_error_with_the_model_untouched(tmp_path: Path) -> None:
    import math

    import torch

    from lrkit.diagnosis import Guard, GuardError

    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    guard = Guard(policy="rollback", model=model, optimizer=opt, snapshot="disk",
                  snapshot_dir=tmp_path / "snaps")  # fmt: skip
    guard.take_snapshot(0)
    (path,) = (tmp_path / "snaps").iterdir()
    path.write_bytes(b"not a snapshot")  # the disk went bad
    with torch.no_grad():
        model.weight.add_(1.0)
    weight = model.weight.detach().clone()
    with pytest.raises(GuardError, match="could not be read back") as info:
        guard.step(1, math.nan)
    assert "\n" not in str(info.value) and info.value.event.action == "gave_up"
    assert torch.equal(model.weight, weight)  # nothing half-restored
    guard.close()
    assert not (tmp_path / "snaps").exists()
