"""The ``lrkit`` command: a thin layer over the public Python API.

Use :func:`main` from tests (``main(["schedule", "cosine", "--steps", "10"])`` returns the exit
status) and :func:`run` as the console entry point. Importing this package registers every verb
on :data:`app` (each verb's module adds itself; none imports torch, numpy or Optuna until it
runs), so ``app`` is the whole command, e.g. for ``typer lrkit.cli utils docs``.
"""

# the verbs, each in its own module, add themselves to ``app`` on import
from lrkit.cli import _advise, _auto, _diagnose, _find, _schedule, _tune  # noqa: F401
from lrkit.cli._app import app, main, run

__all__ = ["app", "main", "run"]
