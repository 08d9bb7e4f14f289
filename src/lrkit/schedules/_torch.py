"""The PyTorch adapter: drive an optimizer's learning rates (and momentum) from a schedule.

:func:`attach` returns a :class:`ScheduledLR`, a real
:class:`torch.optim.lr_scheduler.LRScheduler`, so it works wherever torch schedulers do
(plain loops, Lightning's ``configure_optimizers``, checkpointing code that calls
``state_dict()``). It is thin on purpose: at optimizer step ``s`` every param group's lr is
``initial_lr * schedule(s)``, where ``initial_lr`` is the group's own learning rate when the
adapter was attached (torch's convention, stored as ``group["initial_lr"]``). Param groups with
different learning rates therefore keep their ratios.

Steps count optimizer updates from 0. Construction applies step 0; each :meth:`ScheduledLR.step`
call advances one step (call it after ``optimizer.step()``, as with any torch scheduler).

Its state is the step count, the schedule's spec string and, for reduce-on-plateau, the metric
bookkeeping. :meth:`ScheduledLR.load_state_dict` restores all of it and re-applies the learning
rates of the restored step, so a resumed run sets bit-identical learning rates to an
uninterrupted one, whatever order the optimizer and the scheduler are restored in.

Differences from torch's own schedulers, on purpose:

- no ``KeyError: 'initial_lr'``: ``start_step`` jumps to any step of a fresh run, and
  resuming is ``load_state_dict``, never a ``last_epoch`` argument (no extra step on resume);
- no "``lr_scheduler.step()`` before ``optimizer.step()``" warning: with AMP's ``GradScaler``
  an optimizer step may legitimately be skipped, and the schedule still advances by one step;
- the learning rate is never read back from the optimizer (no chainable drift): the lr of
  step ``s`` is always ``initial_lr * schedule(s)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrkit._validate import check_real, fail
from lrkit.schedules._base import Schedule, check_step
from lrkit.schedules._kinds import Plateau
from lrkit.schedules._plateau import PlateauTracker

__all__ = ["ScheduledLR", "attach"]

logger = logging.getLogger(__name__)

_STATE_FORMAT = 1


def _as_schedule(schedule: Schedule | str) -> Schedule:
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str):
        from lrkit.schedules._spec import parse

        return parse(schedule)
    fail("schedule", schedule, "a Schedule or a spec string such as 'cosine(1000)'")


def _initial_lrs(optimizer: Optimizer) -> list[float]:
    """Each group's own initial lr (``initial_lr`` when a scheduler set it before, else ``lr``)."""
    result: list[float] = []
    for index, group in enumerate(optimizer.param_groups):
        key = "initial_lr" if "initial_lr" in group else "lr"
        raw = group[key]
        value = float(raw.item()) if isinstance(raw, Tensor) else raw
        name = f"param_groups[{index}][{key!r}]"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(name, raw, "a finite number >= 0")
        if not math.isfinite(value) or value < 0:
            fail(name, value, "a finite number >= 0")
        result.append(float(value))
    return result


def _check_reachable(
    bases: list[float], schedule: Schedule, name: str = "optimizer.param_groups"
) -> None:
    """Every learning rate the schedule can set (base x its largest value) must be finite."""
    peak = schedule._peak()
    for index, base in enumerate(bases):
        if not math.isfinite(base * peak):
            fail(
                f"{name}[{index}]" + ("" if name.startswith("state_dict") else "['lr']"),
                base,
                f"a learning rate whose product with the schedule's largest value ({peak:g}) "
                "is finite",
            )


