"""Everything the range test touches is exactly restored, whatever way the test ends."""

from __future__ import annotations

import os
import random
import tempfile
from typing import Any

import numpy as np
import pytest
import torch
from conftest import ScriptedLoss, regression_data

from lrkit.finder import find_lr, take_snapshot


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 12)
        self.bn = torch.nn.BatchNorm1d(12)
        self.drop = torch.nn.Dropout(0.2)
        self.head = torch.nn.Linear(12, 1)
        self.frozen_bn = torch.nn.BatchNorm1d(12)
        self.register_buffer("scratch", torch.zeros(3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scratch.add_(1.0)  # a non-persistent buffer changed in place
        h = torch.relu(self.bn(self.fc1(x)))
        h = self.frozen_bn(h)
        return self.head(self.drop(h))


def make(opt_name: str) -> tuple[Net, torch.optim.Optimizer]:
    torch.manual_seed(1)
    model = Net()
    groups: list[dict[str, Any]] = [
        {"params": [*model.fc1.parameters(), *model.bn.parameters()], "lr": 1e-2, "tag": "body"},
        {"params": [*model.head.parameters(), *model.frozen_bn.parameters()], "lr": 1e-3},
    ]
    opt: torch.optim.Optimizer
    if opt_name == "sgd":
        opt = torch.optim.SGD(groups, lr=1e-2, momentum=0.9, weight_decay=1e-4)
    else:
        opt = torch.optim.Adam(groups, lr=1e-3)
    # populate optimizer state (momentum buffers / Adam moments and step counts)
    x, y = regression_data(1)[0]
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    # a leftover gradient on one parameter, none on the others
    opt.zero_grad(set_to_none=True)
    model.head.weight.grad = torch.full_like(model.head.weight, 0.5)
    model.frozen_bn.eval()  # mixed train/eval modes must come back as they were
    return model, opt


def capture(model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    return {
        "params": {k: v.detach().clone() for k, v in model.named_parameters()},
        "buffers": {k: v.clone() for k, v in model.named_buffers()},
        "buffer_ids": {k: id(v) for k, v in model.named_buffers()},
        "param_ids": [id(p) for g in opt.param_groups for p in g["params"]],
        "grads": {
            k: (None if v.grad is None else v.grad.clone()) for k, v in model.named_parameters()
        },
        "state": {
            id(p): {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
            for p, s in opt.state.items()
        },
        "groups": [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
        "modes": [(name, m.training) for name, m in model.named_modules()],
        "py": random.getstate(),
        "np": np.random.get_state(legacy=False),
        "torch": torch.get_rng_state(),
    }


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    for kind in ("params", "buffers"):
        assert before[kind].keys() == after[kind].keys()
        for k, v in before[kind].items():
            assert v.dtype == after[kind][k].dtype
            assert torch.equal(v, after[kind][k]), (kind, k)
    assert before["buffer_ids"] == after["buffer_ids"]
    assert before["param_ids"] == after["param_ids"]
    for k, g in before["grads"].items():
        if g is None:
            assert after["grads"][k] is None, k
        else:
            assert torch.equal(g, after["grads"][k]), k
    assert before["state"].keys() == after["state"].keys()
    for pid, s in before["state"].items():
        assert s.keys() == after["state"][pid].keys()
        for k, v in s.items():
            w = after["state"][pid][k]
            if torch.is_tensor(v):
                assert torch.equal(v, w) and v.dtype == w.dtype, k
            else:
                assert v == w, k
    assert before["groups"] == after["groups"]
    assert before["modes"] == after["modes"]
    assert before["py"] == after["py"]
    np_b, np_a = before["np"], after["np"]
    assert np_b["bit_generator"] == np_a["bit_generator"]
    assert np.array_equal(np_b["state"]["key"], np_a["state"]["key"])
    assert np_b["state"]["pos"] == np_a["state"]["pos"]
    assert torch.equal(before["torch"], after["torch"])


OUTCOMES = ["completed", "diverged", "non-finite", "exception", "keyboard"]


def run_outcome(model: Net, opt: torch.optim.Optimizer, outcome: str, snapshot: str) -> Any:
    data = regression_data(3)
    kwargs: dict[str, Any] = {"num_steps": 20, "snapshot": snapshot}
    if outcome == "completed":
        return find_lr(model, opt, torch.nn.functional.mse_loss, data, end_lr=1e-2, **kwargs)
    if outcome == "diverged":
        step_fn = ScriptedLoss([1.0] * 6 + [100.0] * 20)
        return find_lr(model, opt, None, data, step_fn=step_fn, **kwargs)
    if outcome == "non-finite":
        step_fn = ScriptedLoss([1.0] * 6 + [float("nan")] * 20)
        return find_lr(model, opt, None, data, step_fn=step_fn, **kwargs)
    if outcome == "exception":
        step_fn = ScriptedLoss([1.0], raise_at=7, exc=RuntimeError("user code failed"))
        with pytest.raises(RuntimeError, match="user code failed"):
            find_lr(model, opt, None, data, step_fn=step_fn, **kwargs)
        return None
    step_fn = ScriptedLoss([1.0], raise_at=7, exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        find_lr(model, opt, None, data, step_fn=step_fn, **kwargs)
    return None


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("outcome", OUTCOMES)
@pytest.mark.parametrize("snapshot", ["memory", "disk"])
def test_everything_restored_bitwise(
    opt_name: str, outcome: str, snapshot: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args: Any, **kwargs: Any) -> str:
        path = real_mkdtemp(*args, **kwargs)
        created.append(path)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    model, opt = make(opt_name)
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    before = capture(model, opt)
    result = run_outcome(model, opt, outcome, snapshot)
    if result is not None:
        assert result.stop_reason == outcome
    assert_same(before, capture(model, opt))
    # the disk snapshot lived in a temporary directory that is gone now
    assert len(created) == (1 if snapshot == "disk" else 0)
    assert not any(os.path.exists(path) for path in created)


def test_training_really_changed_the_model_during_the_test() -> None:
    """Guards the restore tests: the test does modify the model (else restore is untested)."""
    model, opt = make("sgd")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    seen: list[bool] = []

    def spy(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        seen.append(any(not torch.equal(before[k], v) for k, v in model.named_parameters()))

    handle = opt.register_step_post_hook(spy)
    try:
        find_lr(model, opt, torch.nn.functional.mse_loss, regression_data(3), num_steps=12)
    finally:
        handle.remove()
    assert seen and seen[-1]


def test_scheduler_state_restored_and_not_stepped() -> None:
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    state = sched.state_dict()
    lr = opt.param_groups[0]["lr"]
    find_lr(
        model, opt, torch.nn.functional.mse_loss, regression_data(3), num_steps=15, scheduler=sched
    )
    assert sched.state_dict() == state
    assert opt.param_groups[0]["lr"] == lr


def test_snapshot_round_trip_keeps_tied_weights() -> None:
    emb = torch.nn.Embedding(5, 4)
    head = torch.nn.Linear(4, 5, bias=False)
    head.weight = emb.weight  # tied
    model = torch.nn.Sequential(emb, head)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = emb.weight.detach().clone()
    snap = take_snapshot(model, opt)
    with torch.no_grad():
        emb.weight.mul_(3.0)
    snap.restore()
    assert torch.equal(emb.weight, w)
    assert head.weight is emb.weight


def test_a_dataloaders_own_generator_is_restored() -> None:
    """Shuffling with ``DataLoader(generator=g)`` draws from g, not from the global RNG."""
    torch.manual_seed(0)
    x = torch.randn(64, 6)
    data = torch.utils.data.TensorDataset(x, x[:, :1])
    gen = torch.Generator().manual_seed(7)
    sampler_gen = torch.Generator().manual_seed(8)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, generator=gen)
    sampled = torch.utils.data.DataLoader(
        data, batch_size=8, sampler=torch.utils.data.RandomSampler(data, generator=sampler_gen)
    )
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    states = (gen.get_state(), sampler_gen.get_state())
    first_batch = next(iter(loader))[0].clone()
    gen.set_state(states[0])
    find_lr(model, opt, torch.nn.functional.mse_loss, loader, num_steps=12, val_loader=sampled)
    assert torch.equal(gen.get_state(), states[0])
    assert torch.equal(sampler_gen.get_state(), states[1])
    assert torch.equal(next(iter(loader))[0], first_batch)  # training sees the same batches


def test_a_failed_restore_keeps_the_disk_snapshot_and_names_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = torch.nn.Linear(6, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    weight = model.weight.detach().clone()

    def step_fn(m: torch.nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(m(x), y)
        if len(calls) == 3:  # user code swaps the weight for another shape: cannot copy back
            m.weight.data = torch.zeros(2, 2)
        calls.append(1)
        return loss

    calls: list[int] = []
    with pytest.raises(RuntimeError) as info:
        find_lr(model, opt, None, regression_data(3), step_fn=step_fn, num_steps=12,
                snapshot="disk")  # fmt: skip
    kept = list(tmp_path.rglob("snapshot.pt"))
    assert len(kept) == 1  # not deleted: the restore did not succeed
    assert any(str(kept[0]) in note for note in info.value.__notes__)
    saved = torch.load(kept[0], weights_only=True)
    assert any(t.shape == weight.shape and torch.equal(t, weight) for t in saved)
