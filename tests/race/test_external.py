"""``ExternalTrials``: the race with its range test and trials trained by another loop.

The proof that the seam loses nothing: a race whose external ``train`` builds the same copies
and trains them with the same loop as the race's own trials gives the very same result (plan,
every trial's curve, spent steps, winner) as ``run_race`` on the setup itself.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from lrkit._setup import Setup
from lrkit.finder import find_lr
from lrkit.race import ExternalTrials, TrialOutcome, run_race
from lrkit.race._trial import train_candidate


def _external(setup: dict[str, Any], calls: list[tuple[float, int, str]]) -> ExternalTrials:
    def fresh() -> Setup:
        model, optimizer = copy.deepcopy((setup["model"], setup["optimizer"]))
        return Setup(
            model=model,
            optimizer=optimizer,
            train_loader=setup["train_loader"],
            loss_fn=setup["loss_fn"],
            val_loader=setup["val_loader"],
        )

    def train(
        lr: float, steps: int, schedule: Any, evaluations: int, counter: list[int]
    ) -> TrialOutcome:
        calls.append((lr, steps, str(schedule)))
        return train_candidate(
            fresh(), lr=lr, steps=steps, schedule=schedule, seed=0, evaluations=evaluations,
            counter=counter,
        )  # fmt: skip

    def range_test(steps: int) -> Any:
        s = fresh()
        return find_lr(s.model, s.optimizer, s.loss_fn, s.train_loader, num_steps=steps)

    return ExternalTrials(train=train, range_test=range_test, name="ext", validation="held out")


def test_external_trials_give_the_same_race_as_the_setup(setup: dict[str, Any]) -> None:
    calls: list[tuple[float, int, str]] = []
    plain = run_race(setup, schedule="warmup(6, cosine)", total_steps=60, budget=3)
    ext = run_race(_external(setup, calls), schedule="warmup(6, cosine)", total_steps=60, budget=3)
    assert ext.lr == plain.lr is not None
    assert ext.interval == plain.interval and ext.rungs == plain.rungs
    assert ext.spent_steps == plain.spent_steps and ext.stage_steps == plain.stage_steps
    assert [c.to_dict() for c in ext.candidates] == [c.to_dict() for c in plain.candidates]
    assert ext.validation == "held out" and ext.study_name is not None
    assert "ext" in ext.study_name
    # one call per trial, each with the rung's length and the rung's schedule (warmup scaled)
    assert len(calls) == sum(len(c.trials) for c in ext.candidates)
    assert {(lr, n) for lr, n, _ in calls} == {
        (c.lr, t.steps) for c in ext.candidates for t in c.trials
    }
    short = ext.rungs[0].steps
    assert {s for _, n, s in calls if n == short} == {
        f"warmup({round(6 * short / 60) or 1}, cosine(54))"
    }


def test_a_guarded_stop_and_an_error_in_an_external_trial(setup: dict[str, Any]) -> None:
    base = _external(setup, [])

    def train(lr: float, steps: int, schedule: Any, evaluations: int, counter: list[int]) -> Any:
        counter[0] = 3
        if lr == max(lrs):
            raise RuntimeError("the trainer broke")
        if lr == min(lrs):
            return TrialOutcome(3, [], [], math.inf, "stopped by the Guard at step 2: nan")
        return base.train(lr, steps, schedule, evaluations, counter)

    lrs: list[float] = []
    first = run_race(base, total_steps=60, budget=3)
    lrs[:] = [c.lr for c in first.candidates]
    result = run_race(
        ExternalTrials(train=train, range_test=base.range_test), total_steps=60, budget=3
    )
    states = {c.lr: c for c in result.candidates}
    assert states[max(lrs)].state == "failed"
    assert states[min(lrs)].state == "pruned" and "nan" in states[min(lrs)].reason
    # the failed and stopped trials counted the 3 steps they trained
    assert states[max(lrs)].trials[0].steps_done == 3
    assert result.lr is not None and result.lr not in (min(lrs), max(lrs))


def test_external_trials_need_the_run_length_and_one_worker(setup: dict[str, Any]) -> None:
    trials = _external(setup, [])
    with pytest.raises(ValueError, match="total_steps"):
        run_race(trials, budget=3)
    with pytest.raises(ValueError, match="workers"):
        run_race(trials, total_steps=60, budget=3, workers=2)
    with pytest.raises(ValueError, match="val_loader"):
        run_race(trials, total_steps=60, budget=3, val_loader=[])
    quick = run_race(trials, total_steps=60, budget=0)
    assert quick.lr is not None and quick.spent_steps == len(quick.range_test.losses)


def test_a_trial_log_judges_as_the_races_own_trials() -> None:
    """The same steps through ``TrialLog`` and through the race's own trial loop give the same
    outcome: validation points, a Guard stop at a non-finite loss, a non-finite score."""
    from lrkit.race import TrialLog

    counter = [0]
    log = TrialLog(steps=11, evaluations=4, counter=counter)
    due = []
    for k in range(11):
        assert log.step(1.0 / (k + 1)) == (k == 10)
        due.append(log.due)
        if log.due:
            log.validated(0.5)
    assert [k + 1 for k, d in enumerate(due) if d] == [2, 4, 6, 8, 10, 11]  # as tasks.train
    assert counter == [11] and log.outcome().value == 0.5

    stopped = TrialLog(steps=20, evaluations=4)
    assert not any(stopped.step(1.0) for _ in range(5))
    assert stopped.step(math.nan)
    out = stopped.outcome()
    assert out.value == math.inf and out.val_steps == [] and out.steps_done == 6
    assert out.stop_reason is not None and out.stop_reason.startswith("stopped by the Guard")

    blown = TrialLog(steps=2, evaluations=1)
    blown.step(1.0)
    blown.step(1.0)
    blown.validated(math.inf)
    assert blown.outcome().stop_reason == "diverged: non-finite validation loss"
    with pytest.raises(RuntimeError, match="1 of 2"):
        short = TrialLog(steps=2, evaluations=1)
        short.step(1.0)
        short.outcome()
