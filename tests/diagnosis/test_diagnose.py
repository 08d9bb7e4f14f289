"""lrkit.diagnosis.diagnose: verdicts, onsets, actions, validation, robustness, speed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.diagnosis import PROBLEMS, VERDICTS, Diagnosis, Thresholds, diagnose

N = 400


def healthy_curve(seed: int = 0, n: int = N, noise: float = 0.3) -> np.ndarray:
    """Power-law decay (fast, then slower but still improving) with log-normal noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * (400 / n)
    clean = 2.3 * (1 + t / 8) ** -1.2
    return clean * np.exp(noise * rng.standard_normal(n))


def test_healthy_curve_is_healthy_and_serialises() -> None:
    d = diagnose(healthy_curve())
    assert d.verdict == "healthy" and d.healthy and not d.problem
    assert d.findings == ()
    assert d.action.kind == "none"
    data = json.loads(json.dumps(d.to_dict()))
    assert data["verdict"] == "healthy" and data["action"]["kind"] == "none"
    assert data["statistics"]["points"] == N


@pytest.mark.parametrize("seed", range(5))
def test_healthy_noisy_curves_raise_no_alarm(seed: int) -> None:
    assert diagnose(healthy_curve(seed)).verdict == "healthy"


def test_nan_is_diverged_at_once_with_a_rollback() -> None:
    y = healthy_curve()
    y[250:] = np.nan
    d = diagnose(y, lr=0.1)
    assert d.verdict == "diverged"
    f = d.findings[0]
    assert f.onset_step == 250 and f.severity == "critical"
    assert f.statistics["last_finite_step"] == 249
    assert d.action.kind == "rollback"
    assert d.action.params == {"before_step": 249, "skip_batches": 0, "lr_factor": 0.1}
    assert "0.01" in d.action.text  # 0.1 * 0.1
    assert json.loads(json.dumps(d.to_dict()))["findings"][0]["onset_step"] == 250


def test_inf_and_none_count_as_non_finite_and_steps_are_reported() -> None:
    y = healthy_curve().tolist()
    y[100] = None
    steps = np.arange(N) * 10 + 5
    d = diagnose(y, steps=steps)
    assert d.verdict == "diverged" and d.findings[0].onset_step == 1005
    y2 = healthy_curve()
    y2[300] = math.inf
    assert diagnose(y2).findings[0].onset_step == 300


def test_spike_that_recovers_is_spiking_with_rollback_and_skip() -> None:
    y = healthy_curve(1)
    y[240:243] = 40.0
    d = diagnose(y)
    assert d.verdict == "spiking"
    f = d.findings[0]
    assert f.onset_step == 240 and f.end_step == 242
    assert d.action.kind == "rollback"
    assert d.action.params["before_step"] == 240 and d.action.params["skip_batches"] == 3


def test_jump_that_stays_is_diverging_with_onset() -> None:
    y = healthy_curve(2)
    y[220:] = 2.3 * np.exp(0.2 * np.random.default_rng(0).standard_normal(N - 220))
    d = diagnose(y, lr=np.full(N, 0.05))
    assert d.verdict == "diverging"
    assert abs(d.findings[0].onset_step - 220) <= 5
    assert d.action.kind == "scale_lr" and d.action.params["factor"] == 0.1


def test_gradual_rise_is_diverging() -> None:
    y = healthy_curve(3)
    t = np.arange(N)
    y = y * np.where(t > 200, np.exp((t - 200) / 40.0), 1.0)
    d = diagnose(y)
    assert d.verdict == "diverging"
    assert 200 <= d.findings[0].onset_step <= 300


def test_early_blow_up_is_oscillating_lr_too_high() -> None:
    y = healthy_curve(4)
    y[5:15] = 500.0
    y[15:] = 2.3 + 0.05 * np.random.default_rng(1).standard_normal(N - 15)
    d = diagnose(y, lr=0.3)
    assert d.verdict == "oscillating"
    assert d.action.kind == "scale_lr" and d.action.params["factor"] == pytest.approx(1 / 3)
    assert d.action.text == "multiply the learning rate by 1/3 (from 0.3 to 0.1)"


