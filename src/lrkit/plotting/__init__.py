"""Matplotlib renderers. Compute lives elsewhere; each function takes results and returns an Axes.

matplotlib is optional (``pip install 'lrkit[plot]'``); modules here import it lazily.
Each area adds its own private module (``_schedule.py``, ``_finder.py``, ``_diagnose.py``,
``_tune.py``, ``_race.py``) and its public object exposes a ``plot(ax=None)`` method.
"""
