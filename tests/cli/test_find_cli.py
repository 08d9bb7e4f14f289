"""``lrkit find`` through ``main(argv)``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from lrkit.cli import main

SETUP_FILE = textwrap.dedent(
    """
    import torch

    def make(with_val=True):
        g = torch.Generator().manual_seed(0)
        w = torch.randn(6, 1, generator=g)
        batches = []
        for _ in range(6):
            x = torch.randn(32, 6, generator=g)
            batches.append((x, x @ w + 0.05 * torch.randn(32, 1, generator=g)))
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        return {
            "model": model,
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
            "loss_fn": torch.nn.functional.mse_loss,
            "train_loader": batches,
            "val_loader": batches[:2] if with_val else None,
        }

    def no_val():
        return make(with_val=False)

    def wrong():
        return 42

    def broken():
        raise RuntimeError("boom")
    """
)


@pytest.fixture
def target(tmp_path: Path) -> str:
    path = tmp_path / "mysetup.py"
    path.write_text(SETUP_FILE)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_output_has_curve_suggestions_range(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "find",
        f"{target}:make",
        "--steps",
        "40",
        "--start-lr",
        "1e-5",
        "--end-lr",
        "10",
        "--json",
    )
    payload = json.loads(out)
    from lrkit.finder import METHODS, RangeTest

    assert code == (0 if payload["suggestion"] is not None else 1)
    assert set(payload["suggestions"]) == set(METHODS)
    assert payload["suggestions"]["lrkit"]["default"] is True
    result = RangeTest.from_dict(payload["result"])
    assert result.lrs[0] == pytest.approx(1e-5)
    assert result.settings["num_steps"] == 40 and result.curve == "train"
    assert payload["suggestion"] == result.suggestion
    assert payload["range"] is None or payload["range"][0] < payload["range"][1]


def test_table_marks_default_and_writes_plot(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "lr.png"
    code, out, err = run(
        capsys, "find", f"{target}:make", "--steps", "30", "--start-lr", "1e-5", "--plot", str(png)
    )
    assert code in (0, 1)
    assert "lrkit (default)" in out
    for method in ("steepest", "valley", "minimum", "slide"):
        assert method in out
    assert "stopped:" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_val_mode_and_linear(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "find",
        f"{target}:make",
        "--steps",
        "20",
        "--val",
        "--mode",
        "linear",
        "--start-lr",
        "1e-4",
        "--end-lr",
        "1",
        "--json",
    )
    payload = json.loads(out)
    assert payload["result"]["curve"] == "val"
    assert payload["result"]["settings"]["mode"] == "linear"


def test_val_without_val_loader(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "find", f"{target}:no_val", "--val")
    assert code == 2 and "val_loader" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":wrong", "must provide model, optimizer and train_loader"),
        (":broken", "calling TARGET"),
        (":missing", "has no attribute"),
    ],
)
def test_bad_target_is_one_line_exit_2(
    target: str, suffix: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "find", target + suffix)
    assert code == 2
    assert err.startswith("lrkit: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_unimportable_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "find", "no_such_module_xyz:make")
    assert code == 2 and "cannot import module" in err


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--start-lr", "0"], "start_lr"),
        (["--start-lr", "1", "--end-lr", "0.5"], "end_lr"),
        (["--steps", "5"], "--steps must be an integer in [10, 1_000_000]"),
        (["--steps", "2000000000"], "--steps must be an integer in [10, 1_000_000]"),
        (["--mode", "cosine"], "mode"),
        (["--schedule", "step"], "--schedule"),
        (["--steps", "ten"], "steps"),
    ],
)
def test_bad_numbers_exit_2(
    target: str, args: list[str], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "find", f"{target}:make", *args)
    assert code == 2 and name in err and len(err.strip().splitlines()) == 1


def test_target_and_task_are_exclusive(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "find", f"{target}:make", "--task", "digits")
    assert code == 2 and "exactly one" in err
    code, _, err = run(capsys, "find")
    assert code == 2 and "exactly one" in err


def test_builtin_task_offline(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sklearn", reason="the digits task needs scikit-learn (lrkit[tasks])")
    code, out, _ = run(
        capsys, "find", "--task", "digits", "--steps", "30", "--start-lr", "1e-4", "--json"
    )
    payload = json.loads(out)
    assert payload["source"] == "task 'digits'"
    assert len(payload["result"]["lrs"]) >= 10
    code, _, err = run(capsys, "find", "--task", "no-such-task")
    assert code == 2 and "task must be one of" in err


def test_plot_path_is_the_file_written_and_a_directory_is_refused(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    folder = tmp_path / "plots"
    folder.mkdir()
    code, out, err = run(capsys, "find", f"{target}:make", "--steps", "12", "--plot", str(folder))
    assert code == 2 and not out
    assert (
        err
        == f"lrkit: error: --plot must be a file name, not a directory, but got --plot='{folder}'\n"
    )
    assert not (tmp_path / "plots.png").exists()  # matplotlib's silent '<dir>.png' never happens
    code, out, err = run(
        capsys, "find", f"{target}:make", "--steps", "12", "--plot", str(folder / "lr")
    )
    assert code in (0, 1), err
    assert f"plot written to {folder / 'lr.png'}" in out
    assert (folder / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run(
        capsys, "find", f"{target}:make", "--steps", "12", "--json", "--plot", str(folder / "c")
    )
    assert json.loads(out)["plot"] == str(folder / "c.png") and (folder / "c.png").exists()
    code, _, err = run(capsys, "find", f"{target}:make", "--plot", str(folder / "lr.xyz"))
    assert code == 2 and "--plot must be a file name ending in one of" in err and ".png" in err
    assert sorted(p.name for p in folder.iterdir()) == ["c.png", "lr.png"]
