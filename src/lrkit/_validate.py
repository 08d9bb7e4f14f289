"""Input checks shared by every public function.

Every message names the argument and the value, in one format::

    ValueError: warmup must be an integer >= 0, but got warmup=-3
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import NoReturn

__all__ = [
    "fail",
    "check_choice",
    "check_int",
    "check_real",
]


def fail(name: str, value: object, expected: str) -> NoReturn:
    """Raise the one ValueError format used across lrkit (a very long value is shortened)."""
    text = repr(value)
    if len(text) > 100:
        text = f"{text[:60]}...{text[-20:]} ({len(text)} characters)"
    raise ValueError(f"{name} must be {expected}, but got {name}={text}")


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise when it is not a whole number >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            fail(name, value, "an integer" + (f" >= {minimum}" if minimum is not None else ""))
    result = int(value)
    if minimum is not None and result < minimum:
        fail(name, value, f"an integer >= {minimum}")
    return result


def check_real(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite float within the given bounds, or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, Real):
        fail(name, value, "a finite number")
    try:
        result = float(value)
    except OverflowError:  # an int beyond the float range
        fail(name, value, "a finite number")
    if not math.isfinite(result):
        fail(name, value, "a finite number")
    if minimum is not None and (result < minimum or (not min_inclusive and result == minimum)):
        fail(name, value, f"a number {'>=' if min_inclusive else '>'} {minimum:g}")
    if maximum is not None and (result > maximum or (not max_inclusive and result == maximum)):
        fail(name, value, f"a number {'<=' if max_inclusive else '<'} {maximum:g}")
    return result


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` when it is one of ``choices``; otherwise list the valid ones."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        fail(name, value, "one of " + ", ".join(repr(c) for c in options))
    return value
