from __future__ import annotations

import json

import pytest

from lrkit.advice import advise
from lrkit.cli import main


def test_advise_json_matches_the_api(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "advise",
        "--optimizer",
        "adamw",
        "--arch",
        "transformer",
        "--batch-size",
        "1024",
        "--reference-batch-size",
        "256",
        "--steps",
        "10000",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    expected = advise(
        "adamw", "transformer", batch_size=1024, reference_batch_size=256, total_steps=10000
    )
    assert data == json.loads(json.dumps(expected.to_dict()))
    assert data["lr"] == pytest.approx(6e-4)


def test_advise_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "-o", "sgd+momentum", "-a", "resnet", "--fine-tuning"]) == 0
    out = capsys.readouterr().out
    assert "learning rate" in out and "no table entry" in out


def test_advise_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--optimizer", "adam", "--arch", "mlp", "--steps", "1000"]) == 0
    out = capsys.readouterr().out
    assert "3e-04" in out and "cosine(1000)" in out and "Karpathy" not in out.split("Why")[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["advise", "--optimizer", "adamx", "--arch", "mlp"],
        ["advise", "--optimizer", "adam", "--arch", "unet"],
        ["advise", "--optimizer", "adam", "--arch", "mlp", "--steps", "3"],
        ["advise", "--optimizer", "adam", "--arch", "mlp", "--reference-batch-size", "3"],
        ["advise", "--optimizer", "adam"],
    ],
)
def test_advise_bad_input_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lrkit: error:")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
