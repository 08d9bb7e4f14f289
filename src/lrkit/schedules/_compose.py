"""Composition: warmup in front of any schedule, joins at step boundaries, scale and floor.

Every composite forwards the plateau protocol (``stateful``, ``active_plateau``,
``reduce_at``) and one-cycle momentum to the piece in control, with the step shifted into that
piece's local time, so reduce-on-plateau and one-cycle compose like every other kind.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field, fields, is_dataclass, replace
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from lrkit._validate import check_choice, check_int, check_real, fail
from lrkit.schedules._base import MAX_MULTIPLIER, Schedule
from lrkit.schedules._kinds import Constant, Plateau, _count, _Kind
from lrkit.schedules._meta import Param

__all__ = ["Warmup", "Join", "Scale", "Floor", "warmup", "join", "scale", "floor"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

_WARMUP_KINDS = ("linear", "cosine", "exponential", "sqrt")


def _check_schedule(name: str, value: object) -> Schedule:
    if not isinstance(value, Schedule):
        fail(name, value, "a Schedule (e.g. lrkit.schedules.parse('cosine(1000)'))")
    return value


def _piecewise(steps: I64, bounds: tuple[int, ...], parts: tuple[Callable[[I64], F64], ...]) -> F64:
    """Evaluate ``parts[k]`` at ``step - start_k`` on ``[start_k, start_k+1)``, start_0 = 0.

    Sorted 1-D input (``values(n)`` is ``arange(n)``) is cut into slices without copies; any
    other input goes through boolean masks.
    """
    out = np.empty(steps.shape, dtype=np.float64)
    flat = steps.reshape(-1)
    flat_out = out.reshape(-1)
    if flat.size == 0:
        return out
    starts = (0, *bounds)
    if flat.size == 1 or bool(np.all(flat[1:] >= flat[:-1])):
        edges = [0, *np.searchsorted(flat, bounds, side="left").tolist(), flat.size]
        for k, part in enumerate(parts):
            lo, hi = edges[k], edges[k + 1]
            if hi > lo:
                local = flat[lo:hi] - starts[k] if starts[k] else flat[lo:hi]
                flat_out[lo:hi] = part(local)
        return out
    which = np.searchsorted(np.asarray(bounds, dtype=np.int64), flat, side="right")
    for k, part in enumerate(parts):
        mask = which == k
        if mask.any():
            flat_out[mask] = part(flat[mask] - starts[k])
    return out


def _without_cuts(schedule: Schedule) -> Schedule:
    """``schedule`` with every reduce-on-plateau cut removed (the curve as first planned)."""
    if not schedule.stateful:
        return schedule
    if isinstance(schedule, Plateau):
        return replace(schedule, reductions=())
    if not is_dataclass(schedule):
        return schedule
    changes: dict[str, object] = {}
    for f in fields(schedule):
        value = getattr(schedule, f.name)
        if isinstance(value, Schedule):
            changes[f.name] = _without_cuts(value)
        elif isinstance(value, tuple) and value and isinstance(value[0], Schedule):
            changes[f.name] = tuple(_without_cuts(v) for v in value)
    return replace(schedule, **changes)  # type: ignore[type-var]


@dataclass(frozen=True, repr=False)
class Warmup(_Kind):
    """Ramp up for ``steps`` steps, then run ``schedule`` shifted by ``steps``.

    The ramp goes from ``start * schedule(0)`` to ``schedule(0)`` (it never overshoots the
    hand-off value); ``shape`` is its form: ``linear``, ``cosine`` (half a cosine),
    ``exponential`` (geometric, needs ``start > 0``) or ``sqrt`` (HF's ``1-sqrt`` warmup,
    ``1 - sqrt(1 - p)``; the spec calls it ``kind``). At step ``steps`` the inner schedule
    sees step 0.

    The ramp's target is the inner schedule's first value *before* any plateau cut, so a cut
    recorded at the hand-off step never changes the warmup that already happened.

    ``start`` defaults to 0.01 so the first optimizer step is not wasted at learning rate 0;
    ``start=0.0`` with ``kind=linear`` is Hugging Face's ``step / warmup`` warmup exactly.

    Example:
        >>> from lrkit.schedules import Cosine
        >>> s = Warmup(10, Cosine(90), start=0.0)
        >>> s(0), s(5), s(10)
        (0.0, 0.5, 1.0)
    """

    steps: int
    schedule: Schedule = field(default_factory=Constant)
    _: KW_ONLY
    start: float = 0.01
    shape: str = "linear"
    _target: float = field(init=False, repr=False, compare=False)

    kind = "warmup"
    _params = (
        Param("steps", "int", "length of the warmup"),
        Param("schedule", "schedule", "the schedule that follows (sees step - steps)"),
        Param("start", "real", "first multiplier as a fraction of schedule(0), in [0, 1]"),
        Param(
            "kind",
            "choice",
            "shape of the ramp; sqrt is HF's '1-sqrt'",
            _WARMUP_KINDS,
            attr="shape",
        ),
    )
    _positional = 2
    summary = "ramp from start * schedule(0) up to schedule(0), then run the schedule"
    example = "warmup(100, cosine(900, floor=0.05), start=0.01)"
    torch = "SequentialLR([LinearLR(start_factor=start, total_iters=steps), ...], [steps])"
    hf = "every *_with_warmup factory: warmup(num_warmup_steps, ..., start=0.0)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", _count("steps", self.steps, minimum=0))
        _check_schedule("schedule", self.schedule)
        object.__setattr__(self, "start", check_real("start", self.start, minimum=0.0, maximum=1.0))
        object.__setattr__(self, "shape", check_choice("kind", self.shape, _WARMUP_KINDS))
        if self.shape == "exponential" and self.start <= 0.0:
            fail("start", self.start, "a number > 0 when kind='exponential'")
        # cached hand-off value (not a field: equality and the spec ignore it)
        object.__setattr__(self, "_target", _without_cuts(self.schedule)._at(0))

    def _ramp(self, p: float) -> float:
        start = self.start
        if self.shape == "linear":
            r = start + (1.0 - start) * p
        elif self.shape == "cosine":
            r = start + (1.0 - start) * (0.5 * (1.0 - math.cos(math.pi * p)))
        elif self.shape == "sqrt":
            r = start + (1.0 - start) * (1.0 - math.sqrt(1.0 - p))
        else:
            r = float(start ** (1.0 - p))
        return min(r, 1.0)  # never above the hand-off value, not even by rounding

    def _at(self, step: int) -> float:
        if step >= self.steps:
            return self.schedule._at(step - self.steps)
        p = float(step) / float(self.steps)
        return self._target * self._ramp(p)

    def _values(self, steps: I64) -> F64:
        return _piecewise(steps, (self.steps,), (self._ramp_values, self.schedule._values))

    def _ramp_values(self, steps: I64) -> F64:
        p = steps.astype(np.float64) / float(self.steps)
        start = self.start
        if self.shape == "linear":
            r = start + (1.0 - start) * p
        elif self.shape == "cosine":
            r = start + (1.0 - start) * (0.5 * (1.0 - np.cos(math.pi * p)))
        elif self.shape == "sqrt":
            r = start + (1.0 - start) * (1.0 - np.sqrt(1.0 - p))
        else:
            r = np.power(start, 1.0 - p)
        return np.asarray(self._target * np.minimum(r, 1.0), dtype=np.float64)

    # plateau / momentum forwarding ------------------------------------------------------
    @property
    def stateful(self) -> bool:
        return self.schedule.stateful

    def active_plateau(self, step: int) -> Plateau | None:
        if step < self.steps:
            return None
        return self.schedule.active_plateau(step - self.steps)

    def reduce_at(self, step: int) -> Warmup:
        step = check_int("step", step, minimum=0)
        if step < self.steps:
            fail("step", step, f"a step after the warmup (>= {self.steps}) to cut the plateau")
        return replace(self, schedule=self.schedule.reduce_at(step - self.steps))

    def _momentum_at(self, step: int) -> float | None:
        return self.schedule._momentum_at(max(0, step - self.steps))

    def _peak(self) -> float:
        return max(self._target, self.schedule._peak())


@dataclass(frozen=True, repr=False)
class Join(_Kind):
    """Pieces at absolute step boundaries; a later piece sees ``step - boundary``.

    ``Join((a, b, c), (100, 500))`` runs ``a`` on steps 0..99, ``b`` from step 100 (as its step
    0) and ``c`` from step 500. Use :func:`join` for the spec's alternating form.

    Example:
        >>> from lrkit.schedules import Constant, Exponential
        >>> s = join(Constant(), 10, Exponential(0.5))
        >>> s(9), s(10), s(12)
        (1.0, 1.0, 0.25)
    """

    pieces: tuple[Schedule, ...]
    boundaries: tuple[int, ...]

    kind = "join"
    _params = (
        Param("pieces", "schedule", "schedules, alternating with boundaries"),
        Param("boundaries", "int", "absolute steps at which the next piece starts"),
    )
    _positional = 2
    summary = "schedule, boundary, schedule, ...: each later piece sees step - boundary"
    example = "join(constant(), 500, exponential(0.999))"
    torch = "SequentialLR(schedulers, milestones=boundaries)"
    hf = ""

    def __post_init__(self) -> None:
        pieces = tuple(self.pieces)
        bounds = tuple(self.boundaries)
        if len(pieces) < 2 or len(bounds) != len(pieces) - 1:
            fail(
                "pieces",
                len(pieces),
                "at least 2 schedules and exactly one boundary between two pieces",
            )
        for i, piece in enumerate(pieces):
            _check_schedule(f"pieces[{i}]", piece)
        checked: list[int] = []
        for i, b in enumerate(bounds):
            value = _count(f"boundaries[{i}]", b, minimum=1)
            if checked and value <= checked[-1]:
                fail(f"boundaries[{i}]", b, f"an integer > the previous boundary {checked[-1]}")
            checked.append(value)
        object.__setattr__(self, "pieces", pieces)
        object.__setattr__(self, "boundaries", tuple(checked))

    def _piece(self, step: int) -> tuple[int, int]:
        k = bisect_right(self.boundaries, step)
        return k, (self.boundaries[k - 1] if k else 0)

    def _at(self, step: int) -> float:
        k, offset = self._piece(step)
        return self.pieces[k]._at(step - offset)

    def _values(self, steps: I64) -> F64:
        return _piecewise(steps, self.boundaries, tuple(p._values for p in self.pieces))

    @property
    def stateful(self) -> bool:
        return any(p.stateful for p in self.pieces)

    def active_plateau(self, step: int) -> Plateau | None:
        k, offset = self._piece(step)
        return self.pieces[k].active_plateau(step - offset)

    def reduce_at(self, step: int) -> Join:
        step = check_int("step", step, minimum=0)
        k, offset = self._piece(step)
        pieces = list(self.pieces)
        pieces[k] = pieces[k].reduce_at(step - offset)
        return replace(self, pieces=tuple(pieces))

    def _momentum_at(self, step: int) -> float | None:
        k, offset = self._piece(step)
        return self.pieces[k]._momentum_at(step - offset)

    def _peak(self) -> float:
        return max(p._peak() for p in self.pieces)


_W = TypeVar("_W", bound="_Wrap")


@dataclass(frozen=True, repr=False)
class _Wrap(_Kind):
    """A kind that changes the values of one inner ``schedule`` at the same step.

    Forwards the plateau protocol and one-cycle momentum to ``schedule`` unchanged.
    """

    schedule: Schedule

    @property
    def stateful(self) -> bool:
        return self.schedule.stateful

    def active_plateau(self, step: int) -> Plateau | None:
        return self.schedule.active_plateau(step)

    def reduce_at(self: _W, step: int) -> _W:
        return replace(self, schedule=self.schedule.reduce_at(step))

    def _momentum_at(self, step: int) -> float | None:
        return self.schedule._momentum_at(step)


@dataclass(frozen=True, repr=False)
class Scale(_Wrap):
    """``factor * schedule(step)``.

    Example:
        >>> from lrkit.schedules import Cosine
        >>> scale(Cosine(10), 0.5)(0)
        0.5
    """

    factor: float

    kind = "scale"
    _params = (
        Param("schedule", "schedule", "the schedule to scale"),
        Param("factor", "real", "multiplier, >= 0; the scaled values stay <= 1e6"),
    )
    _positional = 2
    summary = "multiply a schedule by a constant factor"
    example = "scale(cosine(1000), 0.5)"
    torch = "LambdaLR(lambda s: factor * f(s))"
    hf = ""

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        factor = check_real("factor", self.factor, minimum=0.0)
        peak = self.schedule._peak()
        if factor * peak > MAX_MULTIPLIER:  # inf for huge factors: rejected as well
            fail(
                "factor",
                self.factor,
                f"a number <= {MAX_MULTIPLIER / peak:g} (every value must stay <= "
                f"{MAX_MULTIPLIER:g}; the schedule it scales reaches {peak:g})",
            )
        object.__setattr__(self, "factor", factor)

    def _peak(self) -> float:
        return self.factor * self.schedule._peak()

    def _at(self, step: int) -> float:
        return self.factor * self.schedule._at(step)

    def _values(self, steps: I64) -> F64:
        return np.asarray(self.factor * self.schedule._values(steps), dtype=np.float64)


@dataclass(frozen=True, repr=False)
class Floor(_Wrap):
    """``max(schedule(step), minimum)``.

    Example:
        >>> from lrkit.schedules import Cosine
        >>> floor(Cosine(10), 0.1)(10)
        0.1
    """

    minimum: float

    kind = "floor"
    _params = (
        Param("schedule", "schedule", "the schedule to bound from below"),
        Param("minimum", "real", "lowest multiplier, in [0, 1e6]"),
    )
    _positional = 2
    summary = "bound a schedule from below"
    example = "floor(exponential(0.999), 0.01)"
    torch = "LambdaLR(lambda s: max(f(s), minimum))"
    hf = ""

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        minimum = check_real("minimum", self.minimum, minimum=0.0, maximum=MAX_MULTIPLIER)
        object.__setattr__(self, "minimum", minimum)

    def _peak(self) -> float:
        return max(self.schedule._peak(), self.minimum)

    def _at(self, step: int) -> float:
        return max(self.schedule._at(step), self.minimum)

    def _values(self, steps: I64) -> F64:
        return np.asarray(np.maximum(self.schedule._values(steps), self.minimum), np.float64)


# ------------------------------------------------------------------------------ functions
def warmup(
    steps: int,
    schedule: Schedule | None = None,
    *,
    start: float = 0.01,
    kind: str = "linear",
) -> Warmup:
    """Warm up for ``steps`` steps in front of ``schedule`` (default: constant).

    Example:
        >>> from lrkit.schedules import Cosine
        >>> str(warmup(100, Cosine(900, floor=0.05)))
        'warmup(100, cosine(900, floor=0.05))'
    """
    return Warmup(steps, Constant() if schedule is None else schedule, start=start, shape=kind)


def join(*parts: Schedule | int) -> Join:
    """``join(s1, b1, s2, b2, s3, ...)``: ``s2`` starts at absolute step ``b1``, and so on.

    Example:
        >>> from lrkit.schedules import Constant, Exponential
        >>> str(join(Constant(), 500, Exponential(0.999)))
        'join(constant(), 500, exponential(0.999))'
    """
    if len(parts) < 3 or len(parts) % 2 == 0:
        fail("parts", len(parts), "an odd number >= 3 of arguments: schedule, step, schedule, ...")
    pieces = parts[0::2]
    bounds = parts[1::2]
    for i, piece in enumerate(pieces):
        _check_schedule(f"join argument {2 * i + 1}", piece)
    for i, b in enumerate(bounds):
        if isinstance(b, Schedule):
            fail(f"boundaries[{i}]", b, "an integer step between two schedules")
    return Join(tuple(pieces), tuple(bounds))  # type: ignore[arg-type]


def scale(schedule: Schedule, factor: float) -> Scale:
    """Multiply ``schedule`` by ``factor``.

    Example:
        >>> from lrkit.schedules import Constant
        >>> scale(Constant(), 0.1)(0)
        0.1
    """
    return Scale(schedule, factor)


def floor(schedule: Schedule, minimum: float) -> Floor:
    """Bound ``schedule`` from below by ``minimum``.

    Example:
        >>> from lrkit.schedules import Exponential
        >>> floor(Exponential(0.5), 0.2)(10)
        0.2
    """
    return Floor(schedule, minimum)
