"""Deprecated alias: the module ``lrkit.tune`` is :mod:`lrkit.tuning` now.

``from lrkit.tune import NAME`` still works, with a DeprecationWarning, until lrkit 0.3;
``lrkit.tune(...)`` is, and stays, the function. (rename-subpackages: keep)
"""

from typing import TYPE_CHECKING

from lrkit._deprecated import alias_module

if TYPE_CHECKING:
    from lrkit.tuning import *  # noqa: F403

if not TYPE_CHECKING:
    __getattr__, __dir__ = alias_module("lrkit.tune", "lrkit.tuning")
