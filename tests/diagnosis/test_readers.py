"""Log readers and diagnose_file, on files written by the real producers where cheap."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lrkit.diagnosis import diagnose, diagnose_file, read_log

N = 300


def curve(seed: int = 0, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 2.3 * (1 + t / 8) ** -1.2 * np.exp(0.2 * rng.standard_normal(n))


def spiky(n: int = N) -> np.ndarray:
    y = curve(1, n)
    y[int(n * 0.6)] = 60.0
    return y


# --- TensorBoard --------------------------------------------------------------------------


def test_tensorboard_run_directory_without_the_reservoir_cap(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    n = 12_000  # more than EventAccumulator's default 10,000 scalars per tag
    y = spiky(n)
    writer = SummaryWriter(log_dir=str(tmp_path / "run"))
    for step in range(n):
        writer.add_scalar("train/loss", float(y[step]), step)
        if step % 500 == 499:
            writer.add_scalar("val/loss", 0.5, step)
        if step % 100 == 0:
            writer.add_scalar("lr", 0.01, step)
    writer.close()
    log = read_log(tmp_path / "run")
    assert log.format == "tensorboard"
    loss = log.series["train/loss"]
    assert len(loss) == n
    np.testing.assert_allclose(loss.values, y.astype(np.float32), rtol=1e-6)
    assert loss.steps[0] == 0 and loss.steps[-1] == n - 1
    d = diagnose_file(tmp_path / "run")
    assert d.statistics["series"] == {
        "train": "train/loss",
        "val": "val/loss",
        "lr": "lr",
        "grad_norm": None,
    }
    # 12,000 points are binned to 4,096 values: the onset is the start of the spike's bin
    assert d.verdict == "spiking"
    assert 0 <= int(n * 0.6) - d.findings[0].onset_step < n / 4096
    # the event file itself works too, and so does the parent directory (subdirectory tags)
    event_file = next((tmp_path / "run").glob("*tfevents*"))
    assert len(read_log(event_file).series["train/loss"]) == n
    assert "run/train/loss" in read_log(tmp_path).series


def test_tensorboard_empty_or_garbage_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    empty = tmp_path / "events.out.tfevents.1.host"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="event file is empty"):
        read_log(empty)
    garbage = tmp_path / "g" / "events.out.tfevents.2.host"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\x00\x01not a record" * 10)
    with pytest.raises(ValueError, match=str(garbage.parent.name)):
        diagnose_file(garbage.parent)


def test_tensorboard_truncated_event_file_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    for step in range(100):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.close()
    event_file = next(tmp_path.glob("*tfevents*"))
    assert len(read_log(event_file).series["loss"]) == 100
    data = event_file.read_bytes()
    event_file.write_bytes(data[:-7])  # the last record cut short
    with pytest.raises(ValueError, match=r"tfevents.*truncated: .* after 100 complete records"):
        read_log(event_file)
    event_file.write_bytes(b"\xff" * 20)  # a first record claiming an absurd length
    with pytest.raises(ValueError, match="not a TensorBoard event file"):
        read_log(tmp_path)


# --- Lightning CSVLogger -------------------------------------------------------------------


@pytest.mark.slow
def test_lightning_csvlogger_metrics_from_a_real_trainer(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    import lightning as L
    import torch
    from lightning.pytorch.loggers import CSVLogger

    torch.set_num_threads(1)

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    torch.manual_seed(0)
    x = torch.randn(192, 4)
    y = x.sum(1, keepdim=True)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    trainer = L.Trainer(
        max_epochs=2,
        logger=CSVLogger(str(tmp_path)),
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    trainer.fit(Tiny(), data, data)
    metrics = next(tmp_path.rglob("metrics.csv"))
    log = read_log(metrics)
    assert log.format == "lightning-csv"
    # sparse columns: step-level train loss on every step, val loss once per epoch
    assert len(log.series["train_loss_step"]) == 48
    assert len(log.series["val_loss"]) == 2
    assert len(log.series["train_loss_epoch"]) == 2
    d = diagnose_file(metrics.parent)  # the version directory works too
    assert d.statistics["series"]["train"] == "train_loss_step"
    assert d.statistics["series"]["val"] == "val_loss"
    assert d.verdict == "healthy"


def test_lightning_style_sparse_csv(tmp_path: Path) -> None:
    y = curve(2)
    rows = ["epoch,step,lr-Adam,train_loss_step,train_loss_epoch,val_loss"]
    for step in range(N):
        rows.append(f"0,{step},,{float(y[step])!r},,")
        if step % 10 == 0:
            rows.append(f"0,{step},0.001,,,")
        if step % 50 == 49:
            rows.append(f"0,{step},,,{float(y[step - 49 : step + 1].mean())!r},0.4")
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(rows) + "\n")
    d = diagnose_file(path)
    assert d.statistics["format"] == "lightning-csv"
    assert d.statistics["series"]["train"] == "train_loss_step"
    assert d.statistics["series"]["lr"] == "lr-Adam"
    assert d.statistics["points"] == N
    want = diagnose(y, steps=np.arange(N), val_loss=[0.4] * 6, val_steps=np.arange(49, N, 50))
    assert d.verdict == want.verdict == "healthy"


# --- Hugging Face trainer_state.json --------------------------------------------------------


def test_hf_trainer_state_written_by_transformers(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    y = spiky()
    state = transformers.TrainerState()
    history: list[dict[str, float]] = []
    for step in range(1, N + 1):
        history.append(
            {
                "epoch": step / N,
                "grad_norm": 1.0,
                "learning_rate": 5e-5,
                "loss": float(y[step - 1]),
                "step": step,
            }
        )
        if step % 50 == 0:
            history.append({"epoch": step / N, "eval_loss": 0.5, "step": step})
    history.append({"epoch": 1.0, "step": N, "train_loss": 0.9, "train_runtime": 1.0})
    state.log_history = history
    state.global_step = N
    ckpt = tmp_path / "checkpoint-300"
    ckpt.mkdir()
    state.save_to_json(str(ckpt / "trainer_state.json"))
    d = diagnose_file(tmp_path)  # finds the checkpoint directory's file
    series = d.statistics["series"]
    # "loss" has 300 points; the one-point "train_loss" summary must not win
    assert series == {
        "train": "loss",
        "val": "eval_loss",
        "lr": "learning_rate",
        "grad_norm": "grad_norm",
    }
    assert d.statistics["format"] == "hf-trainer-state"
    assert d.verdict == "spiking" and d.findings[0].onset_step == int(N * 0.6) + 1


def test_hf_state_problems_are_named(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"log_history": []}))
    with pytest.raises(ValueError, match="'log_history' is empty"):
        diagnose_file(path)
    path.write_text('{"log_history": [{"loss": 1.0, "step": 1},')
    with pytest.raises(ValueError, match=r"trainer_state.json: not valid JSON .*truncated"):
        diagnose_file(path)
    path.write_text(json.dumps({"something": 1}))
    with pytest.raises(ValueError, match="no 'log_history'"):
        diagnose_file(path)


# --- JSON lines and CSV ----------------------------------------------------------------------


def test_jsonl_with_nan_and_named_series(tmp_path: Path) -> None:
    y = curve(3)
    path = tmp_path / "log.jsonl"
    with path.open("w") as fh:
        for step in range(N):
            value = math.nan if step == 200 else float(y[step])
            fh.write(json.dumps({"step": step * 2, "my_loss": value, "lr": 0.1}) + "\n")
    d = diagnose_file(path, train="my_loss")
    assert d.verdict == "diverged" and d.findings[0].onset_step == 400
    assert d.action.kind == "rollback" and "0.01" in d.action.text
    with pytest.raises(ValueError, match="no training loss series found.*my_loss"):
        diagnose_file(path)
    with pytest.raises(ValueError, match="no series named 'val' for --val"):
        diagnose_file(path, train="my_loss", val="val")


def test_plain_csv_with_a_step_column_and_tensorboard_export(tmp_path: Path) -> None:
    y = curve(4)
    path = tmp_path / "run.csv"
    path.write_text("step,loss,val_loss\n" + "".join(f"{s},{float(y[s])!r},\n" for s in range(N)))
    d = diagnose_file(path)
    assert d.verdict == diagnose(y).verdict == "healthy"
    export = tmp_path / "export.csv"  # TensorBoard's "download CSV"
    export.write_text(
        "Wall time,Step,Value\n" + "".join(f"1.0,{s},{float(y[s])!r}\n" for s in range(N))
    )
    assert diagnose_file(export).statistics["series"]["train"] == "Value"


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", "", "the file is empty"),
        ("blank.jsonl", "\n\n", "the file is empty"),
        ("short.csv", "step,loss\n0,1.0\n1\n", "line 3 has 1 field.*truncated"),
        ("nostep.csv", "a,loss\n0,1.0\n", "no step column"),
        ("header.csv", "loss\n1.0\n", "malformed CSV header"),
        ("cut.jsonl", '{"step": 0, "loss": 1.0}\n{"step": 1, "lo', "line 2 is not valid JSON"),
        ("notobj.jsonl", "[1, 2]\n", "line 1 is not a JSON object"),
        ("badstep.jsonl", '{"step": "x", "loss": 1.0}\n', "step 'x' is not a number"),
        ("odd.bin", "\x00\x01", "unknown log format"),
        ("list.json", "[1, 2, 3]", "unsupported JSON layout"),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(
    tmp_path: Path, name: str, content: str, match: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        diagnose_file(path)
    assert name in str(info.value)


def test_binary_and_missing_paths(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(gzip.compress(b"step,loss\n0,1\n"))
    with pytest.raises(ValueError, match="x.csv: not a text file"):
        diagnose_file(path)
    with pytest.raises(FileNotFoundError, match="nope.csv: no such file"):
        diagnose_file(tmp_path / "nope.csv")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(ValueError, match="emptydir: no log found"):
        diagnose_file(tmp_path / "emptydir")
    with pytest.raises(ValueError, match="format must be one of"):
        read_log(tmp_path / "x.csv", format="xml")


def test_duplicate_steps_keep_the_last_value(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = [{"step": s, "loss": 1.0} for s in range(5)] + [{"step": 2, "loss": 9.0}]
    path.write_text("\n".join(json.dumps(x) for x in lines))
    s = read_log(path).series["loss"]
    assert s.steps.tolist() == [0, 1, 2, 3, 4] and s.values.tolist() == [1, 1, 9, 1, 1]
