import subprocess
import sys
from pathlib import Path

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



@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs (/sys)")
def test_an_os_error_on_an_output_path_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # sysfs refuses new files even to root: the verb's write raises PermissionError (an OSError)
    code = main(["schedule", "cosine(10)", "--steps", "10", "--csv", "/sys/kernel/lrkit.csv"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("lrkit: error:") and len(err.splitlines()) == 1
