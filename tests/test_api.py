"""The top-level API: every name in ``lrkit.__all__`` exists and the docstring examples run."""

from __future__ import annotations

import doctest
import inspect

import lrkit


def test_all_names_resolve_and_functions_win_over_same_named_subpackages() -> None:
    import lrkit.diagnosis._guard  # noqa: F401
    import lrkit.pipeline._pipeline  # noqa: F401  (importing submodules must not shadow the functions)
    import lrkit.tuning._tune  # noqa: F401

    for name in lrkit.__all__:
        assert hasattr(lrkit, name), name
    for name in ("find_lr", "diagnose", "diagnose_file", "tune", "advise", "auto", "attach"):
        assert inspect.isfunction(getattr(lrkit, name)), name
    assert lrkit.Guard.__module__.startswith("lrkit.diagnosis")


def test_module_docstring_examples() -> None:
    failures, tried = doctest.testmod(lrkit, verbose=False)
    assert tried >= 2 and failures == 0
