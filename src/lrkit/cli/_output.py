"""Output files named on the command line (``--plot``): checked before any work is done."""

from __future__ import annotations

from pathlib import Path

from lrkit._files import check_file_path
from lrkit._optional import require
from lrkit._validate import fail
from lrkit.cli._app import UserError

__all__ = ["plot_path"]


def plot_path(path: Path | None, option: str = "--plot") -> Path | None:
    """The file a plot will really be written to, or a one-line ``ValueError`` now.

    A name without an extension gets ``.png`` (what matplotlib would write, so the path reported
    is the real one); a directory, a missing folder or a format matplotlib cannot write is
    refused before the command runs.
    """
    if path is None:
        return None
    if not path.suffix:
        if path.is_dir():
            fail(option, str(path), "a file name, not a directory")
        path = path.with_name(path.name + ".png")
    target = check_file_path(option, path)
    if not target.parent.is_dir():
        raise UserError(f"{option} directory {str(target.parent)!r} does not exist")
    backend = require("matplotlib.backend_bases", "plot")
    formats = backend.FigureCanvasBase.get_supported_filetypes()
    if target.suffix[1:].lower() not in formats:
        listed = ", ".join(f".{ext}" for ext in sorted(formats))
        fail(option, str(path), f"a file name ending in one of {listed}")
    return target
