"""The built-in tasks: offline, fast, deterministic, and they learn at their default lr."""

from __future__ import annotations

import json
import math
import socket

import pytest
import torch

from lrkit._setup import Setup
from lrkit.tasks import BatchLoader, Task, TrainResult, evaluate, get_task, list_tasks, train
from lrkit.tasks._data import clear_caches, load

NAMES = [t.name for t in list_tasks()]


def test_registry_covers_the_required_kinds() -> None:
    tasks = list_tasks()
    assert len(tasks) >= 6
    assert tasks[0].name == "digits"
    assert {t.optimizer for t in tasks} >= {"sgd_momentum", "adam", "adamw", "rmsprop"}
    assert {t.loss for t in tasks} == {"classification", "regression", "language_model"}
    assert {t.model for t in tasks} >= {"mlp", "cnn", "transformer"}
    has_bn = [
        t.name
        for t in tasks
        if any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in t.setup().model.modules()
        )
    ]
    assert has_bn


def test_get_task_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"task must be one of 'digits'.*but got task='nope'"):
        get_task("nope")


@pytest.mark.parametrize("name", NAMES)
def test_data_loads_offline(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # load times are measured by benchmarks/tasks_load.py, not asserted here
    task = get_task(name)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a built-in task tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    clear_caches()  # a cold load: read from disk / generated again
    x_train, y_train, x_val, y_val = load(task.data or task.name)
    setup = task.setup(seed=1)
    assert len(x_train) == len(y_train) > len(x_val) == len(y_val) > 0
    assert torch.isfinite(x_train).all() and torch.isfinite(x_val).all()
    assert setup.val_loader is not None and setup.loss_fn is not None


@pytest.mark.parametrize("name", NAMES)
def test_setup_is_deterministic_and_leaves_global_rng_alone(name: str) -> None:
    task = get_task(name)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = task.setup(seed=3), task.setup(seed=3), task.setup(seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert any(
        not torch.equal(pa, pc)
        for pa, pc in zip(a.model.parameters(), c.model.parameters(), strict=True)
    )
    xa, ya = next(iter(a.train_loader))
    xb, yb = next(iter(b.train_loader))
    xc, _ = next(iter(c.train_loader))
    assert torch.equal(xa, xb) and torch.equal(ya, yb) and not torch.equal(xa, xc)


@pytest.mark.parametrize("name", NAMES)
def test_trains_and_reduces_val_loss_at_default_lr(name: str) -> None:
    task = get_task(name)
    torch.set_num_threads(1)
    setup = task.setup(seed=0)
    initial = evaluate(setup)
    steps = min(task.budget, 120)
    result = train(task, lr=task.default_lr, steps=steps, seed=0, eval_every=40)
    assert not result.diverged
    assert len(result.steps) == steps and result.val_steps[-1] == steps
    assert result.val_steps[:-1] == list(range(40, steps, 40))
    assert result.final_val_loss < 0.8 * initial
    # same seed, same run (its first 40 steps: evaluating in between changes nothing)
    again = train(task, lr=task.default_lr, steps=40, seed=0)
    assert again.train_loss == result.train_loss[:40]
    assert again.val_loss == result.val_loss[:1]


def test_setup_options() -> None:
    task = get_task("digits")
    setup = task.setup(lr=0.5, batch_size=7)
    assert setup.optimizer.param_groups[0]["lr"] == 0.5
    x, _ = next(iter(setup.train_loader))
    assert x.shape[0] == 7
    assert task.setup().optimizer.param_groups[0]["lr"] == task.default_lr
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2"):
        task.setup(batch_size=1)
    with pytest.raises(ValueError, match="seed"):
        task.setup(seed=-1)


def test_on_step_sees_every_step_and_its_exception_propagates() -> None:
    seen: list[tuple[int, float]] = []
    result = train(
        get_task("synthetic"), lr=0.01, steps=15, on_step=lambda s, v: seen.append((s, v))
    )
    assert seen == list(zip(result.steps, result.train_loss, strict=True))
    assert [s for s, _ in seen] == list(range(15))

    class Stop(Exception):
        pass

    def guard(step: int, loss: float) -> None:
        if step == 4:
            raise Stop

    with pytest.raises(Stop):
        train(get_task("synthetic"), lr=0.01, steps=15, on_step=guard)


def test_divergence_stops_early_with_infinite_final_loss() -> None:
    result = train(get_task("synthetic"), lr=1e6, steps=100)
    assert result.diverged
    assert result.final_val_loss == math.inf
    assert len(result.steps) < 100
    assert not math.isfinite(result.train_loss[-1])
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["final_val_loss"] == "inf" and payload["diverged"] is True


def test_schedule_multiplies_the_learning_rate() -> None:
    from lrkit.schedules import parse

    steps = 40
    result = train(get_task("diabetes"), lr=0.01, steps=steps, schedule=f"cosine({steps})")
    expected = [0.01 * v for v in parse(f"cosine({steps})").values(steps)]
    assert result.lrs == pytest.approx(expected, rel=1e-12, abs=1e-15)
    constant = train(get_task("diabetes"), lr=0.01, steps=steps)
    assert constant.lrs == [0.01] * steps


def test_train_a_setup_in_place_keeps_group_ratios() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "lr": 1.0}, {"params": [model.bias], "lr": 0.5}]
    )
    loader = BatchLoader(x, y, batch_size=16, shuffle=True)
    setup = Setup(model, optimizer, loader, loss_fn=torch.nn.MSELoss(), val_loader=loader)
    result = train(setup, lr=0.1, steps=10)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.05]
    assert len(result.steps) == 10 and math.isfinite(result.final_val_loss)
    with pytest.raises(ValueError, match="steps must be an integer >= 1 when training a Setup"):
        train(setup, lr=0.1)


