"""Layers read one way: computation never imports rendering, the report or the CLI.

The test reads every module of the package (AST, nothing is imported) and lists the lrkit
modules each one imports at module level, including ``if TYPE_CHECKING:`` blocks (a static
dependency all the same). Results reach their figures through ``.plot()``, which imports
:mod:`lrkit.plotting` inside the call; only the CLI and ``python -m lrkit`` import the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lrkit

SRC = Path(lrkit.__file__).parent

#: the report of ``lrkit auto`` (HTML/markdown layout and the content it lays out)
REPORT_MODULES = {"lrkit.pipeline._report", "lrkit.pipeline._content"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert node.level == 0, "lrkit uses absolute imports"
    base = node.module or ""
    # ``from lrkit import plotting`` imports the module lrkit.plotting
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _imports(path: Path, *, module_level: bool) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for stmt in statements:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                found.update(t for t in _targets(stmt) if t.startswith("lrkit"))
            elif isinstance(stmt, ast.If | ast.Try):  # if TYPE_CHECKING:, try/except ImportError
                blocks = [stmt.body, stmt.orelse]
                if isinstance(stmt, ast.Try):
                    blocks += [h.body for h in stmt.handlers] + [stmt.finalbody]
                for block in blocks:
                    visit(block)

    if module_level:
        visit(tree.body)
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(t for t in _targets(node) if t.startswith("lrkit"))
    return found


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_rendering(name: str) -> bool:
    return name == "lrkit.plotting" or name.startswith("lrkit.plotting.")


def _is_report(name: str) -> bool:
    return name in REPORT_MODULES


def _is_cli(name: str) -> bool:
    return name in ("lrkit.cli", "lrkit.__main__") or name.startswith("lrkit.cli.")


def _is_computation(name: str) -> bool:
    """Everything but rendering, the report, the CLI and the packages' re-exporting __init__."""
    if _is_rendering(name) or _is_report(name) or _is_cli(name):
        return False
    return MODULES[name].name != "__init__.py"


def test_the_walk_sees_the_modules_it_judges() -> None:
    # the classification must keep matching the package (a renamed report module would
    # otherwise silently count as computation, or vanish)
    assert REPORT_MODULES <= set(MODULES)
    assert {"lrkit.plotting._finder", "lrkit.finder._result", "lrkit.cli._app"} <= set(MODULES)
    assert sum(_is_computation(m) for m in MODULES) > 30


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is_computation(m)))
def test_computation_never_imports_rendering_the_report_or_the_cli(module: str) -> None:
    bad = sorted(
        t
        for t in _imports(MODULES[module], module_level=True)
        if _is_rendering(t) or _is_report(t) or _is_cli(t)
    )
    assert not bad, f"{module} imports {bad} at module level; import inside the call instead"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _is_cli(m)))
def test_only_the_cli_imports_the_cli(module: str) -> None:
    bad = sorted(t for t in _imports(MODULES[module], module_level=False) if _is_cli(t))
    assert not bad, f"{module} imports the CLI ({bad})"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _is_rendering(m)))
def test_rendering_never_imports_the_report(module: str) -> None:
    bad = sorted(t for t in _imports(MODULES[module], module_level=True) if _is_report(t))
    assert not bad, f"{module} imports the report {bad}"


def test_the_walk_finds_a_module_level_import_it_must_reject(tmp_path: Path) -> None:
    # the check itself: a module-level plotting import is found, one inside a function is not
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lrkit.plotting._finder import plot_range_test\n"
        "def plot():\n    from lrkit.cli import main\n"
    )
    assert _imports(bad, module_level=True) == {
        "lrkit.plotting._finder",
        "lrkit.plotting._finder.plot_range_test",
    }
    assert "lrkit.cli" in _imports(bad, module_level=False)
