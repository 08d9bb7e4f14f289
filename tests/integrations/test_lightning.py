"""Lightning integration, tested with real ``Trainer.fit`` runs on CPU.

The range test runs inside the Trainer's own fit loop; the proofs: training after it is the
very training without it (same weights, data order, steps, epochs), its curve under
``bf16-mixed`` + ``accumulate_grad_batches`` + clipping is the curve of a hand-written loop
with those settings, the suggestion lands in ``hparams``/loggers/checkpoints, and a checkpoint
taken after a Guard rollback resumes to the same weights as an uninterrupted run.
"""

from __future__ import annotations

import logging
import signal
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

L = pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is not installed")

from _lightning_setup import RegressionSteps  # noqa: E402
from _lightning_setup import cpu_trainer as _trainer  # noqa: E402
from _lightning_setup import weights as _params  # noqa: E402

from lrkit.finder import ramp  # noqa: E402
from lrkit.integrations.lightning import (  # noqa: E402
    GuardCallback,
    LRDriver,
    LRFinderCallback,
    find_lr,
    run_excursion,
)

SPEC = "warmup(4, cosine(16, floor=0.1), start=0.1)"
RAMP = dict(start_lr=1e-3, end_lr=3.0, num_steps=30)


class TinyModule(RegressionSteps, L.LightningModule):  # type: ignore[misc]
    def __init__(
        self,
        lr: float = 0.05,
        *,
        spec: str | None = None,
        dropout: float = 0.0,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters("lr")
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16),
            torch.nn.BatchNorm1d(16) if batchnorm else torch.nn.Identity(),
            torch.nn.Dropout(dropout),
            torch.nn.ReLU(),
            torch.nn.Linear(16, 1),
        )
        self.spec = spec
        self.calls = 0
        self.first_inputs: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.calls += 1
        self.first_inputs.append(float(x[0, 0]))
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss


def _data(n: int = 128) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def _loader(shuffle: bool = False, batch_size: int = 16) -> DataLoader[Any]:
    return DataLoader(_data(), batch_size=batch_size, shuffle=shuffle)


@pytest.mark.parametrize(
    "limits",
    [
        dict(max_steps=20),
        dict(max_epochs=2, precision="bf16-mixed", accumulate_grad_batches=2),
    ],
    ids=["max_steps", "epochs-bf16-accumulation"],
)
def test_training_after_the_range_test_is_the_training_without_it(
    tmp_path: Path, limits: dict[str, Any]
) -> None:
    """Same weights, batches (shuffled), dropout masks, steps and epochs as a plain fit."""
    runs = []
    for finder in (None, LRFinderCallback(num_steps=12, start_lr=1e-3, end_lr=1.0)):
        torch.manual_seed(123)  # the loader's shuffle and dropout draw from the global RNG
        module = TinyModule(dropout=0.2)
        trainer = _trainer(tmp_path, callbacks=[finder] if finder else [], **limits)
        trainer.fit(module, _loader(shuffle=True), val_dataloaders=_loader(batch_size=64))
        runs.append((module, trainer, finder))
    (plain, t_plain, _), (tested, t_tested, finder) = runs
    assert finder is not None and finder.result is not None and len(finder.result) >= 10
    acc = limits.get("accumulate_grad_batches", 1)
    # the test's micro-batches came first, then exactly the plain run's batches
    assert tested.calls == plain.calls + len(finder.result) * acc
    assert tested.first_inputs[-plain.calls :] == plain.first_inputs
    assert (t_tested.global_step, t_tested.current_epoch) == (
        t_plain.global_step,
        t_plain.current_epoch,
    )
    for a, b in zip(_params(plain), _params(tested), strict=True):
        assert torch.equal(a, b)
    # validation ran as usual (and not during the test)
    assert torch.equal(t_plain.callback_metrics["val_loss"], t_tested.callback_metrics["val_loss"])


def _hand_written_curve(
    steps: int, *, bf16: bool, accumulate: int, clip: float | None
) -> list[float]:
    """The range test as a plain loop: autocast, accumulation, clipping, the lrkit ramp."""
    module = TinyModule()
    opt = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
    batches = list(_loader())
    lrs = ramp(1e-3, 1.0, steps)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        total = torch.zeros(())
        for micro in range(accumulate):
            x, y = batches[(step * accumulate + micro) % len(batches)]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.mse_loss(module.net(x), y)
            (loss / accumulate).backward()
            total = total + (loss / accumulate).detach().float()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
        for group in opt.param_groups:
            group["lr"] = float(lrs[step])
        opt.step()
        losses.append(float(total))
    return losses


