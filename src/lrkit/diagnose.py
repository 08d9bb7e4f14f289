"""Deprecated alias: the module ``lrkit.diagnose`` is :mod:`lrkit.diagnosis` now.

``from lrkit.diagnose import NAME`` still works, with a DeprecationWarning, until lrkit 0.3;
``lrkit.diagnose(...)`` is, and stays, the function. (rename-subpackages: keep)
"""

from typing import TYPE_CHECKING

from lrkit._deprecated import alias_module

if TYPE_CHECKING:
    from lrkit.diagnosis import *  # noqa: F403

if not TYPE_CHECKING:
    __getattr__, __dir__ = alias_module("lrkit.diagnose", "lrkit.diagnosis")
