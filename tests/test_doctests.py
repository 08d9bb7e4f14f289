"""Every docstring example in the package runs as written (they are also what the API reference
on the docs site shows). Modules of the optional framework integrations are left out (their
imports take seconds; tests/integrations runs them)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import lrkit

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(lrkit.__path__, "lrkit.")
    if info.name != "lrkit.__main__" and not info.name.startswith("lrkit.integrations.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # examples may write files
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_examples_are_found() -> None:
    # the walk must reach the private modules, where most examples live
    assert {"lrkit.schedules._kinds", "lrkit.finder._range_test", "lrkit.tuning._tune"} <= set(
        MODULES
    )