class ScheduledLR(LRScheduler):
    """A torch ``LRScheduler`` that sets each group's lr to ``initial_lr * schedule(step)``.

    Build it with :func:`attach`. Attributes torch users rely on keep their meaning:
    ``last_epoch`` is the current step (0 right after construction), ``base_lrs`` the groups'
    initial learning rates, ``get_last_lr()`` the learning rates set last.

    Reduce-on-plateau: feed the monitored metric with ``step(metric)`` (advance one step, then
    observe the metric, like ``ReduceLROnPlateau.step(metric)``) or with :meth:`observe` (observe
    at the current step without advancing). A cut re-applies the learning rate at once.

    Example:
        >>> import torch
        >>> from lrkit.schedules import attach
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.5)
        >>> sched = attach(opt, "warmup(2, plateau(factor=0.5, patience=0), start=0.5)")
        >>> sched.get_last_lr(), sched.last_epoch
        ([0.25], 0)
        >>> opt.step(); sched.step(); sched.get_last_lr()
        [0.375]
        >>> opt.step(); sched.step(1.0); sched.get_last_lr()  # warmup over; first metric
        [0.5]
        >>> opt.step(); sched.step(2.0); sched.get_last_lr()  # worse: cut at once
        [0.25]
        >>> str(sched.schedule)
        'warmup(2, plateau(factor=0.5, patience=0, reductions=[1]), start=0.5)'
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: Schedule | str,
        *,
        start_step: int = 0,
        cycle_momentum: bool = True,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, but got {optimizer!r}")
        start = check_step("start_step", start_step)
        if not isinstance(cycle_momentum, bool):
            fail("cycle_momentum", cycle_momentum, "True or False")
        self._schedule = _as_schedule(schedule)
        initial = _initial_lrs(optimizer)
        _check_reachable(initial, self._schedule)
        # torch's constructor reads group["initial_lr"] / group["lr"] again; pin them first so the
        # value validated above is exactly the one used.
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self._tracker: PlateauTracker | None = None
        self._tracker_key: Plateau | None = None
        self._cycle_momentum = cycle_momentum
        self._momentum_key: str | None = None
        self._tensor_lr = any(isinstance(g["lr"], Tensor) for g in optimizer.param_groups)
        self.base_lrs: list[float | Tensor] = list(initial)
        self._bases: list[float] = initial
        self._last_lr: list[float | Tensor] = []
        # torch's constructor wraps optimizer.step, sets last_epoch=-1 and calls step() once
        super().__init__(optimizer)
        self.base_lrs = list(initial)
        if start:
            self.last_epoch = start
            self._apply(start)

    # ------------------------------------------------------------------ public API
    @property
    def schedule(self) -> Schedule:
        """The schedule in force (for reduce-on-plateau: including the cuts made so far)."""
        return self._schedule

    def step(self, metric: float | None = None) -> None:  # type: ignore[override]
        """Advance one optimizer step and set the learning rates of the new step.

        With ``metric`` (reduce-on-plateau only), the metric is then observed at the new step,
        exactly as :meth:`observe` does.
        """
        value = None if metric is None else self._check_metric(metric)
        self._step_count += 1
        step = self.last_epoch + 1
        self.last_epoch = step
        self._apply(step)
        if value is not None:
            self._observe(value)

    def observe(self, metric: float) -> bool:
        """Observe a monitored metric at the current step; return True when the lr was cut.

        torch's ``ReduceLROnPlateau`` logic (mode, threshold, patience, cooldown) decides; a
        cut takes effect at the current step, i.e. for the next optimizer update, and the
        learning rates are re-applied at once. Metrics observed while no reduce-on-plateau
        schedule is active (e.g. during its warmup) are ignored.
        Raises ValueError for a schedule without reduce-on-plateau or a non-finite metric.
        """
        return self._observe(self._check_metric(metric))

    def _check_metric(self, metric: object) -> float:
        if not self._schedule.stateful:
            fail("metric", metric, "given only to a schedule with reduce-on-plateau (plateau(...))")
        value = metric.item() if isinstance(metric, Tensor) else metric
        return check_real("metric", value)

    def _observe(self, value: float) -> bool:
        step = self.last_epoch
        plateau = self._schedule.active_plateau(step)
        if plateau is None:
            logger.debug("metric %r at step %d ignored: no plateau active", value, step)
            return False
        tracker = self._tracker_for(plateau)
        if not tracker.observe(value):
            return False
        # torch's eps: a cut that changes no group's lr by more than eps is not applied (the
        # bookkeeping still resets, as in torch); this also skips cuts below min_scale.
        reduced = PlateauTracker.cut(self._schedule, step, self._bases)
        if reduced is None:
            logger.debug("plateau: cut at step %d skipped (lr change <= eps)", step)
            return False
        self._schedule = reduced
        logger.info("plateau: learning rate cut at step %d (metric %r)", step, value)
        self._apply(step)
        return True

    def get_lr(self) -> list[float | Tensor]:
        """Learning rates of the current step (closed form; same as ``get_last_lr()``)."""
        mult = self._schedule._at(self.last_epoch)
        return [base * mult for base in self._bases]

    def state_dict(self) -> dict[str, Any]:
        """Step count, schedule spec, base lrs and plateau bookkeeping (plain Python values)."""
        return {
            "format": _STATE_FORMAT,
            "schedule": str(self._schedule),
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "base_lrs": list(self._bases),
            "plateau": None
            if self._tracker is None or self._tracker_key is None
            else {"of": str(self._tracker_key), "state": self._tracker.state_dict()},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` and re-apply the learning rates of the restored step.

        The checkpoint is authoritative: its schedule (with any plateau cuts) and base learning
        rates replace the ones given to :func:`attach`.
        """
        if not isinstance(state_dict, dict) or "schedule" not in state_dict:
            fail("state_dict", type(state_dict).__name__, "a ScheduledLR.state_dict()")
        if state_dict.get("format") != _STATE_FORMAT:
            fail(
                "state_dict['format']",
                state_dict.get("format"),
                f"{_STATE_FORMAT} (a state_dict saved by this lrkit version)",
            )
        schedule = _as_schedule(state_dict["schedule"])
        step = check_step("state_dict['last_epoch']", state_dict["last_epoch"])
        bases = [float(b) for b in state_dict["base_lrs"]]
        groups = self.optimizer.param_groups
        if len(bases) != len(groups):
            fail(
                "state_dict['base_lrs']",
                bases,
                f"one learning rate per param group ({len(groups)})",
            )
        for index, base in enumerate(bases):
            if not math.isfinite(base) or base < 0:
                fail(f"state_dict['base_lrs'][{index}]", base, "a finite number >= 0")
        _check_reachable(bases, schedule, "state_dict['base_lrs']")
        tracker: PlateauTracker | None = None
        tracker_key: Plateau | None = None
        tracker_state = state_dict.get("plateau")
        if tracker_state is not None:
            if not isinstance(tracker_state, dict) or set(tracker_state) != {"of", "state"}:
                fail("state_dict['plateau']", tracker_state, "None or {'of': spec, 'state': {...}}")
            key = _as_schedule(tracker_state["of"])
            if not isinstance(key, Plateau):
                fail("state_dict['plateau']['of']", tracker_state["of"], "a plateau(...) spec")
            tracker = PlateauTracker(key)
            tracker.load_state_dict(tracker_state["state"])
            tracker_key = key
        # everything is validated: now change state
        self._schedule = schedule
        self._bases = bases
        self.base_lrs = list(bases)
        for group, base in zip(groups, bases, strict=True):
            group["initial_lr"] = base
        self.last_epoch = step
        self._step_count = int(state_dict.get("_step_count", step + 1))
        self._tracker = tracker
        self._tracker_key = tracker_key
        self._apply(step)

    # ------------------------------------------------------------------ internals
    def _apply(self, step: int) -> None:
        """Set every group's lr (and momentum) for ``step``: the hot path."""
        mult = self._schedule._at(step)
        groups = self.optimizer.param_groups
        bases = self._bases
        if len(groups) != len(bases):
            fail(
                "optimizer.param_groups",
                f"{len(groups)} groups",
                f"the {len(bases)} groups present when the schedule was attached",
            )
        lrs: list[float | Tensor] = [base * mult for base in bases]
        if self._tensor_lr:
            for group, lr in zip(groups, lrs, strict=True):
                if isinstance(group["lr"], Tensor):
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr
        else:
            for group, lr in zip(groups, lrs, strict=True):
                group["lr"] = lr
        self._last_lr = lrs
        if self._cycle_momentum:
            momentum = self._schedule._momentum_at(step)
            if momentum is not None:
                key = self._momentum_key or self._find_momentum_key(self.optimizer)
                self._momentum_key = key
                if key == "betas":
                    for group in groups:
                        group["betas"] = (momentum, *group["betas"][1:])
                else:
                    for group in groups:
                        group["momentum"] = momentum

    @staticmethod
    def _find_momentum_key(optimizer: Optimizer) -> str:
        defaults = optimizer.defaults
        if "betas" in defaults:
            return "betas"
        if "momentum" in defaults:
            return "momentum"
        fail(
            "optimizer",
            type(optimizer).__name__,
            "an optimizer with 'momentum' or 'betas' for a schedule that cycles momentum "
            "(or pass cycle_momentum=False)",
        )

    def _tracker_for(self, plateau: Plateau) -> PlateauTracker:
        """The tracker of ``plateau``: kept across its cuts, new for a different plateau piece."""
        key = replace(plateau, reductions=())
        if self._tracker is None or self._tracker_key != key:
            self._tracker = PlateauTracker(plateau)
            self._tracker_key = key
        return self._tracker


