"""The old subpackage paths keep working for one release, with a DeprecationWarning.

(rename-subpackages: keep: this file names the old paths on purpose.)
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import pytest

import lrkit

OLD_TO_NEW = {
    "lrkit.diagnose": "lrkit.diagnosis",
    "lrkit.tune": "lrkit.tuning",
    "lrkit.advise": "lrkit.advice",
    "lrkit.auto": "lrkit.pipeline",
}


@pytest.mark.parametrize("old", sorted(OLD_TO_NEW))
def test_every_public_name_is_reachable_from_the_old_path_with_a_warning(old: str) -> None:
    new = importlib.import_module(OLD_TO_NEW[old])
    alias = sys.modules[old]  # imported by ``import lrkit``
    assert new.__all__ and sorted(new.__all__) == dir(alias)
    for name in new.__all__:
        with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new.__name__}\."):
            value = getattr(alias, name)
        assert value is getattr(new, name)


def test_the_documented_old_imports_work_and_warn_at_the_importing_line() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        from lrkit.advise import Advice
        from lrkit.auto import write_report
        from lrkit.diagnose import Guard
        from lrkit.tune import load_result
    assert Guard is lrkit.Guard and Advice is lrkit.Advice
    assert load_result is importlib.import_module("lrkit.tuning").load_result
    assert write_report is importlib.import_module("lrkit.pipeline").write_report
    assert {w.filename for w in caught} == {__file__}  # points at the user's code
    assert "goes away in lrkit 0.3" in str(caught[0].message)


def test_the_functions_stay_functions_after_the_old_modules_are_used() -> None:
    with pytest.warns(DeprecationWarning):
        from lrkit.diagnose import Diagnosis  # noqa: F401
    for name in ("diagnose", "tune", "advise", "auto"):
        assert inspect.isfunction(getattr(lrkit, name)), name
    assert lrkit.advise("adam", "mlp").lr > 0


def test_unknown_names_and_private_modules_are_not_aliased() -> None:
    with pytest.raises(ImportError, match="cannot import name 'nope'"):
        from lrkit.diagnose import nope  # noqa: F401
    with pytest.raises(ModuleNotFoundError, match="'lrkit.diagnose' is not a package"):
        importlib.import_module("lrkit.diagnose._guard")


def test_a_fresh_interpreter_sees_the_same() -> None:
    # the old path used first, before anything else of lrkit, still leaves the function in place
    code = (
        "import json, warnings, inspect\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n"
        "    from lrkit.tune import STRATEGIES\n"
        "    raised = False\n"
        "except DeprecationWarning:\n"
        "    raised = True\n"
        "import lrkit\n"
        "print(json.dumps({'raised': raised, 'function': inspect.isfunction(lrkit.tune)}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert json.loads(done.stdout) == {"raised": True, "function": True}
