"""A minimal single-process stand-in for the Fabric that Lightning's ``SpikeDetection`` needs.

Shared by ``evaluate.py`` (replaying the corpus) and ``benchmarks/guard_overhead.py`` (timing).
"""

from __future__ import annotations


class _Strategy:
    root_device = "cpu"

    def barrier(self) -> None:
        return None

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002
        return decision


class FabricStandIn:
    """What Lightning's SpikeDetection touches on a Fabric, for one CPU process."""

    strategy = _Strategy()
    global_rank = 0
