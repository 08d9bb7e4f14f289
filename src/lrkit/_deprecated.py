"""Old import paths that keep working for one release, with a :class:`DeprecationWarning`.

``lrkit.diagnose``, ``lrkit.tune``, ``lrkit.advise`` and ``lrkit.auto`` used to be subpackages
that hid the functions of the same names. The subpackages are now ``lrkit.diagnosis``,
``lrkit.tuning``, ``lrkit.advice`` and ``lrkit.pipeline``; a small module at each old path
forwards ``from lrkit.diagnose import Guard`` and friends to the new home and warns.
``lrkit.diagnose(...)`` itself is, and stays, the function. (rename-subpackages: keep)
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["REMOVED_IN", "alias_module"]

#: the release that drops the old paths
REMOVED_IN = "0.3"


def alias_module(old: str, new: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the module ``old`` that forward to the module ``new``.

    Example:
        >>> import warnings
        >>> getattr_, _ = alias_module("lrkit.advise", "lrkit.advice")
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     getattr_("fmt_lr")(0.0003)
        '3e-04'
        >>> str(caught[0].message).startswith("lrkit.advise.fmt_lr moved to lrkit.advice.fmt_lr")
        True
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            # __path__, __spec__ ...: this module is no package, so lrkit.diagnosis._guard is no
            # longer importable (private modules have no alias)
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        target = importlib.import_module(new)
        if name not in getattr(target, "__all__", ()):
            raise AttributeError(f"module {old!r} has no attribute {name!r} (see {new})")
        warnings.warn(
            f"{old}.{name} moved to {new}.{name}; import it from {new} "
            f"(the old path goes away in lrkit {REMOVED_IN})",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(target, name)

    def __dir__() -> list[str]:
        return sorted(getattr(importlib.import_module(new), "__all__", ()))

    return __getattr__, __dir__
