"""The race's plan: which learning rates run (from the range test), and how long each rung is.

Candidates are points of one fixed log lattice (``per_decade`` points a decade: 1, 2.15, 4.64,
10, ... for 3), so the same run gives the same candidates on every machine, and two races on the
same model share their trials. They span the plausible interval the range test shows, from
``LOW_MARGIN`` decades below the point half way down the loss's descent up to ``HIGH_MARGIN``
decades above the edge where the loss climbs back, per schedule family. On the 12 design tasks
of ``benchmarks/race_design.py`` (range tests of 50, 75 and 100 steps, 6 seeds each), the best
lr of a full run lay between 0.73 decades below the half-descent point and 0.17 below the edge
for a constant lr, and between 0.40 below the half-descent point and 0.62 above the edge for
cosine decay (a decaying schedule spends most of its run well below its peak, so its peak can
pass the range test's edge).

Successive halving (Jamieson & Talwalkar 2016) then runs every candidate for a short rung,
keeps the best third (``ETA = 3``, Optuna's and Hyperband's default), and runs those for a rung
three times longer, while at least ``FINAL`` would be left; the last rung decides. Each rung costs
about the same, so the rung lengths follow from the budget: ``sum(count_i * steps_i)`` is the
budget left after the range test. A rung is never longer than the user's run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lrkit._validate import check_int, check_real

if TYPE_CHECKING:
    from lrkit.finder import RangeTest

__all__ = [
    "ETA",
    "FINAL",
    "HIGH_MARGIN",
    "LOW_MARGIN",
    "MIN_RUNG_STEPS",
    "PER_DECADE",
    "Interval",
    "Rung",
    "lattice",
    "plan_rungs",
    "plausible_interval",
]

#: lattice points per decade of learning rate
PER_DECADE = 3
#: the interval starts this many decades below the half-descent lr, by schedule family
LOW_MARGIN = {"constant": 0.8, "cosine": 0.5}
#: ... and ends this many decades above the edge where the loss climbs back
HIGH_MARGIN = {"constant": 0.0, "cosine": 0.7}
#: decades searched below the point where the loss blew up when the curve shows no descent
NO_DESCENT_DECADES = 4.0
#: keep the best 1/ETA of a rung; the next rung is ETA times longer
ETA = 3
#: the last rung holds at least this many candidates (it is the one that decides)
FINAL = 2
#: a rung shorter than this says nothing (a handful of noisy steps)
MIN_RUNG_STEPS = 10
#: fewer candidates than this is not a race
MIN_CANDIDATES = 3


@dataclass(frozen=True)
class Interval:
    """The learning rates worth racing, read off a range test, and why."""

    low: float
    high: float
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"low": self.low, "high": self.high, "reason": self.reason}


@dataclass(frozen=True)
class Rung:
    """One rung of the race: ``count`` candidates trained ``steps`` steps each."""

    count: int
    steps: int

    @property
    def cost(self) -> int:
        return self.count * self.steps

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "steps": self.steps}


def plausible_interval(range_test: RangeTest, family: str = "constant") -> Interval:
    """The interval to race over, from a :class:`~lrkit.finder.RangeTest`, for a schedule
    ``family`` (``"constant"`` or ``"cosine"``, i.e. decaying; see
    :func:`lrkit.finder.schedule_family`).

    From ``LOW_MARGIN[family]`` decades below the half-descent lr to ``HIGH_MARGIN[family]``
    decades above the edge where the loss climbs back by 10% of its descent (or the last
    finite point). A curve without a usable descent (flat, noisy, or diverging at once) gives
    the ``NO_DESCENT_DECADES`` decades below the lr where the loss blew up, with the reason.
    """
    from lrkit.finder._rules import _curve, _schedule, curve_features, lrkit_rule

    family = _schedule(family)
    low_margin, high_margin = LOW_MARGIN[family], HIGH_MARGIN[family]
    lrs = np.asarray(range_test.lrs, dtype=np.float64)
    losses = np.asarray(range_test.losses, dtype=np.float64)
    smoothed = np.asarray(range_test.smoothed, dtype=np.float64)
    x, y, _ = _curve(lrs, losses, smoothed)
    top = float(x[-1]) if len(x) else float(lrs[0])
    fallback = Interval(
        top / 10**NO_DESCENT_DECADES,
        top,
        f"no usable descent in the range test: the {NO_DESCENT_DECADES:g} decades below "
        f"{top:.3g}, where the test ended",
    )
    if lrkit_rule(lrs, losses, smoothed).lr is None:  # too short, or no clear descent
        return fallback
    f = curve_features(x, y)
    edge = max(float(x[f.i_edge]) if f.i_edge is not None else top, f.lr_half)
    low = f.lr_half / 10**low_margin
    high = edge * 10**high_margin
    where = "where the loss climbs back" if f.i_edge is not None else "the end of the test"
    above = f"{high_margin:g} decades above " if high_margin else ""
    return Interval(
        low,
        high,
        f"from {low_margin:g} decades below half way down the descent ({f.lr_half:.3g}) to "
        f"{above}{where} ({edge:.3g}), for a {family} schedule",
    )


def lattice(low: float, high: float, *, per_decade: int = PER_DECADE) -> list[float]:
    """The lattice points ``10 ** (k / per_decade)`` in ``[low, high]`` (4 significant digits),
    at least ``MIN_CANDIDATES``: a narrower interval is widened around its middle.

    Example:
        >>> lattice(1e-3, 1e-2)
        [0.001, 0.002154, 0.004642, 0.01]
        >>> lattice(1e-3, 1.1e-3)
        [0.0004642, 0.001, 0.002154]
    """
    low = check_real("low", low, minimum=0.0, min_inclusive=False)
    high = check_real("high", high, minimum=low)
    per_decade = check_int("per_decade", per_decade, minimum=1)
    first = math.ceil(math.log10(low) * per_decade - 1e-9)
    last = math.floor(math.log10(high) * per_decade + 1e-9)
    while last - first + 1 < MIN_CANDIDATES:
        mid = (math.log10(low) + math.log10(high)) / 2 * per_decade
        if mid - first >= last - mid:
            last += 1
        else:
            first -= 1
    return [float(f"{10 ** (k / per_decade):.4g}") for k in range(first, last + 1)]


def _counts(n: int, eta: int, final: int) -> list[int]:
    """Candidates per rung: the best ``1/eta`` go on while at least ``final`` would."""
    counts = [n]
    while math.ceil(counts[-1] / eta) >= final:
        counts.append(math.ceil(counts[-1] / eta))
    return counts


def _lengths(counts: list[int], race_steps: int, total_steps: int, eta: int) -> list[int]:
    """Rung lengths growing ``eta`` x per rung whose total cost fits ``race_steps``."""
    k = len(counts) - 1
    weight = sum(c / eta ** (k - i) for i, c in enumerate(counts))
    last = min(float(total_steps), race_steps / weight)
    return [min(total_steps, int(last / eta ** (k - i))) for i in range(len(counts))]


def thin(lrs: list[float], n: int) -> list[float]:
    """``n`` of ``lrs`` spread evenly over them, both ends kept.

    Example:
        >>> thin([1, 2, 3, 4, 5, 6, 7], 4)
        [1, 3, 5, 7]
    """
    if n >= len(lrs):
        return list(lrs)
    index = np.unique(np.round(np.linspace(0, len(lrs) - 1, n)).astype(int))
    return [lrs[i] for i in index]


def plan_rungs(
    n_candidates: int,
    race_steps: int,
    total_steps: int,
    *,
    eta: int = ETA,
    final: int = FINAL,
    min_steps: int = MIN_RUNG_STEPS,
) -> list[Rung]:
    """Successive-halving rungs for ``n_candidates`` in ``race_steps`` optimizer steps.

    Returns the rungs (count, steps), or ``[]`` when even ``MIN_CANDIDATES`` candidates cannot
    get ``min_steps`` each on the first rung. Fewer candidates than asked run when the budget is
    short (the caller thins them with :func:`thin`).

    Example:
        >>> [r.to_dict() for r in plan_rungs(9, 1800, 300)]
        [{'count': 9, 'steps': 100}, {'count': 3, 'steps': 300}]
        >>> [r.to_dict() for r in plan_rungs(9, 120, 300)]  # too short for 9: 6 run
        [{'count': 6, 'steps': 10}, {'count': 2, 'steps': 30}]
    """
    n_candidates = check_int("n_candidates", n_candidates, minimum=1)
    race_steps = check_int("race_steps", race_steps, minimum=0)
    total_steps = check_int("total_steps", total_steps, minimum=1)
    for n in range(n_candidates, MIN_CANDIDATES - 1, -1):
        counts = _counts(n, eta, final)
        steps = _lengths(counts, race_steps, total_steps, eta)
        if steps[0] >= min(min_steps, total_steps):
            return [Rung(c, s) for c, s in zip(counts, steps, strict=True)]
    return []


def min_race_steps(
    total_steps: int, *, eta: int = ETA, final: int = FINAL, min_steps: int = MIN_RUNG_STEPS
) -> int:
    """The fewest optimizer steps a race can run in (``MIN_CANDIDATES`` candidates)."""
    counts = _counts(MIN_CANDIDATES, eta, final)
    first = min(min_steps, total_steps)
    return int(sum(c * min(total_steps, first * eta**i) for i, c in enumerate(counts)))
