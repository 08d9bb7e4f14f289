"""MkDocs hooks (``hooks:`` in mkdocs.yml): the parts of the site generated at build time.

- ``<!-- lrkit:cli-reference -->``: the CLI reference, from the commands themselves (typer's
  ``utils docs`` on :data:`lrkit.cli.app`), so it cannot drift from ``lrkit COMMAND --help``.
- ``<!-- lrkit:cli-startup-table -->``: the start-up benchmark's table, from
  ``benchmarks/results/cli_startup.json`` (no number is copied by hand).
- ``EXAMPLE_LIGHTNING`` / ``EXAMPLE_TRANSFORMERS`` (and ``..._RACE``): the runnable examples of
  ``examples/`` (their code without the module docstring), exactly as ``tests/integrations``
  runs them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "EXAMPLE_LIGHTNING_RACE": "lightning_race_example.py",
    "EXAMPLE_LIGHTNING": "lightning_example.py",
    "EXAMPLE_TRANSFORMERS_RACE": "transformers_race_example.py",
    "EXAMPLE_TRANSFORMERS": "transformers_example.py",
}


@cache
def cli_reference() -> str:
    """``typer lrkit.cli utils docs``, with its headings moved one level down (the page owns #)."""
    done = subprocess.run(
        [sys.executable, "-m", "typer", "lrkit.cli", "utils", "docs", "--name", "lrkit"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    lines = []
    for line in done.stdout.splitlines():
        lines.append("#" + line if line.startswith("#") else line)
    return "\n".join(lines)


def example_body(name: str) -> str:
    """An example file without its module docstring."""
    code = (ROOT / "examples" / name).read_text()
    return code.split('"""', 2)[2].strip()


@cache
def cli_startup_table() -> str:
    spec = importlib.util.spec_from_file_location("cli_startup", ROOT / "benchmarks/cli_startup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = json.loads((ROOT / "benchmarks/results/cli_startup.json").read_text())
    return str(module.table(result))


def on_page_markdown(markdown: str, **_: Any) -> str:
    if "<!-- lrkit:cli-reference -->" in markdown:
        markdown = markdown.replace("<!-- lrkit:cli-reference -->", cli_reference())
    if "<!-- lrkit:cli-startup-table -->" in markdown:
        markdown = markdown.replace("<!-- lrkit:cli-startup-table -->", cli_startup_table())
    for placeholder, file in EXAMPLES.items():
        if placeholder in markdown:
            markdown = markdown.replace(placeholder, example_body(file))
    return markdown
