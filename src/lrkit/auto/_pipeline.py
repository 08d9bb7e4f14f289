"""``lrkit.auto``: advise -> range test -> suggestion -> schedule -> guarded check run -> report.

Each stage is a public lrkit function; this module only chains them and keeps what each found:

1. :func:`lrkit.advise.advise` for the optimizer and architecture (read from the setup when
   not given) gives a starting point and the sweep of the range test;
2. :func:`lrkit.finder.find_lr` runs the range test (it restores the model and optimizer);
3. the schedule is chosen by the advisor for the step budget, and the range test's suggestion
   *for that schedule* (``RangeTest.suggest(schedule=...)``) becomes its peak learning rate;
4. optionally a short training run (``train_steps``) with that schedule, watched by a live
   :class:`lrkit.diagnose.Guard` (warn policy: it records, it does not intervene), on a copy of
   the model and optimizer (the user's objects are never changed);
5. :func:`lrkit.diagnose.diagnose` reads that run;
6. a report (HTML + markdown + PNGs + JSON) when ``out`` is given.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lrkit._setup import Setup, as_setup
from lrkit._threads import torch_threads
from lrkit._validate import check_int, fail
from lrkit.advise import Advice, advise, fmt_lr
from lrkit.advise._advice import normalize_architecture, normalize_optimizer
from lrkit.finder._rules import schedule_family as finder_schedule

__all__ = [
    "AutoResult",
    "Progress",
    "auto",
    "code_snippet",
    "finder_schedule",
    "infer_architecture",
    "infer_optimizer",
]

logger = logging.getLogger(__name__)

#: torch threads while a built-in task runs (restored afterwards)
_TASK_THREADS = 1

#: ``progress(stage, done, total)``: stage is "range test", "training" or "report"
Progress = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------- inference
def infer_optimizer(optimizer: torch.optim.Optimizer) -> str:
    """The advisor's name for a torch optimizer (``SGD(momentum=0.9)`` -> ``"sgd_momentum"``).

    Raises ValueError for optimizers the advisor does not know (pass ``optimizer=`` then).

    Example:
        >>> import torch
        >>> p = [torch.nn.Parameter(torch.zeros(1))]
        >>> infer_optimizer(torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True))
        'nesterov'
    """
    name = type(optimizer).__name__.lower()
    if isinstance(optimizer, torch.optim.SGD):
        momentum = float(optimizer.defaults.get("momentum", 0.0) or 0.0)
        if momentum > 0 and optimizer.defaults.get("nesterov"):
            return "nesterov"
        return "sgd_momentum" if momentum > 0 else "sgd"
    for cls, key in (
        (torch.optim.AdamW, "adamw"),
        (torch.optim.Adam, "adam"),
        (torch.optim.RMSprop, "rmsprop"),
        (torch.optim.Adagrad, "adagrad"),
    ):
        if isinstance(optimizer, cls):
            return key
    if "lion" in name:
        return "lion"
    fail(
        "optimizer",
        type(optimizer).__name__,
        "an optimizer the advisor knows (SGD, Adam, AdamW, RMSprop, Adagrad, Lion); "
        "pass optimizer=NAME (--optimizer) to name the closest one",
    )


def infer_architecture(model: torch.nn.Module) -> str:
    """The advisor's architecture name for ``model``, from the layers it contains.

    Attention layers -> transformer; recurrent layers -> rnn; convolutions -> cnn (resnet when
    a module's class name says so); only linear layers -> mlp. Raises ValueError otherwise.

    Example:
        >>> import torch
        >>> infer_architecture(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()))
        'mlp'
    """
    modules = list(model.modules())
    names = {type(m).__name__.lower() for m in modules}
    if any(
        isinstance(
            m,
            (
                torch.nn.MultiheadAttention,
                torch.nn.TransformerEncoderLayer,
                torch.nn.TransformerDecoderLayer,
            ),
        )
        for m in modules
    ) or any("attention" in n for n in names):
        return "transformer"
    if any(isinstance(m, torch.nn.RNNBase) for m in modules):
        return "rnn"
    if any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in modules):
        if any("resnet" in n or n in ("basicblock", "bottleneck") for n in names):
            return "resnet"
        return "cnn"
    if any(isinstance(m, torch.nn.Linear) for m in modules):
        return "mlp"
    fail(
        "architecture",
        type(model).__name__,
        "a model whose kind lrkit can tell (linear, convolution, recurrent or attention "
        "layers); pass architecture=NAME (--arch)",
    )


# ---------------------------------------------------------------------------------- result
@dataclass
class AutoResult:
    """Everything ``auto`` found. ``lr`` with ``schedule`` is the recommendation.

    ``lr_source`` says where ``lr`` came from (the range test's schedule-aware suggestion, or
    the advisor when the range test gave no clear answer, with the reason in ``notes``).
    ``training``, ``guard_events`` and ``diagnosis`` are empty without a check run;
    ``report`` holds the written paths (``html``, ``markdown``, ``json``, PNGs) when ``out``
    was given.
    """

    name: str
    optimizer: str
    architecture: str
    advice: Advice
    lr: float
    lr_source: str
    schedule: str
    total_steps: int | None
    range_test: Any = None
    suggestion: float | None = None
    suggestion_reason: str | None = None
    finder_schedule: str = "constant"
    lr_range: tuple[float, float] | None = None
    train_steps: int = 0
    train_schedule: str | None = None
    training: Any = None
    guard_events: list[dict[str, Any]] = field(default_factory=list)
    diagnosis: Any = None
    report: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    inferred: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def snippet(self) -> str:
        """Copy-pasteable code: the optimizer and ``lrkit.schedules.attach``."""
        return code_snippet(
            self.optimizer, self.lr, self.schedule, self.total_steps, self.optimizer_kwargs
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (the range test and diagnosis via their ``to_dict``)."""

        def _sub(obj: Any) -> Any:
            if obj is None:
                return None
            to_dict = getattr(obj, "to_dict", None)
            return to_dict() if callable(to_dict) else repr(obj)

        return {
            "name": self.name,
            "optimizer": self.optimizer,
            "optimizer_kwargs": {k: _jsonable(v) for k, v in self.optimizer_kwargs.items()},
            "architecture": self.architecture,
            "inferred": dict(self.inferred),
            "lr": self.lr,
            "lr_source": self.lr_source,
            "schedule": self.schedule,
            "total_steps": self.total_steps,
            "suggestion": self.suggestion,
            "suggestion_reason": self.suggestion_reason,
            "finder_schedule": self.finder_schedule,
            "lr_range": None if self.lr_range is None else list(self.lr_range),
            "advice": self.advice.to_dict(),
            "range_test": _sub(self.range_test),
            "train_steps": self.train_steps,
            "train_schedule": self.train_schedule,
            "training": _training_dict(self.training),
            "guard_events": [_jsonable(e) for e in self.guard_events],
            "diagnosis": _sub(self.diagnosis),
            "report": {k: str(v) for k, v in self.report.items()},
            "notes": list(self.notes),
            "timings": dict(self.timings),
            "snippet": self.snippet,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return _jsonable(float(value.item()))
    item = getattr(value, "item", None)
    if callable(item):
        return _jsonable(item())
    return str(value)


# ---------------------------------------------------------------------------------- snippet
_TORCH_CLASS = {
    "sgd": ("torch.optim.SGD", {}),
    "sgd_momentum": ("torch.optim.SGD", {"momentum": 0.9}),
    "nesterov": ("torch.optim.SGD", {"momentum": 0.9, "nesterov": True}),
    "adam": ("torch.optim.Adam", {}),
    "adamw": ("torch.optim.AdamW", {}),
    "rmsprop": ("torch.optim.RMSprop", {}),
    "adagrad": ("torch.optim.Adagrad", {}),
    "lion": ("Lion", {}),
}


#: the snippet's lines stay this short (a terminal of 80 columns shows them unbroken)
_SNIPPET_WIDTH = 79


def _literal(value: Any) -> str:
    if isinstance(value, float):
        return fmt_lr(value) if value != 0 else "0.0"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    return repr(value)


def code_snippet(
    optimizer: str,
    lr: float,
    schedule: str,
    total_steps: int | None,
    kwargs: Mapping[str, Any] | None = None,
) -> str:
    """The recommendation as Python: build the optimizer, attach the schedule, step both."""
    cls, defaults = _TORCH_CLASS[optimizer]
    options = dict(defaults)
    options.update(kwargs or {})
    arguments = ["model.parameters()", f"lr={_literal(lr)}"] + [
        f"{k}={_literal(v)}" for k, v in options.items()
    ]
    call = f"optimizer = {cls}({', '.join(arguments)})"
    if len(call) > _SNIPPET_WIDTH:  # one argument a line: no terminal wraps it mid-token
        call = f"optimizer = {cls}(\n" + "".join(f"    {a},\n" for a in arguments) + ")"
    plateau = schedule.startswith("plateau") or "plateau(" in schedule
    lines = ["import torch", "from lrkit.schedules import attach", ""]
    if optimizer == "lion":
        lines.insert(1, "from lion_pytorch import Lion  # pip install lion-pytorch")
    lines += [
        call,
        f'scheduler = attach(optimizer, "{schedule}")',
        "",
    ]
    if total_steps:
        lines.append(f"# the schedule spans {total_steps} optimizer steps (all epochs together)")
    lines += [
        "for inputs, targets in train_loader:",
        "    loss = loss_fn(model(inputs), targets)",
        "    optimizer.zero_grad()",
        "    loss.backward()",
        "    optimizer.step()",
    ]
    if plateau:
        lines += [
            "    scheduler.step()",
            "    # after each validation pass: scheduler.observe(val_loss)",
        ]
    else:
        lines += ["    scheduler.step()"]
    return "\n".join(lines) + "\n"


def _optimizer_kwargs(optimizer: torch.optim.Optimizer, name: str) -> dict[str, Any]:
    """Hyper-parameters of the user's optimizer that differ from torch's defaults (not lr)."""
    try:
        params = inspect.signature(type(optimizer)).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return {}
    implied = _TORCH_CLASS[name][1]
    result: dict[str, Any] = {}
    for key, value in optimizer.defaults.items():
        if key == "lr" or key not in params:
            continue
        default = params[key].default
        if isinstance(value, (bool, int, float, tuple)) and value != default:
            if implied.get(key) == value:
                continue
            result[key] = value
    return result


def _training_dict(training: Any) -> Any:
    if training is None:
        return None
    to_dict = getattr(training, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return repr(training)


# ---------------------------------------------------------------------------------- pipeline
def _resolve(target: object, task: str | None, seed: int) -> tuple[str, Setup, Any]:
    """(name, setup, task object or None) from a task name, a Task, a Setup or a mapping."""
    if task is not None and target is not None:
        fail("task", task, "None when a target is given (give one of them)")
    if task is not None or isinstance(target, str):
        from lrkit.tasks import get_task

        name = task if task is not None else str(target)
        task_obj = get_task(name)
        return name, as_setup(task_obj.setup(seed=seed), source=f"task {name!r}"), task_obj
    if target is None:
        fail("target", target, "a Setup, a mapping with model/optimizer/train_loader, or a task")
    if hasattr(target, "setup") and callable(target.setup) and not isinstance(target, Setup):
        name = str(getattr(target, "name", type(target).__name__))
        return name, as_setup(target.setup(seed=seed), source=f"task {name!r}"), target
    setup = as_setup(target, source="target")
    return type(setup.model).__name__, setup, None


def auto(
    target: object = None,
    *,
    task: str | None = None,
    optimizer: str | None = None,
    architecture: str | None = None,
    fine_tuning: bool = False,
    batch_size: int | None = None,
    reference_batch_size: int | None = None,
    total_steps: int | None = None,
    quick: bool = False,
    train_steps: int = 0,
    range_steps: int = 100,
    eval_every: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: Progress | None = None,
) -> AutoResult:
    """Answer "what learning rate and schedule should I use?" end to end.

    Args:
        target: a :class:`~lrkit._setup.Setup` (or a mapping / object with ``model``,
            ``optimizer``, ``train_loader`` and optionally ``loss_fn``, ``val_loader``,
            ``step_fn``), a built-in task name, or a task object.
        task: a built-in task name (instead of ``target``), e.g. ``"digits"``.
        optimizer, architecture: the advisor's names; read from the setup when omitted.
        fine_tuning, batch_size, reference_batch_size, quick: passed to :func:`lrkit.advise`.
        total_steps: your training budget in optimizer steps; the schedule is built for it
            (default: ``train_steps`` when a check run is asked for).
        train_steps: length of the guarded check run (0: no training).
        range_steps: steps of the range test (>= 10).
        eval_every: validation interval of the check run (default: about 10 evaluations).
        seed: seed of the task setup and of the check run.
        out: directory for the report (``report.html``, ``report.md``, PNGs, ``result.json``).
        progress: ``progress(stage, done, total)`` callback (the CLI draws bars with it).

    Returns:
        an :class:`AutoResult` with the advice, the range test, the suggestion and range, the
        schedule, the check run, the Guard's events, the diagnosis and the report paths.

    Example:
        >>> from lrkit.auto import auto
        >>> result = auto(task="digits", train_steps=200)  # doctest: +SKIP
        >>> print(result.lr, result.schedule)  # doctest: +SKIP
    """
    range_steps = check_int("range_steps", range_steps, minimum=10)
    train_steps = check_int("train_steps", train_steps, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    if total_steps is not None:
        total_steps = check_int("total_steps", total_steps, minimum=10)
    if train_steps and train_steps < 10:
        fail("train_steps", train_steps, "0 (no check run) or an integer >= 10")
    if eval_every is not None:
        eval_every = check_int("eval_every", eval_every, minimum=1)
    out_dir = None if out is None else Path(out)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        fail("out", str(out_dir), "a directory (it is a file)")

    timings: dict[str, float] = {}
    notes: list[str] = []
    inferred: dict[str, str] = {}
    t0 = time.perf_counter()
    name, setup, task_obj = _resolve(target, task, seed)
    opt_name = _choose(
        "optimizer",
        optimizer,
        getattr(task_obj, "optimizer", None),
        normalize_optimizer,
        lambda: (infer_optimizer(setup.optimizer), type(setup.optimizer).__name__),
        inferred,
    )
    arch = _choose(
        "architecture",
        architecture,
        getattr(task_obj, "model", None),
        normalize_architecture,
        lambda: (infer_architecture(setup.model), f"the layers of {type(setup.model).__name__}"),
        inferred,
    )
    budget = total_steps if total_steps is not None else (train_steps or None)
    advice = advise(
        opt_name,
        arch,
        fine_tuning=fine_tuning,
        batch_size=batch_size,
        reference_batch_size=reference_batch_size,
        total_steps=budget,
        quick=quick,
    )
    timings["setup"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ range test
    from lrkit.finder import find_lr

    low, high = advice.lr_range
    # the finder's own defaults (1e-7 .. 10, what its rule is benchmarked on), widened when the
    # advisor's range reaches beyond them; the test stops where the loss blows up
    start_lr, end_lr = min(1e-7, low / 100.0), max(10.0, high * 10.0)
    t0 = time.perf_counter()
    on_range = None if progress is None else _stage_callback(progress, "range test", range_steps)
    # the built-in tasks are tiny: one thread is several times faster than two on a busy
    # 2-core machine (threads fight over the cores); a user's setup keeps its own setting
    threads = _TASK_THREADS if task_obj is not None else None
    with torch_threads(threads):
        if progress is not None:
            progress("range test", 0, range_steps)
        range_test = find_lr(
            setup.model,
            setup.optimizer,
            setup.loss_fn,
            setup.train_loader,
            val_loader=None,
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=range_steps,
            step_fn=setup.step_fn,
            progress=on_range if on_range is not None else False,
        )
        if progress is not None:
            progress("range test", range_steps, range_steps)
    timings["range_test"] = time.perf_counter() - t0

    family = finder_schedule(advice.schedule, budget)
    suggestion, reason = _suggest(range_test, family)
    lr_range = _suggest_range(range_test, family)
    if suggestion is not None:
        lr = suggestion
        lr_source = (
            f"range test, lrkit's rule for a {family} schedule"
            if family != "constant"
            else "range test, lrkit's rule for a constant learning rate"
        )
    else:
        lr = advice.lr
        lr_source = "advisor (the range test gave no clear answer)"
        notes.append(f"range test: no clear answer ({reason}); using the advisor's {fmt_lr(lr)}")
    if suggestion is not None and not (low / 10 <= suggestion <= high * 10):
        where = "above" if suggestion > high else "below"
        notes.append(
            f"the range test's {fmt_lr(suggestion)} is more than 10x {where} the advisor's range "
            f"{fmt_lr(low)} .. {fmt_lr(high)}: the table holds generic starting points, the "
            "range test measured this model and data"
        )

    result = AutoResult(
        name=name,
        optimizer=opt_name,
        architecture=arch,
        advice=advice,
        lr=lr,
        lr_source=lr_source,
        schedule=advice.schedule,
        total_steps=budget,
        range_test=range_test,
        suggestion=suggestion,
        suggestion_reason=reason,
        finder_schedule=family,
        lr_range=lr_range,
        notes=notes,
        inferred=inferred,
        timings=timings,
        optimizer_kwargs=_optimizer_kwargs(setup.optimizer, opt_name),
    )

    # ------------------------------------------------------------------ check run
    if train_steps:
        train_spec = advice.schedule
        if budget != train_steps:
            train_spec = advise(
                opt_name,
                arch,
                fine_tuning=fine_tuning,
                batch_size=batch_size,
                reference_batch_size=reference_batch_size,
                total_steps=train_steps,
                quick=quick,
            ).schedule
            notes.append(
                f"the check run uses the same kind of schedule over {train_steps} steps: "
                f"{train_spec}"
            )
        result.train_steps = train_steps
        result.train_schedule = train_spec
        t0 = time.perf_counter()
        with torch_threads(threads):
            _check_run(result, setup, task_obj, train_spec, train_steps, eval_every, seed, progress)
        timings["training"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ report
    if out_dir is not None:
        from lrkit.auto._content import build_content
        from lrkit.auto._report import write_report

        t0 = time.perf_counter()
        if progress is not None:
            progress("report", 0, 1)
        result.report = write_report(build_content(result), out_dir)
        if progress is not None:
            progress("report", 1, 1)
        timings["report"] = time.perf_counter() - t0
    return result


def _choose(
    what: str,
    given: str | None,
    from_task: object,
    normalize: Callable[[object], str],
    infer: Callable[[], tuple[str, str]],
    inferred: dict[str, str],
) -> str:
    """The optimizer or architecture name: as given, else the task's, else inferred from the
    setup (``infer() -> (name, where from)``); the last two are noted in ``inferred``."""
    if given is not None:
        return normalize(given)
    if isinstance(from_task, str):
        name = normalize(from_task)
        inferred[what] = f"{name} (read from the task)"
        return name
    name, source = infer()
    inferred[what] = f"{name} (from {source})"
    return name


def _stage_callback(progress: Progress, stage: str, total: int) -> Callable[..., None]:
    """Adapt ``find_lr``'s ``f(done, num_steps, loss)`` callback to ``progress(stage, ...)``."""

    def callback(done: int, num_steps: int, loss: float) -> None:
        progress(stage, min(int(done), total), total)

    return callback


def _suggest(range_test: Any, family: str) -> tuple[float | None, str | None]:
    """The range test's suggestion for the schedule ``family`` and why (or why there is none)."""
    value = range_test.suggest(schedule=family)
    lr = _lr_of(value)
    if lr is not None:
        why = getattr(value, "reason", None)
        return lr, str(why) if why else None
    reason = getattr(value, "reason", None) or getattr(range_test, "stop_reason", None)
    return None, str(reason) if reason else "no usable descent in the curve"


def _lr_of(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value > 0 else None
    lr = getattr(value, "lr", None)
    return _lr_of(lr) if lr is not None else None


def _suggest_range(range_test: Any, family: str) -> tuple[float, float] | None:
    value = range_test.suggest_range(schedule=family)
    if value is None:
        return None
    low, high = _lr_of(value[0]), _lr_of(value[1])
    if low is None or high is None:
        return None
    return low, high


def _check_run(
    result: AutoResult,
    setup: Setup,
    task_obj: Any,
    spec: str,
    steps: int,
    eval_every: int | None,
    seed: int,
    progress: Progress | None,
) -> None:
    """Train a copy for ``steps`` steps with the schedule and a live Guard; diagnose the run."""
    from lrkit.diagnose import Guard, diagnose
    from lrkit.tasks import train

    guard = Guard(policy="warn")
    losses: list[float] = []

    def on_step(step: int, loss: float) -> None:
        losses.append(float(loss))
        guard.step(step, float(loss))
        if progress is not None:
            progress("training", step + 1, steps)

    if task_obj is not None:
        source: Any = task_obj
    else:
        model, optimizer = copy.deepcopy((setup.model, setup.optimizer))
        source = Setup(
            model=model,
            optimizer=optimizer,
            train_loader=setup.train_loader,
            loss_fn=setup.loss_fn,
            val_loader=setup.val_loader,
            step_fn=setup.step_fn,
        )
    every = eval_every if eval_every is not None else max(1, steps // 10)
    if progress is not None:
        progress("training", 0, steps)
    training = train(
        source,
        lr=result.lr,
        steps=steps,
        schedule=spec,
        seed=seed,
        eval_every=every,
        on_step=on_step,
    )
    result.training = training
    result.guard_events = [_event_dict(e) for e in getattr(guard, "events", [])]
    train_loss, val_steps, val_loss, lrs = _curves(training, losses)
    if setup.val_loader is None and task_obj is None:  # no validation data: no val curve
        val_steps, val_loss = [], []
    result.diagnosis = diagnose(
        train_loss,
        steps=list(range(len(train_loss))),
        val_loss=val_loss or None,
        val_steps=val_steps or None,
        lr=lrs,
    )


def _event_dict(event: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(event.to_dict())
    data["message"] = event.describe()
    return data


def _curves(
    training: Any, losses: list[float]
) -> tuple[list[float], list[int], list[float], list[float] | None]:
    """(train losses, val steps, val losses, lrs) of a TrainResult (or the on_step losses)."""
    train_loss = list(getattr(training, "train_loss", None) or losses)
    val_steps = list(getattr(training, "val_steps", None) or [])
    val_loss = list(getattr(training, "val_loss", None) or [])
    lrs = getattr(training, "lrs", None)
    return train_loss, val_steps, val_loss, (list(lrs) if lrs is not None else None)
