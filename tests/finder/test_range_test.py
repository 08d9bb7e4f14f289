"""The range test's mechanics: ramp, smoothing, stops, param groups, scheduler, accumulation,
mixed precision and validation mode, checked against independent formulas."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ScriptedLoss, regression_data
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.finder import RangeTest, find_lr, ramp

MSE = torch.nn.functional.mse_loss


def lr_spy(opt: torch.optim.Optimizer) -> tuple[list[list[float]], Any]:
    """Record every group's lr at each optimizer.step()."""
    seen: list[list[float]] = []

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        seen.append([float(g["lr"]) for g in optimizer.param_groups])

    return seen, opt.register_step_pre_hook(hook)


def run_scripted(
    values: list[float], model: torch.nn.Module, opt: torch.optim.Optimizer, **kwargs: Any
) -> RangeTest:
    """``find_lr`` whose step ``i`` has loss ``values[i]``, for ``len(values)`` steps."""
    return find_lr(
        model,
        opt,
        None,
        regression_data(),
        step_fn=ScriptedLoss(values),
        num_steps=len(values),
        **kwargs,
    )


def independent_ema(values: list[float], beta: float) -> list[float]:
    out, avg = [], 0.0
    for k, x in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * x
        out.append(avg / (1 - beta**k))
    return out


@pytest.mark.parametrize("mode", ["exp", "linear"])
def test_lr_sequence_is_the_ramp(mode: str) -> None:
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    seen, handle = lr_spy(opt)
    n, start, end = 17, 1e-5, 1e-1
    result = find_lr(
        model,
        opt,
        MSE,
        regression_data(),
        start_lr=start,
        end_lr=end,
        num_steps=n,
        mode=mode,
        diverge_factor=None,
    )
    handle.remove()
    if mode == "exp":
        expected = [start * (end / start) ** (i / (n - 1)) for i in range(n)]
    else:
        expected = [start + (end - start) * i / (n - 1) for i in range(n)]
    assert result.stop_reason == "completed"
    np.testing.assert_allclose(result.lrs, expected, rtol=1e-12)
    np.testing.assert_allclose([s[0] for s in seen], expected, rtol=1e-12)
    assert result.lrs[0] == start and math.isclose(result.lrs[-1], end, rel_tol=1e-12)


@given(
    start=st.floats(1e-9, 1e-2),
    decades=st.floats(0.5, 8),
    n=st.integers(10, 300),
    mode=st.sampled_from(["exp", "linear"]),
)
@settings(max_examples=60, deadline=None)
def test_ramp_properties(start: float, decades: float, n: int, mode: str) -> None:
    end = start * 10**decades
    lrs = ramp(start, end, n, mode)
    assert len(lrs) == n
    assert np.all(np.diff(lrs) > 0)
    assert math.isclose(lrs[0], start, rel_tol=1e-12)
    assert math.isclose(lrs[-1], end, rel_tol=1e-9)
    if mode == "exp":  # equal ratios between neighbours
        ratios = lrs[1:] / lrs[:-1]
        np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)


def test_param_groups_keep_their_ratios() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Linear(4, 1))
    opt = torch.optim.AdamW(
        [
            {"params": model[0].parameters(), "lr": 1e-3},
            {"params": model[1].parameters(), "lr": 4e-3},
            {"params": [], "lr": 0.0},
        ]
    )
    seen, handle = lr_spy(opt)
    result = find_lr(
        model,
        opt,
        MSE,
        regression_data(),
        start_lr=1e-6,
        end_lr=1e-2,
        num_steps=12,
        diverge_factor=None,
    )
    handle.remove()
    seen_arr = np.asarray(seen)
    # the largest group is the reference: it follows the ramp itself
    np.testing.assert_allclose(seen_arr[:, 1], result.lrs, rtol=1e-12)
    np.testing.assert_allclose(seen_arr[:, 0], result.lrs * 0.25, rtol=1e-12)
    assert np.all(seen_arr[:, 2] == 0.0)
    assert result.group_ratios == pytest.approx((0.25, 1.0, 0.0))
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 4e-3, 0.0]


def test_tensor_lr_is_ramped_and_restored() -> None:
    model = torch.nn.Linear(6, 1)
    lr = torch.tensor(0.01)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    seen, handle = lr_spy(opt)
    result = find_lr(
        model,
        opt,
        MSE,
        regression_data(),
        num_steps=10,
        start_lr=1e-4,
        end_lr=1e-3,
        diverge_factor=None,
    )
    handle.remove()
    np.testing.assert_allclose([s[0] for s in seen], result.lrs, rtol=1e-6)
    assert opt.param_groups[0]["lr"] is lr  # the same tensor object, with its old value
    assert torch.equal(lr, torch.tensor(0.01))


