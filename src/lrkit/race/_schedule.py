"""The user's schedule, as the race trains it: completed for the run length, and compressed.

``resolve_schedule("warmup(10, cosine)", 300)`` fills every missing decay length (``cosine``,
``linear``, ``polynomial``, ``onecycle`` without ``steps``) so that the decay ends with the run:
``warmup(10, cosine(290))``. A full spec is taken as it is.

``compress(schedule, 300, 30)`` is the same schedule played ten times faster: every length in
it (decay lengths, warmups, step sizes, milestones, cycle lengths, join boundaries) is divided
by ten, and a per-step factor (``exponential``) is raised to the tenth power, so a 30-step rung
ends its decay just as the full run does (the race's answer to short-horizon bias). The result
is an ordinary :class:`~lrkit.schedules.Schedule` (its spec parses back).
"""

from __future__ import annotations

import dataclasses
import re

from lrkit._validate import check_int, fail
from lrkit.schedules import Schedule, parse
from lrkit.schedules._spec import SpecError

__all__ = ["COMPRESS_MODES", "compress", "resolve_schedule", "rung_schedule"]

#: how a rung shorter than the run plays the schedule: "warmup" (the warmup scaled to the
#: rung, then the run's schedule as it starts), "all" (the whole schedule replayed over the
#: rung) or "none" (the first steps of the run's schedule as they are)
COMPRESS_MODES = ("warmup", "all", "none")

#: a placeholder for a missing decay length (any value a user would never write)
_MISSING = 987_654_321
#: int parameters that are lengths in steps, by kind
_LENGTHS: dict[str, tuple[str, ...]] = {
    "cosine": ("steps",),
    "linear": ("steps",),
    "polynomial": ("steps",),
    "onecycle": ("steps",),
    "warmup": ("steps",),
    "step": ("size",),
    "multistep": ("milestones",),
    "restarts": ("period",),
    "cyclic": ("up", "down"),
    "inverse_sqrt": ("timescale",),
    "wsd": ("stable", "decay"),
    "join": ("boundaries",),
}
#: a bare kind name right before the position the parser complains at
_BARE_KIND = re.compile(r"(?<![=\w])\s*(cosine|linear|polynomial|onecycle)\s*$")


def _fill_missing(spec: str) -> str:
    """``spec`` with ``steps=<placeholder>`` wherever a kind lacks its required ``steps``."""
    text = spec
    for _ in range(64):  # at most one insertion per kind in the spec
        try:
            parse(text)
            return text
        except SpecError as exc:
            if "missing parameter 'steps'" not in exc.reason:
                raise
            pos = exc.position
            if _BARE_KIND.search(text[:pos]):  # a bare kind name: ``cosine``
                insert = f"(steps={_MISSING})"
            elif text[:pos].rstrip().endswith("("):  # ``cosine()``
                insert = f"steps={_MISSING}"
            else:  # ``cosine(floor=0.1)``
                insert = f", steps={_MISSING}"
            text = text[:pos] + insert + text[pos:]
    return text  # pragma: no cover - parse() below raises the real error


def _complete(schedule: Schedule, steps: int) -> Schedule:
    """Replace placeholders by the steps left for that part of a ``steps``-step run."""
    kind = schedule.kind
    changes: dict[str, object] = {}
    if kind == "warmup":
        w = schedule.steps  # type: ignore[attr-defined]
        if w == _MISSING:
            fail("schedule", str(schedule), "a warmup with its length, e.g. warmup(100, ...)")
        changes["schedule"] = _complete(schedule.schedule, max(1, steps - w))  # type: ignore[attr-defined]
    elif kind == "join":
        bounds = (0, *schedule.boundaries, steps)  # type: ignore[attr-defined]
        changes["pieces"] = tuple(
            _complete(p, max(1, bounds[i + 1] - bounds[i]))
            for i, p in enumerate(schedule.pieces)  # type: ignore[attr-defined]
        )
    elif kind in ("floor", "scale"):
        changes["schedule"] = _complete(schedule.schedule, steps)  # type: ignore[attr-defined]
    elif getattr(schedule, "steps", None) == _MISSING:
        changes["steps"] = steps
    return dataclasses.replace(schedule, **changes) if changes else schedule  # type: ignore[type-var]


