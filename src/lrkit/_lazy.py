"""Public names that load on first use (PEP 562 module ``__getattr__``), as Optuna and SciPy do.

A package lists where each public name lives; ``import lrkit`` (or a subpackage) then imports
nothing heavy, and ``lrkit.find_lr`` imports torch only when it is first looked up. Each
``__init__.py`` repeats the same imports under ``if TYPE_CHECKING:`` for type checkers and
editors; ``tests/test_lazy.py`` checks that the two lists agree and that every name resolves.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose names live in other modules.

    ``exports`` maps a module to the names it provides; a name equal to the module's last
    component (``{"lrkit.schedules": ["schedules"]}``) stands for the module itself. A name is
    imported on first access and then stored in the package, so later look-ups cost nothing.

    Example:
        >>> import types, sys
        >>> pkg = types.ModuleType("demo_pkg")
        >>> sys.modules["demo_pkg"] = pkg
        >>> pkg.__getattr__, pkg.__dir__ = lazy_exports("demo_pkg", {"json": ["dumps"]})
        >>> pkg.dumps([1])
        '[1]'
        >>> del sys.modules["demo_pkg"]
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if module.rpartition(".")[2] == name:
            value: Any = importlib.import_module(module)
        else:
            value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
