"""Key points of a learning-rate curve: start, end of warmup, phase changes, drops, restarts.

Used by ``lrkit schedule`` (its table) and by the schedule plot (its marks). The detection is
numeric, on the evaluated curve, so it works for every kind and every composition alike:

- a *drop* / *restart* is a jump: one step whose change dwarfs its neighbours' changes
  (milestones of step decay, warm restarts);
- a *peak* / *trough* is where the curve turns;
- the *warmup end* is the first step after a :class:`~lrkit.schedules.Warmup` (read from the
  schedule's structure by :func:`warmup_steps`, not guessed from the curve);
- a *phase change* is a kink (the slope changes abruptly: stable -> linear decay) or where the
  curve starts or stops moving (a cosine reaching its floor, a cosine cooldown starting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lrkit.schedules._base import Schedule

__all__ = ["KeyPoint", "key_points", "warmup_steps"]


@dataclass(frozen=True)
class KeyPoint:
    """A step worth showing, with a short label ("start", "warmup end", "drop", ...)."""

    step: int
    label: str


def warmup_steps(schedule: Schedule) -> int | None:
    """Length of the warmup in front of ``schedule`` (looking through scale / floor), or None.

    Example:
        >>> from lrkit.schedules import parse
        >>> warmup_steps(parse("scale(warmup(100, cosine(900)), 0.5)"))
        100
    """
    from lrkit.schedules._compose import Floor, Join, Scale, Warmup

    node: Schedule = schedule
    while True:
        if isinstance(node, Warmup):
            return node.steps
        if isinstance(node, (Scale, Floor)):
            node = node.schedule
        elif isinstance(node, Join):
            node = node.pieces[0]
        else:
            return None


def key_points(
    values: ArrayLike, *, warmup: int | None = None, limit: int = 8
) -> tuple[list[KeyPoint], int]:
    """Find the key points of a curve ``values[step]``; return ``(points, omitted)``.

    ``points`` always holds the start and the end; at most ``limit`` points in between are
    kept (the first ones) and ``omitted`` counts the others. ``warmup`` (see
    :func:`warmup_steps`) labels that step "warmup end".

    Example:
        >>> import numpy as np
        >>> curve = np.r_[np.linspace(0.1, 1, 10), np.ones(10), np.linspace(1, 0, 11)[1:]]
        >>> [(p.step, p.label) for p in key_points(curve, warmup=9)[0]]
        [(0, 'start'), (9, 'warmup end'), (19, 'phase change'), (29, 'end')]
    """
    v = np.asarray(values, dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return [], 0
    if n == 1:
        return [KeyPoint(0, "start")], 0
    d = np.diff(v)  # d[i] = v[i+1] - v[i]
    span = float(np.max(v) - np.min(v))
    found: dict[int, str] = {}
    if span > 0 and n >= 3:
        absd = np.abs(d)
        left = np.r_[0.0, absd[:-1]]
        right = np.r_[absd[1:], 0.0]
        jumps = (absd > 4.0 * np.maximum(left, right)) & (absd > 1e-6 * span)
        jump_steps = set((np.flatnonzero(jumps) + 1).tolist())
        for s in sorted(jump_steps):
            found[s] = "restart" if d[s - 1] > 0 else "drop"
        # slope into step i is d[i-1], out of step i is d[i], for i in 1..n-2
        d_in, d_out = d[:-1], d[1:]
        change = np.abs(d_out - d_in)
        tiny = 1e-12 * max(span, 1.0)
        # a kink is an isolated spike of the second difference: smooth curvature (the start of
        # a cosine) changes the slope as much on the neighbouring steps and is not a kink
        prev_change = np.r_[change[1:2] if change.size > 1 else [0.0], change[:-1]]
        next_change = np.r_[change[1:], change[-2:-1] if change.size > 1 else [0.0]]
        kink = (
            (change > 0.5 * np.maximum(np.abs(d_in), np.abs(d_out)))
            & (change > 0.25 * span / n)
            & (change > 1.5 * np.maximum(prev_change, next_change))
        )
        turn = ((d_in > tiny) & (d_out < -tiny)) | ((d_in < -tiny) & (d_out > tiny))
        turn |= ((d_in > tiny) & (np.abs(d_out) <= tiny)) | ((d_in < -tiny) & (d_out > tiny))
        # the curve starts or stops moving: a decay reaching its floor, a cooldown starting
        flat_in, flat_out = np.abs(d_in) <= tiny, np.abs(d_out) <= tiny
        moving = 1e-6 * span
        edge = (flat_in & (np.abs(d_out) > moving)) | (flat_out & (np.abs(d_in) > moving))
        candidates = np.flatnonzero(kink | turn | edge) + 1
        for s in candidates.tolist():
            if s in jump_steps or (s + 1) in jump_steps or s in found:
                continue
            if (s - 1) in found:  # a kink right after another point is the same event
                continue
            into, out = d[s - 1], d[s]
            if into > tiny and out <= tiny:
                label = "peak"
            elif into < -tiny and out > tiny:
                label = "trough"
            else:
                label = "phase change"
            found[s] = label
    if warmup is not None and 0 < warmup < n - 1:
        for near in (warmup - 1, warmup + 1):  # the ramp's own kink is the same event
            if found.get(near) in ("peak", "phase change"):
                del found[near]
        found[warmup] = "warmup end"
    inner = [KeyPoint(s, found[s]) for s in sorted(found) if 0 < s < n - 1]
    omitted = max(0, len(inner) - limit)
    return [KeyPoint(0, "start"), *inner[:limit], KeyPoint(n - 1, "end")], omitted
