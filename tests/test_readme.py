"""README.md is assembled from docs/readme/*.md by docs/build_readme.py and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_built_from_the_fragments() -> None:
    spec = importlib.util.spec_from_file_location("build_readme", ROOT / "docs" / "build_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.build()
    assert "EXAMPLE_" not in expected
    assert (ROOT / "README.md").read_text() == expected, (
        "README.md is out of date: run `.venv/bin/python docs/build_readme.py`"
    )
