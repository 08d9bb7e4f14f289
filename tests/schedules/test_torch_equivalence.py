"""Every kind torch also has, against torch's own scheduler stepped thousands of times.

torch's ``step()`` mostly uses its recursive ("chainable") form, so these tests also show the
closed forms agree with what torch users actually get, to 1e-9 relative.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    StepLR,
)

from lrkit.schedules import (
    Cosine,
    Cyclic,
    Exponential,
    Linear,
    MultiStep,
    OneCycle,
    Polynomial,
    Restarts,
    Schedule,
    Step,
    parse,
)

N = 3000
LR = 0.1
RTOL = 1e-9


def _optimizer(kind: str = "sgd", lr: float = LR) -> Optimizer:
    param = torch.nn.Parameter(torch.zeros(1))
    if kind == "adam":
        return Adam([param], lr=lr)
    return SGD([param], lr=lr, momentum=0.9)


def _drive(
    make: Callable[[Optimizer], LRScheduler], n: int = N, kind: str = "sgd"
) -> tuple[np.ndarray, np.ndarray]:
    """lr and momentum (or beta1) of torch's scheduler at steps 0..n-1."""
    opt = _optimizer(kind)
    sched = make(opt)
    lrs, moms = [], []
    for i in range(n):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        moms.append(group["betas"][0] if kind == "adam" else group["momentum"])
        if i < n - 1:
            opt.step()
            sched.step()
    return np.asarray(lrs), np.asarray(moms)


