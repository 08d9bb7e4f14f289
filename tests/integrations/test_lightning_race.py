"""The verified learning rate inside Lightning's ``Trainer.fit``: ``verify_lr``, ``LRRaceCallback``.

The proofs: the race run by the Trainer's own loops is ``lrkit.race.run_race`` on the same
model and data (same plan, same validation curves to float32 precision, same winner); training
after it is the training at the winner without it (same weights, data order, validation);
``bf16-mixed`` and ``accumulate_grad_batches`` reach every trial (its score is a hand-written
loop's with those settings, and not the fp32 loop's); the winner lands in ``hparams``, the
logger and the checkpoint; setup errors are clear, and a trial that raises is a failed trial
with everything restored.
"""

from __future__ import annotations

import signal
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

L = pytest.importorskip("lightning.pytorch", reason="the 'lightning' extra is not installed")
pytest.importorskip("optuna", reason="the race needs optuna ('tune' extra)")

from _lightning_setup import RegressionSteps, cpu_trainer  # noqa: E402
from _lightning_setup import weights as _params  # noqa: E402

from lrkit.integrations.lightning import LRRaceCallback, verify_lr  # noqa: E402
from lrkit.race import run_race  # noqa: E402

STEPS = 60


class Net(RegressionSteps, L.LightningModule):  # type: ignore[misc]
    def __init__(self, lr: float = 0.05, *, dropout: float = 0.0, spec: str | None = None) -> None:
        super().__init__()
        self.save_hyperparameters("lr")
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, 16),
            torch.nn.Tanh(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(16, 1),
        )
        self.spec = spec
        self.calls = 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.calls += 1
        return torch.nn.functional.mse_loss(self.net(x), y)


def _data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.3 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def _train(shuffle: bool = False, generator: bool = False) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(7) if generator else None
    return DataLoader(_data(256, 1), batch_size=16, shuffle=shuffle, generator=g)


def _val() -> DataLoader[Any]:
    return DataLoader(_data(64, 2), batch_size=16)


def _trainer(tmp_path: Path, **kwargs: Any) -> Any:
    return cpu_trainer(tmp_path, **{"max_steps": STEPS, **kwargs})


def test_the_race_in_the_trainer_is_run_race_on_the_same_setup(tmp_path: Path) -> None:
    model = Net()
    before = _params(model)
    trainer = _trainer(tmp_path)
    got = verify_lr(trainer, model, train_dataloaders=_train(), val_dataloaders=_val(), budget=3)
    plain_model = Net()
    setup = {
        "model": plain_model.net,
        "optimizer": torch.optim.SGD(plain_model.net.parameters(), lr=0.05, momentum=0.9),
        "loss_fn": torch.nn.functional.mse_loss,
        "train_loader": _train(),
        "val_loader": _val(),
    }
    want = run_race(setup, total_steps=STEPS, budget=3)
    # the same range test (bit for bit), plan, candidates, accounting and winner
    np.testing.assert_array_equal(got.range_test.losses, want.range_test.losses)
    assert got.interval == want.interval and got.rungs == want.rungs
    assert [c.lr for c in got.candidates] == [c.lr for c in want.candidates]
    assert got.spent_steps == want.spent_steps and got.stage_steps == want.stage_steps
    assert got.lr == want.lr is not None and "won the race" in got.reason
    assert got.range_test.settings["trainer"] == "lightning"
    assert got.validation == "the Trainer's validation loop ('val_loss')"
    for a, b in zip(got.candidates, want.candidates, strict=True):
        assert (a.state, len(a.trials)) == (b.state, len(b.trials))
        for ta, tb in zip(a.trials, b.trials, strict=True):
            assert ta.val_steps == tb.val_steps and ta.steps_done == tb.steps_done
            # Lightning averages the validation loss in float32, lrkit's loop in float64
            np.testing.assert_allclose(ta.val_losses, tb.val_losses, rtol=1e-6)
    # the model is untouched and holds the winner, like the Tuner's update_attr
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))
    assert model.hparams.lr == got.lr
    assert trainer.global_step == 0