def test_curve_is_the_hand_written_loop_with_bf16_accumulation_and_clipping(
    tmp_path: Path,
) -> None:
    finder = LRFinderCallback(num_steps=12, start_lr=1e-3, end_lr=1.0, diverge_factor=None)
    trainer = _trainer(
        tmp_path,
        max_steps=1,
        precision="bf16-mixed",
        accumulate_grad_batches=2,
        gradient_clip_val=0.5,
        callbacks=[finder],
    )
    trainer.fit(TinyModule(), _loader())
    assert finder.result is not None
    got = finder.result.losses.tolist()
    assert got == _hand_written_curve(12, bf16=True, accumulate=2, clip=0.5)  # bit for bit
    assert finder.result.settings["amp"] == "bf16"
    assert finder.result.settings["accumulation_steps"] == 2
    # and the settings are visible: without bf16, or without accumulation, it is another curve
    for other in (
        _hand_written_curve(12, bf16=False, accumulate=2, clip=0.5),
        _hand_written_curve(12, bf16=True, accumulate=1, clip=0.5),
    ):
        assert np.max(np.abs(np.array(got) - other) / np.abs(other)) > 1e-3


def test_apply_sets_hparams_optimizer_scheduler_logger_and_checkpoint(tmp_path: Path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    module = TinyModule(spec=SPEC)
    seen: list[float] = []

    class Record(L.Callback):  # type: ignore[misc]
        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    finder = LRFinderCallback(apply=True, **RAMP)
    logger = CSVLogger(tmp_path, name="run", version=0)
    trainer = _trainer(tmp_path, max_steps=6, callbacks=[finder, Record()], logger=logger)
    trainer.fit(module, _loader())
    assert finder.result is not None
    lr = finder.suggested_lr
    assert lr is not None and lr == finder.result.suggestion and finder.applied_lr == lr
    assert module.hparams.lr == lr  # like Lightning's update_attr
    # the attached schedule runs from the suggested peak: step 0 is the warmup start
    assert seen[0] == pytest.approx(0.1 * lr, rel=1e-12)
    assert trainer.lr_scheduler_configs[0].scheduler.base_lrs[0] == pytest.approx(lr, rel=1e-12)
    # the curve and the suggestion went to the logger
    rows = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("lrkit/range_test/loss")
    logged = [float(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]]
    np.testing.assert_array_equal(logged, finder.result.losses.astype(np.float32))
    assert "lrkit/suggested_lr" in header
    hparams = (tmp_path / "run" / "version_0" / "hparams.yaml").read_text()
    assert f"lrkit_suggested_lr: {lr}" in hparams
    # and into the checkpoint; a fit resumed from it does not test again
    ckpt = tmp_path / "after.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["hyper_parameters"]["lr"] == lr
    again = LRFinderCallback(apply=True, **RAMP)
    resumed = TinyModule(spec=SPEC)
    _trainer(tmp_path, max_steps=8, callbacks=[again]).fit(resumed, _loader(), ckpt_path=ckpt)
    assert resumed.calls == 2  # steps 6 and 7, no range test
    assert again.result is not None and again.suggested_lr == lr
    np.testing.assert_array_equal(again.result.losses, finder.result.losses)


def test_no_suggestion_leaves_the_lr(tmp_path: Path, caplog: Any) -> None:
    finder = LRFinderCallback(apply=True, num_steps=10, start_lr=1e-7, end_lr=1e-6)
    module = TinyModule()
    trainer = _trainer(tmp_path, max_steps=2, callbacks=[finder])
    with caplog.at_level(logging.WARNING):
        trainer.fit(module, _loader())
    assert finder.suggested_lr is None and finder.applied_lr is None
    assert module.hparams.lr == 0.05
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.05
    assert any("no learning rate suggested" in r.getMessage() for r in caplog.records)


def test_find_lr_like_the_tuner_then_fit(tmp_path: Path) -> None:
    module = TinyModule()
    trainer = _trainer(tmp_path, max_steps=5)
    callbacks = trainer.callbacks
    result = find_lr(trainer, module, train_dataloaders=_loader(), **RAMP)
    assert result.suggestion is not None and module.hparams.lr == result.suggestion
    assert trainer.global_step == 0 and trainer.callbacks is callbacks
    assert module.calls == len(result)  # the fit ended right after the test
    trainer.fit(module, _loader())
    assert trainer.global_step == 5
    assert trainer.optimizers[0].param_groups[0]["lr"] == result.suggestion


def test_find_lr_needs_an_lr_attribute_to_update(tmp_path: Path) -> None:
    class NoLr(TinyModule):
        def __init__(self) -> None:
            super().__init__()
            del self.hparams["lr"]

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    with pytest.raises(ValueError, match="update_attr"):
        find_lr(_trainer(tmp_path), NoLr(), train_dataloaders=_loader())
    with pytest.raises(ValueError, match="lr_attr_name"):
        find_lr(_trainer(tmp_path), TinyModule(), train_dataloaders=_loader(), lr_attr_name="x")


def test_bad_arguments_and_several_optimizers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="method"):
        LRFinderCallback(method="steepest-ish")
    with pytest.raises(ValueError, match="end_lr"):
        LRFinderCallback(start_lr=1.0, end_lr=0.1)

    class Two(TinyModule):
        def configure_optimizers(self) -> Any:
            return [
                torch.optim.SGD(self.net[0].parameters()),
                torch.optim.SGD(self.net[4].parameters()),
            ]

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return super().training_step(batch, batch_idx)

    two = Two()
    two.automatic_optimization = False
    with pytest.raises(ValueError, match="automatic optimization|one optimizer"):
        _trainer(tmp_path, max_steps=1, callbacks=[LRFinderCallback()]).fit(two, _loader())


