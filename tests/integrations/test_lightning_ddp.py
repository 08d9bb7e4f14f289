"""``Trainer(strategy="ddp", devices=2, accelerator="cpu")``: both ranks run the range test,
the Guard and the race together and agree on everything, and nothing hangs (a timeout fails
the test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is not installed")

WORKER = Path(__file__).with_name("_lightning_ddp_worker.py")


def _run_worker(worker: Path, tmp_path: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, str(worker), str(tmp_path)],
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
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_two_cpu_ranks_agree_on_curve_suggestion_hparams_and_guard(tmp_path: Path) -> None:
    ranks = _run_worker(WORKER, tmp_path)
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


@pytest.mark.slow
def test_two_cpu_ranks_run_the_same_race_and_train_alike(tmp_path: Path) -> None:
    """Each rank trains and validates on its own shard, yet the ranks see the same (averaged)
    curves and scores, so they halve alike and agree on the winner; nothing hangs."""
    first, second = _run_worker(WORKER.with_name("_lightning_ddp_race_worker.py"), tmp_path)
    assert [first["rank"], second["rank"]] == [0, 1] and first["world_size"] == 2
    for key in ("lr", "reason", "range_losses", "candidates", "hparams_lr", "global_step"):
        assert first[key] == second[key], key
    assert first["lr"] is not None and "won the race" in first["reason"]
    assert first["hparams_lr"] == first["lr"]
    assert len(first["candidates"]) >= 3
    assert any(len(c["trials"]) > 1 for c in first["candidates"])  # someone was promoted
    assert first["global_step"] == 6  # the race's steps did not count
    assert first["weights"] == second["weights"]
