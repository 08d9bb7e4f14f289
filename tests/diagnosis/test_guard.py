"""Tests of the live Guard: detection, each policy's effect, snapshots, event log."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lrkit.diagnosis._guard import Guard, GuardError, LossMonitor


def noisy_curve(seed: int, n: int = 400, sigma: float = 0.15) -> np.ndarray:
    """A seeded decreasing loss with multiplicative (log-normal) minibatch noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (0.2 + 2.0 * np.exp(-t / 80.0)) * np.exp(sigma * rng.standard_normal(n))


def first_alarm(guard: Guard, values: np.ndarray, grads: np.ndarray | None = None) -> int | None:
    for step, v in enumerate(values):
        g = None if grads is None else float(grads[step])
        if guard.step(step, float(v), grad_norm=g).event is not None:
            return step
    return None


# ---------------------------------------------------------------- detection
def test_nan_detected_at_once() -> None:
    guard = Guard()
    values = noisy_curve(0, 200)
    values[137] = math.nan
    assert first_alarm(guard, values) == 137
    event = guard.events[0]
    assert (event.kind, event.step, event.onset_step, event.signal) == (
        "nonfinite",
        137,
        137,
        "loss",
    )
    assert event.value is None and event.value_text == "nan"


def test_nonfinite_on_the_very_first_step_and_inf_grad_norm() -> None:
    guard = Guard()
    action = guard.step(0, math.inf)
    assert action.event is not None and action.event.kind == "nonfinite" and action.skip_update
    action = guard.step(1, 1.0, grad_norm=math.nan)
    assert action.event is not None and action.event.signal == "grad_norm"


def test_tensor_inputs_accepted_and_bad_shapes_rejected() -> None:
    guard = Guard()
    assert guard.step(0, torch.tensor(1.5), grad_norm=torch.tensor(0.3)).ok
    assert guard.step(1, torch.tensor([2.0])).ok  # one element is fine
    with pytest.raises(ValueError, match=r"loss must be a number or a 0-dim tensor"):
        guard.step(2, torch.ones(3))
    with pytest.raises(ValueError, match=r"loss must be"):
        guard.step(2, "1.0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"step must be an integer >= 0, but got step=-1"):
        guard.step(-1, 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_spike_detected_at_known_step_without_alarm_on_healthy_part(seed: int) -> None:
    values = noisy_curve(seed)
    spike_at = 250 + 10 * seed
    values[spike_at] *= 8.0
    guard = Guard()
    assert first_alarm(guard, values) == spike_at
    assert guard.events[0].kind == "spike"
    assert guard.events[0].ratio is not None and guard.events[0].ratio > 4


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), sigma=st.floats(0.02, 0.35))
def test_no_alarm_on_healthy_noisy_curves(seed: int, sigma: float) -> None:
    assert first_alarm(Guard(), noisy_curve(seed, sigma=sigma)) is None


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), at=st.integers(60, 380), factor=st.floats(6.0, 1e4))
def test_any_large_spike_caught_at_its_step(seed: int, at: int, factor: float) -> None:
    values = noisy_curve(seed)
    values[at] *= factor
    assert first_alarm(Guard(), values) == at


def test_divergence_detected_within_a_few_steps_with_onset() -> None:
    values = noisy_curve(3, 300, sigma=0.05)
    start = 200
    # loss climbs steadily (x1.1 per step): no single value is a spike
    values[start:] = (
        values[start - 1]
        * 1.1 ** np.arange(1, 101)
        * np.exp(0.02 * np.random.default_rng(1).standard_normal(100))
    )
    guard = Guard()
    alarm = first_alarm(guard, values)
    assert alarm is not None and start <= alarm <= start + 12
    event = guard.events[0]
    assert event.kind in ("divergence", "spike")
    assert start <= event.onset_step <= alarm


def test_grad_norm_spike_is_an_alarm() -> None:
    values = noisy_curve(4, 200, sigma=0.05)
    grads = 1.0 + 0.05 * np.random.default_rng(2).standard_normal(200)
    grads[150] = 500.0
    guard = Guard()
    assert first_alarm(guard, values, grads) == 150
    assert guard.events[0].signal == "grad_norm"