def attach(
    optimizer: Optimizer,
    schedule: Schedule | str,
    *,
    start_step: int = 0,
    cycle_momentum: bool = True,
) -> ScheduledLR:
    """Drive ``optimizer``'s learning rates with ``schedule``; return the torch scheduler.

    Every param group's lr becomes its own initial lr times ``schedule(step)``; step 0 is
    applied at once. Call ``scheduler.step()`` after each ``optimizer.step()``.

    Args:
        optimizer: any ``torch.optim.Optimizer``; each group's current ``lr`` (or an existing
            ``initial_lr``) is its initial learning rate. NaN or negative ones raise ValueError.
        schedule: a :class:`~lrkit.schedules.Schedule` or a spec string for
            :func:`~lrkit.schedules.parse`.
        start_step: begin at this step instead of 0 (jumping ahead in a fresh run; to resume
            from a checkpoint use ``load_state_dict`` instead).
        cycle_momentum: for schedules that cycle momentum (one-cycle), set ``momentum`` (SGD,
            RMSprop) or ``betas[0]`` (Adam family) of every group, like torch's ``OneCycleLR``.

    Example:
        >>> import torch
        >>> from lrkit.schedules import attach
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.AdamW([
        ...     {"params": [model.weight], "lr": 1e-3},
        ...     {"params": [model.bias], "lr": 1e-2},
        ... ])
        >>> sched = attach(opt, "warmup(10, cosine(90, floor=0.1), start=0.1)")
        >>> sched.get_last_lr()
        [0.0001, 0.001]
        >>> for _ in range(100):
        ...     opt.step()
        ...     sched.step()
        >>> [round(lr, 12) for lr in sched.get_last_lr()]
        [0.0001, 0.001]
    """
    return ScheduledLR(optimizer, schedule, start_step=start_step, cycle_momentum=cycle_momentum)