def test_periodic_swings_are_oscillating() -> None:
    t = np.arange(N)
    rng = np.random.default_rng(5)
    y = (0.3 + 0.25 * np.sin(2 * np.pi * t / 50)) ** 3 * 10 * np.exp(0.2 * rng.standard_normal(N))
    y = y + 0.01
    assert diagnose(y).verdict == "oscillating"


def test_steady_slow_decrease_is_too_slow() -> None:
    t = np.arange(N)
    y = 2.3 - 0.3 * t / N + 0.01 * np.random.default_rng(6).standard_normal(N)
    d = diagnose(y, lr=1e-4)
    assert d.verdict == "too_slow"
    assert d.action.params == {"factor": 3.0}
    assert "0.0003" in d.action.text


def test_flat_curve_is_plateau() -> None:
    y = 2.3 + 0.02 * np.random.default_rng(7).standard_normal(N)
    d = diagnose(y)
    assert d.verdict == "plateau"
    assert d.action.kind == "scale_lr" and d.action.params["factor"] == 10.0


def test_progress_that_stops_early_is_converged_unless_the_lr_died() -> None:
    """A loss that fell fast and then settled has converged: never "raise the lr" (issue 13);
    with an lr that fell to ~0 when it stopped, the schedule explains the stop: plateau."""
    t = np.arange(N)
    rng = np.random.default_rng(8)
    y = (1.5 * np.exp(-t / 12) + 0.6) * np.exp(0.15 * rng.standard_normal(N))
    y[60:] = 0.6 * np.exp(0.15 * rng.standard_normal(N - 60))
    d = diagnose(y)
    assert d.verdict == "healthy" and d.action.kind == "none"
    assert diagnose(y, lr=np.full(N, 0.1)).verdict == "healthy"
    lr = np.where(t < 60, 0.1, 1e-5)
    d = diagnose(y, lr=lr)
    assert d.verdict == "plateau" and d.findings[0].onset_step == 60
    assert d.findings[0].statistics["lr_dead_from_step"] == 60


def test_overfitting_needs_a_sustained_validation_rise() -> None:
    y = healthy_curve(9)
    val_steps = np.arange(19, N, 20)
    val = 0.3 + 0.002 * (val_steps - 100) ** 2 / 100  # min near step 100, then rising
    d = diagnose(y, val_loss=val, val_steps=val_steps)
    assert d.verdict == "overfitting"
    assert d.findings[0].onset_step in (99, 119)
    assert d.action.kind == "early_stop" and d.action.params["at_step"] == d.findings[0].onset_step
    # a single bad evaluation at the end is not overfitting (validation still improving)
    improving = 0.3 * (1 + val_steps / 50.0) ** -0.5
    improving[-1] = 0.6
    assert diagnose(y, val_loss=improving, val_steps=val_steps).verdict == "healthy"


def test_validation_stuck_while_training_loss_keeps_falling_is_overfitting() -> None:
    y = healthy_curve(9)  # falls ~15x between step 19 and the end
    val_steps = np.arange(19, N, 20)
    rng = np.random.default_rng(3)
    stuck = 0.3 + 0.002 * rng.standard_normal(val_steps.size)
    stuck[0] = 0.29  # the best evaluation, first
    d = diagnose(y, val_loss=stuck, val_steps=val_steps)
    assert d.verdict == "overfitting" and d.findings[0].onset_step == 19
    stats = d.findings[0].statistics
    assert stats["train_drop_after_val_min"] >= 10.0
    # the same validation curve with a training loss that stopped falling is no overfitting
    flat_train = np.maximum(y, np.median(y[:40]))
    assert diagnose(flat_train, val_loss=stuck, val_steps=val_steps).verdict != "overfitting"


def test_uneven_validation_steps_and_default_spacing() -> None:
    y = healthy_curve(10)
    val_steps = [10, 15, 40, 100, 180, 260, 330, 370, 390, 399]
    val = [1.0, 0.8, 0.5, 0.4, 0.45, 0.6, 0.8, 0.9, 1.0, 1.1]
    d = diagnose(y, val_loss=val, val_steps=val_steps)
    assert d.verdict == "overfitting" and d.findings[0].onset_step == 100
    d2 = diagnose(y, val_loss=val)  # evenly spread, last at the last step
    assert d2.val_steps is not None and d2.val_steps[-1] == N - 1


