"""The recommendation as code: build the optimizer, attach the schedule, step both."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from lrkit.advice import fmt_lr

__all__ = ["code_snippet", "optimizer_kwargs"]

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


def optimizer_kwargs(optimizer: torch.optim.Optimizer, name: str) -> dict[str, Any]:
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
