"""The framework examples run as written, and the docs page shows them verbatim."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "lightning_example.py": ("lightning", "suggested peak lr: "),
    "lightning_race_example.py": ("lightning", "verified lr: "),
    "transformers_example.py": ("transformers", "final loss "),
    "transformers_race_example.py": ("transformers", "'lr_scheduler_type': 'cosine'"),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_docs_show_the_example_verbatim(name: str) -> None:
    # the integrations page holds a placeholder that the site's build hook fills in
    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = hooks.on_page_markdown((ROOT / "docs" / "integrations.md").read_text())
    code = (ROOT / "examples" / name).read_text()
    body = code.split('"""', 2)[2].strip()  # everything after the module docstring
    assert body in page and "EXAMPLE_" not in page


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(name: str, tmp_path: Path) -> None:
    module, expected = EXAMPLES[name]
    pytest.importorskip(module, reason=f"the '{module}' extra is not installed")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert expected in out.stdout
    if name == "transformers_example.py":
        assert (tmp_path / "hf-example" / "trainer_state.json").is_file()