def _check(schedule: Schedule, torch_lrs: np.ndarray, peak: float = LR, atol: float = 0.0) -> None:
    n = len(torch_lrs)
    expected = torch_lrs / peak
    np.testing.assert_allclose(schedule.values(n), expected, rtol=RTOL, atol=atol)
    rng = np.random.default_rng(0)
    for i in rng.integers(0, n, 200).tolist() + [0, n - 1]:
        np.testing.assert_allclose(schedule(i), expected[i], rtol=RTOL, atol=atol)
    # the two evaluation paths agree with each other much more tightly
    steps = np.arange(n)
    np.testing.assert_allclose(
        [schedule._at(i) for i in range(n)], schedule.values(steps), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize(("size", "gamma"), [(30, 0.1), (7, 0.5), (1, 0.999)])
def test_step_matches_steplr(size: int, gamma: float) -> None:
    lrs, _ = _drive(lambda o: StepLR(o, step_size=size, gamma=gamma))
    _check(Step(size, gamma=gamma), lrs)


@pytest.mark.parametrize(
    ("milestones", "gamma"), [([300, 600, 2000], 0.1), ([5, 5, 900], 0.5), ([0, 2999], 0.3)]
)
def test_multistep_matches_multisteplr(milestones: list[int], gamma: float) -> None:
    lrs, _ = _drive(lambda o: MultiStepLR(o, milestones=milestones, gamma=gamma))
    _check(MultiStep(tuple(milestones), gamma=gamma), lrs)


@pytest.mark.parametrize("gamma", [0.999, 0.99, 1.0])
def test_exponential_matches_exponentiallr(gamma: float) -> None:
    lrs, _ = _drive(lambda o: ExponentialLR(o, gamma=gamma))
    _check(Exponential(gamma), lrs)


@pytest.mark.parametrize(
    ("steps", "start", "end"), [(1000, 1.0, 0.0), (500, 1 / 3, 1.0), (2999, 0.9, 0.05)]
)
def test_linear_matches_linearlr(steps: int, start: float, end: float) -> None:
    lrs, _ = _drive(lambda o: LinearLR(o, start_factor=start, end_factor=end, total_iters=steps))
    # end=0 reaches exactly 0 where torch's recursion leaves ~1e-17: atol for those steps only
    _check(Linear(steps, start=start, end=end), lrs, atol=1e-15 if end == 0.0 else 0.0)


@pytest.mark.parametrize(("steps", "power"), [(2999, 1.0), (1500, 2.0), (2000, 0.5)])
def test_polynomial_matches_polynomiallr(steps: int, power: float) -> None:
    lrs, _ = _drive(lambda o: PolynomialLR(o, total_iters=steps, power=power))
    # the curve reaches exactly 0; torch's recursion leaves tiny residues near the end
    _check(Polynomial(steps, power=power), lrs, atol=1e-13)


@pytest.mark.parametrize(("steps", "floor"), [(2999, 0.0), (2999, 0.05), (1000, 0.2)])
def test_cosine_matches_cosineannealinglr(steps: int, floor: float) -> None:
    n = steps + 1  # torch's curve is periodic after T_max; compare the documented range
    lrs, _ = _drive(lambda o: CosineAnnealingLR(o, T_max=steps, eta_min=floor * LR), n=n)
    # with floor=0 the curve ends at 0, where torch's recursive form leaves ~1e-17 residues
    _check(Cosine(steps, floor=floor), lrs, atol=1e-14 if floor == 0.0 else 0.0)


def test_cosine_holds_floor_after_steps_unlike_torch() -> None:
    """Deliberate difference: torch's closed form rises again after T_max; ours holds."""
    s = Cosine(100, floor=0.1)
    assert s.values(np.arange(100, 400)).tolist() == [0.1] * 300
    lrs, _ = _drive(lambda o: CosineAnnealingLR(o, T_max=100, eta_min=0.1 * LR), n=200)
    assert lrs[150] / LR > 0.5  # torch climbs back towards the peak


@pytest.mark.parametrize(
    ("period", "mult", "floor"), [(100, 1, 0.0), (50, 2, 0.01), (7, 3, 0.1), (1, 2, 0.0)]
)
def test_restarts_matches_cosineannealingwarmrestarts(period: int, mult: int, floor: float) -> None:
    lrs, _ = _drive(
        lambda o: CosineAnnealingWarmRestarts(o, T_0=period, T_mult=mult, eta_min=floor * LR)
    )
    _check(Restarts(period, mult=float(mult), floor=floor), lrs, atol=1e-15)


@pytest.mark.parametrize(
    ("up", "down", "low", "mode", "gamma"),
    [
        (100, None, 0.1, "triangular", 1.0),
        (37, 113, 0.01, "triangular", 1.0),
        (200, 50, 0.1, "triangular2", 1.0),
        (150, None, 0.2, "exp_range", 0.999),
        (20, 40, 0.0, "exp_range", 0.9995),
    ],
)
def test_cyclic_matches_cycliclr(
    up: int, down: int | None, low: float, mode: str, gamma: float
) -> None:
    lrs, _ = _drive(
        lambda o: CyclicLR(
            o,
            base_lr=low * LR,
            max_lr=LR,
            step_size_up=up,
            step_size_down=down,
            mode=mode,  # type: ignore[arg-type]
            gamma=gamma,
            cycle_momentum=False,
        )
    )
    # low=0 reaches exactly 0 at the bottom of every cycle
    _check(Cyclic(up, down=down, low=low, mode=mode, gamma=gamma), lrs, atol=1e-15)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize(
    ("pct_start", "div_factor", "final_div_factor"), [(0.3, 25.0, 1e4), (0.15, 10.0, 100.0)]
)
def test_onecycle_matches_onecyclelr_with_momentum(
    three_phase: bool, anneal: str, pct_start: float, div_factor: float, final_div_factor: float
) -> None:
    def make(o: Optimizer) -> LRScheduler:
        return OneCycleLR(
            o,
            max_lr=LR,
            total_steps=N,
            pct_start=pct_start,
            anneal_strategy=anneal,  # type: ignore[arg-type]
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
        )

    schedule = OneCycle(
        N,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        anneal=anneal,
        three_phase=three_phase,
    )
    for kind in ("sgd", "adam"):
        lrs, moms = _drive(make, kind=kind)
        _check(schedule, lrs)
        ours = [schedule.momentum(i) for i in range(N)]
        np.testing.assert_allclose(ours, moms, rtol=RTOL)


def test_onecycle_custom_momentum_and_off() -> None:
    lrs, moms = _drive(
        lambda o: OneCycleLR(o, max_lr=LR, total_steps=500, max_momentum=0.99, base_momentum=0.8),
        n=500,
    )
    s = OneCycle(500, max_momentum=0.99, base_momentum=0.8)
    _check(s, lrs)
    np.testing.assert_allclose([s.momentum(i) for i in range(500)], moms, rtol=RTOL)
    assert OneCycle(500, cycle_momentum=False).momentum(10) is None
    # after the cycle it holds its final values (torch raises past total_steps)
    assert s(10_000) == s(499) and s.momentum(10_000) == s.momentum(499)


def test_specs_match_torch_too() -> None:
    """The spec form builds the same schedules as the classes."""
    lrs, _ = _drive(lambda o: StepLR(o, step_size=100, gamma=0.5), n=1000)
    _check(parse("step(100, gamma=0.5)"), lrs)
    lrs, moms = _drive(
        lambda o: OneCycleLR(o, max_lr=LR, total_steps=1000, three_phase=True), n=1000
    )
    s = parse("onecycle(1000, three_phase=True)")
    _check(s, lrs)
    np.testing.assert_allclose([s.momentum(i) for i in range(1000)], moms, rtol=RTOL)