def test_short_curves_are_inconclusive() -> None:
    d = diagnose([2.3, 2.1, 2.2, 1.9, 2.0])
    assert d.verdict == "inconclusive" and not d.problem and not d.healthy
    assert "not enough evidence" in d.reason
    assert d.action.kind == "collect_more"
    # ... but a non-finite value is never inconclusive
    assert diagnose([2.3, math.nan]).verdict == "diverged"
    assert diagnose(healthy_curve()[:30], min_points=50).verdict == "inconclusive"


@pytest.mark.parametrize("seed", range(10))
def test_short_noisy_curves_without_a_trend_are_not_guessed(seed: int) -> None:
    """Stationary noise: "not enough evidence" when short and noisy, plateau when long and calm;
    a short curve that clearly falls is still judged (healthy)."""
    rng = np.random.default_rng(seed)
    noisy = 2.3 * np.exp(0.3 * rng.standard_normal(60))
    d = diagnose(noisy)
    assert d.verdict == "inconclusive" and "not enough evidence" in d.reason
    assert d.action.kind == "collect_more"
    assert d.statistics["level_change_se"] > 0
    calm = 2.3 * np.exp(0.05 * rng.standard_normal(400))
    # (a chance-significant downward trend, ~2.5% of such curves, is "inconclusive")
    assert diagnose(calm).verdict in ("plateau", "inconclusive")
    t = np.arange(30)
    falling = (2.3 * np.exp(-t / 7.5) + 0.1) * np.exp(0.1 * rng.standard_normal(30))
    assert diagnose(falling).verdict == "healthy"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_loss": []}, "train_loss must be a non-empty"),
        ({"train_loss": "abc"}, "train_loss must be a 1-D"),
        ({"train_loss": [[1.0, 2.0]]}, "train_loss must be a 1-D"),
        ({"train_loss": [1.0, "x"]}, "train_loss must be a 1-D"),
        ({"train_loss": [1.0, 2.0], "steps": [0]}, "steps must be as long as train_loss"),
        ({"train_loss": [1.0, 2.0, 3.0], "steps": [0, 2, 2]}, "steps must be strictly"),
        ({"train_loss": [1.0, 2.0], "lr": [0.1]}, "lr must be a number or as long"),
        ({"train_loss": [1.0, 2.0], "grad_norm": [1.0]}, "grad_norm must be as long"),
        ({"train_loss": [1.0], "val_loss": [1.0], "val_steps": [0, 1]}, "val_steps must be"),
        ({"train_loss": [1.0], "val_steps": [0]}, "val_steps must be given only"),
        ({"train_loss": [1.0], "min_points": 1}, "min_points must be an integer >= 3"),
        ({"train_loss": [1.0], "thresholds": {"spike_z": 3}}, "thresholds must be"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        diagnose(**kwargs)  # type: ignore[arg-type]


def test_thresholds_replace_checks_names() -> None:
    th = Thresholds().replace(spike_z=5.0)
    assert th.spike_z == 5.0
    with pytest.raises(ValueError, match="thresholds must be names"):
        Thresholds().replace(nope=1.0)


def test_grad_norm_spike_supports_a_smaller_loss_spike() -> None:
    y = healthy_curve(11, noise=0.1)
    y[250] = y[249] * 2.5  # too small on its own
    assert diagnose(y).verdict == "healthy"
    g = np.exp(0.1 * np.random.default_rng(0).standard_normal(N))
    g[250] = 200.0
    d = diagnose(y, grad_norm=g)
    assert d.verdict == "spiking" and d.findings[0].onset_step == 250


@given(
    st.lists(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False), min_size=1, max_size=120)
)
@settings(max_examples=40, deadline=None)
def test_any_finite_curve_gets_a_valid_diagnosis(values: list[float]) -> None:
    d = diagnose(values)
    assert d.verdict in VERDICTS
    assert all(f.kind in PROBLEMS for f in d.findings)
    if d.findings:
        assert d.verdict == d.findings[0].kind
        assert all(0 <= (f.onset_step or 0) < len(values) for f in d.findings)
    json.dumps(d.to_dict())


@given(st.floats(min_value=1e-3, max_value=1e3))
@settings(max_examples=20, deadline=None)
def test_verdict_does_not_depend_on_the_loss_unit(scale: float) -> None:
    y = healthy_curve(12)
    y[200:205] = 60.0
    assert diagnose(y * scale).verdict == diagnose(y).verdict == "spiking"


