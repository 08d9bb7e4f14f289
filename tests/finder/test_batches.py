"""Batch shapes, loader cycling, device moves and input validation."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from conftest import regression_data

from lrkit.finder import find_lr
from lrkit.finder._batches import move_to

MSE = torch.nn.functional.mse_loss


def quick(model: torch.nn.Module, loader: Any, loss_fn: Any = MSE, **kw: Any) -> Any:
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    kw.setdefault("num_steps", 10)
    kw.setdefault("end_lr", 1e-2)
    return find_lr(model, opt, loss_fn, loader, **kw)


def test_tuple_and_list_batches_give_the_same_curve() -> None:
    data = regression_data()
    torch.manual_seed(0)
    a = quick(torch.nn.Linear(6, 1), data)
    torch.manual_seed(0)
    b = quick(torch.nn.Linear(6, 1), [list(batch) for batch in data])
    np.testing.assert_array_equal(a.losses, b.losses)
    # and the first loss is the loss of the first batch on the untouched model
    torch.manual_seed(0)
    ref = torch.nn.Linear(6, 1)
    assert a.losses[0] == pytest.approx(MSE(ref(data[0][0]), data[0][1]).item(), rel=1e-6)


def test_multi_input_tuple_calls_model_with_all_inputs() -> None:
    class TwoInputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(6, 1)
            self.b = torch.nn.Linear(2, 1)

        def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(z)

    data = [(x, torch.ones(len(x), 2), y) for x, y in regression_data()]
    assert len(quick(TwoInputs(), data)) == 10


@dataclass
class Output:
    loss: torch.Tensor
    logits: torch.Tensor


class HFStyle(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 1)

    def forward(self, input_values: torch.Tensor, labels: torch.Tensor) -> Output:
        logits = self.fc(input_values)
        return Output(loss=MSE(logits, labels), logits=logits)


def test_dict_batches_use_model_output_loss() -> None:
    data = [{"input_values": x, "labels": y} for x, y in regression_data()]
    torch.manual_seed(0)
    result = quick(HFStyle(), data, loss_fn=None)
    torch.manual_seed(0)
    ref = HFStyle()
    assert result.losses[0] == pytest.approx(ref(**data[0]).loss.item(), rel=1e-6)


def test_dict_output_with_loss_key() -> None:
    class DictOut(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(6, 1)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"loss": MSE(self.fc(x), y)}

    data = [{"x": x, "y": y} for x, y in regression_data()]
    assert len(quick(DictOut(), data, loss_fn=None)) == 10


def test_step_fn_for_other_batches() -> None:
    @dataclass
    class Sample:
        features: torch.Tensor
        target: torch.Tensor

    data = [Sample(x, y) for x, y in regression_data()]
    seen: list[Any] = []

    def step_fn(model: torch.nn.Module, batch: Sample) -> torch.Tensor:
        seen.append(batch)
        return MSE(model(batch.features), batch.target)

    result = quick(torch.nn.Linear(6, 1), data, loss_fn=None, step_fn=step_fn)
    assert len(result) == 10 and seen[0] is data[0]


def test_unsupported_batch_without_step_fn_names_step_fn() -> None:
    with pytest.raises(ValueError, match="step_fn"):
        quick(torch.nn.Linear(6, 1), [torch.randn(4, 6)] * 3)


def test_dict_batch_without_loss_output_is_an_error() -> None:
    data = [{"input": x} for x, _ in regression_data()]

    class Plain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(6, 1)

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            return self.fc(input)

    with pytest.raises(ValueError, match=r"\.loss"):
        quick(Plain(), data, loss_fn=None)


class CountingLoader:
    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.passes = 0

    def __iter__(self) -> Any:
        self.passes += 1
        return iter(self.batches)


def test_short_loader_is_cycled() -> None:
    loader = CountingLoader(regression_data(3))
    result = quick(torch.nn.Linear(6, 1), loader, num_steps=25, diverge_factor=None)
    assert len(result) == 25
    assert loader.passes == 9  # ceil(25 / 3)


def test_dataloader_is_cycled() -> None:
    xs, ys = torch.randn(40, 6), torch.randn(40, 1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(xs, ys), batch_size=16, shuffle=True
    )
    result = quick(torch.nn.Linear(6, 1), loader, num_steps=12, diverge_factor=None)
    assert len(result) == 12


def test_one_shot_iterator_too_short_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="train_loader ran out after 3 batches"):
        quick(torch.nn.Linear(6, 1), iter(regression_data(3)), num_steps=10)


def test_move_to_preserves_structure() -> None:
    Pair = namedtuple("Pair", "x y")
    batch = {"a": torch.zeros(2), "b": [torch.ones(1), 3, "s"], "c": Pair(torch.ones(1), None)}
    moved = move_to(batch, torch.device("meta"))
    assert moved["a"].device.type == "meta"
    assert moved["b"][0].device.type == "meta" and moved["b"][1:] == [3, "s"]
    assert isinstance(moved["c"], Pair) and moved["c"].x.device.type == "meta"
    assert moved["c"].y is None


def test_batches_are_moved_to_the_requested_device() -> None:
    seen: list[torch.device] = []

    def step_fn(model: torch.nn.Module, batch: Any) -> torch.Tensor:
        seen.append(batch[0].device)
        return MSE(model(torch.ones(2, 6)), torch.zeros(2, 1))  # meta tensors hold no data

    quick(torch.nn.Linear(6, 1), regression_data(), loss_fn=None, step_fn=step_fn, device="meta")
    assert seen and all(d.type == "meta" for d in seen)


# -- bad input --------------------------------------------------------------------------------
BAD = [
    ({"start_lr": 0.0}, "start_lr"),
    ({"start_lr": -1e-3}, "start_lr"),
    ({"start_lr": float("nan")}, "start_lr"),
    ({"start_lr": 1e-2, "end_lr": 1e-2}, "end_lr"),
    ({"start_lr": 1e-2, "end_lr": 1e-3}, "end_lr"),
    ({"num_steps": 9}, "num_steps"),
    ({"num_steps": 2.5}, "num_steps"),
    ({"mode": "cosine"}, "mode"),
    ({"smoothing": 1.0}, "smoothing"),
    ({"diverge_factor": 1.0}, "diverge_factor"),
    ({"accumulation_steps": 0}, "accumulation_steps"),
    ({"amp": "fp8"}, "amp"),
    ({"amp": "fp16"}, "amp"),  # needs CUDA; the model is on CPU
    ({"val_every": 0}, "val_every"),
    ({"val_batches": 0}, "val_batches"),
    ({"snapshot": "cloud"}, "snapshot"),
    ({"progress": "yes"}, "progress"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], name: str) -> None:
    model = torch.nn.Linear(6, 1)
    w = model.weight.detach().clone()
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        find_lr(
            model, torch.optim.SGD(model.parameters(), lr=0.1), MSE, regression_data(), **kwargs
        )
    assert torch.equal(model.weight, w)


def test_empty_loader() -> None:
    with pytest.raises(ValueError, match="train_loader must yield at least one batch"):
        quick(torch.nn.Linear(6, 1), [])
    with pytest.raises(ValueError, match="val_loader must yield at least one batch"):
        quick(torch.nn.Linear(6, 1), regression_data(), val_loader=[])


def test_loss_not_a_scalar_tensor() -> None:
    with pytest.raises(ValueError, match=r"loss must be a scalar tensor .*shape \(16, 1\)"):
        quick(torch.nn.Linear(6, 1), regression_data(), loss_fn=lambda out, y: (out - y) ** 2)
    with pytest.raises(ValueError, match="loss must be a scalar tensor.*float"):
        quick(torch.nn.Linear(6, 1), regression_data(), loss_fn=None, step_fn=lambda m, b: 1.0)


def test_model_without_trainable_parameters() -> None:
    model = torch.nn.Linear(6, 1)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="model must have trainable parameters"):
        find_lr(model, torch.optim.SGD(model.parameters(), lr=0.1), MSE, regression_data())


def test_not_a_model_or_optimizer() -> None:
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="model must be"):
        find_lr("model", opt, MSE, regression_data())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="optimizer must be"):
        find_lr(model, "sgd", MSE, regression_data())  # type: ignore[arg-type]


@pytest.mark.parametrize("accumulation_steps", [1, 3])
def test_loss_without_grad(accumulation_steps: int) -> None:
    model = torch.nn.Linear(6, 1)
    w = model.weight.detach().clone()
    with pytest.raises(ValueError, match="loss without grad"):
        quick(
            model,
            regression_data(),
            loss_fn=lambda out, y: MSE(out.detach(), y),
            accumulation_steps=accumulation_steps,
        )
    assert torch.equal(model.weight, w)