@pytest.mark.parametrize(
    ("generator", "limits"),
    [
        (False, {"val_check_interval": 8}),
        (True, {"val_check_interval": 8}),
        (True, {"max_steps": -1, "max_epochs": 8, "accumulate_grad_batches": 2}),
    ],
    ids=["global-rng", "loader-generator", "epochs-accumulation"],
)
def test_training_after_the_race_is_the_training_at_the_winner(
    tmp_path: Path, generator: bool, limits: dict[str, Any]
) -> None:
    """Same weights, batches (shuffled by the global RNG or the loader's own generator),
    dropout masks and validation as a plain fit at the winning lr: the race's many excursions
    left the model, optimizer, RNGs and data as they were."""
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(123)  # the loader's shuffle and dropout draw from the global RNG
    raced = Net(dropout=0.1)
    race = LRRaceCallback(budget=2, apply=True)
    logger = CSVLogger(tmp_path, name="run", version=0)
    trainer = _trainer(tmp_path, callbacks=[race], logger=logger, **limits)
    trainer.fit(raced, _train(shuffle=True, generator=generator), _val())
    lr = race.verified_lr
    assert lr is not None and race.result is not None and race.result.lr == lr
    assert race.applied_lr == lr and raced.hparams.lr == lr

    torch.manual_seed(123)
    plain = Net(lr=lr, dropout=0.1)
    plain_trainer = _trainer(tmp_path / "plain", **limits)
    plain_trainer.fit(plain, _train(shuffle=True, generator=generator), _val())
    steps = 64 if "max_epochs" in limits else STEPS  # 8 epochs of 16 batches, 2 per step
    assert trainer.global_step == plain_trainer.global_step == steps
    assert race.result.total_steps == steps  # the Trainer's run length
    for a, b in zip(_params(plain), _params(raced), strict=True):
        assert torch.equal(a, b)
    metrics = trainer.callback_metrics
    assert torch.equal(metrics["val_loss"], plain_trainer.callback_metrics["val_loss"])
    # the winner went to the logger, and the race into the checkpoint
    rows = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("lrkit/verified_lr")
    assert [float(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]] == [
        pytest.approx(lr, rel=1e-6)
    ]
    hparams = (tmp_path / "run" / "version_0" / "hparams.yaml").read_text()
    assert f"lrkit_verified_lr: {lr}" in hparams
    ckpt = tmp_path / "after.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["hyper_parameters"]["lr"] == lr
    again = LRRaceCallback(budget=2, apply=True)
    resumed = Net(dropout=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, max_steps=steps + 2, callbacks=[again]).fit(
            resumed, _train(), _val(), ckpt_path=ckpt
        )
    assert resumed.calls == 2  # the last two steps, no race
    assert again.verified_lr == lr and again.summary is not None
    assert again.summary["lr"] == lr


def _hand_trial(lr: float, steps: int, *, bf16: bool, accumulate: int) -> float:
    """One race trial as a plain loop: autocast, accumulation, constant lr, then validation."""
    module = Net()
    opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
    batches = list(_train())
    for step in range(steps):
        opt.zero_grad()
        for micro in range(accumulate):
            x, y = batches[(step * accumulate + micro) % len(batches)]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.mse_loss(module.net(x), y)
            (loss / accumulate).backward()
        opt.step()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in _val():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                total += float(torch.nn.functional.mse_loss(module.net(x), y)) * len(x)
            count += len(x)
    return total / count


