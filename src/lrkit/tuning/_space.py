"""The search space: a small declarative form, validated, turned into Optuna suggestions.

A space maps parameter names to one of

* ``("log", low, high)``: a float drawn log-uniformly from ``[low, high]`` (``0 < low < high``),
* ``("float", low, high)``: a float drawn uniformly from ``[low, high]`` (``low < high``),
* ``("int", low, high)``: an integer from ``low`` to ``high`` inclusive (``low < high``),
* ``("logint", low, high)``: an integer drawn on a log scale (``1 <= low < high``),
* ``[a, b, c]``: one of the listed choices (strings such as schedule specs, numbers, ``None``),
* a plain number, string, bool or ``None``: a constant passed through unchanged.

Example:
    >>> space = parse_space({"lr": ("log", 1e-5, 1e-1), "schedule": ["cosine(1000)", "constant()"]})
    >>> [p.name for p in space]
    ['lr', 'schedule']
    >>> grid_values(space[0], per_decade=1)
    [1e-05, 0.0001, 0.001, 0.01, 0.1]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lrkit._validate import fail

__all__ = [
    "DEFAULT_LR_RANGE",
    "Param",
    "default_space",
    "grid_values",
    "parse_space",
    "space_to_dict",
]

#: The default learning-rate range: wide enough for SGD and Adam alike.
DEFAULT_LR_RANGE = (1e-6, 1.0)

_RANGE_KINDS = ("log", "float", "int", "logint")
Choice = str | int | float | bool | None


@dataclass(frozen=True)
class Param:
    """One searched (or constant) parameter of the space."""

    name: str
    kind: str  # "log", "float", "int", "logint", "choice" or "const"
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Choice, ...] = ()

    def describe(self) -> object:
        """The declarative form this parameter was parsed from (JSON friendly)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "const":
            return self.choices[0]
        if self.kind in ("int", "logint"):
            return [self.kind, int(self.low), int(self.high)]
        return [self.kind, self.low, self.high]


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        fail(name, value, "a finite number")
    return float(value)


def _parse_param(name: str, spec: object) -> Param:
    label = f"space[{name!r}]"
    if isinstance(spec, tuple):
        if len(spec) != 3 or not isinstance(spec[0], str) or spec[0] not in _RANGE_KINDS:
            fail(
                label,
                spec,
                "a range (kind, low, high) with kind one of "
                + ", ".join(repr(k) for k in _RANGE_KINDS)
                + ", a list of choices, or a constant",
            )
        kind = spec[0]
        low = _number(f"{label} low", spec[1])
        high = _number(f"{label} high", spec[2])
        if low == high:
            fail(label, spec, f"a non-empty range (low < high); this range is empty ({low:g})")
        if low > high:
            fail(label, spec, f"a range with low < high; this one is inverted ({low:g} > {high:g})")
        if kind in ("int", "logint") and not (low.is_integer() and high.is_integer()):
            fail(label, spec, "a range with whole-number bounds")
        if kind == "log" and low <= 0:
            fail(label, spec, "a log range with 0 < low < high")
        if kind == "logint" and low < 1:
            fail(label, spec, "a log-int range with 1 <= low < high")
        return Param(name, kind, low, high)
    if isinstance(spec, list):
        if not spec:
            fail(label, spec, "a non-empty list of choices")
        for choice in spec:
            if choice is not None and not isinstance(choice, str | int | float | bool):
                fail(label, spec, "a list of strings, numbers, bools or None")
            if isinstance(choice, float) and not math.isfinite(choice):
                fail(label, spec, "a list of finite choices")
        if len(set(map(repr, spec))) != len(spec):
            fail(label, spec, "a list of distinct choices")
        if name == "schedule":
            _check_schedules(label, spec)
        return Param(name, "choice", choices=tuple(spec))
    if spec is None or isinstance(spec, str | int | float | bool):
        if isinstance(spec, float) and not math.isfinite(spec):
            fail(label, spec, "a finite constant")
        return Param(name, "const", choices=(spec,))
    fail(label, spec, "a range tuple (kind, low, high), a list of choices, or a constant")


def _check_schedules(label: str, specs: Sequence[object]) -> None:
    """Schedule choices must parse as schedule specs (validated now, not mid-study)."""
    try:
        from lrkit.schedules import parse
    except ImportError:  # pragma: no cover - schedules ship with lrkit
        return
    for spec in specs:
        if not isinstance(spec, str):
            fail(label, specs, "a list of schedule spec strings, e.g. ['cosine(1000)']")
        try:
            parse(spec)
        except ValueError as exc:
            raise ValueError(f"{label} has an invalid schedule spec {spec!r}: {exc}") from None


def parse_space(space: object) -> list[Param]:
    """Validate a declarative space and return its parameters in a fixed (given) order.

    ``None`` means the default space: the learning rate, log-uniform over ``1e-6 .. 1``.
    Raises ValueError naming the parameter for empty, inverted or malformed ranges.
    """
    if space is None:
        return default_space()
    if not isinstance(space, Mapping):
        fail("space", space, "None, 'auto' or a mapping of parameter name to range/choices")
    if not space:
        fail("space", space, "a non-empty mapping of parameter name to range/choices")
    params = []
    for name, spec in space.items():
        if not isinstance(name, str) or not name:
            fail("space", space, "a mapping with non-empty string keys")
        params.append(_parse_param(name, spec))
    if all(p.kind == "const" for p in params):
        fail("space", space, "a space with at least one searched parameter")
    return params


def default_space(
    low: float = DEFAULT_LR_RANGE[0], high: float = DEFAULT_LR_RANGE[1]
) -> list[Param]:
    """The learning rate alone, log-uniform over ``[low, high]``."""
    return [_parse_param("lr", ("log", low, high))]


def space_to_dict(space: Sequence[Param]) -> dict[str, object]:
    """The JSON-friendly declarative form of a parsed space."""
    return {p.name: p.describe() for p in space}


def grid_values(param: Param, *, per_decade: int = 3, points: int = 5) -> list[Any]:
    """The grid values of one parameter.

    Log ranges get ``per_decade`` points per decade (3: about 1, 2.15, 4.64 x 10^k), always
    including both ends; float ranges ``points`` evenly spaced values; integer ranges every
    integer when there are at most ``points * 2`` of them, else ``points`` spread values;
    choices all of them; constants their value.
    """
    if param.kind == "choice" or param.kind == "const":
        return list(param.choices)
    if param.kind == "log":
        decades = math.log10(param.high / param.low)
        count = max(2, int(round(decades * per_decade)) + 1)
        return [
            _round(param.low * (param.high / param.low) ** (i / (count - 1))) for i in range(count)
        ]
    if param.kind == "float":
        return [
            _round(param.low + (param.high - param.low) * i / (points - 1)) for i in range(points)
        ]
    low, high = int(param.low), int(param.high)
    if high - low + 1 <= points * 2:
        return list(range(low, high + 1))
    if param.kind == "logint":
        raw = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    else:
        raw = [low + (high - low) * i / (points - 1) for i in range(points)]
    return sorted({int(round(v)) for v in raw})


def _round(value: float) -> float:
    """Round to 12 significant digits so grid points print cleanly (1e-05, not 9.999999e-06)."""
    return float(f"{value:.12g}")
