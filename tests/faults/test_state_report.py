"""Writing the ``lrkit auto`` report on a full disk, and a model class name that is markup.

Every size limit (RLIMIT_FSIZE) leaves the output folder either with the complete new report or
exactly as it was (a new folder is removed again): never a partial file, never a temporary one.
The command line says so in one line and exits 2. The markdown carries the hostile class name
as text, not as HTML.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _child import run_child
from _proc import TALLY

pytestmark = pytest.mark.faults

SIZES = [0, 1_000, 5_000, 30_000, 60_000, 100_000, 10_000_000]
INVARIANTS = 3  # unchanged-or-complete, no other file, the error is an OSError in one line


def test_report_is_whole_or_absent_on_a_full_disk(tmp_path: Path) -> None:
    work = tmp_path / "work"
    report, proc = run_child(
        "report_disk_full", {"sizes": SIZES, "folder": str(work)}, tmp_path / "tmp", timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = ["range_test.png", "report.html", "report.md", "result.json", "schedule.png"]
    failures = []
    for i, row in enumerate(report["rows"]):
        existed = i % 2 == 1  # these runs overwrote an earlier report
        expected_files = ["report", *(f"report/{n}" for n in names)]
        if row["outcome"] == "written":
            ok = row["complete"] and row["files"] == expected_files
        else:
            ok = row["outcome"] == "OSError" and row["unchanged"] and "\n" not in row["error"]
            ok = ok and row["files"] == (expected_files if existed else [])
            ok = ok and "File too large" in row["error"] and "cannot write" in row["error"]
        if not ok:
            failures.append(row)
    assert not failures, "\n".join(map(str, failures))
    assert [r["outcome"] for r in report["rows"]].count("written") == 1
    cli = report["cli"]
    assert cli["code"] == 2 and cli["files"] == []
    assert cli["stderr"].startswith("lrkit: error: ") and cli["stderr"].count("\n") == 1
    assert "File too large" in cli["stderr"]
    md = report["markdown"]
    assert "\\<img src=x onerror=alert(1)\\>\\*\\*Net\\*\\*" in md
    text = md.split("```")[0]  # up to the code block
    text = "\n".join(line.removeprefix("> ") for line in text.splitlines())  # the quote marker
    assert not re.search(r"(?<!\\)[<>]", text)  # no raw HTML: every < and > escaped
    TALLY.add(len(report["rows"]) + 1, len(report["rows"]) * INVARIANTS + 2)
