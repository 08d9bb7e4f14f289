"""README.md is a short landing page whose examples run as written.

Every ```python block runs, in order, each in a fresh namespace, in one new interpreter (so
torch is imported once) with the working directory in a temporary folder; a failure names the
block's line in README.md. The README's relative links must point at files that exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 200

RUNNER = """
import json, sys, traceback
import torch
torch.set_num_threads(1)
blocks = json.loads(sys.stdin.read())
for line, code in blocks:
    try:
        exec(compile(code, f"README.md, block at line {line}", "exec"), {"__name__": "__main__"})
    except BaseException:
        traceback.print_exc()
        print(f"README.md: the python block at line {line} failed", file=sys.stderr)
        sys.exit(1)
print("ran", len(blocks), "blocks")
"""


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line of the opening fence, code) of every ```python block."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE):
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


def test_readme_is_a_short_landing_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_LINES
    assert "make demo" in text and "make test" in text
    for target in re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", text):
        assert (ROOT / target.split("#")[0]).exists(), f"README links to missing {target}"


def test_python_blocks_are_found() -> None:
    blocks = python_blocks("text\n```python\nx = 1\n```\n```console\n$ lrkit\n```\n")
    assert blocks == [(2, "x = 1\n")]
    assert len(python_blocks(README.read_text())) >= 6  # one per capability


def test_readme_examples_run(tmp_path: Path) -> None:
    blocks = python_blocks(README.read_text())
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(blocks),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"ran {len(blocks)} blocks" in done.stdout
    assert (tmp_path / "report" / "report.html").is_file()  # the auto example wrote its report
