"""The runnable examples in the schedules docstrings are correct (pytest does not collect them)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "lrkit.schedules",
    "lrkit.schedules._kinds",
    "lrkit.schedules._compose",
    "lrkit.schedules._spec",
    "lrkit.schedules._plateau",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
