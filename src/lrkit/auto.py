"""Deprecated alias: the module ``lrkit.auto`` is :mod:`lrkit.pipeline` now.

``from lrkit.auto import NAME`` still works, with a DeprecationWarning, until lrkit 0.3;
``lrkit.auto(...)`` is, and stays, the function. (rename-subpackages: keep)
"""

from typing import TYPE_CHECKING

from lrkit._deprecated import alias_module

if TYPE_CHECKING:
    from lrkit.pipeline import *  # noqa: F403

if not TYPE_CHECKING:
    __getattr__, __dir__ = alias_module("lrkit.auto", "lrkit.pipeline")
