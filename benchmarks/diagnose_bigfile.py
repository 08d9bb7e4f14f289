"""Benchmark: ``lrkit diagnose`` on big CSV logs (10 MB, 100 MB, 1 GB): wall time and peak
memory, next to reading the same file with pandas (``pd.read_csv``) in the same run.

The logs are generated (seeded) in a temporary folder and deleted afterwards: one row per
step with ``step, epoch, train_loss, lr, grad_norm, throughput`` and a sparse ``val_loss``
(every 1,000 steps), as a Lightning or Hugging Face run writes them. Each measurement runs in a
fresh child process; its peak resident memory comes from ``os.wait4`` (the kernel's maxrss of
that child), its time from the parent's clock. ``import`` is the same child doing nothing but
importing (the CLI's, or pandas'), so that "above import" is what reading the file costs.

"arrays" is the size of the numpy arrays the reader returns to diagnose (steps and values of
each series it keeps: train_loss, lr, grad_norm, val_loss), checked once against a real read.

Run: ``nice -n 10 .venv/bin/python benchmarks/diagnose_bigfile.py`` (writes
benchmarks/results/diagnose_bigfile.json; ``--sizes 10,100`` for a quick run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "diagnose_bigfile.json"
HEADER = "step,epoch,train_loss,lr,grad_norm,throughput,val_loss\n"
VAL_EVERY = 1000

LRKIT = "import sys; from lrkit.cli import main; sys.exit(main(sys.argv[1:]))"
LRKIT_IMPORT = "import lrkit.cli, lrkit.diagnosis"
PANDAS = "import sys, pandas as pd; pd.read_csv(sys.argv[1])"
PANDAS_IMPORT = "import pandas"
KEPT = (
    "import sys, json; from lrkit.diagnosis import read_log; "
    "from lrkit.diagnosis._files import wanted_series; "
    "log = read_log(sys.argv[1], keep=wanted_series()); "
    "print(json.dumps(sum(s.steps.nbytes + s.values.nbytes for s in log.series.values())))"
)


def write_log(path: Path, megabytes: int, seed: int = 0) -> int:
    """A CSV log of about ``megabytes`` MB; returns its row count."""
    rng = np.random.default_rng(seed)
    target = megabytes * 1_000_000
    rows = 0
    chunk = 250_000
    with path.open("w") as fh:
        fh.write(HEADER)
        while fh.tell() < target:
            s = np.arange(rows, rows + chunk)
            loss = 2.0 * np.exp(-s / 4e6) + 0.1 + 0.02 * rng.standard_normal(chunk)
            grad = 1.0 + 0.1 * rng.standard_normal(chunk)
            speed = 900 + 50 * rng.standard_normal(chunk)
            val = np.where(s % VAL_EVERY == VAL_EVERY - 1, loss + 0.05, np.nan)
            lines = [
                f"{a},{a // 10_000},{b:.6f},0.0003,{c:.5f},{d:.1f},{'' if e != e else f'{e:.6f}'}\n"
                for a, b, c, d, e in zip(
                    s.tolist(),
                    loss.tolist(),
                    grad.tolist(),
                    speed.tolist(),
                    val.tolist(),
                    strict=True,
                )
            ]
            fh.write("".join(lines))
            rows += chunk
    return rows


def measure(code: str, *args: str) -> dict[str, float]:
    """Run ``python -c code args`` in a child; its wall time (s) and peak RSS (MB)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):  # lrkit diagnose exits 1 when it finds a problem
        raise RuntimeError(f"{code[:40]}... failed ({proc.returncode}): {err[-500:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def kept_bytes(path: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-c", KEPT, str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def table(report: dict[str, Any]) -> str:
    """The docs' markdown table from a results file."""
    lines = [
        "| CSV log | rows | arrays kept | `lrkit diagnose` time | peak memory (x arrays) "
        "| `pd.read_csv` time | peak memory (x arrays) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lk, pd_ = r["lrkit_diagnose"], r["pandas_read_csv"]
        lines.append(
            f"| {r['file_mb']:,.0f} MB | {r['rows']:,} | {r['arrays_mb']:,.0f} MB "
            f"| {lk['wall_s']:.1f} s | {lk['peak_rss_mb']:,.0f} MB ({lk['peak_over_arrays']:.2f}x) "
            f"| {pd_['wall_s']:.1f} s | {pd_['peak_rss_mb']:,.0f} MB "
            f"({pd_['peak_over_arrays']:.2f}x) |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,100,1000", help="file sizes in MB")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--table", action="store_true", help="print the docs' table from --out")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.out).read_text())))
        return
    load_at_start = os.getloadavg()[0]
    imports = {
        "lrkit": measure(LRKIT_IMPORT)["peak_rss_mb"],
        "pandas": measure(PANDAS_IMPORT)["peak_rss_mb"],
    }
    rows_out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lrkit-bigfile-") as folder:
        for megabytes in (int(v) for v in args.sizes.split(",")):
            path = Path(folder) / f"log-{megabytes}mb.csv"
            rows = write_log(path, megabytes)
            size_mb = path.stat().st_size / 1e6
            val_rows = rows // VAL_EVERY
            arrays = (3 * rows + val_rows) * 16  # steps + values, float64
            if megabytes == min(int(v) for v in args.sizes.split(",")):
                measured = kept_bytes(path)
                assert measured == arrays, (measured, arrays)
            lrkit = measure(LRKIT, "diagnose", str(path), "--json")
            pandas = measure(PANDAS, str(path))
            arrays_mb = arrays / 2**20
            row = {
                "file_mb": round(size_mb, 1),
                "rows": rows,
                "arrays_mb": round(arrays_mb, 1),
                "lrkit_diagnose": {
                    **lrkit,
                    "peak_over_arrays": round(lrkit["peak_rss_mb"] / arrays_mb, 2),
                    "above_import_over_arrays": round(
                        (lrkit["peak_rss_mb"] - imports["lrkit"]) / arrays_mb, 2
                    ),
                },
                "pandas_read_csv": {
                    **pandas,
                    "peak_over_arrays": round(pandas["peak_rss_mb"] / arrays_mb, 2),
                },
            }
            rows_out.append(row)
            print(json.dumps(row), flush=True)
            path.unlink()
    import pandas as pd

    report = {
        "benchmark": "lrkit diagnose on big CSV logs vs pandas.read_csv of the same file",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_at_start": round(load_at_start, 1),
            "load_at_end": round(os.getloadavg()[0], 1),
        },
        "versions": {"numpy": np.__version__, "pandas": pd.__version__},
        "import_peak_rss_mb": imports,
        "results": rows_out,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
