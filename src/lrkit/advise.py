"""Deprecated alias: the module ``lrkit.advise`` is :mod:`lrkit.advice` now.

``from lrkit.advise import NAME`` still works, with a DeprecationWarning, until lrkit 0.3;
``lrkit.advise(...)`` is, and stays, the function. (rename-subpackages: keep)
"""

from typing import TYPE_CHECKING

from lrkit._deprecated import alias_module

if TYPE_CHECKING:
    from lrkit.advice import *  # noqa: F403

if not TYPE_CHECKING:
    __getattr__, __dir__ = alias_module("lrkit.advise", "lrkit.advice")
