"""The :class:`Schedule` contract every kind and every composition implements.

A schedule is an immutable value. ``schedule(step)`` returns the multiplier of each param group's
own initial learning rate at optimizer step ``step`` (steps count optimizer updates from 0).
There is no hidden state: evaluating, plotting, resuming and jumping to a step are the same
operation.

Two evaluation paths exist on purpose: ``_at`` (pure Python, one step, used by the PyTorch
adapter on every optimizer step, so it must be cheap) and ``_values`` (numpy, many steps, used
for plotting, tables and the benchmark). Tests check that both agree.

Reduce-on-plateau is the one kind that reacts to a metric. Its value is still a pure function of
the step: a :class:`~lrkit.schedules.Plateau` carries the tuple of (local) steps at which it has
already cut the learning rate. Reacting to a metric returns a *new* schedule with one more cut
(:meth:`Schedule.reduce_at`); the metric bookkeeping (best value, bad-step count, cooldown) is
held by the adapter and saved in its ``state_dict``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrkit._validate import check_int, fail

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lrkit.schedules._kinds import Plateau

__all__ = ["MAX_MULTIPLIER", "MAX_STEP", "Schedule", "as_steps", "check_step"]

#: the last step a schedule can be evaluated at, by ``schedule(step)`` and ``values()`` alike
#: (numpy evaluates int64 steps; a larger one is rejected by both, never wrapped around)
MAX_STEP = 2**63 - 1

#: every value of every schedule is at most this (a multiplier of the optimizer's own lr):
#: ``scale``, ``floor``, ``linear`` and ``onecycle`` reject parameters that would exceed it
MAX_MULTIPLIER = 1e6

_TOO_LARGE = "whole step numbers <= 2**63 - 1 (the int64 range)"


def check_step(name: str, value: object) -> int:
    """``value`` as a step in ``[0, MAX_STEP]``, or a ValueError naming ``name``."""
    step = check_int(name, value, minimum=0)
    if step > MAX_STEP:
        fail(name, value, "an integer in [0, 2**63 - 1]")
    return step


def as_steps(steps: int | ArrayLike, name: str = "steps") -> NDArray[np.int64]:
    """Normalise ``values()`` input: an int ``n`` means steps ``0..n-1``; else an array of steps.

    Raises ValueError for negative, non-integer or too large steps (above :data:`MAX_STEP`),
    naming ``name`` and the value, exactly where ``schedule(step)`` raises too.
    """
    if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool):
        count = check_int(name, steps, minimum=0)
        return np.arange(count, dtype=np.int64)
    arr = np.asarray(steps)
    kind = arr.dtype.kind
    if (
        kind == "O"
        and arr.size
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.flat)
    ):
        if any(int(v) < 0 for v in arr.flat):
            fail(name, steps, "whole, non-negative step numbers")
        fail(name, steps, _TOO_LARGE)  # Python ints beyond uint64: numpy keeps them as objects
    if kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            fail(name, steps, "whole, non-negative step numbers")
        if arr.size and float(arr.max()) >= 2.0**63:
            fail(name, steps, _TOO_LARGE)
    elif kind not in "iu":
        fail(name, steps, "an int or an array of whole, non-negative step numbers")
    if arr.size and int(arr.min()) < 0:
        fail(name, steps, "whole, non-negative step numbers")
    if kind == "u" and arr.size and int(arr.max()) > MAX_STEP:
        fail(name, steps, _TOO_LARGE)
    return arr.astype(np.int64, copy=False)


class Schedule(ABC):
    """Base class of every schedule: an immutable, comparable, printable value.

    Subclasses are frozen dataclasses (``@dataclass(frozen=True)``), so ``==`` and ``hash``
    compare parameters, and ``str(schedule)`` is a spec that
    :func:`lrkit.schedules.parse` turns back into an equal schedule.
    """

    #: name of the kind in the spec grammar, e.g. ``"cosine"``
    kind: str = ""

    # ------------------------------------------------------------------ evaluation
    def __call__(self, step: int) -> float:
        """Multiplier of the initial learning rate at optimizer step ``step`` (0 to 2**63 - 1)."""
        if type(step) is not int or not 0 <= step <= MAX_STEP:
            step = check_step("step", step)
        return self._at(step)

    def values(self, steps: int | ArrayLike) -> NDArray[np.float64]:
        """Evaluate many steps at once: ``values(1000)`` is steps 0..999, or pass an array."""
        return np.asarray(self._values(as_steps(steps)), dtype=np.float64)

    def plot(self, steps: int, *, lr: float | None = None, ax: Axes | None = None) -> Axes:
        """Plot steps ``0..steps-1`` (the lr when ``lr`` is given); needs ``lrkit[plot]``.

        See :func:`lrkit.plotting.plot_schedule` for the log-y option and the marks.
        """
        from lrkit.plotting import plot_schedule

        return plot_schedule(self, steps, lr=lr, ax=ax)

    @abstractmethod
    def _at(self, step: int) -> float:
        """Value at one validated step (pure Python; hot path of the PyTorch adapter)."""

    @abstractmethod
    def _values(self, steps: NDArray[np.int64]) -> NDArray[np.float64]:
        """Vectorised value at validated steps."""

    def _peak(self) -> float:
        """An upper bound of every value (1 for the kinds that only decay from 1).

        Plateau cuts only lower values, so the bound holds for every reduced copy too.
        """
        return 1.0

    # ------------------------------------------------------------------ momentum (one-cycle)
    def momentum(self, step: int) -> float | None:
        """Momentum (or beta1) at ``step`` for kinds that cycle it (one-cycle); else None."""
        return self._momentum_at(check_step("step", step))

    def _momentum_at(self, step: int) -> float | None:
        return None

    # ------------------------------------------------------------------ plateau support
    @property
    def stateful(self) -> bool:
        """True when a reduce-on-plateau schedule is inside (the adapter then tracks a metric)."""
        return False

    def active_plateau(self, step: int) -> Plateau | None:
        """The plateau schedule in control at ``step`` (None outside any, e.g. during warmup)."""
        return None

    def reduce_at(self, step: int) -> Schedule:
        """A copy in which the plateau active at ``step`` has cut the learning rate at ``step``.

        Raises ValueError when no plateau is active at ``step``.
        """
        fail("step", step, "a step at which a reduce-on-plateau schedule is active")

    # ------------------------------------------------------------------ text form
    def __str__(self) -> str:
        from lrkit.schedules._spec import format_spec

        return format_spec(self)

    def __repr__(self) -> str:
        return f"parse({str(self)!r})"
