"""``import lrkit`` is cheap: heavy dependencies load on first use (PEP 562 ``__getattr__``).

Each package's ``__init__.py`` lists its public names twice: under ``if TYPE_CHECKING:`` for
type checkers and editors, and in the ``lazy_exports`` map that loads them. These tests check
that the two agree with ``__all__``, that every name resolves to the object the import names,
and, in a fresh interpreter, that importing the package or the CLI imports no heavy library.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import lrkit

SRC = Path(lrkit.__file__).parent
HEAVY = ("torch", "numpy", "matplotlib", "optuna", "sklearn", "scipy", "pandas", "tensorboard")


def _lazy_packages() -> list[str]:
    names = ["lrkit"]
    for info in pkgutil.iter_modules([str(SRC)], prefix="lrkit."):
        init = SRC / info.name.split(".")[1] / "__init__.py"
        if info.ispkg and "lazy_exports" in init.read_text():
            names.append(info.name)
    return names


def _declared(package: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(TYPE_CHECKING imports, lazy map, __all__) of ``package``'s ``__init__.py``, by name."""
    init = SRC.joinpath(*package.split(".")[1:], "__init__.py")
    tree = ast.parse(init.read_text())
    typed: dict[str, str] = {}
    lazy: dict[str, str] = {}
    listed: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            negated = isinstance(node.test, ast.UnaryOp)
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and not negated:
                    for alias in stmt.names:
                        source = f"{stmt.module}.{alias.name}"
                        # ``from lrkit import schedules``: the module itself
                        typed[alias.asname or alias.name] = source
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("lazy_exports"):
            table = node.args[1]
            assert isinstance(table, ast.Dict)
            for key, value in zip(table.keys, table.values, strict=True):
                module = ast.literal_eval(key)  # type: ignore[arg-type]
                for name in ast.literal_eval(value):
                    lazy[name] = f"{module}.{name}" if module.rpartition(".")[2] != name else module
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            listed = list(ast.literal_eval(node.value))
    return typed, lazy, listed


@pytest.mark.parametrize("package", _lazy_packages())
def test_type_checking_imports_lazy_map_and_all_agree(package: str) -> None:
    typed, lazy, listed = _declared(package)
    assert typed == lazy, "the TYPE_CHECKING imports and the lazy_exports map differ"
    assert set(listed) - {"__version__"} == set(lazy), "__all__ and the lazy names differ"


@pytest.mark.parametrize("package", _lazy_packages())
def test_every_lazy_name_is_the_object_its_module_defines(package: str) -> None:
    module = importlib.import_module(package)
    _, lazy, _ = _declared(package)
    for name, source in lazy.items():
        value = getattr(module, name)
        home, _, attr = source.rpartition(".")
        if source in sys.modules and sys.modules[source] is value:
            continue  # a module re-exported by name
        assert value is getattr(importlib.import_module(home), attr), source
        assert name in dir(module)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


def _fresh(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "statement",
    [
        "import lrkit",
        "import lrkit.cli",
        "import lrkit.finder, lrkit.schedules, lrkit.diagnosis, lrkit.tuning, lrkit.advice",
        "import lrkit.pipeline, lrkit.tasks, lrkit.plotting, lrkit.integrations",
    ],
)
def test_importing_the_packages_and_the_cli_imports_no_heavy_library(statement: str) -> None:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    loaded = set(_fresh(code))  # type: ignore[arg-type]
    assert not loaded & set(HEAVY), f"{statement!r} imported {sorted(loaded & set(HEAVY))}"


def test_the_cli_help_imports_no_heavy_library() -> None:
    code = (
        "import contextlib, io, json, sys\n"
        "from lrkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    status = main(['--help'])\n"
        "print(json.dumps({'status': status, 'modules': sorted(sys.modules)}))"
    )
    out = _fresh(code)
    assert out["status"] == 0
    assert not set(out["modules"]) & set(HEAVY)  # type: ignore[arg-type]


def test_names_load_on_first_use_and_functions_win_over_subpackages() -> None:
    code = (
        "import json, sys, inspect, lrkit\n"
        "before = 'torch' in sys.modules\n"
        "from lrkit.diagnosis import diagnose_file\n"  # a subpackage import ...
        "import lrkit.tuning._result\n"
        "numpy_only = 'torch' not in sys.modules and 'numpy' in sys.modules\n"
        "kinds = {n: inspect.isfunction(getattr(lrkit, n)) for n in "
        "('diagnose', 'tune', 'advise', 'auto')}\n"  # ... leaves the functions in place
        "print(json.dumps({'before': before, 'kinds': kinds, 'numpy_only': numpy_only,"
        " 'after': 'torch' in sys.modules}))"
    )
    out = _fresh(code)
    assert out == {
        "before": False,
        "kinds": {"diagnose": True, "tune": True, "advise": True, "auto": True},
        "numpy_only": True,
        "after": True,
    }
