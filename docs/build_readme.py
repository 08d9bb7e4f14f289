"""Assemble README.md from the pages in docs/ (run after editing any of them).

Each area keeps its user docs in ``docs/<area>.md``; this script joins them in reading
order and pastes the runnable examples from ``examples/`` (``EXAMPLE_<NAME>`` placeholders), so
the README always shows the exact code the tests run. ``tests/test_readme.py`` fails when
README.md is out of date.

    .venv/bin/python docs/build_readme.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = [
    "index",
    "auto",
    "find",
    "schedules-grammar",
    "schedules",
    "diagnose",
    "tune",
    "advise",
    "integrations",
    "python-api",
]
EXAMPLES = {
    "EXAMPLE_LIGHTNING": "lightning_example.py",
    "EXAMPLE_TRANSFORMERS": "transformers_example.py",
}


def example_body(name: str) -> str:
    """The example file without its module docstring."""
    code = (ROOT / "examples" / name).read_text()
    return code.split('"""', 2)[2].strip()


def build() -> str:
    parts = []
    for name in ORDER:
        path = ROOT / "docs" / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().strip())
    text = "\n\n".join(parts) + "\n"
    for placeholder, file in EXAMPLES.items():
        text = text.replace(placeholder, example_body(file))
    return text


def main() -> int:
    (ROOT / "README.md").write_text(build())
    return 0


if __name__ == "__main__":
    sys.exit(main())