def test_smoothed_is_bias_corrected_ema_of_losses() -> None:
    values = [3.0, 2.5, 2.7, 2.0, 1.8, 1.9, 1.5, 1.2, 1.4, 1.1, 1.0, 0.9]
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = run_scripted(values, model, opt, smoothing=0.9)
    np.testing.assert_allclose(result.losses, values, rtol=1e-6)
    np.testing.assert_allclose(
        result.smoothed, independent_ema(list(result.losses), 0.9), rtol=1e-12
    )
    unsmoothed = run_scripted(values, model, opt, smoothing=0.0)
    np.testing.assert_array_equal(unsmoothed.smoothed, unsmoothed.losses)


def first_divergence(values: list[float], beta: float, factor: float) -> int | None:
    smoothed = independent_ema(values, beta)
    best = math.inf
    for k, s in enumerate(smoothed):
        if k > 0 and s > best + (factor - 1) * abs(best):
            return k
        best = min(best, s)
    return None


@pytest.mark.parametrize(
    "values",
    [
        [2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 200.0],
        [-1.0, -1.5, -2.0, -2.2, -2.0, -1.0, 0.5, 3.0, 8.0, 20.0, 50.0, 90.0],  # negative losses
    ],
)
def test_divergence_stop_matches_rule(values: list[float]) -> None:
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = first_divergence(values, 0.5, 4.0)
    assert expected is not None
    result = run_scripted(values, model, opt, smoothing=0.5, diverge_factor=4.0)
    assert result.stop_reason == "diverged"
    assert len(result) == expected + 1  # the diverging point is recorded
    disabled = run_scripted(values, model, opt, smoothing=0.5, diverge_factor=None)
    assert disabled.stop_reason == "completed" and len(disabled) == len(values)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_loss_stops_cleanly(bad: float) -> None:
    values = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, bad, 0.3, 0.2, 0.1, 0.1]
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps: list[int] = []
    handle = opt.register_step_post_hook(lambda *a: steps.append(1))
    result = run_scripted(values, model, opt, diverge_factor=None)
    handle.remove()
    assert result.stop_reason == "non-finite"
    assert len(result) == 8
    assert not np.isfinite(result.losses[7]) and np.all(np.isfinite(result.losses[:7]))
    assert result.nonfinite.tolist() == [7]
    assert len(steps) == 7  # no optimizer step on the non-finite batch


def test_real_divergence_on_a_real_model() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = find_lr(model, opt, MSE, regression_data(), start_lr=1e-4, end_lr=100.0, num_steps=60)
    assert result.stop_reason in ("diverged", "non-finite")
    assert len(result) < 60


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_attached_scheduler_does_not_fight_the_ramp() -> None:
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step)
    before = sched.state_dict()

    def step_fn_that_steps_the_scheduler(model: torch.nn.Module, batch: Any) -> torch.Tensor:
        sched.step()  # a user's step_fn that (wrongly) steps the scheduler
        x, y = batch
        return MSE(model(x), y)

    seen, handle = lr_spy(opt)
    result = find_lr(
        model,
        opt,
        None,
        regression_data(),
        step_fn=step_fn_that_steps_the_scheduler,
        num_steps=12,
        start_lr=1e-4,
        end_lr=1e-2,
        scheduler=sched,
        diverge_factor=None,
    )
    handle.remove()
    np.testing.assert_allclose([s[0] for s in seen], result.lrs, rtol=1e-12)
    np.testing.assert_allclose(result.lrs, ramp(1e-4, 1e-2, 12), rtol=1e-12)
    assert sched.state_dict() == before
    assert opt.param_groups[0]["lr"] == 0.1


def test_gradient_accumulation_averages_micro_batches() -> None:
    values = [float(v) for v in np.linspace(3.0, 1.0, 36)]
    script = ScriptedLoss(values)
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps: list[int] = []
    handle = opt.register_step_post_hook(lambda *a: steps.append(1))
    result = find_lr(
        model,
        opt,
        None,
        regression_data(5),
        step_fn=script,
        num_steps=12,
        accumulation_steps=3,
        diverge_factor=None,
    )
    handle.remove()
    assert script.calls == 36 and len(steps) == 12
    expected = [
        float(
            (
                torch.tensor(values[3 * i])
                + torch.tensor(values[3 * i + 1])
                + torch.tensor(values[3 * i + 2])
            )
            / 3
        )
        for i in range(12)
    ]
    np.testing.assert_allclose(result.losses, expected, rtol=1e-6)


