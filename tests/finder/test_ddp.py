"""Under torch.distributed (2 CPU processes, gloo) every rank gets the same curve and stop."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

WORKER = Path(__file__).with_name("_ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ranks(tmp_path: Path, nan_step: int, num_steps: int) -> list[dict]:  # type: ignore[type-arg]
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ)
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    str(tmp_path / f"rank{rank}.json"),
                    str(nan_step),
                    str(num_steps),
                    "stub-rules",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=60)  # a hang fails the test instead of blocking
            outputs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


# slow: two fresh python processes import torch and join a gloo group (most of the ~5-15 s);
# one launch covers both the clean test and the NaN test to pay that once
@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ranks_agree_and_stop_together_when_one_rank_sees_nan(tmp_path: Path) -> None:
    r0, r1 = run_ranks(tmp_path, nan_step=9, num_steps=30)
    a, b = r0["result"], r1["result"]
    assert a["stop_reason"] == b["stop_reason"] == "non-finite"
    assert a["lrs"] == b["lrs"]
    assert a["losses"] == b["losses"] and a["smoothed"] == b["smoothed"]
    assert len(a["losses"]) == 10 and a["losses"][-1] == "nan"  # stopped at step 9 on both
    assert r0["local_calls"] == r1["local_calls"] == 10
    assert r0["suggestion"] == r1["suggestion"]
    # the clean test: the same curve, the same stop and a real (not None) common suggestion
    c0, c1 = r0["clean_result"], r1["clean_result"]
    assert c0["losses"] == c1["losses"] and c0["stop_reason"] == c1["stop_reason"]
    assert r0["clean_suggestion"] is not None
    assert r0["clean_suggestion"] == r1["clean_suggestion"]
    assert r0["clean_suggestion_cosine"] == r1["clean_suggestion_cosine"]
    assert r0["clean_restored"] and r1["clean_restored"]
    assert r0["restored"] and r1["restored"]
    # the curve is the mean over ranks: rank 0 alone would not have seen a NaN
    assert all(isinstance(v, float) for v in a["losses"][:-1])
    mean = [(x + y) / 2 for x, y in zip(r0["local_losses"], r1["local_losses"], strict=True)]
    assert a["losses"][:-1] == pytest.approx(mean[:-1], rel=1e-6)
    assert r0["local_losses"][0] != pytest.approx(r1["local_losses"][0])  # ranks differ
