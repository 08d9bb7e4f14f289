"""The advisor: a starting learning rate, a search range, a schedule and a warmup, with sources.

Every number comes from the table in :mod:`lrkit.advice._table`; this module looks it up,
applies the batch-size scaling rule and picks the schedule for the scenario. Nothing is guessed
silently: a combination without a table entry falls back to the optimizer's default and says so
in :attr:`Advice.notes`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrkit._validate import check_int, fail
from lrkit.advice import _table as T

__all__ = ["Advice", "Reason", "advise", "normalize_architecture", "normalize_optimizer"]

logger = logging.getLogger(__name__)


def _key(name: str) -> str:
    return "_".join(name.strip().lower().replace("+", " ").replace("-", " ").split())


def _normalize(
    argument: str, name: object, aliases: Mapping[str, str], valid: Sequence[str], shown: str
) -> str:
    """The canonical name for ``name`` among ``valid`` (via ``aliases``), or a ValueError
    naming ``argument`` and listing the valid names and the ``shown`` aliases."""
    if isinstance(name, str):
        key = _key(name)
        key = aliases.get(key, key)
        if key in valid:
            return key
    fail(argument, name, f"one of {', '.join(valid)} (or {shown})")


def normalize_optimizer(name: object) -> str:
    """Canonical optimizer name for ``name`` (``"SGD+momentum"`` -> ``"sgd_momentum"``).

    Raises ValueError listing the valid names.

    Example:
        >>> normalize_optimizer("SGD-Momentum")
        'sgd_momentum'
    """
    return _normalize(
        "optimizer", name, T.OPTIMIZER_ALIASES, T.OPTIMIZERS, "sgd+momentum, sgdm, nag"
    )


def normalize_architecture(name: object) -> str:
    """Canonical architecture name for ``name`` (``"LSTM"`` -> ``"rnn"``).

    Raises ValueError listing the valid names.

    Example:
        >>> normalize_architecture("LSTM")
        'rnn'
    """
    return _normalize(
        "architecture", name, T.ARCHITECTURE_ALIASES, T.ARCHITECTURES, "lstm, gru, convnet"
    )


@dataclass(frozen=True)
class Reason:
    """Why one number of the advice is what it is, and where that comes from."""

    topic: str
    value: str
    why: str
    source: str
    reference: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "topic": self.topic,
            "value": self.value,
            "why": self.why,
            "source": self.source,
            "reference": self.reference,
        }


def _reason(topic: str, value: str, why: str, key: str) -> Reason:
    short, title = T.SOURCES[key]
    return Reason(topic, value, why, short, title)


@dataclass(frozen=True)
class Advice:
    """A starting point for one optimizer and architecture; see :func:`advise`.

    ``lr`` and ``lr_range`` already include the batch-size scaling (``scale_factor``);
    ``base_lr`` is the table value before it. ``schedule`` is a spec string of
    :mod:`lrkit.schedules` (``lrkit.schedules.parse(advice.schedule)``); it multiplies ``lr``.
    ``reasons`` gives the rationale and source of every number; ``notes`` the fallbacks,
    limits and warnings (read them).
    """

    optimizer: str
    architecture: str
    fine_tuning: bool
    lr: float
    lr_range: tuple[float, float]
    schedule: str
    schedule_name: str
    warmup_steps: int
    base_lr: float
    scale_factor: float = 1.0
    scaling: str | None = None
    batch_size: int | None = None
    reference_batch_size: int | None = None
    total_steps: int | None = None
    quick: bool = False
    fallback: bool = False
    reasons: tuple[Reason, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return {
            "optimizer": self.optimizer,
            "architecture": self.architecture,
            "fine_tuning": self.fine_tuning,
            "lr": self.lr,
            "lr_range": list(self.lr_range),
            "schedule": self.schedule,
            "schedule_name": self.schedule_name,
            "warmup_steps": self.warmup_steps,
            "base_lr": self.base_lr,
            "scale_factor": self.scale_factor,
            "scaling": self.scaling,
            "batch_size": self.batch_size,
            "reference_batch_size": self.reference_batch_size,
            "total_steps": self.total_steps,
            "quick": self.quick,
            "fallback": self.fallback,
            "reasons": [r.to_dict() for r in self.reasons],
            "notes": list(self.notes),
        }

    @property
    def title(self) -> str:
        """``"adamw + transformer (from scratch)"``."""
        scenario = "fine-tuning" if self.fine_tuning else "from scratch"
        if self.quick and not self.fine_tuning:
            scenario += ", quick training"
        return f"{self.optimizer} + {self.architecture} ({scenario})"

    def __str__(self) -> str:
        low, high = self.lr_range
        lines = [
            f"Advice for {self.title}",
            f"  learning rate : {fmt_lr(self.lr)}",
            f"  search range  : {fmt_lr(low)} .. {fmt_lr(high)}",
            f"  schedule      : {self.schedule}  ({self.schedule_name})",
            f"  warmup        : {self.warmup_steps} steps",
        ]
        if self.scaling is not None:
            lines.append(
                f"  batch scaling : {self.scaling} x{self.scale_factor:.4g} "
                f"(batch {self.batch_size} vs {self.reference_batch_size})"
            )
        lines.append("Why:")
        for r in self.reasons:
            lines.append(f"  - {r.topic} = {r.value}: {r.why} [{r.source}]")
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"  ! {n}" for n in self.notes)
        return "\n".join(lines)


def fmt_lr(value: float) -> str:
    """Short, exact-enough text for a learning rate: ``3e-04``, ``0.1``, ``1.41e-03``."""
    if value == 0:
        return "0"
    if 1e-2 <= abs(value) < 1e3:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


def _ratio(value: float) -> str:
    """``"10x"``, ``"3.3x"``: a factor between a value and a bound of its range."""
    return f"{value:.2g}x"


def _fraction_steps(fraction: float, total: int, cap: int | None = None) -> int:
    """``fraction`` of ``total`` steps, rounded half up, at least 1 and leaving >= 1 step."""
    steps = int(math.floor(fraction * total + 0.5))
    if cap is not None:
        steps = min(steps, cap)
    return max(1, min(steps, total - 1))


@dataclass(frozen=True)
class _Choice:
    spec: str
    name: str
    warmup: int
    reasons: tuple[Reason, ...]
    notes: tuple[str, ...] = ()


def _schedule_choice(
    optimizer: str,
    arch: str,
    *,
    fine_tuning: bool,
    quick: bool,
    total: int | None,
    scaled_up: bool,
) -> _Choice:
    if total is None:
        if arch in ("transformer", "vit") and not fine_tuning:
            w = T.TRANSFORMER_WARMUP_STEPS
            return _Choice(
                f"warmup({w}, inverse_sqrt({w}))",
                "warmup + inverse square root",
                w,
                (
                    _reason(
                        "schedule",
                        "warmup + inverse sqrt",
                        "no step budget given: the original Transformer schedule needs none",
                        "vaswani",
                    ),
                    _reason("warmup", f"{w} steps", "as in the original Transformer", "vaswani"),
                ),
                ("give total_steps for warmup + cosine, the usual choice with a known budget",),
            )
        wanted = (
            "linear decay with warmup"
            if fine_tuning
            else "one-cycle"
            if quick
            else "a decaying schedule"
        )
        return _Choice(
            "plateau(factor=0.1, patience=10)",
            "reduce-on-plateau",
            0,
            (
                _reason(
                    "schedule",
                    "reduce-on-plateau",
                    "no step budget given, so no step-indexed decay can be built; cut the lr "
                    "by 10x when the validation loss stops improving (after each validation "
                    "pass: scheduler.observe(val_loss))",
                    "plateau",
                ),
            ),
            (f"give total_steps to get {wanted} instead of reduce-on-plateau",),
        )
    if fine_tuning:
        frac, cap, key = T.WARMUP["fine_tuning"]
        w = _fraction_steps(frac, total, cap)
        return _Choice(
            f"warmup({w}, linear({total - w}))",
            "linear decay with warmup",
            w,
            (
                _reason(
                    "schedule",
                    "linear decay with warmup",
                    "fine-tuning: warm up, then decay linearly to 0",
                    "hf_linear",
                ),
                _reason("warmup", f"{w} steps", f"{frac:.0%} of {total} steps", key),
            ),
        )
    if quick:
        frac, cap, key = T.WARMUP["one_cycle"]
        w = _fraction_steps(frac, total, cap)
        return _Choice(
            f"onecycle({total})",
            "one-cycle",
            w,
            (
                _reason(
                    "schedule",
                    "one-cycle",
                    "quick training: one cycle up to the peak lr and far below the start",
                    "smith_topin",
                ),
                _reason(
                    "warmup",
                    f"{w} steps",
                    f"one-cycle rises over pct_start={frac:g} of {total} steps",
                    key,
                ),
            ),
            (
                "one-cycle peaks at the learning rate you give it: use the high end of a range "
                "test (Smith & Topin 2017), not a constant-lr value",
            ),
        )
    if arch in ("transformer", "vit"):
        frac, cap, key = T.WARMUP["transformer"]
        w = _fraction_steps(frac, total, cap)
        return _Choice(
            f"warmup({w}, cosine({total - w}))",
            "warmup + cosine",
            w,
            (
                _reason(
                    "schedule",
                    "warmup + cosine",
                    "transformers: linear warmup, then cosine decay to 0",
                    "sgdr",
                ),
                _reason(
                    "warmup",
                    f"{w} steps",
                    f"{frac:.0%} of {total} steps (1-5% is common), at most {cap}",
                    key,
                ),
            ),
        )
    reasons: list[Reason] = []
    warmup = 0
    if scaled_up:
        frac, cap, key = T.WARMUP["large_batch"]
        warmup = _fraction_steps(frac, total, cap)
    if arch == "resnet" and T.SCALING[optimizer][0] == "linear":
        # cuts at 1/3 and 2/3 of the whole run; the inner schedule sees step - warmup
        a, b = _fraction_steps(1 / 3, total), _fraction_steps(2 / 3, total)
        spec = f"multistep([{a - warmup}, {b - warmup}], gamma=0.1)"
        name = "step decay x0.1 at 1/3 and 2/3"
        reasons.append(
            _reason(
                "schedule",
                name,
                f"ResNet recipe: x0.1 every 30 of 90 epochs, here at steps {a} and {b}",
                "he",
            )
        )
    else:
        spec = f"cosine({total - warmup})"
        name = "cosine"
        reasons.append(
            _reason("schedule", "cosine", "training from scratch: cosine decay to 0", "sgdr")
        )
    if scaled_up:
        spec = f"warmup({warmup}, {spec})"
        name = f"warmup + {name}"
        reasons.append(
            _reason(
                "warmup",
                f"{warmup} steps",
                f"the lr was scaled up for a larger batch: gradual warmup over {frac:.0%} of "
                f"{total} steps (5 of 90 epochs in the paper)",
                key,
            )
        )
    else:
        reasons.append(
            _reason("warmup", "0 steps", "no warmup needed at the table's batch size", "goyal")
        )
    return _Choice(spec, name, warmup, tuple(reasons))


def _canonical(spec: str) -> str:
    from lrkit.schedules import parse

    return str(parse(spec))


def advise(
    optimizer: str,
    architecture: str,
    *,
    fine_tuning: bool = False,
    batch_size: int | None = None,
    reference_batch_size: int | None = None,
    total_steps: int | None = None,
    quick: bool = False,
) -> Advice:
    """Starting learning rate, search range, schedule and warmup for an optimizer + architecture.

    Args:
        optimizer: sgd, sgd_momentum (sgd+momentum, sgdm), nesterov, adam, adamw, rmsprop,
            adagrad or lion.
        architecture: mlp, cnn, resnet, transformer, vit, rnn (lstm, gru) or gnn.
        fine_tuning: fine-tuning a pre-trained model (smaller lr, linear decay with warmup).
        batch_size: your batch size. With ``reference_batch_size`` (the batch size the lr was
            tuned for) the lr is scaled: linearly for the SGD family (Goyal et al. 2017), by the
            square root for the Adam family (Hoffer et al. 2017; Malladi et al. 2022).
        reference_batch_size: see ``batch_size``; defaults to the batch size the table value was
            published for, when it has one (ResNet: 256).
        total_steps: the training budget in optimizer steps (>= 10); the schedule is built for
            it. Without it, the schedule is one that needs no budget (reduce-on-plateau, or
            inverse square root for transformers).
        quick: short training from scratch: one-cycle (Smith & Topin 2017).

    Returns:
        an :class:`Advice`; its ``reasons`` name the source of every number and its ``notes``
        the fallbacks and limits.

    Raises:
        ValueError: unknown optimizer or architecture name (the message lists valid names),
            or bad batch sizes / steps.

    Example:
        >>> a = advise("adamw", "transformer", total_steps=10_000)
        >>> a.lr, a.schedule
        (0.0003, 'warmup(500, cosine(9500))')
    """
    opt = normalize_optimizer(optimizer)
    arch = normalize_architecture(architecture)
    if not isinstance(fine_tuning, bool):
        fail("fine_tuning", fine_tuning, "True or False")
    if not isinstance(quick, bool):
        fail("quick", quick, "True or False")
    batch = None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
    ref = (
        None
        if reference_batch_size is None
        else check_int("reference_batch_size", reference_batch_size, minimum=1)
    )
    total = None if total_steps is None else check_int("total_steps", total_steps, minimum=10)
    if ref is not None and batch is None:
        fail("batch_size", batch_size, "given when reference_batch_size is given")

    notes: list[str] = []
    reasons: list[Reason] = []
    if fine_tuning:
        entry = T.FINE_TUNING_ENTRIES.get(opt)
        where = f"fine-tuning with {opt}"
    else:
        entry = T.ENTRIES.get((opt, arch))
        where = f"{opt} + {arch}"
    fallback = entry is None
    if entry is None:
        entry = T.OPTIMIZER_DEFAULTS[opt]
        notes.append(
            f"no table entry for {where}: using the {opt} default of {fmt_lr(entry.lr)}; "
            "this is a generic starting point, so run a range test (lrkit find) before trusting it"
        )
    reasons.append(_reason("learning rate", fmt_lr(entry.lr), entry.why, entry.source))

    factor = 1.0
    rule: str | None = None
    if batch is not None and ref is None and entry.reference_batch_size is not None:
        ref = entry.reference_batch_size
        notes.append(
            f"reference_batch_size not given: using {ref}, the batch size the table value was "
            "published for"
        )
    if batch is not None and ref is None:
        notes.append(
            f"batch_size={batch} given without reference_batch_size and the table value is not "
            "tied to a batch size: no scaling applied (pass the batch size the lr was tuned for)"
        )
    elif batch is not None and ref is not None:
        k = batch / ref
        rule, rule_source, derived = T.SCALING[opt]
        factor = k if rule == "linear" else math.sqrt(k)
        formula = "k" if rule == "linear" else "sqrt(k)"
        reasons.append(
            _reason(
                "batch scaling",
                f"x{factor:.4g}",
                f"{rule} rule: lr x {formula} with k = {batch}/{ref} = {k:.4g}",
                rule_source,
            )
        )
        if not derived:
            notes.append(
                f"the {rule} rule is not derived for {opt}: it is extrapolated from the Adam "
                "family; confirm with a range test at the new batch size"
            )
        if rule == "linear" and batch > T.LINEAR_RULE_MAX_BATCH:
            notes.append(
                f"batch {batch} > {T.LINEAR_RULE_MAX_BATCH}: the linear rule was shown to hold on "
                "ImageNet only up to 8k (Goyal et al. 2017) and breaks down beyond; expect to "
                "need a lower lr than the rule gives"
            )
        if k > 1:
            notes.append(
                "scaling rules hold only below the critical batch size (McCandlish et al. 2018): "
                "past it, larger batches stop paying off and no rule keeps the lr optimal; "
                "confirm with a range test at the new batch size"
            )
        elif k < 1:
            notes.append(
                "scaling down to a smaller batch: the rule is applied in reverse; small batches "
                "are noisier, so the range test's answer is worth more than the rule"
            )
    lr = entry.lr * factor
    low, high = entry.low * factor, entry.high * factor
    reasons.append(
        _reason(
            "search range",
            f"{fmt_lr(low)} .. {fmt_lr(high)}",
            f"{_ratio(lr / low)} below to {_ratio(high / lr)} above the starting point: "
            "sweep it with a range test",
            "smith_clr",
        )
    )
    choice = _schedule_choice(
        opt, arch, fine_tuning=fine_tuning, quick=quick, total=total, scaled_up=factor > 1
    )
    reasons.extend(choice.reasons)
    notes.extend(choice.notes)
    if arch in T.ARCHITECTURE_NOTES:
        text, key = T.ARCHITECTURE_NOTES[arch]
        notes.append(f"{text} ({T.SOURCES[key][0]})")
    advice = Advice(
        optimizer=opt,
        architecture=arch,
        fine_tuning=fine_tuning,
        lr=lr,
        lr_range=(low, high),
        schedule=_canonical(choice.spec),
        schedule_name=choice.name,
        warmup_steps=choice.warmup,
        base_lr=entry.lr,
        scale_factor=factor,
        scaling=rule,
        batch_size=batch,
        reference_batch_size=ref,
        total_steps=total,
        quick=quick,
        fallback=fallback,
        reasons=tuple(reasons),
        notes=tuple(notes),
    )
    logger.debug("advice: %s", advice.to_dict())
    return advice
