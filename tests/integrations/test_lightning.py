"""Lightning integration, tested with real ``Trainer(max_steps=...)`` runs on CPU."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

L = pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is not installed")

from lrkit.integrations.lightning import (  # noqa: E402
    GuardCallback,
    LRFinderCallback,
    find_lr,
    optimizer_from,
)
from lrkit.schedules import attach  # noqa: E402

SPEC = "warmup(4, cosine(16, floor=0.1), start=0.1)"


class TinyModule(L.LightningModule):  # type: ignore[misc]
    def __init__(self, *, spec: str | None = None, lr: float = 0.05) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
        )
        self.spec = spec
        self.lr = lr

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        if self.spec is None:
            return opt
        sched = attach(opt, self.spec)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _loader(n: int = 128) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


def _trainer(tmp_path: Path, **kwargs: Any) -> Any:
    defaults: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    defaults.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return L.Trainer(**defaults)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_find_lr_on_module_restores_everything() -> None:
    module = TinyModule()
    before = _state(module)
    rng = torch.get_rng_state()
    result = find_lr(module, train_dataloaders=_loader(), num_steps=30, end_lr=1.0)
    assert len(result.lrs) >= 10
    assert result.lrs[0] == pytest.approx(1e-7)
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(rng, torch.get_rng_state())


def test_optimizer_from_every_configure_optimizers_form() -> None:
    module = TinyModule()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5)
    for form in (
        opt,
        [opt],
        ([opt], [sched]),
        {"optimizer": opt, "lr_scheduler": sched},
        [{"optimizer": opt}],
    ):
        module.configure_optimizers = lambda form=form: form  # type: ignore[method-assign]
        assert optimizer_from(module) is opt
    module.configure_optimizers = lambda: None  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="configure_optimizers"):
        optimizer_from(module)


def test_find_lr_rejects_plain_modules() -> None:
    with pytest.raises(ValueError, match="LightningModule"):
        find_lr(torch.nn.Linear(2, 2), train_dataloaders=_loader())


def test_callback_applies_suggestion_before_fit(tmp_path: Path) -> None:
    module = TinyModule(spec=SPEC)
    seen: list[float] = []

    class Record(L.Callback):  # type: ignore[misc]
        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    finder = LRFinderCallback(apply=True, num_steps=40, end_lr=1.0)
    trainer = _trainer(tmp_path, max_steps=6, callbacks=[finder, Record()])
    trainer.fit(module, _loader())
    assert finder.result is not None
    suggestion = finder.result.suggestion
    assert suggestion is not None and finder.applied_lr == suggestion
    # the attached schedule now runs from the suggested peak: step 0 is warmup start (0.1 x peak)
    assert seen[0] == pytest.approx(0.1 * suggestion, rel=1e-9)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs[0] == pytest.approx(suggestion, rel=1e-12)


def test_callback_without_apply_leaves_lr(tmp_path: Path) -> None:
    module = TinyModule()
    finder = LRFinderCallback(num_steps=20, end_lr=1.0)
    trainer = _trainer(tmp_path, max_steps=2, callbacks=[finder])
    trainer.fit(module, _loader())
    assert finder.result is not None
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.05


class _LrRecorder(L.Callback):  # type: ignore[misc]
    def __init__(self) -> None:
        self.lrs: dict[int, float] = {}

    def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
        self.lrs[int(trainer.global_step)] = trainer.optimizers[0].param_groups[0]["lr"]


def test_attach_in_lightning_resumes_with_identical_lrs(tmp_path: Path) -> None:
    full = _LrRecorder()
    _trainer(tmp_path / "a", max_steps=20, callbacks=[full]).fit(TinyModule(spec=SPEC), _loader())

    first = _LrRecorder()
    trainer = _trainer(tmp_path / "b", max_steps=9, callbacks=[first])
    trainer.fit(TinyModule(spec=SPEC), _loader())
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)

    resumed = _LrRecorder()
    _trainer(tmp_path / "c", max_steps=20, callbacks=[resumed]).fit(
        TinyModule(spec=SPEC), _loader(), ckpt_path=ckpt
    )
    combined = {**first.lrs, **resumed.lrs}
    assert sorted(combined) == list(range(20))
    assert [combined[s] for s in range(20)] == [full.lrs[s] for s in range(20)]  # bit-identical
    assert min(resumed.lrs) == 9


def test_guard_callback_lowers_lr_on_spike(tmp_path: Path, caplog: Any) -> None:
    class Spiky(TinyModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            return loss * 1000.0 if self.global_step == 12 else loss

    from lightning.pytorch.loggers import CSVLogger

    guard_cb = GuardCallback(policy="scale_lr", lr_factor=0.5, min_history=5)
    logger = CSVLogger(tmp_path, name="run", version=0)
    trainer = _trainer(tmp_path, max_steps=16, callbacks=[guard_cb], logger=logger)
    with caplog.at_level(logging.WARNING):
        trainer.fit(Spiky(lr=0.01), _loader())
    events = guard_cb.guard.events
    assert [e.step for e in events] == [12], "the injected spike at step 12 was not reported"
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.005)
    assert any("lrkit Guard" in r.getMessage() for r in caplog.records)
    # the event went through the module's logger too
    rows = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    at = header.index("guard/event_step")
    logged = [float(r.split(",")[at]) for r in rows[1:] if r.split(",")[at]]
    assert logged == [12.0]
    assert float(rows[1:][[r.split(",")[at] for r in rows[1:]].index("12.0")].split(",")[
        header.index("guard/lr_scale")]) == pytest.approx(0.5)


def test_guard_callback_rolls_back_to_the_last_good_snapshot(tmp_path: Path) -> None:
    seen: dict[int, dict[str, torch.Tensor]] = {}

    class Spiky(TinyModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            seen[self.global_step] = {k: p.detach().clone() for k, p in self.named_parameters()}
            loss = super().training_step(batch, batch_idx)
            return loss * 1000.0 if self.global_step == 12 else loss

    guard_cb = GuardCallback(policy="rollback", snapshot_every=5, min_history=5)
    trainer = _trainer(tmp_path, max_steps=13, callbacks=[guard_cb])
    module = Spiky(lr=0.01)
    trainer.fit(module, _loader())
    events = guard_cb.guard.events
    assert events and events[0].step == 12
    # after the spike the weights are those of the last snapshot, taken at step 10 before its
    # update (BatchNorm statistics are snapshotted after that step's forward pass)
    after = dict(module.named_parameters())
    assert not torch.equal(after["net.0.weight"], seen[12]["net.0.weight"])
    for key, value in seen[10].items():
        assert torch.equal(after[key], value), key


def test_guard_callback_stops_on_nan(tmp_path: Path) -> None:
    class Nan(TinyModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            return loss * float("nan") if self.global_step == 5 else loss

    guard_cb = GuardCallback(policy="raise", min_history=3)
    trainer = _trainer(tmp_path, max_steps=30, callbacks=[guard_cb])
    trainer.fit(Nan(lr=0.01), _loader())
    assert trainer.global_step < 30
    assert guard_cb.guard.events[0].kind == "nonfinite"
    assert all(torch.isfinite(p).all() for p in trainer.lightning_module.parameters())