def test_long_curves_are_binned_and_keep_spikes_and_onsets() -> None:
    n = 2_000_000
    rng = np.random.default_rng(0)
    t = np.arange(n)
    y = 2.3 * (1 + t / (n / 50)) ** -1.2 * np.exp(0.3 * rng.standard_normal(n))
    y[1_234_567] = 1e4
    d = diagnose(y)  # its speed is measured by benchmarks/diagnose_speed.py
    assert d.verdict == "spiking"
    assert abs(d.findings[0].onset_step - 1_234_567) < n / 4096 + 1
    assert d.statistics["binned_to"] == 4096
    y[1_500_000] = math.nan
    assert diagnose(y).findings[0].onset_step == 1_500_000


def _train(lr: float, steps: int = 300) -> list[float]:
    """A tiny seeded regression trained with plain SGD; the loss per step."""
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    w = torch.randn(8, 1)
    y = x @ w + 0.1 * torch.randn(256, 1)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, 256, (32,), generator=g)
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_real_tiny_training_runs() -> None:
    torch.set_num_threads(1)
    assert diagnose(_train(0.1)).verdict == "healthy"
    assert diagnose(_train(1e-3)).verdict == "too_slow"
    assert diagnose(_train(1e-5)).verdict == "plateau"
    blown = diagnose(_train(3.0))
    assert blown.verdict in ("diverged", "diverging")
    assert blown.findings[0].onset_step is not None and blown.findings[0].onset_step < 100


def test_short_real_runs_are_judged_only_with_evidence() -> None:
    torch.set_num_threads(1)
    # the first 40 steps at lr 0.01 still fall steadily: too early to call the lr too low ...
    early = diagnose(_train(1e-2, steps=40))
    assert early.verdict == "inconclusive" and "too early" in early.reason
    # ... and indeed the full 300 steps fall and settle; 30 steps at lr 0.1 already settled
    assert diagnose(_train(1e-2)).verdict == "healthy"
    assert diagnose(_train(0.1, steps=30)).verdict == "healthy"


def test_plot_marks_each_onset(tmp_path: object) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = healthy_curve(13)
    y[240] = 50.0
    val_steps = np.arange(19, N, 20)
    val = 0.3 + 0.002 * (val_steps - 100) ** 2 / 100
    d = diagnose(y, val_loss=val, val_steps=val_steps)
    assert isinstance(d, Diagnosis) and {f.kind for f in d.findings} >= {"spiking", "overfitting"}
    ax = d.plot()
    gids = {line.get_gid() for line in ax.get_lines()}
    assert {"train", "smoothed", "val", "onset-spiking", "onset-overfitting"} <= gids
    onset = next(line for line in ax.get_lines() if line.get_gid() == "onset-spiking")
    assert onset.get_xdata()[0] == 240
    assert "spiking" in ax.get_title()
    plt.close(ax.figure)


# ---------------------------------------------------------------- the Guard's detectors
def test_offline_spikes_are_the_live_monitors_detections() -> None:
    """diagnose() replays the Guard's LossMonitor: the spike it reports is the Guard's alarm."""
    from lrkit.diagnosis import Guard

    y = healthy_curve(14)
    y[233] = 30.0
    guard = Guard(policy="warn")
    alarms = [s for s, v in enumerate(y) if guard.step(s, float(v)).event is not None]
    d = diagnose(y)
    assert alarms == [233]
    assert d.verdict == "spiking" and d.findings[0].onset_step == 233
    assert d.findings[0].statistics["signal"] == "loss"


def test_monitor_diagnose_judges_the_run_so_far_with_its_own_detections() -> None:
    from lrkit.diagnosis import LossMonitor

    y = healthy_curve(15)
    y[260] = 40.0
    mon = LossMonitor(history=4096)
    for s, v in enumerate(y):
        mon.observe(s, float(v))
    assert [(e.kind, e.onset_step) for e in mon.detections] == [("spike", 260)]
    live, offline = mon.diagnose(), diagnose(y)
    assert live.verdict == offline.verdict == "spiking"
    assert live.findings[0].onset_step == offline.findings[0].onset_step == 260
    assert mon.steps == list(range(N))
    with pytest.raises(ValueError, match="history must be > 0"):
        LossMonitor().diagnose()


