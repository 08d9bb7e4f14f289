"""The fault-injection suite's tally: how many fault cases it tries and how many invariants hold.

    .venv/bin/python benchmarks/faults_tally.py        # runs tests/faults (a few minutes)

Runs ``pytest -m faults tests/faults`` with ``LRKIT_FAULTS_TALLY`` set: every test process
appends the cases it tried and the invariants its assertions checked (``tests/faults/_proc.py``,
``Tally``); a failed assertion stops its test before the count, so every counted invariant held.
Writes ``benchmarks/results/faults_tally.json``; the README quotes it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "faults_tally.json"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tally = Path(tmp) / "tally.jsonl"
        env = dict(os.environ, LRKIT_FAULTS_TALLY=str(tally))
        command = [sys.executable, "-m", "pytest", "-q", "-n", "2", "-m", "faults", "tests/faults"]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        lines = tally.read_text().splitlines() if tally.exists() else []
        records = [json.loads(line) for line in lines]
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    result = {
        "command": "python benchmarks/faults_tally.py (pytest -q -n 2 -m faults tests/faults)",
        "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "pytest": summary,
        "exit_code": proc.returncode,
        "cases": sum(r["cases"] for r in records),
        "invariants": sum(r["invariants"] for r in records),
        "seconds": round(seconds, 1),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
