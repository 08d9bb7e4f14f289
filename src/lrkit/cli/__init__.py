"""The ``lrkit`` command: a thin layer over the public Python API.

Use :func:`main` from tests (``main(["schedule", "cosine", "--steps", "10"])`` returns the exit
status) and :func:`run` as the console entry point.
"""

from lrkit.cli._app import app, main, run

__all__ = ["app", "main", "run"]
