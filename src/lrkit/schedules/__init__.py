"""Learning-rate schedules: immutable, closed-form, composable, printable as a spec.

``schedule(step)`` is the multiplier of each param group's own initial learning rate at
optimizer step ``step`` (from 0); ``schedule.values(n)`` evaluates steps ``0..n-1`` with numpy.

Example:
    >>> from lrkit.schedules import parse
    >>> s = parse("warmup(100, cosine(900, floor=0.05), start=0.0)")
    >>> s(0), s(50), s(100), s(1000)
    (0.0, 0.5, 1.0, 0.05)
    >>> str(s)
    'warmup(100, cosine(900, floor=0.05), start=0.0)'
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.schedules._base import MAX_MULTIPLIER, MAX_STEP, Schedule
    from lrkit.schedules._compose import Floor, Join, Scale, Warmup, floor, join, scale, warmup
    from lrkit.schedules._kinds import (
        WSD,
        Constant,
        Cosine,
        Cyclic,
        Exponential,
        InverseSqrt,
        Linear,
        MultiStep,
        OneCycle,
        Plateau,
        Polynomial,
        Restarts,
        Step,
    )
    from lrkit.schedules._plateau import PlateauTracker
    from lrkit.schedules._spec import KindInfo, ParamInfo, SpecError, format_spec, kinds, parse
    from lrkit.schedules._torch import ScheduledLR, attach

__all__ = [
    "MAX_MULTIPLIER",
    "MAX_STEP",
    "Schedule",
    "parse",
    "format_spec",
    "kinds",
    "KindInfo",
    "ParamInfo",
    "SpecError",
    "Constant",
    "Step",
    "MultiStep",
    "Exponential",
    "Linear",
    "Polynomial",
    "Cosine",
    "Restarts",
    "Cyclic",
    "OneCycle",
    "InverseSqrt",
    "WSD",
    "Plateau",
    "PlateauTracker",
    "Warmup",
    "Join",
    "Scale",
    "Floor",
    "warmup",
    "join",
    "scale",
    "floor",
    "attach",
    "ScheduledLR",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.schedules._base": ["MAX_MULTIPLIER", "MAX_STEP", "Schedule"],
            "lrkit.schedules._compose": [
                "Floor",
                "Join",
                "Scale",
                "Warmup",
                "floor",
                "join",
                "scale",
                "warmup",
            ],
            "lrkit.schedules._kinds": [
                "WSD",
                "Constant",
                "Cosine",
                "Cyclic",
                "Exponential",
                "InverseSqrt",
                "Linear",
                "MultiStep",
                "OneCycle",
                "Plateau",
                "Polynomial",
                "Restarts",
                "Step",
            ],
            "lrkit.schedules._plateau": ["PlateauTracker"],
            "lrkit.schedules._spec": [
                "KindInfo",
                "ParamInfo",
                "SpecError",
                "format_spec",
                "kinds",
                "parse",
            ],
            "lrkit.schedules._torch": ["ScheduledLR", "attach"],
        },
    )