def resolve_schedule(spec: str | Schedule, total_steps: int) -> Schedule:
    """The schedule of a ``total_steps``-step run from ``spec``; missing decay lengths end with
    the run (the part after a warmup, or a join's piece, gets the steps left to it).

    Example:
        >>> str(resolve_schedule("warmup(10, cosine)", 300))
        'warmup(10, cosine(290))'
        >>> str(resolve_schedule("cosine(100, floor=0.1)", 300))
        'cosine(100, floor=0.1)'
    """
    total_steps = check_int("total_steps", total_steps, minimum=1)
    if isinstance(spec, Schedule):
        return spec
    if not isinstance(spec, str):
        fail("schedule", spec, "a schedule spec such as 'cosine' or 'warmup(100, cosine)'")
    return _complete(parse(_fill_missing(spec)), total_steps)


def _scaled(value: int, factor: float) -> int:
    """A length divided by ``factor``: whole steps, and no non-zero length becomes 0."""
    return max(min(value, 1), round(value / factor))


def compress(schedule: Schedule, total_steps: int, steps: int) -> Schedule:
    """``schedule`` (of a ``total_steps`` run) replayed over ``steps`` steps.

    Example:
        >>> from lrkit.schedules import parse
        >>> str(compress(parse("warmup(30, cosine(270))"), 300, 30))
        'warmup(3, cosine(27))'
        >>> str(compress(parse("exponential(0.99)"), 300, 150))
        'exponential(0.9801)'
    """
    total_steps = check_int("total_steps", total_steps, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    if steps == total_steps:
        return schedule
    return _compress(schedule, total_steps / steps)


def rung_schedule(schedule: Schedule, total_steps: int, steps: int, mode: str) -> Schedule:
    """The schedule a ``steps``-step rung trains with (see :data:`COMPRESS_MODES`).

    Example:
        >>> from lrkit.schedules import parse
        >>> full = parse("warmup(30, cosine(270))")
        >>> [str(rung_schedule(full, 300, 30, m)) for m in ("warmup", "all", "none")]
        ['warmup(3, cosine(270))', 'warmup(3, cosine(27))', 'warmup(30, cosine(270))']
    """
    if mode == "none" or steps >= total_steps:
        return schedule
    if mode == "all":
        return compress(schedule, total_steps, steps)
    factor = total_steps / steps
    if schedule.kind != "warmup":
        return schedule
    w = schedule.steps  # type: ignore[attr-defined]
    return dataclasses.replace(schedule, steps=_scaled(w, factor))  # type: ignore[type-var]


def _compress(schedule: Schedule, factor: float) -> Schedule:
    changes: dict[str, object] = {}
    for name in _LENGTHS.get(schedule.kind, ()):
        value = getattr(schedule, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            scaled: list[int] = []
            for v in value:  # keep milestones / boundaries strictly increasing
                s = _scaled(v, factor)
                scaled.append(max(s, scaled[-1] + 1) if scaled else s)
            changes[name] = tuple(scaled)
        else:
            changes[name] = _scaled(value, factor)
    if schedule.kind == "exponential":
        changes["gamma"] = float(f"{schedule.gamma**factor:.6g}")  # type: ignore[attr-defined]
    for name in ("schedule",):
        inner = getattr(schedule, name, None)
        if isinstance(inner, Schedule):
            changes[name] = _compress(inner, factor)
    pieces = getattr(schedule, "pieces", None)
    if isinstance(pieces, tuple):
        changes["pieces"] = tuple(_compress(p, factor) for p in pieces)
    if not changes:
        return schedule
    return dataclasses.replace(schedule, **changes)  # type: ignore[type-var]