def test_monitor_history_is_bounded_keeps_spikes_and_forgets_rolled_back_steps() -> None:
    from lrkit.diagnosis import LossMonitor

    mon = LossMonitor(history=64)
    y = healthy_curve(16, n=1000)
    y[700] = 500.0
    for s, v in enumerate(y):
        mon.observe(s, float(v))
    steps = mon.steps
    assert len(steps) <= 64 and steps[0] == 0 and steps == sorted(steps)
    width = steps[1] - steps[0]
    assert width == 1000 // 32 or width in (16, 32)  # bins merged in pairs
    d = mon.diagnose()
    assert d.verdict == "spiking" and d.findings[0].onset_step == 700
    # a rollback to step 650: the bins and detections from there on are dropped
    mon.observe(650, float(y[650]))
    assert mon.steps[-1] <= 650 and mon.detections == []


# ---------------------------------------------------------------- lr evidence (issue 13)
def _steps_val(n: int = N, every: int = 20) -> np.ndarray:
    return np.arange(every - 1, n, every)


def test_converged_is_healthy_and_stuck_is_plateau_never_the_other_way() -> None:
    """Fell fast, then settled at its floor (a logistic regression at its best lr): healthy,
    keep the lr. Never really fell: plateau, raise it."""
    rng = np.random.default_rng(20)
    t = np.arange(N)
    converged = (0.9 * np.exp(-t / 10) + 0.25) * np.exp(0.05 * rng.standard_normal(N))
    vs = _steps_val()
    val = 0.9 * np.exp(-vs / 10) + 0.27
    for kw in ({}, {"lr": np.full(N, 2.0)}, {"val_loss": val, "val_steps": vs}):
        d = diagnose(converged, **kw)  # type: ignore[arg-type]
        assert d.verdict == "healthy" and d.lr_direction == "keep", kw
    stuck = 1.1 * np.exp(0.05 * rng.standard_normal(N))
    d = diagnose(stuck, lr=np.full(N, 1e-6))
    assert d.verdict == "plateau" and d.lr_direction == "raise"
    assert d.reason.startswith("stuck: the loss never really fell")


def test_still_falling_at_a_constant_lr_is_too_slow_but_not_under_a_decayed_lr() -> None:
    """Falling steadily through the end at a constant lr: too slow (raise 3x). A fast fall that
    goes on falling until an lr that decays before the end is no evidence (the best peak lr of
    a decaying schedule also leaves the loss falling until the decay)."""
    rng = np.random.default_rng(21)
    t = np.arange(N)
    noise = np.exp(0.03 * rng.standard_normal(N))
    vs = _steps_val()
    val = 2.3 * np.exp(-vs / 250)
    d = diagnose(2.3 * np.exp(-t / 250) * noise, val_loss=val, val_steps=vs, lr=1e-3)
    assert d.verdict == "too_slow" and d.action.params == {"factor": 3.0}
    assert d.lr_direction == "raise"
    stats = d.findings[0].statistics
    # judged on the validation loss over the last 40% of the run (a constant lr: all of it is
    # high-lr): log-linear, so the share is a ratio of step spans
    assert stats["judged"] == "validation"
    assert stats["late_share"] == pytest.approx((0.4 * (N - 1)) / (N - 1 - vs[0]))
    two_speed = (2.3 * np.exp(-t / 15) + 0.5 * np.exp(-t / 200)) * noise
    val2 = 2.3 * np.exp(-vs / 15) + 0.5 * np.exp(-vs / 200)
    d = diagnose(two_speed, val_loss=val2, val_steps=vs, lr=np.full(N, 1e-3))
    assert d.verdict == "too_slow" and d.findings[0].statistics["late_share"] >= 0.25
    cosine = 1e-3 * 0.5 * (1 + np.cos(np.pi * t / N))
    d = diagnose(two_speed, val_loss=val2, val_steps=vs, lr=cosine)
    assert d.verdict == "healthy" and d.lr_direction == "keep"


