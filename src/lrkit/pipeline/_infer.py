"""Read the advisor's names off a user's setup: the optimizer from its class and settings, the
architecture from the layers of the model."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lrkit._validate import fail

__all__ = ["choose_name", "infer_architecture", "infer_optimizer"]


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


def choose_name(
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
