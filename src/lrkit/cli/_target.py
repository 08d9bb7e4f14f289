"""Resolve a TARGET (``module:function`` or ``path/to/file.py:function``) to a callable or setup."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrkit._setup import Setup, as_setup

__all__ = ["exactly_one", "load_target", "setup_from_target"]


def load_target(target: str) -> Callable[..., Any]:
    """Import the callable named by ``target``; raise ValueError with a one-line reason."""
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise ValueError(
            f"TARGET must look like 'module:function' or 'path/to/file.py:function', "
            f"but got TARGET={target!r}"
        )
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise ValueError(f"TARGET file {str(path)!r} does not exist (TARGET={target!r})")
        name = f"_lrkit_target_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot import TARGET file {str(path)!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ValueError(
                f"importing TARGET file {str(path)!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(module_part)
        except Exception as exc:
            raise ValueError(
                f"cannot import module {module_part!r} of TARGET={target!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    try:
        func = getattr(module, attr)
    except AttributeError:
        raise ValueError(
            f"module {module_part!r} has no attribute {attr!r} (TARGET={target!r})"
        ) from None
    if not callable(func):
        raise ValueError(f"TARGET {target!r} is not callable (got {type(func).__name__})")
    return func  # type: ignore[no-any-return]


def exactly_one(target: str | None, task: str | None) -> None:
    """TARGET and ``--task`` are alternatives: raise ValueError unless exactly one is given."""
    if (target is None) == (task is None):
        raise ValueError(
            "give exactly one of TARGET ('module:function' or 'file.py:function') or --task NAME"
            f", but got TARGET={target!r} and --task={task!r}"
        )


def setup_from_target(target: str) -> Setup:
    """Call the function named by ``target`` and check that it returned a training setup."""
    factory = load_target(target)
    try:
        made = factory()
    except ValueError:
        raise  # the user's own message about their setup
    except Exception as exc:
        raise ValueError(f"calling TARGET {target!r} failed: {type(exc).__name__}: {exc}") from exc
    return as_setup(made, source=f"TARGET {target!r}")