def test_monitor_replay_and_validation() -> None:
    mon = LossMonitor(min_history=5)
    assert all(mon.observe(s, 1.0 + 0.01 * (s % 3)) is None for s in range(10))
    found = mon.observe(10, 50.0)
    assert found is not None and found.kind == "spike" and found.baseline == pytest.approx(1.01)
    with pytest.raises(ValueError, match=r"min_history must be <= window \(10\)"):
        LossMonitor(window=10, level_window=5, min_history=20)
    with pytest.raises(ValueError, match=r"spike_ratio must be a number >= 1"):
        LossMonitor(spike_ratio=0.5)


def test_losses_at_or_below_zero_use_raw_values() -> None:
    mon = LossMonitor(min_history=5)
    rng = np.random.default_rng(0)
    for s in range(50):
        assert mon.observe(s, -1.0 + 0.01 * rng.standard_normal()) is None
    found = mon.observe(50, 5.0)
    assert found is not None and found.kind == "spike"


# ---------------------------------------------------------------- policies
def test_warn_policy_logs_and_returns_the_event(caplog: pytest.LogCaptureFixture) -> None:
    guard = Guard(policy="warn")
    with caplog.at_level("WARNING", logger="lrkit.diagnosis._guard"):
        action = guard.step(0, math.nan)
    assert action.event is not None and action.event.action == "warned"
    assert "non-finite loss" in caplog.text


def test_raise_policy() -> None:
    guard = Guard(policy="raise")
    guard.step(0, 1.0)
    with pytest.raises(GuardError, match="step 1: non-finite loss") as info:
        guard.step(1, math.nan)
    assert info.value.event.kind == "nonfinite" and info.value.event.action == "raised"


def test_on_limits_which_events_trigger_the_policy() -> None:
    guard = Guard(policy="raise", on=("divergence",), min_history=5)
    action = guard.step(0, math.nan)  # logged only
    assert action.event is not None and action.event.action == "warned"


def two_group_sgd(lr0: float = 0.1, lr1: float = 0.01) -> tuple[nn.Module, torch.optim.SGD]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": lr0},
            {"params": model[2].parameters(), "lr": lr1},
        ],
        momentum=0.9,
    )
    return model, opt


def test_scale_lr_multiplies_every_group() -> None:
    _, opt = two_group_sgd()
    guard = Guard(policy="scale_lr", optimizer=opt, lr_factor=0.25)
    action = guard.step(0, math.nan)
    assert action.lr_scale == 0.25
    assert [g["lr"] for g in opt.param_groups] == [0.1 * 0.25, 0.01 * 0.25]
    assert guard.events[0].detail["lrs"] == [0.1 * 0.25, 0.01 * 0.25]


def test_scale_lr_survives_an_lrkit_scheduler() -> None:
    from lrkit.schedules import attach, parse

    _, opt = two_group_sgd()
    spec = "cosine(100)"
    sched = attach(opt, spec)
    for _ in range(10):
        opt.step()
        sched.step()
    guard = Guard(policy="scale_lr", optimizer=opt, scheduler=sched, lr_factor=0.5)
    guard.step(10, math.nan)
    s = parse(spec)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05 * s(10), 0.005 * s(10)])
    for _ in range(20):
        opt.step()
        sched.step()
    # the schedule keeps the change: lr = 0.5 * initial * schedule(step)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05 * s(30), 0.005 * s(30)])
    assert sched.base_lrs == pytest.approx([0.05, 0.005])


def test_scale_lr_survives_a_torch_scheduler() -> None:
    _, opt = two_group_sgd()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    _, ref_opt = two_group_sgd(0.05, 0.005)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=100)
    guard = Guard(policy="scale_lr", optimizer=opt, scheduler=sched, lr_factor=0.5)
    for step in range(40):
        if step == 15:
            guard.step(step, math.nan)
        opt.step()
        sched.step()
        ref_opt.step()
        ref.step()
    got = [g["lr"] for g in opt.param_groups]
    want = [g["lr"] for g in ref_opt.param_groups]
    assert got == pytest.approx(want, rel=1e-9)
    assert sched.base_lrs == pytest.approx([0.05, 0.005])


def test_scale_lr_retry_cap_raises() -> None:
    _, opt = two_group_sgd()
    guard = Guard(policy="scale_lr", optimizer=opt, max_retries=2)
    guard.step(0, math.nan)
    guard.step(1, math.nan)
    with pytest.raises(GuardError, match=r"gave up after 2 scale_lr attempts"):
        guard.step(2, math.nan)
    assert guard.events[-1].action == "gave_up"


