"""Parameter metadata shared by the kinds, the compositions and the spec grammar.

Every schedule class declares its parameters once (``_params``): the name, the value type the
spec parser accepts, a one-line description, and for enumerations the valid choices. The
parser, the formatter (:func:`lrkit.schedules._spec.format_spec`) and the ``--list`` registry
(:func:`lrkit.schedules.kinds`) all read this table, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Param", "ParamType"]

#: value types of the spec grammar
#: ``int`` whole number, ``real`` finite number, ``bool`` True/False, ``choice`` a bare name,
#: ``schedule`` a nested schedule, ``ints`` a list of whole numbers, ``int?`` int or None
ParamType = Literal["int", "real", "bool", "choice", "schedule", "ints", "int?"]


@dataclass(frozen=True)
class Param:
    """One parameter of a schedule kind, as the spec grammar and ``--list`` see it."""

    name: str
    type: ParamType
    doc: str
    choices: tuple[str, ...] = ()
    #: dataclass attribute holding the value, when it differs from the spec name
    attr: str = ""

    @property
    def field(self) -> str:
        """Name of the dataclass attribute that holds this parameter."""
        return self.attr or self.name