def test_train_rejects_bad_arguments() -> None:
    task = get_task("digits")
    with pytest.raises(ValueError, match="lr must be a number > 0"):
        train(task, lr=0.0)
    with pytest.raises(ValueError, match="steps"):
        train(task, lr=0.1, steps=0)
    with pytest.raises(ValueError, match="eval_every"):
        train(task, lr=0.1, steps=5, eval_every=0)


def test_dict_batches_with_loss_attribute_and_step_fn() -> None:
    class Out:
        def __init__(self, loss: torch.Tensor) -> None:
            self.loss = loss

    class HF(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> Out:
            return Out(torch.nn.functional.mse_loss(self.lin(x), y))

    torch.manual_seed(0)
    batches = [{"x": torch.randn(8, 3), "y": torch.randn(8, 1)} for _ in range(3)]
    model = HF()
    setup = Setup(model, torch.optim.SGD(model.parameters(), lr=0.1), batches, val_loader=batches)
    result = train(setup, lr=0.05, steps=7)
    assert len(result.train_loss) == 7 and math.isfinite(result.final_val_loss)
    via_step_fn = Setup(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        batches,
        step_fn=lambda m, b: m(**b).loss,
    )
    assert math.isnan(train(via_step_fn, lr=0.05, steps=3).final_val_loss)


def test_task_is_frozen_value() -> None:
    task = get_task("digits")
    assert isinstance(task, Task)
    with pytest.raises(AttributeError):
        task.budget = 3  # type: ignore[misc]
    assert isinstance(TrainResult().to_dict(), dict)


def test_batches_follow_the_model_to_its_device() -> None:
    from lrkit.tasks._train import _device, _to

    model = torch.nn.Linear(3, 2)
    batch = (torch.zeros(4, 3), {"y": torch.zeros(4)})
    assert _device(model) == torch.device("cpu")
    assert _to(batch, _device(model)) is batch  # CPU: nothing to move
    meta = model.to("meta")  # a device that exists on every machine
    assert _device(meta) == torch.device("meta")
    moved = _to(batch, _device(meta))
    assert moved[0].device.type == "meta" and moved[1]["y"].device.type == "meta"
    assert _device(torch.nn.ReLU()) == torch.device("cpu")
