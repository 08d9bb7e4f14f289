"""A memory limit (RLIMIT_AS, in a child) while diagnosing a big log.

Invariants: with room for a few times the arrays diagnose keeps (far less than the file), the
log is diagnosed exactly as without a limit; with too little room the error is one line and
exit 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _proc import TALLY, one_line, start

pytestmark = pytest.mark.faults

ROWS = 400_000
EXTRA = ["throughput", "tokens", "memory_mb", "epoch", "grad_scale", "batch_time", "data_time"]

CHILD = r"""
import json, resource, sys
from lrkit.cli import main
from lrkit.diagnosis import diagnose_file

diagnose_file(sys.argv[3])  # every lazy import done before the limit
main(["diagnose", sys.argv[3], "--json"])
with open("/proc/self/status") as fh:
    vm = next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmSize:"))
limit = vm + int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
if sys.argv[4] == "cli":
    sys.exit(main(["diagnose", sys.argv[1]]))
try:
    d = diagnose_file(sys.argv[1])
    out = {"ok": True, "verdict": d.verdict, "points": d.statistics["points"],
           "series": d.statistics["series"]}
except Exception as exc:
    out = {"ok": False, "type": type(exc).__name__, "message": str(exc)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 45 MB CSV of which diagnose keeps two columns (step and loss: 6.4 MB of arrays)."""
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    steps = np.arange(ROWS)
    loss = 2.0 * np.exp(-steps / (ROWS / 8)) + 0.1 + 0.02 * rng.standard_normal(ROWS)
    extra = rng.random((ROWS, len(EXTRA))) * 1000
    table = np.column_stack([steps, loss, extra])
    path = folder / "big.csv"
    np.savetxt(
        path,
        table,
        delimiter=",",
        header="step,loss," + ",".join(EXTRA),
        comments="",
        fmt=["%d", "%.7f"] + ["%.6f"] * len(EXTRA),
    )
    small = folder / "small.csv"
    small.write_text("step,loss\n" + "".join(f"{i},{1 / (i + 1)}\n" for i in range(200)))
    return path, small


def _diagnose_under(big: Path, small: Path, budget: int) -> dict[str, object]:
    args = [sys.executable, "-c", CHILD, str(big), str(budget), str(small), "lib"]
    proc = start(args, cwd=big.parent)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_a_big_log_is_diagnosed_within_a_few_times_its_kept_arrays(
    big_log: tuple[Path, Path],
) -> None:
    TALLY.case()
    big, small = big_log
    size = big.stat().st_size
    kept = ROWS * 2 * 8  # the loss series: steps and values
    budget = 12 * kept + (32 << 20)  # ~110 MB, for a 45 MB file (the old reader took ~1.6 GB)
    TALLY.check(budget < 3 * size)
    result = _diagnose_under(big, small, budget)
    TALLY.check(result["ok"] is True, result)
    TALLY.check(result["points"] == ROWS, result)
    series = result["series"]
    assert isinstance(series, dict)
    TALLY.check(series["train"] == "loss" and series["lr"] is None, series)


def test_too_little_memory_is_one_line_and_exit_2(big_log: tuple[Path, Path]) -> None:
    TALLY.case()
    big, small = big_log
    result = _diagnose_under(big, small, 2 << 20)
    TALLY.check(result["ok"] is False and result["type"] == "LogFormatError", result)
    TALLY.check("out of memory" in str(result["message"]), result)
    # the CLI: one line, exit 2
    args = [sys.executable, "-c", CHILD, str(big), str(2 << 20), str(small), "cli"]
    proc = start(args, cwd=big.parent)
    _, err = proc.communicate(timeout=300)
    TALLY.check(proc.returncode == 2, err)
    TALLY.check(one_line(err).startswith("lrkit: error: ") and "out of memory" in err, err)
