"""A missing optional driver is named with the extra that installs it."""

from __future__ import annotations

import math
import sys

import pytest

from lrkit.tuning import tune


def _objective(params: dict[str, float], report: object) -> float:
    return (math.log10(params["lr"]) + 3) ** 2


def test_missing_postgres_driver_names_the_postgres_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # "import psycopg2" now fails
    with pytest.raises(ValueError, match=r"database driver is missing .*lrkit\[postgres\]"):
        tune(_objective, n_trials=1, storage="postgresql://me:pw@127.0.0.1:1/db")
