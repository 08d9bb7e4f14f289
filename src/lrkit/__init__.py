"""lrkit: take the guesswork out of the learning rate.

Find it with a range test you can trust, schedule it, diagnose training that goes wrong,
tune it on Optuna, and get a starting point for your optimizer and architecture.

The public API is re-exported here::

    >>> import lrkit
    >>> lrkit.schedules.parse("warmup(10, cosine(90))")(10)
    1.0
    >>> lrkit.advise("adamw", "transformer").schedule.startswith("warmup(")
    True

``import lrkit`` is cheap: torch, numpy, matplotlib and Optuna load when a name that needs them
is first used (PEP 562 ``__getattr__``), so the ``lrkit`` command starts at once.
Functions are verbs, modules are nouns (as in optax and Optuna): ``lrkit.diagnose``,
``lrkit.tune``, ``lrkit.advise`` and ``lrkit.auto`` are the functions, and each area's module
holds the rest: :mod:`lrkit.finder`, :mod:`lrkit.schedules`, :mod:`lrkit.diagnosis`,
:mod:`lrkit.tuning`, :mod:`lrkit.advice`, :mod:`lrkit.pipeline`, :mod:`lrkit.plotting`,
:mod:`lrkit.tasks` (``from lrkit.diagnosis import Guard``).
"""

from __future__ import annotations

import importlib as _importlib
import importlib.util as _importlib_util
from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports as _lazy_exports
from lrkit._version import __version__

if TYPE_CHECKING:
    from lrkit import schedules, tasks
    from lrkit.advice._advice import Advice, advise
    from lrkit.diagnosis._diagnosis import diagnose
    from lrkit.diagnosis._files import diagnose_file
    from lrkit.diagnosis._findings import Diagnosis, Finding
    from lrkit.diagnosis._guard import Guard, GuardAction, GuardError, GuardEvent
    from lrkit.finder._range_test import find_lr
    from lrkit.finder._result import RangeTest
    from lrkit.pipeline._pipeline import auto
    from lrkit.pipeline._result import AutoResult
    from lrkit.schedules._base import Schedule
    from lrkit.schedules._spec import parse
    from lrkit.schedules._torch import attach
    from lrkit.tuning._result import TuneResult
    from lrkit.tuning._tune import tune

__all__ = [
    "__version__",
    # find
    "find_lr",
    "RangeTest",
    # schedule
    "schedules",
    "Schedule",
    "parse",
    "attach",
    # diagnose
    "diagnose",
    "diagnose_file",
    "Diagnosis",
    "Finding",
    "Guard",
    "GuardAction",
    "GuardEvent",
    "GuardError",
    # tune
    "tune",
    "TuneResult",
    # advise and the main job
    "advise",
    "Advice",
    "auto",
    "AutoResult",
    "tasks",
]

if not TYPE_CHECKING:  # type checkers read the imports above; no catch-all __getattr__
    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            "lrkit.schedules": ["schedules"],
            "lrkit.tasks": ["tasks"],
            "lrkit.advice._advice": ["Advice", "advise"],
            "lrkit.pipeline._pipeline": ["auto"],
            "lrkit.pipeline._result": ["AutoResult"],
            "lrkit.diagnosis._diagnosis": ["diagnose"],
            "lrkit.diagnosis._files": ["diagnose_file"],
            "lrkit.diagnosis._findings": ["Diagnosis", "Finding"],
            "lrkit.diagnosis._guard": ["Guard", "GuardAction", "GuardError", "GuardEvent"],
            "lrkit.finder._range_test": ["find_lr"],
            "lrkit.finder._result": ["RangeTest"],
            "lrkit.schedules._base": ["Schedule"],
            "lrkit.schedules._spec": ["parse"],
            "lrkit.schedules._torch": ["attach"],
            "lrkit.tuning._result": ["TuneResult"],
            "lrkit.tuning._tune": ["tune"],
        },
    )

# The functions ``diagnose``, ``tune``, ``advise`` and ``auto`` share their names with modules
# of this package (the deprecated aliases of the old subpackage paths). Importing such a module
# binds it on this package, once, the first time; so they are imported now (cheap: they load
# nothing) and the bindings dropped, and from then on those names reach ``__getattr__``, which
# gives the functions.
for _name in ("advise", "auto", "diagnose", "tune"):
    if _importlib_util.find_spec(f"{__name__}.{_name}") is not None:
        _importlib.import_module(f"{__name__}.{_name}")
        del globals()[_name]
del _name
