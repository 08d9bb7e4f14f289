import subprocess
import sys

import pytest

from lrkit import __version__
from lrkit.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lrkit {__version__}"


def test_help_lists_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_unknown_option_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lrkit: error:")
    assert len(err.splitlines()) == 1


def test_python_dash_m() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lrkit", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"lrkit {__version__}"
