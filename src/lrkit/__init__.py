"""lrkit: take the guesswork out of the learning rate.

Find it with a range test you can trust, schedule it, diagnose training that goes wrong,
tune it on Optuna, and get a starting point for your optimizer and architecture.

The public API is re-exported here::

    >>> import lrkit
    >>> lrkit.schedules.parse("warmup(10, cosine(90))")(10)
    1.0
    >>> lrkit.advise("adamw", "transformer").schedule.startswith("warmup(")
    True

``lrkit.diagnose``, ``lrkit.tune``, ``lrkit.advise`` and ``lrkit.auto`` are the functions; the
subpackages of the same names hold the rest of each area (``from lrkit.diagnose import Guard``).
"""

# The submodules are imported first; the function names are bound after them, so that
# ``lrkit.diagnose`` etc. are the functions even though same-named subpackages exist.
from lrkit import schedules, tasks
from lrkit._version import __version__
from lrkit.advise import Advice, advise
from lrkit.auto import AutoResult, auto
from lrkit.diagnose import (
    Diagnosis,
    Finding,
    Guard,
    GuardAction,
    GuardError,
    GuardEvent,
    diagnose,
    diagnose_file,
)
from lrkit.finder import RangeTest, find_lr
from lrkit.schedules import Schedule, attach, parse
from lrkit.tune import TuneResult, tune

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