@pytest.mark.parametrize("fault", [RuntimeError, KeyboardInterrupt])
def test_a_fault_inside_the_range_test_restores_the_model(
    tmp_path: Path, fault: type[BaseException]
) -> None:
    class Boom(TinyModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.calls == 6:
                raise fault("boom")
            return super().training_step(batch, batch_idx)

    module = Boom()
    before = _params(module)
    rng = torch.get_rng_state()
    trainer = _trainer(tmp_path, max_steps=5, callbacks=[LRFinderCallback(**RAMP)])
    handler = signal.getsignal(signal.SIGINT)
    try:
        # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1)
        with pytest.raises(RuntimeError if fault is RuntimeError else SystemExit):
            trainer.fit(module, _loader(shuffle=True))
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after a Ctrl-C
    assert module.calls == 6  # it stopped inside the range test (30 steps)
    for a, b in zip(before, _params(module), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(rng, torch.get_rng_state())


def test_excursions_with_a_plain_driver_each_start_from_the_same_state(tmp_path: Path) -> None:
    """The seam a race uses: several short trials at fixed lrs, each undone."""
    trials: dict[float, list[float]] = {}

    class Race(L.Callback):  # type: ignore[misc]
        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            for lr in (0.01, 0.1):
                driver = LRDriver(lambda step, lr=lr: lr, steps=5)
                run_excursion(trainer, pl_module, driver)
                assert driver.finished and driver.lrs == [lr] * 5
                trials[lr] = driver.losses

    module = TinyModule()
    before = _params(module)
    trainer = _trainer(tmp_path, max_steps=1, callbacks=[Race()])
    trainer.fit(module, _loader())
    first = {lr: losses[0] for lr, losses in trials.items()}
    assert first[0.01] == first[0.1]  # same weights and same first batch for both trials
    assert trials[0.01][1:] != trials[0.1][1:]
    # the one real step started from the original weights (it saw the first batch again)
    assert module.first_inputs[-1] == module.first_inputs[0]
    assert not all(torch.equal(a, b) for a, b in zip(before, _params(module), strict=True))


def test_attach_in_lightning_resumes_with_identical_lrs(tmp_path: Path) -> None:
    class LrRecorder(L.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.lrs: dict[int, float] = {}

        def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
            self.lrs[int(trainer.global_step)] = trainer.optimizers[0].param_groups[0]["lr"]

    full = LrRecorder()
    _trainer(tmp_path / "a", max_steps=20, callbacks=[full]).fit(TinyModule(spec=SPEC), _loader())
    first = LrRecorder()
    trainer = _trainer(tmp_path / "b", max_steps=9, callbacks=[first])
    trainer.fit(TinyModule(spec=SPEC), _loader())
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)
    resumed = LrRecorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path / "c", max_steps=20, callbacks=[resumed]).fit(
            TinyModule(spec=SPEC), _loader(), ckpt_path=ckpt
        )
    combined = {**first.lrs, **resumed.lrs}
    assert sorted(combined) == list(range(20))
    assert [combined[s] for s in range(20)] == [full.lrs[s] for s in range(20)]  # bit-identical
    assert min(resumed.lrs) == 9


class Spiky(TinyModule):
    """A loss x1000 at one step (a corrupted batch), or NaN; ``skip``: steps without update."""

    def __init__(
        self, at: int, factor: float = 1000.0, skip: tuple[int, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.at, self.factor, self.skip = at, factor, skip
        self.weights_at: dict[int, dict[str, torch.Tensor]] = {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        step = self.global_step
        self.weights_at[step] = {k: p.detach().clone() for k, p in self.named_parameters()}
        if step in self.skip:
            return None  # Lightning then skips backward and the update
        loss = super().training_step(batch, batch_idx)
        return loss * self.factor if step == self.at else loss


def test_guard_callback_lowers_lr_on_spike_and_logs_it(tmp_path: Path, caplog: Any) -> None:
    from lightning.pytorch.loggers import CSVLogger

    guard_cb = GuardCallback(policy="scale_lr", lr_factor=0.5, min_history=5)
    logger = CSVLogger(tmp_path, name="run", version=0)
    trainer = _trainer(tmp_path, max_steps=16, callbacks=[guard_cb], logger=logger)
    with caplog.at_level(logging.WARNING):
        trainer.fit(Spiky(at=12, lr=0.01), _loader())
    assert [e.step for e in guard_cb.guard.events] == [12]
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.005)
    assert any("lrkit Guard" in r.getMessage() for r in caplog.records)
    rows = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    at, scale = header.index("guard/event_step"), header.index("guard/lr_scale")
    logged = [
        (float(r.split(",")[at]), float(r.split(",")[scale])) for r in rows[1:] if r.split(",")[at]
    ]
    assert logged == [(12.0, 0.5)]


def test_guard_sees_the_mean_loss_of_accumulated_micro_batches(tmp_path: Path) -> None:
    from lrkit.diagnosis import Guard

    seen: list[float] = []

    class Watch(TinyModule):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            seen.append(float(loss.detach()))
            return loss

    class Recording(Guard):
        fed: list[float] = []

        def step(self, step: int, loss: Any, grad_norm: Any = None) -> Any:
            self.fed.append(float(loss))
            return super().step(step, loss, grad_norm)

    recording = Recording(policy="warn")
    _trainer(
        tmp_path, max_steps=4, accumulate_grad_batches=2, callbacks=[GuardCallback(recording)]
    ).fit(Watch(lr=0.01), _loader())
    assert len(seen) == 8
    assert recording.fed == pytest.approx([(seen[2 * i] + seen[2 * i + 1]) / 2 for i in range(4)])


def test_guard_rollback_leaves_a_checkpoint_that_resumes_cleanly(tmp_path: Path) -> None:
    """After the rollback the state is that of a run whose steps 10-12 made no update; its
    checkpoint holds that state and the guard's events, and resumes like that run's."""
    guard_cb = GuardCallback(policy="rollback", snapshot_every=5, min_history=5)
    guarded = Spiky(at=12, lr=0.01, batchnorm=False)
    trainer = _trainer(tmp_path / "g", max_steps=16, callbacks=[guard_cb])  # 2 epochs
    trainer.fit(guarded, _loader())
    [event] = guard_cb.guard.events
    assert (event.step, event.action, event.detail["restored_step"]) == (12, "rolled_back", 10)
    for key, value in guarded.weights_at[10].items():  # the step-10 snapshot, before its update
        assert torch.equal(guarded.weights_at[13][key], value), key
    trainer.save_checkpoint(tmp_path / "guarded.ckpt")

    reference = Spiky(at=-1, skip=(10, 11, 12), lr=0.01, batchnorm=False)
    ref_trainer = _trainer(tmp_path / "r", max_steps=16)
    ref_trainer.fit(reference, _loader())
    ref_trainer.save_checkpoint(tmp_path / "reference.ckpt")
    saved = [
        torch.load(tmp_path / f, weights_only=False) for f in ("guarded.ckpt", "reference.ckpt")
    ]
    for key, value in saved[1]["state_dict"].items():
        assert torch.equal(saved[0]["state_dict"][key], value), key
    moments = [s["optimizer_states"][0]["state"] for s in saved]
    for index, state in moments[1].items():
        assert torch.equal(moments[0][index]["momentum_buffer"], state["momentum_buffer"])

    finals = []
    for name, callbacks in (("guarded", [GuardCallback(policy="rollback")]), ("reference", [])):
        module = Spiky(at=-1, lr=0.01, batchnorm=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _trainer(tmp_path / name, max_steps=24, callbacks=callbacks).fit(
                module, _loader(), ckpt_path=tmp_path / f"{name}.ckpt"
            )
        finals.append(_params(module))
        if callbacks:  # the guard's events came back from the checkpoint
            assert [e.to_dict() for e in callbacks[0].guard.events] == [event.to_dict()]
    for a, b in zip(*finals, strict=True):
        assert torch.equal(a, b)


def test_guard_callback_stops_on_nan(tmp_path: Path) -> None:
    guard_cb = GuardCallback(policy="raise", min_history=3)
    trainer = _trainer(tmp_path, max_steps=30, callbacks=[guard_cb])
    trainer.fit(Spiky(at=5, factor=float("nan"), lr=0.01), _loader())
    assert trainer.global_step < 30
    assert guard_cb.guard.events[0].kind == "nonfinite"
    assert all(torch.isfinite(p).all() for p in trainer.lightning_module.parameters())
