"""``Trainer(strategy="ddp", devices=2, accelerator="cpu")``: both ranks run the range test and
the Guard together and agree on everything, and nothing hangs (a timeout fails the test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is not installed")

WORKER = Path(__file__).with_name("_lightning_ddp_worker.py")


@pytest.mark.slow
def test_two_cpu_ranks_agree_on_curve_suggestion_hparams_and_guard(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Lightning starts rank 1 as a child: kill the whole group
    )
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"DDP run hung; output:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["world_size"] == 2
    first, second = ranks
    for key in ("losses", "stop_reason", "suggested_lr", "hparams_lr", "global_step", "events"):
        assert first[key] == second[key], key
    assert len(first["losses"]) >= 10
    if first["suggested_lr"] is not None:  # apply=True: hparams hold it on both ranks
        assert first["hparams_lr"] == first["suggested_lr"]
    assert first["global_step"] == 16  # the test's steps did not count
    # only rank 1 saw the spike, yet both guards acted on the averaged loss, together
    assert first["events"] == [[12, "spike", "scaled_lr"]]
    assert first["lr_after"] == second["lr_after"]
    assert first["weights"] == second["weights"]
