"""lrkit._threads.torch_threads: the thread count inside the block, restored afterwards."""

from __future__ import annotations

import doctest

import pytest
import torch

import lrkit._threads
from lrkit._threads import torch_threads


def test_sets_and_restores_even_on_error() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_none_leaves_the_count_alone() -> None:
    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_docstring_example() -> None:
    failures, tried = doctest.testmod(lrkit._threads, verbose=False)
    assert tried >= 1 and failures == 0
