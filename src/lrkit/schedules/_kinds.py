"""The schedule kinds: closed-form multipliers of each param group's initial learning rate.

Every kind is a frozen dataclass with two evaluation paths that tests keep in agreement:
``_at`` (pure Python, one step, the PyTorch adapter's hot path) and ``_values`` (numpy, many
steps). Parameters are validated in ``__post_init__`` and normalised (ints stay ints, reals
become floats, lists become sorted tuples) so that equal schedules compare equal and print the
same spec.

The torch / Hugging Face / timm equivalent of each kind is in its ``torch`` / ``hf`` class
attributes and in ``docs/schedules-grammar.md``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from lrkit._validate import check_choice, check_int, check_real, fail
from lrkit.schedules._base import MAX_MULTIPLIER, Schedule
from lrkit.schedules._meta import Param

__all__ = [
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
    "KIND_CLASSES",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


#: largest step-like parameter: keeps every step computation inside int64
MAX_STEPS = 2**62


def _count(name: str, value: object, *, minimum: int) -> int:
    """A whole number of steps in ``[minimum, 2**62]``."""
    result = check_int(name, value, minimum=minimum)
    if result > MAX_STEPS:
        fail(name, value, f"an integer in [{minimum}, 2**62]")
    return result


def _sorted_steps(name: str, value: object) -> tuple[int, ...]:
    """A list of steps (each in ``[0, 2**62]``) as a sorted tuple; repeats are kept."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        fail(name, value, "a list of integers >= 0")
    return tuple(sorted(_count(name, v, minimum=0) for v in value))


def _fraction(name: str, value: object) -> float:
    return check_real(name, value, minimum=0.0, maximum=1.0)


def _multiplier(name: str, value: object) -> float:
    """A multiplier in ``[0, MAX_MULTIPLIER]``."""
    return check_real(name, value, minimum=0.0, maximum=MAX_MULTIPLIER)


def _as_float(values: object) -> F64:
    return np.asarray(values, dtype=np.float64)


class _Kind(Schedule):
    """Shared class attributes of the kinds (spec metadata, documentation)."""

    _params: ClassVar[tuple[Param, ...]] = ()
    _positional = 0
    summary = ""
    example = ""
    torch = ""
    hf = ""


# ---------------------------------------------------------------------------------- constant
@dataclass(frozen=True, repr=False)
class Constant(_Kind):
    """Multiplier 1.0 at every step (the optimizer's own learning rate).

    Example:
        >>> Constant()(12345)
        1.0
    """

    kind = "constant"
    summary = "the initial learning rate at every step"
    example = "constant()"
    torch = "ConstantLR(factor=1.0) / no scheduler"
    hf = "get_constant_schedule"

    def _at(self, step: int) -> float:
        return 1.0

    def _values(self, steps: I64) -> F64:
        return np.ones(steps.shape, dtype=np.float64)


