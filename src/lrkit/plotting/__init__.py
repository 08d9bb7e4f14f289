"""Matplotlib renderers. Compute lives elsewhere; each function takes a result and returns Axes.

matplotlib is optional (``pip install 'lrkit[plot]'``) and loads when a figure is drawn. Each
result offers the same figure as a method that calls into this module (``RangeTest.plot``,
``Schedule.plot``, ``Diagnosis.plot``, ``TuneResult.plot``, ``RaceResult.plot``); the ``lrkit auto``
report reuses these figures.

Example:
    >>> from lrkit.plotting import plot_schedule
    >>> from lrkit.schedules import parse
    >>> ax = plot_schedule(parse("warmup(10, cosine(90))"), 100)  # doctest: +SKIP
    >>> ax.figure.savefig("schedule.png")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.plotting._diagnose import plot_diagnosis
    from lrkit.plotting._finder import plot_range_test
    from lrkit.plotting._race import plot_race, plot_race_range
    from lrkit.plotting._schedule import plot_schedule
    from lrkit.plotting._tune import plot_tune

__all__ = [
    "plot_diagnosis",
    "plot_race",
    "plot_race_range",
    "plot_range_test",
    "plot_schedule",
    "plot_tune",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.plotting._diagnose": ["plot_diagnosis"],
            "lrkit.plotting._finder": ["plot_range_test"],
            "lrkit.plotting._race": ["plot_race", "plot_race_range"],
            "lrkit.plotting._schedule": ["plot_schedule"],
            "lrkit.plotting._tune": ["plot_tune"],
        },
    )
