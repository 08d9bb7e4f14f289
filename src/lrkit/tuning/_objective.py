"""The objective as tune runs it: the two calling styles, ``report``, and the wrapper that
records each trial's worker, constants and failure reason (picklable: it travels to worker
processes)."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from lrkit._optional import require
from lrkit._validate import check_int, fail
from lrkit.tuning._errors import StorageError, StorageFailed
from lrkit.tuning._space import Param

__all__ = ["HOST", "Report", "running_here", "suggest", "untagged_here", "worker_id"]

#: ``report(step, value)``: feed an intermediate value; raises the pruning signal to stop.
Report = Callable[[int, float], None]

HOST = socket.gethostname()


def worker_id() -> str:
    """``host:pid`` of this process, recorded on every trial it runs (dead-worker recovery
    reads it); computed per call, as a forked worker inherits this module."""
    return f"{HOST}:{os.getpid()}"


# the trials this process is evaluating right now: (study name, trial number)
_LIVE_TRIALS: set[tuple[str, int]] = set()
# trials this process started but could not tag with its worker id (a full disk)
_UNTAGGED: set[tuple[str, int]] = set()


class _BadObjectiveValue(ValueError):
    """The objective returned something that is not a finite number."""


# --------------------------------------------------------------------------------------------
# the objective wrapper (picklable: it travels to worker processes)


def _objective_style(objective: object) -> str:
    """ "lrkit" for ``objective(params, report)``, "optuna" for ``objective(trial)``."""
    if not callable(objective):
        fail("objective", objective, "a callable objective(params, report) or objective(trial)")
    try:
        signature = inspect.signature(objective)
    except (TypeError, ValueError):
        fail("objective", objective, "a callable with an inspectable signature")
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values())
    if len(required) == 2 or (len(required) < 2 and (len(positional) >= 2 or varargs)):
        return "lrkit"
    if len(required) == 1:
        return "optuna"
    fail(
        "objective",
        objective,
        f"a callable taking (params, report) or an Optuna trial, but its signature is {signature}",
    )


def _as_float(value: object) -> float:
    if isinstance(value, bool):
        raise _BadObjectiveValue(f"objective returned a bool ({value!r}), expected a number")
    if not isinstance(value, Real):
        item = getattr(value, "item", None)
        numel = getattr(value, "numel", None)
        size = numel() if callable(numel) else getattr(value, "size", 1)
        if callable(item) and size == 1:
            value = item()
        if isinstance(value, bool) or not isinstance(value, Real):
            raise _BadObjectiveValue(
                f"objective returned {type(value).__name__} {value!r:.60}, expected a number"
            )
    result = float(value)
    if not math.isfinite(result):
        raise _BadObjectiveValue(f"objective returned {result}, expected a finite number")
    return result


class _Reporter:
    """The ``report(step, value)`` handed to lrkit-style objectives."""

    def __init__(self, trial: Any) -> None:
        self._trial = trial
        self._last_step = -1

    def __call__(self, step: int, value: float) -> None:
        optuna = require("optuna", "tune")
        step = check_int("step", step, minimum=0)
        if isinstance(value, bool) or not isinstance(value, Real):
            try:
                value = _as_float(value)
            except _BadObjectiveValue:
                fail("value", value, "a number")
        number = float(value)
        if not math.isfinite(number):
            reason = f"diverged: reported {number} at step {step}"
            self._trial.set_user_attr("lrkit_reason", reason)
            # keep the step so the spent training is counted (the value itself is not finite)
            self._trial.set_user_attr("lrkit_steps", step)
            raise optuna.TrialPruned(reason)
        if step <= self._last_step:
            return  # Optuna keeps the first value of a step; later ones are ignored
        self._last_step = step
        self._trial.report(number, step)
        if self._trial.should_prune():
            reason = f"pruned at step {step} (value {number:.6g})"
            self._trial.set_user_attr("lrkit_reason", reason)
            raise optuna.TrialPruned(reason)


def suggest(trial: Any, space: Sequence[Param]) -> dict[str, Any]:
    """Draw one point of ``space`` through an Optuna trial (constants included)."""
    params: dict[str, Any] = {}
    for p in space:
        if p.kind == "log":
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=True)
        elif p.kind == "float":
            params[p.name] = trial.suggest_float(p.name, p.low, p.high)
        elif p.kind == "int":
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high))
        elif p.kind == "logint":
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=True)
        elif p.kind == "choice":
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        else:
            params[p.name] = p.choices[0]
    return params


@dataclass
class _Objective:
    func: Callable[..., Any]
    style: str
    space: list[Param]

    def __call__(self, trial: Any) -> float:
        optuna = require("optuna", "tune")
        key = (trial.study.study_name, trial.number)
        _LIVE_TRIALS.add(key)
        try:
            try:
                trial.set_user_attr("lrkit_worker", worker_id())
            except BaseException:
                # the trial exists but carries no worker: this process knows it is its own
                _UNTAGGED.add(key)
                raise
            constants = {p.name: p.choices[0] for p in self.space if p.kind == "const"}
            if constants:
                trial.set_user_attr("lrkit_constants", constants)
            if self.style == "optuna":
                raw = self.func(trial)
            else:
                raw = self.func(suggest(trial, self.space), _Reporter(trial))
            return _as_float(raw)
        except optuna.TrialPruned:
            raise
        except StorageError as exc:
            # not the objective's failure: the trial stays RUNNING and is run again
            raise StorageFailed(exc) from None
        except KeyboardInterrupt as exc:
            # Ctrl-C, or SIGTERM while tune runs workers: the trial did not finish; it is
            # queued again (see _recovery.requeue_interrupted)
            with contextlib.suppress(Exception):
                trial.set_user_attr("lrkit_reason", f"interrupted ({exc or 'KeyboardInterrupt'})")
                trial.set_user_attr("lrkit_interrupted", True)
            raise
        except Exception as exc:
            if isinstance(exc, _BadObjectiveValue):
                reason = str(exc)
            else:
                reason = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("lrkit_reason", reason[:500])
            raise
        finally:
            _LIVE_TRIALS.discard(key)


def running_here(study_name: str, number: int) -> bool:
    """Whether trial ``number`` of ``study_name`` is being evaluated by this process now."""
    return (study_name, number) in _LIVE_TRIALS


def untagged_here(study_name: str, number: int) -> bool:
    """Whether this process started trial ``number`` but could not record its worker id."""
    return (study_name, number) in _UNTAGGED
