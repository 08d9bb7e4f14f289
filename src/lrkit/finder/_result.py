"""The result of a range test: the curve, why it stopped, and the suggestions drawn from it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lrkit._validate import check_choice, fail
from lrkit.finder import _rules
from lrkit.finder._rules import Suggestion

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["RangeTest", "STOP_REASONS", "encode_floats", "decode_floats"]

#: Why a range test ended: it ran all steps, the smoothed loss exceeded ``diverge_factor`` x
#: the best one, or a loss (train or validation, on any rank) was NaN or infinite.
STOP_REASONS = ("completed", "diverged", "non-finite")

_FORMAT = "lrkit.range_test"
_VERSION = 1


def encode_floats(values: Sequence[float] | np.ndarray) -> list[float | str]:
    """JSON-safe floats: finite numbers stay numbers, NaN/inf become ``"nan"``/``"inf"``/``"-inf"``.

    Example:
        >>> encode_floats([1.0, float("nan"), float("inf")])
        [1.0, 'nan', 'inf']
    """
    out: list[float | str] = []
    for value in np.asarray(values, dtype=np.float64).tolist():
        if math.isfinite(value):
            out.append(value)
        elif math.isnan(value):
            out.append("nan")
        else:
            out.append("inf" if value > 0 else "-inf")
    return out


def decode_floats(values: Sequence[object], name: str) -> np.ndarray:
    """Inverse of :func:`encode_floats`; raise ValueError naming ``name`` on anything else."""
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if isinstance(value, str) and value in ("nan", "inf", "-inf"):
            out[i] = float(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[i] = float(value)
        else:
            fail(f"{name}[{i}]", value, 'a number or one of "nan", "inf", "-inf"')
    return out


@dataclass(eq=False)
class RangeTest:
    """A learning-rate range test's curve and what it suggests.

    Attributes:
        lrs: learning rate of the reference param group at each point of the curve.
        losses: raw loss at each point (validation loss in validation mode), NaN/inf included
            when the test stopped on a non-finite loss.
        smoothed: bias-corrected exponential moving average of ``losses``.
        stop_reason: one of :data:`STOP_REASONS`.
        steps: optimizer step (from 0) of each curve point.
        curve: ``"train"`` or ``"val"`` (which loss ``losses`` holds).
        train_lrs, train_losses: the training loss at every step that ran (equal to
            ``lrs``/``losses`` in training mode).
        group_ratios: each param group's lr divided by the reference (largest) lr.
        settings: the arguments the test ran with (start_lr, end_lr, num_steps, mode, ...).
        seconds: wall time of the test, restore included.

    Example:
        >>> import numpy as np
        >>> t = RangeTest(lrs=np.geomspace(1e-4, 1, 20), losses=np.linspace(2, 1, 20),
        ...               smoothed=np.linspace(2, 1, 20), stop_reason="completed")
        >>> RangeTest.from_dict(t.to_dict()).stop_reason
        'completed'
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stop_reason: str
    steps: np.ndarray | None = None
    curve: str = "train"
    train_lrs: np.ndarray | None = None
    train_losses: np.ndarray | None = None
    group_ratios: tuple[float, ...] = (1.0,)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")

    def __post_init__(self) -> None:
        self.lrs = np.asarray(self.lrs, dtype=np.float64)
        self.losses = np.asarray(self.losses, dtype=np.float64)
        self.smoothed = np.asarray(self.smoothed, dtype=np.float64)
        n = len(self.lrs)
        for name in ("losses", "smoothed"):
            if len(getattr(self, name)) != n:
                fail(name, f"<{len(getattr(self, name))} values>", f"{n} values, like lrs")
        check_choice("stop_reason", self.stop_reason, STOP_REASONS)
        check_choice("curve", self.curve, ("train", "val"))
        if self.steps is None:
            self.steps = np.arange(n, dtype=np.int64)
        self.steps = np.asarray(self.steps, dtype=np.int64)
        if self.train_lrs is None:
            self.train_lrs = self.lrs.copy()
        if self.train_losses is None:
            self.train_losses = self.losses.copy()
        self.train_lrs = np.asarray(self.train_lrs, dtype=np.float64)
        self.train_losses = np.asarray(self.train_losses, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.lrs)

    def __repr__(self) -> str:
        lr = self.suggestion
        shown = f"{lr:.3g}" if lr is not None else "None"
        return (
            f"RangeTest(points={len(self)}, curve={self.curve!r}, "
            f"stop_reason={self.stop_reason!r}, suggestion={shown})"
        )

    # -- suggestions (the rules live in lrkit.finder._rules) ---------------------------------
    @property
    def optimizer(self) -> str | None:
        """The optimizer's class name the test ran with (``settings["optimizer"]``), if known."""
        name = self.settings.get("optimizer")
        return name if isinstance(name, str) and name else None

    def suggest(
        self, method: str = "lrkit", *, schedule: str = "constant", optimizer: str | None = None
    ) -> Suggestion:
        """The suggestion of one rule (see ``lrkit.finder.METHODS``) for the given schedule.

        ``schedule="constant"`` is for training at a fixed lr; ``"cosine"`` (decay to zero) gets
        the peak lr to use. ``optimizer`` (class name or ``"sgd"``/``"adaptive"``) defaults to
        the optimizer the test ran with. ``Suggestion.lr`` is None, with the reason in
        ``Suggestion.reason``, when the curve has no usable descent.
        """
        return _rules.suggest(
            self.lrs,
            self.losses,
            self.smoothed,
            method,
            schedule=schedule,
            optimizer=optimizer if optimizer is not None else self.optimizer,
        )

    def suggest_all(
        self, *, schedule: str = "constant", optimizer: str | None = None
    ) -> dict[str, Suggestion]:
        """Every rule's suggestion, keyed by method name, the default rule first."""
        return {m: self.suggest(m, schedule=schedule, optimizer=optimizer) for m in _rules.METHODS}

    def suggest_range(
        self, *, schedule: str = "constant", optimizer: str | None = None
    ) -> tuple[float, float] | None:
        """``(low, high)`` learning-rate bounds for cyclic / one-cycle schedules, or None."""
        return _rules.suggest_range(
            self.lrs,
            self.losses,
            self.smoothed,
            schedule=schedule,
            optimizer=optimizer if optimizer is not None else self.optimizer,
        )

    @property
    def suggestion(self) -> float | None:
        """The default rule's learning rate, or None when the curve gives no clear answer."""
        return self.suggest().lr

    @property
    def suggestion_reason(self) -> str:
        """Why the default rule picked :attr:`suggestion` (or why it gave none)."""
        return self.suggest().reason

    @property
    def nonfinite(self) -> np.ndarray:
        """Indices of curve points whose loss is NaN or infinite."""
        return np.flatnonzero(~np.isfinite(self.losses))

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN/inf written as strings); load it back with :meth:`from_dict`."""
        assert self.steps is not None and self.train_lrs is not None  # set in __post_init__
        assert self.train_losses is not None
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "stop_reason": self.stop_reason,
            "curve": self.curve,
            "lrs": encode_floats(self.lrs),
            "losses": encode_floats(self.losses),
            "smoothed": encode_floats(self.smoothed),
            "steps": [int(s) for s in self.steps],
            "train_lrs": encode_floats(self.train_lrs),
            "train_losses": encode_floats(self.train_losses),
            "group_ratios": encode_floats(self.group_ratios),
            "settings": {k: _json_value(v) for k, v in self.settings.items()},
            "seconds": encode_floats([self.seconds])[0],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RangeTest:
        """Rebuild a :class:`RangeTest` from :meth:`to_dict`'s output (e.g. after ``json.load``)."""
        if not isinstance(data, Mapping):
            fail("data", type(data).__name__, "a mapping from RangeTest.to_dict()")
        if data.get("format") != _FORMAT:
            fail("data['format']", data.get("format"), repr(_FORMAT))
        if data.get("version") != _VERSION:
            fail("data['version']", data.get("version"), str(_VERSION))
        for key in ("lrs", "losses", "smoothed", "stop_reason"):
            if key not in data:
                fail("data", f"<keys {sorted(data)}>", f"a mapping with the key {key!r}")
        return cls(
            lrs=decode_floats(data["lrs"], "lrs"),
            losses=decode_floats(data["losses"], "losses"),
            smoothed=decode_floats(data["smoothed"], "smoothed"),
            stop_reason=data["stop_reason"],
            steps=np.asarray(data.get("steps", range(len(data["lrs"]))), dtype=np.int64),
            curve=data.get("curve", "train"),
            train_lrs=decode_floats(data.get("train_lrs", data["lrs"]), "train_lrs"),
            train_losses=decode_floats(data.get("train_losses", data["losses"]), "train_losses"),
            group_ratios=tuple(decode_floats(data.get("group_ratios", [1.0]), "group_ratios")),
            settings=dict(data.get("settings", {})),
            seconds=float(decode_floats([data.get("seconds", "nan")], "seconds")[0]),
        )

    # -- plotting ---------------------------------------------------------------------------
    def plot(
        self, ax: Axes | None = None, *, method: str = "lrkit", schedule: str = "constant"
    ) -> Axes:
        """Draw the curve with the suggestion, the suggested range and non-finite points marked.

        Needs matplotlib (``pip install 'lrkit[plot]'``); returns the Axes.
        """
        from lrkit.plotting import plot_range_test

        return plot_range_test(self, ax=ax, method=method, schedule=schedule)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return encode_floats([value])[0]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