# ---------------------------------------------------------------------------------- step
@dataclass(frozen=True, repr=False)
class Step(_Kind):
    """Multiply by ``gamma`` every ``size`` steps: ``gamma ** (step // size)``.

    Example:
        >>> Step(30, gamma=0.5)(61)
        0.25
    """

    size: int
    _: KW_ONLY
    gamma: float = 0.1

    kind = "step"
    _params = (
        Param("size", "int", "steps between two cuts (torch: step_size)"),
        Param("gamma", "real", "factor applied at each cut, in [0, 1]"),
    )
    _positional = 1
    summary = "cut by gamma every `size` steps"
    example = "step(30, gamma=0.1)"
    torch = "StepLR(step_size=size, gamma=gamma)"

    def __post_init__(self) -> None:
        _set(self, "size", _count("size", self.size, minimum=1))
        _set(self, "gamma", _fraction("gamma", self.gamma))

    def _at(self, step: int) -> float:
        return float(self.gamma ** (step // self.size))

    def _values(self, steps: I64) -> F64:
        return _as_float(np.power(self.gamma, (steps // self.size).astype(np.float64)))


# ---------------------------------------------------------------------------------- multistep
@dataclass(frozen=True, repr=False)
class MultiStep(_Kind):
    """Multiply by ``gamma`` at each milestone: ``gamma ** (number of milestones <= step)``.

    A milestone listed twice cuts twice (as in torch). Milestones are stored sorted.

    Example:
        >>> MultiStep((30, 60), gamma=0.1)(59)
        0.1
    """

    milestones: tuple[int, ...]
    _: KW_ONLY
    gamma: float = 0.1

    kind = "multistep"
    _params = (
        Param("milestones", "ints", "steps at which the learning rate is cut"),
        Param("gamma", "real", "factor applied at each milestone, in [0, 1]"),
    )
    _positional = 1
    summary = "cut by gamma at each milestone"
    example = "multistep([30, 60], gamma=0.1)"
    torch = "MultiStepLR(milestones=milestones, gamma=gamma)"

    def __post_init__(self) -> None:
        _set(self, "milestones", _sorted_steps("milestones", self.milestones))
        _set(self, "gamma", _fraction("gamma", self.gamma))

    def _at(self, step: int) -> float:
        return float(self.gamma ** bisect_right(self.milestones, step))

    def _values(self, steps: I64) -> F64:
        counts = np.searchsorted(np.asarray(self.milestones, dtype=np.int64), steps, side="right")
        return _as_float(np.power(self.gamma, counts.astype(np.float64)))


# ---------------------------------------------------------------------------------- exponential
@dataclass(frozen=True, repr=False)
class Exponential(_Kind):
    """Multiply by ``gamma`` every step: ``gamma ** step``.

    Example:
        >>> Exponential(0.5)(3)
        0.125
    """

    gamma: float

    kind = "exponential"
    _params = (Param("gamma", "real", "factor applied every step, in [0, 1]"),)
    _positional = 1
    summary = "multiply by gamma every step"
    example = "exponential(0.999)"
    torch = "ExponentialLR(gamma=gamma)"

    def __post_init__(self) -> None:
        _set(self, "gamma", _fraction("gamma", self.gamma))

    def _at(self, step: int) -> float:
        return float(self.gamma**step)

    def _values(self, steps: I64) -> F64:
        return _as_float(np.power(self.gamma, steps.astype(np.float64)))


# ---------------------------------------------------------------------------------- linear
@dataclass(frozen=True, repr=False)
class Linear(_Kind):
    """Straight line from ``start`` to ``end`` over ``steps`` steps, then ``end``.

    Example:
        >>> Linear(10, start=1.0, end=0.0)(5)
        0.5
    """

    steps: int
    _: KW_ONLY
    start: float = 1.0
    end: float = 0.0

    kind = "linear"
    _params = (
        Param("steps", "int", "length of the ramp (torch: total_iters)"),
        Param("start", "real", "multiplier at step 0, at most 1e6 (torch: start_factor)"),
        Param("end", "real", "multiplier from `steps` on, at most 1e6 (torch: end_factor)"),
    )
    _positional = 1
    summary = "linear from `start` to `end` over `steps`, then hold `end`"
    example = "linear(1000, start=1.0, end=0.0)"
    torch = "LinearLR(start_factor=start, end_factor=end, total_iters=steps)"
    hf = "get_linear_schedule_with_warmup (as warmup(w, linear(n - w), start=0.0))"

    def __post_init__(self) -> None:
        _set(self, "steps", _count("steps", self.steps, minimum=1))
        _set(self, "start", _multiplier("start", self.start))
        _set(self, "end", _multiplier("end", self.end))

    def _peak(self) -> float:
        return max(self.start, self.end)

    def _at(self, step: int) -> float:
        if step >= self.steps:  # exactly `end` (the formula can miss 0.0 by an ulp)
            return self.end
        return self.start + (self.end - self.start) * step / self.steps

    def _values(self, steps: I64) -> F64:
        t = np.minimum(steps, self.steps).astype(np.float64)
        out = self.start + (self.end - self.start) * t / self.steps
        return _as_float(np.where(steps >= self.steps, self.end, out))


# ---------------------------------------------------------------------------------- polynomial
@dataclass(frozen=True, repr=False)
class Polynomial(_Kind):
    """``end + (1 - end) * (1 - step / steps) ** power`` until ``steps``, then ``end``.

    Example:
        >>> Polynomial(10, power=2.0)(5)
        0.25
    """

    steps: int
    _: KW_ONLY
    power: float = 1.0
    end: float = 0.0

    kind = "polynomial"
    _params = (
        Param("steps", "int", "length of the decay (torch: total_iters)"),
        Param("power", "real", "exponent of the decay, > 0"),
        Param("end", "real", "multiplier reached at `steps`, in [0, 1] (HF: lr_end / lr)"),
    )
    _positional = 1
    summary = "polynomial decay from 1 to `end` over `steps`"
    example = "polynomial(1000, power=2.0)"
    torch = "PolynomialLR(total_iters=steps, power=power) (end=0)"
    hf = "get_polynomial_decay_schedule_with_warmup(lr_end=end*lr, power=power)"

    def __post_init__(self) -> None:
        _set(self, "steps", _count("steps", self.steps, minimum=1))
        _set(self, "power", check_real("power", self.power, minimum=0.0, min_inclusive=False))
        _set(self, "end", _fraction("end", self.end))

    def _at(self, step: int) -> float:
        remaining = 1.0 - min(self.steps, step) / self.steps
        return float(self.end + (1.0 - self.end) * remaining**self.power)

    def _values(self, steps: I64) -> F64:
        remaining = 1.0 - np.minimum(steps, self.steps).astype(np.float64) / self.steps
        return _as_float(self.end + (1.0 - self.end) * np.power(remaining, self.power))


# ---------------------------------------------------------------------------------- cosine
@dataclass(frozen=True, repr=False)
class Cosine(_Kind):
    """Half a cosine from 1 down to ``floor`` over ``steps`` steps, then ``floor``.

    Example:
        >>> Cosine(100, floor=0.1)(100)
        0.1
    """

    steps: int
    _: KW_ONLY
    floor: float = 0.0

    kind = "cosine"
    _params = (
        Param("steps", "int", "length of the decay (torch: T_max)"),
        Param("floor", "real", "final multiplier, in [0, 1] (torch: eta_min / lr)"),
    )
    _positional = 1
    summary = "cosine from 1 to `floor` over `steps`, then hold `floor`"
    example = "cosine(1000, floor=0.05)"
    torch = (
        "CosineAnnealingLR(T_max=steps, eta_min=floor*lr); holds floor after steps "
        "(torch's curve rises again)"
    )
    hf = "get_cosine_schedule_with_warmup (as warmup(w, cosine(n - w), start=0.0))"

    def __post_init__(self) -> None:
        _set(self, "steps", _count("steps", self.steps, minimum=1))
        _set(self, "floor", _fraction("floor", self.floor))

    def _at(self, step: int) -> float:
        t = min(self.steps, step)
        return self.floor + (1.0 - self.floor) * (1.0 + math.cos(math.pi * t / self.steps)) / 2.0

    def _values(self, steps: I64) -> F64:
        # in place, in the same operation order as _at
        x = np.minimum(steps, self.steps).astype(np.float64)
        x *= math.pi
        x /= self.steps
        np.cos(x, out=x)
        x += 1.0
        x *= 1.0 - self.floor
        x /= 2.0
        x += self.floor
        return x


# ---------------------------------------------------------------------------------- restarts
@dataclass(frozen=True, repr=False)
class Restarts(_Kind):
    """Cosine with warm restarts (SGDR): cycle ``i`` lasts ``period * mult**i`` steps.

    In cycle ``i`` the multiplier falls from ``decay**i`` to ``floor`` along half a cosine, then
    jumps back up. ``mult`` may be fractional (like timm's ``cycle_mul``).

    Example:
        >>> s = Restarts(10, mult=2.0)
        >>> s(0), s(10), s(30)
        (1.0, 1.0, 1.0)
    """

    period: int
    _: KW_ONLY
    mult: float = 1.0
    decay: float = 1.0
    floor: float = 0.0

    kind = "restarts"
    _params = (
        Param("period", "int", "length of the first cycle (torch: T_0, timm: t_initial)"),
        Param("mult", "real", "cycle length multiplier, 1..1000 (torch: T_mult, timm: cycle_mul)"),
        Param("decay", "real", "peak multiplier per cycle, in [0, 1] (timm: cycle_decay)"),
        Param("floor", "real", "multiplier at the end of each cycle (torch: eta_min / lr)"),
    )
    _positional = 1
    summary = "cosine with warm restarts (SGDR)"
    example = "restarts(500, mult=2.0, decay=0.8, floor=0.01)"
    torch = (
        "CosineAnnealingWarmRestarts(T_0=period, T_mult=mult, eta_min=floor*lr) (decay=1, int mult)"
    )
    hf = "get_cosine_with_hard_restarts_schedule_with_warmup (period=(n - w) / num_cycles)"

    def __post_init__(self) -> None:
        _set(self, "period", _count("period", self.period, minimum=1))
        _set(self, "mult", check_real("mult", self.mult, minimum=1.0, maximum=1000.0))
        _set(self, "decay", _fraction("decay", self.decay))
        _set(self, "floor", _fraction("floor", self.floor))

    def _cycle(self, cycle: int) -> tuple[float, float]:
        """Start and length of cycle ``cycle`` (real numbers when ``mult`` is fractional)."""
        grown = self.mult**cycle
        return self.period * (grown - 1.0) / (self.mult - 1.0), self.period * grown

    def _at(self, step: int) -> float:
        if self.mult == 1.0:
            cycle, t_cur = divmod(step, self.period)
            length: float = self.period
            pos: float = t_cur
        else:
            t = float(step)  # as the numpy path does, also beyond 2**53
            m = self.mult
            cycle = int(math.log1p(t * ((m - 1.0) / self.period)) / math.log(m))
            start, length = self._cycle(cycle)
            for _ in range(4):  # same boundary repair as the numpy path
                if cycle > 0 and start > t:
                    cycle -= 1
                elif start + length <= t:
                    cycle += 1
                else:
                    break
                start, length = self._cycle(cycle)
            pos = t - start
        peak = self.decay**cycle
        return float(
            self.floor + (peak - self.floor) * (1.0 + math.cos(math.pi * pos / length)) / 2.0
        )

    def _values(self, steps: I64) -> F64:
        if self.mult == 1.0:
            cycle_i = steps // self.period
            pos = (steps - cycle_i * self.period).astype(np.float64)
            cycle = cycle_i.astype(np.float64)
            length: F64 | float = float(self.period)
        else:
            t = steps.astype(np.float64)
            m = self.mult
            cycle = np.floor(np.log1p(t * ((m - 1.0) / self.period)) / math.log(m))
            grown = np.power(m, cycle)
            start = self.period * (grown - 1.0) / (m - 1.0)
            length = self.period * grown
            for _ in range(4):  # repair rounding at cycle boundaries (exact for integer mult)
                down = (cycle > 0) & (start > t)
                up = (start + length <= t) & ~down
                if not (down.any() or up.any()):
                    break
                cycle = cycle - down + up
                grown = np.power(m, cycle)
                start = self.period * (grown - 1.0) / (m - 1.0)
                length = self.period * grown
            pos = t - start
        peak = np.power(self.decay, cycle)
        return _as_float(
            self.floor + (peak - self.floor) * (1.0 + np.cos(math.pi * pos / length)) / 2.0
        )


# ---------------------------------------------------------------------------------- cyclic
_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


@dataclass(frozen=True, repr=False)
class Cyclic(_Kind):
    """Cyclical learning rate (CLR) between ``low`` and 1.0, torch's formula exactly.

    Example:
        >>> s = Cyclic(10, low=0.1)
        >>> s(0), s(10), s(20)
        (0.1, 1.0, 0.1)
    """

    up: int
    _: KW_ONLY
    down: int | None = None
    low: float = 0.1
    mode: str = "triangular"
    gamma: float = 1.0

    kind = "cyclic"
    _params = (
        Param("up", "int", "steps from low to peak (torch: step_size_up)"),
        Param("down", "int?", "steps from peak to low; default = up (torch: step_size_down)"),
        Param("low", "real", "bottom of the cycle, in [0, 1] (torch: base_lr / max_lr)"),
        Param("mode", "choice", "amplitude policy", _CYCLIC_MODES),
        Param("gamma", "real", "exp_range factor per step, in (0, 1]"),
    )
    _positional = 1
    summary = "triangular cycles between `low` and 1"
    example = "cyclic(2000, low=0.1, mode=triangular2)"
    torch = (
        "CyclicLR(base_lr=low*lr, max_lr=lr, step_size_up=up, step_size_down=down, "
        "mode=mode, gamma=gamma, cycle_momentum=False)"
    )

    def __post_init__(self) -> None:
        _set(self, "up", _count("up", self.up, minimum=1))
        if self.down is not None:
            _set(self, "down", _count("down", self.down, minimum=0))
        _set(self, "low", _fraction("low", self.low))
        _set(self, "mode", check_choice("mode", self.mode, _CYCLIC_MODES))
        gamma = check_real("gamma", self.gamma, minimum=0.0, maximum=1.0, min_inclusive=False)
        _set(self, "gamma", gamma)

    @property
    def _total(self) -> float:
        return float(self.up) + float(self.up if self.down is None else self.down)

    def _at(self, step: int) -> float:
        total = self._total
        ratio = self.up / total
        cycle = math.floor(1 + step / total)
        x = 1.0 + step / total - cycle
        factor = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        height = (1.0 - self.low) * factor
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = 0.5 ** (cycle - 1)  # torch: 1 / 2 ** (cycle - 1), which overflows
        else:
            scale = self.gamma**step
        return float(self.low + height * scale)

    def _values(self, steps: I64) -> F64:
        total = self._total
        ratio = self.up / total
        t = steps.astype(np.float64)
        a = 1 + t / total  # torch: cycle = floor(1 + t / total), x = 1 + t / total - cycle
        cycle = np.floor(a)
        x = a - cycle
        if ratio == 1.0:
            factor = x / ratio
        else:
            factor = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        height = (1.0 - self.low) * factor
        if self.mode == "triangular":
            return _as_float(self.low + height * 1.0)
        if self.mode == "triangular2":
            # 0.5 ** (cycle - 1), exactly, without overflow or a pow per step
            scale = np.ldexp(1.0, (1 - cycle).astype(np.int64))
            return _as_float(self.low + height * scale)
        return _as_float(self.low + height * np.power(self.gamma, t))


# ---------------------------------------------------------------------------------- one-cycle
_ANNEAL = ("cos", "linear")


@dataclass(frozen=True, repr=False)
class OneCycle(_Kind):
    """1cycle policy with the user's learning rate as the peak (multiplier 1.0), torch's phases.

    Starts at ``1 / div_factor``, rises to 1 over ``pct_start`` of ``steps``, then anneals to
    ``1 / (div_factor * final_div_factor)`` at step ``steps - 1`` and holds it. Momentum (or
    Adam's beta1) cycles inversely between ``max_momentum`` and ``base_momentum``.

    Example:
        >>> s = OneCycle(100)
        >>> round(s(0), 12), s(29), round(s(99), 12)
        (0.04, 1.0, 4e-06)
    """

    steps: int
    _: KW_ONLY
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False
    max_momentum: float = 0.95
    base_momentum: float = 0.85
    cycle_momentum: bool = True
    _table: tuple[tuple[float, float, float, float, float], ...] = field(
        init=False, repr=False, compare=False
    )

    kind = "onecycle"
    _params = (
        Param("steps", "int", "length of the cycle (torch: total_steps)"),
        Param("pct_start", "real", "fraction of the cycle spent rising, in (0, 1)"),
        Param("div_factor", "real", "peak / starting learning rate, > 0"),
        Param("final_div_factor", "real", "starting / final learning rate, > 0"),
        Param("anneal", "choice", "annealing curve (torch: anneal_strategy)", _ANNEAL),
        Param("three_phase", "bool", "use the paper's symmetric three-phase variant"),
        Param("max_momentum", "real", "momentum / beta1 at the start and the end"),
        Param("base_momentum", "real", "momentum / beta1 at the peak"),
        Param("cycle_momentum", "bool", "cycle momentum (or Adam's beta1) inversely"),
    )
    _positional = 1
    summary = "1cycle: warm up to the peak, anneal far below the start"
    example = "onecycle(10000, pct_start=0.25, anneal=linear)"
    torch = (
        "OneCycleLR(max_lr=lr, total_steps=steps, ...same names...); holds the final value "
        "after steps (torch raises)"
    )

    def __post_init__(self) -> None:
        steps = _count("steps", self.steps, minimum=2)
        _set(self, "steps", steps)
        pct = check_real("pct_start", self.pct_start, minimum=0.0, maximum=1.0)
        _set(self, "pct_start", pct)
        for name in ("div_factor", "final_div_factor"):
            value = check_real(name, getattr(self, name), minimum=0.0, min_inclusive=False)
            _set(self, name, value)
        # the cycle starts at 1 / div_factor and ends at 1 / (div_factor * final_div_factor)
        if 1.0 / self.div_factor > MAX_MULTIPLIER:
            fail("div_factor", self.div_factor, f"a number >= {1 / MAX_MULTIPLIER:g}")
        if self._peak() > MAX_MULTIPLIER:
            fail(
                "final_div_factor",
                self.final_div_factor,
                f"a number >= {1 / (MAX_MULTIPLIER * self.div_factor):g} "
                f"(1 / (div_factor * final_div_factor) must be <= {MAX_MULTIPLIER:g})",
            )
        _set(self, "anneal", check_choice("anneal", self.anneal, _ANNEAL))
        for name in ("three_phase", "cycle_momentum"):
            if not isinstance(getattr(self, name), bool):
                fail(name, getattr(self, name), "True or False")
        _set(self, "max_momentum", _fraction("max_momentum", self.max_momentum))
        _set(self, "base_momentum", _fraction("base_momentum", self.base_momentum))
        # every phase needs a positive length, or torch's formula divides by zero
        rise = pct * steps - 1.0
        if self.three_phase:
            ok = rise > 0 and steps - 1.0 - (2.0 * pct * steps - 2.0) > 0
            need = "a fraction with pct_start * steps > 1 and 2 * pct_start * steps < steps + 1"
        else:
            ok = rise > 0 and steps - 1.0 - rise > 0
            need = "a fraction with pct_start * steps > 1 and pct_start < 1"
        if not ok:
            fail("pct_start", self.pct_start, f"{need} (steps={steps})")
        _set(self, "_table", tuple(self._phases()))  # cached: _at runs on every optimizer step

    def _peak(self) -> float:
        initial = 1.0 / self.div_factor
        return max(1.0, initial, initial / self.final_div_factor)

    # phases as torch builds them: (end_step, start_lr, end_lr, start_momentum, end_momentum)
    def _phases(self) -> list[tuple[float, float, float, float, float]]:
        initial = 1.0 / self.div_factor
        low = initial / self.final_div_factor
        hi_m, lo_m = self.max_momentum, self.base_momentum
        n, pct = self.steps, self.pct_start
        if self.three_phase:
            return [
                (float(pct * n) - 1, initial, 1.0, hi_m, lo_m),
                (float(2 * pct * n) - 2, 1.0, initial, lo_m, hi_m),
                (n - 1.0, initial, low, hi_m, hi_m),
            ]
        return [
            (float(pct * n) - 1, initial, 1.0, hi_m, lo_m),
            (n - 1.0, 1.0, low, lo_m, hi_m),
        ]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        # torch's formulas; max(0, .) removes a possible -1e-18 from rounding near a tiny end
        if self.anneal == "cos":
            return max(0.0, end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1))
        return max(0.0, (end - start) * pct + start)

    def _locate(self, step: int) -> tuple[tuple[float, float, float, float, float], float]:
        step_num = min(step, self.steps - 1)
        phases = self._table
        start_step = 0.0
        last = len(phases) - 1
        for i, phase in enumerate(phases):
            end_step = phase[0]
            if step_num <= end_step or i == last:
                return phase, (step_num - start_step) / (end_step - start_step)
            start_step = end_step
        raise AssertionError("unreachable")  # pragma: no cover

    def _at(self, step: int) -> float:
        phase, pct = self._locate(step)
        return self._anneal(phase[1], phase[2], pct)

    def _momentum_at(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        phase, pct = self._locate(step)
        return self._anneal(phase[3], phase[4], pct)

    def _values(self, steps: I64) -> F64:
        t = np.minimum(steps, self.steps - 1).astype(np.float64)
        out = np.empty(t.shape, dtype=np.float64)
        phases = self._table
        start_step = 0.0
        done = np.zeros(t.shape, dtype=bool)
        for i, (end_step, first, last, _m0, _m1) in enumerate(phases):
            mask = ~done if i == len(phases) - 1 else (~done & (t <= end_step))
            pct = (t[mask] - start_step) / (end_step - start_step)
            if self.anneal == "cos":
                out[mask] = np.maximum(
                    0.0, last + (first - last) / 2.0 * (np.cos(math.pi * pct) + 1)
                )
            else:
                out[mask] = np.maximum(0.0, (last - first) * pct + first)
            done |= mask
            start_step = end_step
        return out


# ---------------------------------------------------------------------------------- inverse sqrt
@dataclass(frozen=True, repr=False)
class InverseSqrt(_Kind):
    """``1 / sqrt((step + timescale) / timescale)``: 1 at step 0, then ~ step ** -0.5.

    Example:
        >>> InverseSqrt(100)(300)
        0.5
    """

    timescale: int

    kind = "inverse_sqrt"
    _params = (Param("timescale", "int", "steps over which the decay sets in (HF: timescale)"),)
    _positional = 1
    summary = "inverse square root decay (transformers)"
    example = "inverse_sqrt(4000)"
    hf = "get_inverse_sqrt_schedule (as warmup(w, inverse_sqrt(timescale), start=0.0))"

    def __post_init__(self) -> None:
        _set(self, "timescale", _count("timescale", self.timescale, minimum=1))

    def _at(self, step: int) -> float:
        return 1.0 / math.sqrt((step + self.timescale) / self.timescale)

    def _values(self, steps: I64) -> F64:
        t = steps.astype(np.float64)
        return _as_float(1.0 / np.sqrt((t + self.timescale) / self.timescale))


# ---------------------------------------------------------------------------------- wsd
_COOLDOWNS = ("linear", "cosine", "sqrt")


@dataclass(frozen=True, repr=False)
class WSD(_Kind):
    """Warmup-stable-decay without its warmup: 1 for ``stable`` steps, then a cooldown of
    ``decay`` steps to ``floor``, then ``floor``. Put :func:`~lrkit.schedules.warmup` in front.

    Example:
        >>> s = WSD(80, 20, cooldown="linear")
        >>> s(79), s(90), s(100)
        (1.0, 0.5, 0.0)
    """

    stable: int
    decay: int
    _: KW_ONLY
    cooldown: str = "cosine"
    floor: float = 0.0
    cycles: float = 0.5

    kind = "wsd"
    _params = (
        Param("stable", "int", "steps at the peak (HF: num_stable_steps)"),
        Param("decay", "int", "length of the cooldown (HF: num_decay_steps)"),
        Param("cooldown", "choice", "cooldown curve; sqrt is HF's '1-sqrt'", _COOLDOWNS),
        Param("floor", "real", "multiplier after the cooldown, in [0, 1] (HF: min_lr_ratio)"),
        Param("cycles", "real", "cosine waves in the cooldown, at most 1e6 (HF: num_cycles)"),
    )
    _positional = 2
    summary = "stable at the peak, then a short cooldown (MiniCPM / WSD)"
    example = "warmup(500, wsd(8000, 1500, cooldown=sqrt), start=0.0)"
    hf = (
        "get_wsd_schedule(num_warmup_steps=w, num_stable_steps=stable, num_decay_steps=decay, "
        "decay_type=cooldown, min_lr_ratio=floor) as warmup(w, wsd(...), start=floor)"
    )

    def __post_init__(self) -> None:
        _set(self, "stable", _count("stable", self.stable, minimum=0))
        _set(self, "decay", _count("decay", self.decay, minimum=0))
        _set(self, "cooldown", check_choice("cooldown", self.cooldown, _COOLDOWNS))
        _set(self, "floor", _fraction("floor", self.floor))
        cycles = check_real("cycles", self.cycles, minimum=0.0, min_inclusive=False)
        if cycles > 1e6:  # cos() of a non-finite angle would be NaN
            fail("cycles", self.cycles, "a number in (0, 1e6]")
        _set(self, "cycles", cycles)

    def _at(self, step: int) -> float:
        if step < self.stable:
            return 1.0
        if step >= self.stable + self.decay:
            return self.floor
        progress = float(step - self.stable) / float(max(1, self.decay))
        if self.cooldown == "linear":
            factor = 1.0 - progress
        elif self.cooldown == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * float(self.cycles) * 2.0 * progress))
        else:
            factor = 1.0 - math.sqrt(progress)
        return max(0.0, factor * (1.0 - self.floor) + self.floor)

    def _values(self, steps: I64) -> F64:
        out = np.ones(steps.shape, dtype=np.float64)
        local = steps - self.stable  # no int64 overflow for stable + decay up to 2**63
        out[local >= self.decay] = self.floor
        mask = (local >= 0) & (local < self.decay)
        progress = local[mask].astype(np.float64) / float(max(1, self.decay))
        if self.cooldown == "linear":
            factor = 1.0 - progress
        elif self.cooldown == "cosine":
            factor = 0.5 * (1.0 + np.cos(math.pi * float(self.cycles) * 2.0 * progress))
        else:
            factor = 1.0 - np.sqrt(progress)
        out[mask] = np.maximum(0.0, factor * (1.0 - self.floor) + self.floor)
        return out


# ---------------------------------------------------------------------------------- plateau
@dataclass(frozen=True, repr=False)
class Plateau(_Kind):
    """Reduce-on-plateau: ``max(min_scale, factor ** k)``, ``k`` = cuts at or before the step.

    The cuts already made are part of the value (``reductions``, local steps, sorted), so the
    schedule stays a pure function of the step. The metric logic (mode, threshold, patience,
    cooldown) lives in :class:`~lrkit.schedules.PlateauTracker`; the adapter records a cut with
    :meth:`reduce_at`.

    Example:
        >>> p = Plateau(factor=0.5).reduce_at(10).reduce_at(20)
        >>> p(9), p(10), p(25)
        (1.0, 0.5, 0.25)
        >>> str(p)
        'plateau(factor=0.5, reductions=[10, 20])'
    """

    _: KW_ONLY
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    mode: str = "min"
    cooldown: int = 0
    min_scale: float = 0.0
    eps: float = 1e-8
    reductions: tuple[int, ...] = ()

    kind = "plateau"
    _params = (
        Param("factor", "real", "cut factor, in (0, 1)"),
        Param("patience", "int", "metric observations without improvement before a cut"),
        Param("threshold", "real", "minimum improvement that counts"),
        Param("threshold_mode", "choice", "improvement relative or absolute", ("rel", "abs")),
        Param("mode", "choice", "min: lower metric is better; max: higher", ("min", "max")),
        Param("cooldown", "int", "observations ignored after a cut"),
        Param("min_scale", "real", "lowest multiplier, in [0, 1] (torch: min_lr / lr)"),
        Param("eps", "real", "smallest learning-rate change applied (torch: eps)"),
        Param("reductions", "ints", "steps at which the learning rate was already cut"),
    )
    _positional = 0
    summary = "cut by `factor` when the metric stops improving (stateful)"
    example = "warmup(500, plateau(factor=0.5, patience=3))"
    torch = (
        "ReduceLROnPlateau(mode, factor, patience, threshold, threshold_mode, cooldown, "
        "min_lr=min_scale*lr, eps)"
    )
    hf = "get_reduce_on_plateau_schedule"

    def __post_init__(self) -> None:
        factor = check_real(
            "factor",
            self.factor,
            minimum=0.0,
            maximum=1.0,
            min_inclusive=False,
            max_inclusive=False,
        )
        _set(self, "factor", factor)
        _set(self, "patience", _count("patience", self.patience, minimum=0))
        _set(self, "threshold", check_real("threshold", self.threshold, minimum=0.0))
        mode = check_choice("threshold_mode", self.threshold_mode, ("rel", "abs"))
        _set(self, "threshold_mode", mode)
        _set(self, "mode", check_choice("mode", self.mode, ("min", "max")))
        _set(self, "cooldown", _count("cooldown", self.cooldown, minimum=0))
        _set(self, "min_scale", _fraction("min_scale", self.min_scale))
        _set(self, "eps", check_real("eps", self.eps, minimum=0.0))
        _set(self, "reductions", _sorted_steps("reductions", self.reductions))

    def _at(self, step: int) -> float:
        k = bisect_right(self.reductions, step)
        return max(self.min_scale, self.factor**k)

    def _values(self, steps: I64) -> F64:
        counts = np.searchsorted(np.asarray(self.reductions, dtype=np.int64), steps, side="right")
        return _as_float(np.maximum(self.min_scale, np.power(self.factor, counts.astype(float))))

    @property
    def stateful(self) -> bool:
        return True

    def active_plateau(self, step: int) -> Plateau | None:
        return self

    def reduce_at(self, step: int) -> Plateau:
        """A copy that has also cut the learning rate at (local) ``step``."""
        step = _count("step", step, minimum=0)
        return replace(self, reductions=(*self.reductions, step))

    def can_reduce(self, step: int) -> bool:
        """True when a cut at ``step`` would lower the multiplier (it is above ``min_scale``)."""
        return self._at(check_int("step", step, minimum=0)) > self.min_scale


KIND_CLASSES: tuple[type[_Kind], ...] = (
    Constant,
    Step,
    MultiStep,
    Exponential,
    Linear,
    Polynomial,
    Cosine,
    Restarts,
    Cyclic,
    OneCycle,
    InverseSqrt,
    WSD,
    Plateau,
)