def test_bf16_mixed_and_accumulation_reach_every_trial(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, precision="bf16-mixed", accumulate_grad_batches=2)
    result = verify_lr(trainer, Net(), train_dataloaders=_train(), val_dataloaders=_val(), budget=2)
    assert result.range_test.settings["amp"] == "bf16"
    assert result.range_test.settings["accumulation_steps"] == 2
    checked = 0
    for candidate in result.candidates:
        first = candidate.trials[0]
        if first.state != "complete":
            continue
        want = _hand_trial(candidate.lr, first.steps, bf16=True, accumulate=2)
        assert first.value == pytest.approx(want, rel=1e-5)
        # and the settings are visible: without bf16, or without accumulation, another score
        for other in (
            _hand_trial(candidate.lr, first.steps, bf16=False, accumulate=2),
            _hand_trial(candidate.lr, first.steps, bf16=True, accumulate=1),
        ):
            assert abs(other - want) > 1e-4 * abs(want)
        checked += 1
        if checked == 2:
            break
    assert checked == 2


def test_the_schedule_attached_in_configure_optimizers_is_the_one_raced(tmp_path: Path) -> None:
    race = LRRaceCallback(budget=2, total_steps=STEPS)
    trainer = _trainer(tmp_path, max_steps=2, callbacks=[race])
    trainer.fit(Net(spec="warmup(6, cosine(54))"), _train(), _val())
    assert race.result is not None and race.result.schedule == "warmup(6, cosine(54))"
    assert race.result.total_steps == STEPS
    assert race.applied_lr is None  # apply=False: reported, not used
    assert trainer.optimizers[0].param_groups[0]["initial_lr"] == 0.05

    class TorchScheduled(Net):
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 10)]

    other = LRRaceCallback(budget=2, total_steps=STEPS)
    _trainer(tmp_path, max_steps=1, callbacks=[other]).fit(TorchScheduled(), _train(), _val())
    assert other.result is not None and other.result.schedule == "constant()"
    assert any("StepLR" in note and "schedule=" in note for note in other.result.notes)


def test_setup_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not validate"):
        verify_lr(_trainer(tmp_path), Net(), train_dataloaders=_train(), budget=2)

    class Silent(Net):
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("other", 1.0)

    model = Silent()
    before = _params(model)
    with pytest.raises(ValueError, match=r"monitor='val_loss'.*\['other'\]"):
        verify_lr(_trainer(tmp_path), model, train_dataloaders=_train(), val_dataloaders=_val())
    assert model.calls <= 100 + 10  # the range test and one trial's first steps, then it stopped
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))
    with pytest.raises(ValueError, match="total_steps"):
        verify_lr(
            _trainer(tmp_path, max_steps=-1, max_epochs=-1),
            Net(),
            train_dataloaders=_train(),
            val_dataloaders=_val(),
        )
    with pytest.raises(ValueError, match="budget"):
        LRRaceCallback(budget=-1)


@pytest.mark.parametrize("fault", [RuntimeError, KeyboardInterrupt])
def test_a_trial_that_raises_is_a_failed_trial_and_nothing_is_lost(
    tmp_path: Path, fault: type[BaseException]
) -> None:
    class Flaky(Net):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.calls == 70:  # inside the race's first trial (the range test takes 50)
                self.calls += 1
                raise fault("a bad batch")
            return super().training_step(batch, batch_idx)

    model = Flaky()
    before = _params(model)
    rng = torch.get_rng_state()
    trainer = _trainer(tmp_path)
    loaders = dict(train_dataloaders=_train(), val_dataloaders=_val())
    if fault is KeyboardInterrupt:  # Lightning turns Ctrl-C into a graceful exit(1)
        handler = signal.getsignal(signal.SIGINT)
        try:
            with pytest.raises(SystemExit):
                verify_lr(trainer, model, budget=2, **loaders)
        finally:
            signal.signal(signal.SIGINT, handler)
        assert model.calls == 71 and model.hparams.lr == 0.05
    else:
        result = verify_lr(trainer, model, budget=2, **loaders)
        failed = [c for c in result.candidates if c.state == "failed"]
        assert len(failed) == 1 and "a bad batch" in failed[0].reason
        assert result.lr is not None and result.lr != failed[0].lr
        assert model.hparams.lr == result.lr
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))
    assert torch.equal(rng, torch.get_rng_state())
