"""The detectors as they were before issue 13, frozen for the benchmark's baseline column.

``seed_modules()`` reads lrkit's diagnosis modules (``_findings``, ``_stats``, ``_rules``,
``_diagnosis``, ``_guard``) from git at :data:`COMMIT` (main before issue 13's changes), writes
them into a temporary package ``lrkit_seed_diagnose`` (imports of ``lrkit.diagnose._*``
rewritten to it) and imports it, so the old ``diagnose`` and ``Guard`` run side by side with the
new ones in the same process, on the same runs.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

COMMIT = "30d4e465a7b43f39c801ddc634444fa551bcbf62"
MODULES = ("_findings", "_stats", "_rules", "_diagnosis", "_guard")
PACKAGE = "lrkit_seed_diagnose"
ROOT = Path(__file__).resolve().parent.parent.parent

_loaded: dict[str, ModuleType] = {}


def seed_modules() -> dict[str, ModuleType]:
    """``{"_diagnosis": module, "_guard": module, ...}`` of the frozen detectors."""
    if _loaded:
        return _loaded
    folder = Path(tempfile.mkdtemp(prefix="lrkit-seed-diagnose-"))
    pkg = folder / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in MODULES:
        source = subprocess.run(
            ["git", "show", f"{COMMIT}:src/lrkit/diagnose/{name}.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = re.sub(r"\blrkit\.diagnose\._", f"{PACKAGE}._", source)
        (pkg / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    for name in MODULES:
        _loaded[name] = importlib.import_module(f"{PACKAGE}.{name}")
    return _loaded
