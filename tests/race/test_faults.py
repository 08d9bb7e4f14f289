"""The race under injected faults: a candidate that raises or goes NaN, every candidate
failing, Ctrl-C, a worker process that dies. Never a lost model, never a file left behind."""

from __future__ import annotations

import copy
import math
import os
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from lrkit.race import _trial, run_race

pytestmark = pytest.mark.faults


def _fail_at(monkeypatch: pytest.MonkeyPatch, pick: Any, fault: str) -> list[float]:
    """Make the trials of the candidate ``pick(lrs)`` raise (``fault="raise"``) after 3 steps,
    or produce a NaN loss from its 4th step (``fault="nan"``); returns the lrs it hit."""
    real = _trial.train_candidate
    hit: list[float] = []

    def train_candidate(setup: Any, *, lr: float, **kwargs: Any) -> Any:
        if not pick(lr):
            return real(setup, lr=lr, **kwargs)
        hit.append(lr)
        calls = [0]
        loss_fn = setup.loss_fn

        def broken(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            if calls[0] > 3 and torch.is_grad_enabled():
                if fault == "raise":
                    raise RuntimeError("injected fault in the loss")
                return loss_fn(out, y) * float("nan")
            return loss_fn(out, y)

        setup.loss_fn = broken
        return real(setup, lr=lr, **kwargs)

    monkeypatch.setattr(_trial, "train_candidate", train_candidate)
    return hit


def test_a_candidate_that_raises_fails_with_its_reason_and_the_race_goes_on(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    model_before = copy.deepcopy(setup["model"].state_dict())
    chosen: list[float] = []

    def pick(lr: float) -> bool:
        if not chosen:
            chosen.append(lr)  # the first candidate of rung 0 (the lowest lr)
        return lr == chosen[0]

    hit = _fail_at(monkeypatch, pick, "raise")
    result = run_race(setup, total_steps=60, budget=3)
    assert hit == chosen
    bad = next(c for c in result.candidates if c.lr == chosen[0])
    assert bad.state == "failed" and "injected fault in the loss" in bad.reason
    assert bad.trials[0].steps_done == 3  # the steps it trained count
    assert result.lr is not None and result.lr != chosen[0]
    trained = sum(t.steps_done for c in result.candidates for t in c.trials)
    assert result.spent_steps == len(result.range_test.train_losses) + trained
    for key, value in model_before.items():
        assert torch.equal(setup["model"].state_dict()[key], value)


def test_a_candidate_gone_nan_is_stopped_by_the_guard_at_once(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    top: list[float] = []

    def pick(lr: float) -> bool:
        top.append(lr)
        return lr == max(top[:3])  # the highest lr among the first three

    hit = _fail_at(monkeypatch, pick, "nan")
    result = run_race(setup, total_steps=60, budget=3)
    assert hit
    bad = next(c for c in result.candidates if c.lr == hit[0])
    assert bad.state == "pruned"
    assert bad.trials[0].steps_done == 4  # stopped at the first non-finite loss
    assert "non-finite" in bad.reason or "nan" in bad.reason
    assert result.lr is not None and result.lr != hit[0]


def test_every_candidate_failing_gives_no_lr_and_the_reason(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_at(monkeypatch, lambda lr: True, "raise")
    result = run_race(setup, total_steps=60, budget=3)
    assert result.lr is None
    assert "no candidate finished" in result.reason and "injected fault" in result.reason
    assert all(c.state == "failed" for c in result.candidates)
    assert len(result.rungs) >= 1 and "rung 1" not in result.stage_steps


def test_ctrl_c_mid_race_leaves_the_user_state_as_it_was(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    model_before = copy.deepcopy(setup["model"].state_dict())
    optim_before = copy.deepcopy(setup["optimizer"].state_dict())
    py_rng, torch_rng = random.getstate(), torch.get_rng_state()
    real = _trial.train_candidate
    calls = [0]

    def interrupted(setup: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(setup, **kwargs)

    monkeypatch.setattr(_trial, "train_candidate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_race(setup, total_steps=60, budget=3)
    for key, value in model_before.items():
        assert torch.equal(setup["model"].state_dict()[key], value)
    assert setup["optimizer"].state_dict()["param_groups"] == optim_before["param_groups"]
    assert random.getstate() == py_rng and torch.equal(torch.get_rng_state(), torch_rng)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_worker_that_dies_fails_its_trial_which_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from race_faulty import FaultyTask

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "killed"
    task = FaultyTask(str(marker), os.getpid())
    result = run_race(task, budget=3, workers=2, schedule="cosine")
    assert marker.exists(), "no worker was killed"
    assert int(marker.read_text()) != os.getpid()
    assert result.lr is not None and math.isfinite(result.spent_steps)
    # every candidate ended complete or pruned: the killed trial was run again
    assert all(c.state in ("complete", "pruned") for c in result.candidates)
    assert result.storage == "a temporary journal file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed"]