def test_accumulated_gradient_is_the_mean_gradient() -> None:
    """One accumulation step of k micro-batches moves SGD like the mean loss would."""
    torch.manual_seed(0)
    data = regression_data(4)
    grads: list[torch.Tensor] = []
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    handle = opt.register_step_pre_hook(
        lambda o, a, k: grads.append(model.weight.grad.detach().clone())  # type: ignore[union-attr]
    )
    find_lr(
        model,
        opt,
        MSE,
        data,
        num_steps=10,
        accumulation_steps=2,
        start_lr=1e-9,
        end_lr=1e-8,
        diverge_factor=None,
    )
    handle.remove()
    ref = torch.nn.Linear(6, 1)
    ref.load_state_dict(model.state_dict())
    loss = (MSE(ref(data[0][0]), data[0][1]) + MSE(ref(data[1][0]), data[1][1])) / 2
    loss.backward()
    torch.testing.assert_close(grads[0], ref.weight.grad)


def test_bf16_autocast_on_cpu() -> None:
    seen: list[tuple[bool, torch.dtype]] = []

    def step_fn(model: torch.nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        out = model(x)
        seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return MSE(out.float(), y)

    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = find_lr(
        model, opt, None, regression_data(), step_fn=step_fn, num_steps=10, amp="bf16", end_lr=1e-2
    )
    assert len(result) == 10
    assert all(enabled and dtype == torch.bfloat16 for enabled, dtype in seen)
    assert model.weight.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GradScaler path needs CUDA")
def test_fp16_gradscaler_on_cuda() -> None:  # pragma: no cover - no GPU in CI
    model = torch.nn.Linear(6, 1).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = model.weight.detach().clone()
    result = find_lr(model, opt, MSE, regression_data(), num_steps=20, amp="fp16")
    assert len(result) > 0
    assert torch.equal(model.weight, w)


def test_validation_mode_uses_fixed_val_batches_in_eval_no_grad() -> None:
    torch.manual_seed(0)
    train = regression_data(4, seed=1)
    val = regression_data(3, seed=2)
    calls: list[tuple[bool, bool]] = []

    class Spy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(6, 1)
            self.drop = torch.nn.Dropout(0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append((self.training, torch.is_grad_enabled()))
            return self.fc(self.drop(x))

    model = Spy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    independent: list[float] = []

    def after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        model.eval()
        with torch.no_grad():
            total = sum(MSE(model.fc(x), y) for x, y in val[:2])
        model.train()
        independent.append(float(total / 2))

    handle = opt.register_step_post_hook(after_step)
    result = find_lr(
        model,
        opt,
        MSE,
        train,
        val_loader=val,
        val_batches=2,
        val_every=3,
        num_steps=15,
        start_lr=1e-4,
        end_lr=1e-1,
        diverge_factor=None,
    )
    handle.remove()
    assert result.curve == "val"
    assert result.steps.tolist() == [2, 5, 8, 11, 14]
    np.testing.assert_allclose(result.lrs, ramp(1e-4, 1e-1, 15)[[2, 5, 8, 11, 14]], rtol=1e-12)
    np.testing.assert_allclose(
        result.losses, [independent[i] for i in (2, 5, 8, 11, 14)], rtol=1e-5
    )
    assert len(result.train_losses) == 15
    val_calls = [c for c in calls if not c[0]]
    assert len(val_calls) == 2 * 5  # val_batches x evaluations
    assert all(not grad for _, grad in val_calls)
    train_calls = [c for c in calls if c[0]]
    assert len(train_calls) == 15 and all(grad for _, grad in train_calls)


def test_progress_callback() -> None:
    got: list[tuple[int, int, float]] = []
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = find_lr(
        model,
        opt,
        MSE,
        regression_data(),
        num_steps=11,
        end_lr=1e-2,
        progress=lambda i, n, loss: got.append((i, n, loss)),
    )
    assert [g[0] for g in got] == list(range(1, 12)) and {g[1] for g in got} == {11}
    np.testing.assert_allclose([g[2] for g in got], result.losses)