def train_steps(
    model: nn.Module, opt: torch.optim.Optimizer, guard: Guard, steps: range, seed: int = 0
) -> dict[int, dict[str, torch.Tensor]]:
    """Plain loop; returns a copy of the parameters seen at each guard.step call."""
    gen = torch.Generator().manual_seed(seed)
    seen = {}
    for step in steps:
        x = torch.randn(16, 4, generator=gen)
        loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        seen[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        action = guard.step(step, loss)
        assert action.ok
        opt.step()
    return seen


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_rollback_restores_bitwise_and_reports_the_skip(mode: str, tmp_path: object) -> None:
    model, opt = two_group_sgd()
    guard = Guard(
        policy="rollback",
        model=model,
        optimizer=opt,
        snapshot_every=5,
        snapshot=mode,  # type: ignore[arg-type]
        snapshot_dir=tmp_path if mode == "disk" else None,  # type: ignore[arg-type]
    )
    momenta: list[list[torch.Tensor]] = []  # the momentum buffers before each opt.step()
    params = [p for g in opt.param_groups for p in g["params"]]
    opt.register_step_pre_hook(
        lambda o, args, kwargs: momenta.append(
            [o.state[p]["momentum_buffer"].clone() for p in params if p in o.state]
        )
    )
    seen = train_steps(model, opt, guard, range(13))
    assert guard.snapshot_steps == [5, 10]
    action = guard.step(13, math.nan)
    assert action.rollback and action.skip_update
    assert action.resume_step == 10 and action.skipped_steps == (10, 13)
    restored = model.state_dict()
    for key, value in seen[10].items():
        assert torch.equal(restored[key], value), key
    # the optimizer's momentum buffers are those of step 10 too
    assert len(momenta[10]) == len(params)
    for p, buf in zip(params, momenta[10], strict=True):
        assert torch.equal(opt.state[p]["momentum_buffer"], buf)
    assert guard.events[0].action == "rolled_back"
    assert guard.events[0].detail["restored_step"] == 10
    if mode == "disk":
        files = sorted(p.name for p in tmp_path.iterdir())  # type: ignore[attr-defined]
        assert files == ["guard-step000000005.pt", "guard-step000000010.pt"]


def test_rollback_snapshot_is_not_aliased_by_later_training() -> None:
    model, opt = two_group_sgd()
    guard = Guard(policy="rollback", model=model, optimizer=opt, snapshot_every=5)
    seen = train_steps(model, opt, guard, range(7))
    guard.step(7, math.nan)  # -> back to 5
    train_steps(model, opt, guard, range(5, 9), seed=1)  # new data, weights move again
    guard.step(9, math.nan)  # -> back to 5 again: still the same weights
    for key, value in seen[5].items():
        assert torch.equal(model.state_dict()[key], value)


def test_rollback_restores_the_scheduler_too() -> None:
    from lrkit.schedules import attach

    model, opt = two_group_sgd()
    sched = attach(opt, "cosine(50)")
    guard = Guard(policy="rollback", model=model, optimizer=opt, scheduler=sched, snapshot_every=10)
    lrs = {}
    for step in range(16):
        lrs[step] = opt.param_groups[0]["lr"]
        guard.step(step, 1.0 + 0.01 * (step % 2))
        opt.step()
        sched.step()
    guard.step(16, math.nan)
    assert sched.last_epoch == 10 and opt.param_groups[0]["lr"] == lrs[10]


def test_rollback_retry_cap_and_missing_snapshot() -> None:
    model, opt = two_group_sgd()
    guard = Guard(policy="rollback", model=model, optimizer=opt, snapshot_every=10, max_retries=2)
    with pytest.raises(GuardError, match="no snapshot taken before step 0"):
        guard.step(0, math.nan)
    guard.take_snapshot(0)
    assert guard.step(1, math.nan).resume_step == 0
    assert guard.step(1, math.nan).resume_step == 0
    with pytest.raises(GuardError, match=r"gave up after 2 rollback attempts"):
        guard.step(1, math.nan)


def test_rollback_uses_a_snapshot_before_the_onset() -> None:
    model, opt = two_group_sgd()
    guard = Guard(
        policy="rollback",
        model=model,
        optimizer=opt,
        snapshot_every=10,
        keep_snapshots=3,
        patience=5,
    )
    rng = np.random.default_rng(0)
    for step in range(95):
        guard.step(step, float(1.0 * np.exp(0.02 * rng.standard_normal())))
    # a divergence starting at 98: its alarm comes at 102, after the snapshot at 100
    action = None
    for step in range(95, 110):
        value = 1.0 if step < 98 else 1.6 + 0.01 * step
        action = guard.step(step, value)
        if action.rollback:
            break
    assert action is not None and action.rollback
    assert action.event is not None and action.event.onset_step == 98
    assert action.resume_step == 90  # the snapshot at 100 may already hold the anomaly


def test_plain_loop_with_a_corrupted_batch_recovers() -> None:
    torch.manual_seed(0)
    x_all = torch.randn(512, 8)
    y_all = (x_all[:, :2].sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    guard = Guard(policy="rollback", model=model, optimizer=opt, snapshot_every=20)
    gen = torch.Generator().manual_seed(0)
    step = 0
    batches = 0
    while step < 150:
        idx = torch.randint(0, 512, (32,), generator=gen)
        x, y = x_all[idx], y_all[idx]
        if batches == 90:  # one corrupted batch
            x = x * 100.0
            y = 1 - y
        batches += 1
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        action = guard.step(step, loss)
        if action.rollback:
            assert action.resume_step is not None
            step = action.resume_step
            continue
        if action.skip_update:
            continue
        opt.step()
        step += 1
    assert [e.action for e in guard.events] == ["rolled_back"]
    assert guard.events[0].step == 90 and guard.events[0].detail["restored_step"] == 80
    assert loss.item() < 0.3


# ---------------------------------------------------------------- event log / validation
def test_event_log_json_written_and_valid(tmp_path: object) -> None:
    path = tmp_path / "sub" / "guard.json"  # type: ignore[operator]
    guard = Guard(policy="warn", log_path=path)
    values = noisy_curve(0, 100)
    values[50] = math.nan
    values[80] *= 20
    first_alarm(guard, values)
    for step in range(51, 100):
        guard.step(step, float(values[step]))
    written = json.loads(path.read_text())  # written at each event: the last one was at 80
    assert written["last_step"] == 80 and len(written["events"]) == 2
    assert guard.write_log() == path  # the final state, at the end of training
    doc = json.loads(path.read_text())
    assert doc["format"] == 1 and doc["policy"] == "warn"
    assert [e["kind"] for e in doc["events"]] == ["nonfinite", "spike"]
    assert [e["step"] for e in doc["events"]] == [50, 80]
    assert doc["events"][0]["value"] is None and doc["events"][0]["value_text"] == "nan"
    assert doc["counts"] == {"nonfinite": 1, "spike": 1, "divergence": 0}
    assert doc == json.loads(json.dumps(guard.to_dict()))
    assert doc["steps_seen"] == 100


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match=r"policy must be one of 'warn', 'raise'"):
        Guard(policy="stop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"model must be given for policy='rollback'"):
        Guard(policy="rollback")
    with pytest.raises(ValueError, match=r"optimizer must be given for policy='scale_lr'"):
        Guard(policy="scale_lr")
    with pytest.raises(ValueError, match=r"lr_factor must be a number < 1"):
        Guard(policy="warn", lr_factor=2.0)
    with pytest.raises(ValueError, match=r"on must be a collection"):
        Guard(on="spike")
    with pytest.raises(ValueError, match=r"on must be one of"):
        Guard(on=("blip",))
    with pytest.raises(ValueError, match=r"snapshot must be one of 'memory', 'disk'"):
        Guard(snapshot="cloud")  # type: ignore[arg-type]


def test_a_slow_drift_is_described_by_the_level_that_rose() -> None:
    # the loss level creeps up by 1% per step after step 150 with large noise: no single value
    # stands out, so the alarm comes from the trailing level, and the event must say that level
    # rose above the earlier one (not compare one lucky low value with the median)
    rng = np.random.default_rng(7)
    n = 600
    level = np.where(np.arange(n) < 150, 1.0, 1.01 ** (np.arange(n) - 150))
    values = level * np.exp(0.3 * rng.standard_normal(n))
    guard = Guard()
    first_alarm(guard, values)
    drifts = [e for e in guard.events if e.kind == "divergence"]
    assert drifts, [e.describe() for e in guard.events]
    event = drifts[0]
    assert event.onset_step >= 150
    assert event.value is not None and event.baseline is not None and event.ratio is not None
    assert event.value > event.baseline and event.ratio > 1.0
    assert "its earlier level" in event.describe()