def test_validation_that_jumps_and_ends_above_its_best_is_lr_too_high() -> None:
    """Training loss falls; the validation loss was best at 30% of the run, then jumped around
    and ended 60% above it: the lr is too high (lower it). A steady rise is overfitting."""
    y = healthy_curve(22)
    vs = _steps_val()
    rng = np.random.default_rng(22)
    best_at = 6
    val = 0.3 * np.exp(-np.arange(vs.size) / 3.0) + 0.2
    jumpy = val.copy()
    jumpy[best_at:] = 0.22 * np.exp(0.45 * np.abs(rng.standard_normal(vs.size - best_at))) + 0.08
    jumpy[-3:] = [0.45, 0.5, 0.47]
    d = diagnose(y, val_loss=jumpy, val_steps=vs)
    assert d.verdict == "oscillating" and d.lr_direction == "lower"
    st = d.findings[0].statistics
    assert st["val_zigzag"] > 1.5 and st["val_rise"] >= 0.2 and st["val_min_share"] <= 0.6
    assert d.findings[0].onset_step == st["val_min_step"]
    steady = val.copy()
    steady[best_at:] = val[best_at] * (1 + 0.08 * np.arange(vs.size - best_at))
    d2 = diagnose(y, val_loss=steady, val_steps=vs)
    assert d2.verdict == "overfitting" and d2.lr_direction is None


def test_an_early_validation_blow_up_is_an_unstable_start() -> None:
    y = healthy_curve(23)
    vs = _steps_val()
    val = 0.3 * np.exp(-vs / 100) + 0.1
    val[0] = 60.0  # the model blown up at the first evaluation (26x the starting loss)
    d = diagnose(y, val_loss=val, val_steps=vs)
    assert d.verdict == "oscillating" and d.findings[0].onset_step == vs[0]
    assert "validation loss reached" in d.reason and d.lr_direction == "lower"


def test_lr_direction_of_every_action_kind() -> None:
    from lrkit.diagnosis import Action
    from lrkit.diagnosis._findings import lr_direction

    assert lr_direction(Action("none", "", "")) == "keep"
    assert lr_direction(Action("scale_lr", "", "", {"factor": 0.1})) == "lower"
    assert lr_direction(Action("scale_lr", "", "", {"factor": 3.0})) == "raise"
    assert lr_direction(Action("rollback", "", "", {"before_step": 3, "lr_factor": 0.1})) == (
        "lower"
    )
    assert lr_direction(Action("rollback", "", "", {"before_step": 3, "skip_batches": 2})) is None
    assert lr_direction(Action("early_stop", "", "", {"at_step": 3})) is None
    assert lr_direction(Action("collect_more", "", "")) is None
    assert json.loads(json.dumps(diagnose(healthy_curve()).to_dict()))["lr_direction"] == "keep"


def test_lr_time_and_the_high_lr_window_are_exact() -> None:
    """lr-time is the cumulative lr share at the end of each point; the window is the last 40%
    of the steps whose lr is at least half its peak."""
    from lrkit.diagnosis._progress import high_lr_window, lr_time
    from lrkit.diagnosis._rules import Curve

    n = 10
    x = np.arange(n, dtype=np.float64)
    y = np.ones(n)
    lr = np.array([0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.6, 0.4, 0.2, 0.0])
    curve = Curve(x, y, np.ones(n), None, None, lr, None)
    tau, known = lr_time(curve)
    assert known
    np.testing.assert_allclose(tau, np.cumsum(lr) / lr.sum())
    assert high_lr_window(curve) == pytest.approx((6 - 0.4 * (6 - 1), 6.0))
    flat = Curve(x, y, np.ones(n), None, None, None, None)
    tau, known = lr_time(flat)
    assert not known
    np.testing.assert_allclose(tau, (x + 1) / n)
    assert high_lr_window(flat) == pytest.approx((9 - 0.4 * 9, 9.0))


def test_guard_with_history_diagnoses_the_run_so_far() -> None:
    """Guard(history=...) keeps the curve in its monitor: the offline verdict on the run so far,
    with the spikes the Guard itself raised."""
    from lrkit.diagnosis import Guard

    y = healthy_curve(24)
    y[300] = 80.0
    guard = Guard(policy="warn", history=4096)
    for s, v in enumerate(y):
        guard.step(s, float(v))
    assert [e.step for e in guard.events] == [300]
    d = guard.monitor.diagnose(lr=0.01)
    assert d.verdict == "spiking" and d.findings[0].onset_step == 300
    assert d.action.kind == "rollback" and d.lr_direction is None
