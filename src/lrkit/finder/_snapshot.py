"""Snapshot and exact restore of everything a range test touches.

One :class:`Snapshot` holds a single CPU copy (or an on-disk copy) of the model's parameters and
buffers, the optimizer's per-parameter state, the param-group hyper-parameters, the gradients
that existed, every module's training flag, an optional scheduler's state and the global RNG
states (python ``random``, numpy's global generator, torch CPU and, when initialised, CUDA).
:meth:`Snapshot.restore` writes all of it back in place, bitwise, and keeps object identities
(the optimizer keeps pointing at the same ``Parameter`` objects), so it is safe to call from a
``finally`` block after success, divergence, an exception or ``KeyboardInterrupt``.
"""

from __future__ import annotations

import copy
import logging
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Snapshot", "take_snapshot"]

logger = logging.getLogger(__name__)


@dataclass
class _TensorSlot:
    """Where a tensor lives (owner dict + key) and the original object stored there."""

    owner: dict[str, Any]
    key: str
    original: torch.Tensor | None
    index: int  # position in the saved tensor list, -1 when the slot held None


@dataclass
class _RngState:
    python: tuple[Any, ...]
    numpy: dict[str, Any]
    torch_cpu: torch.Tensor
    cuda: list[torch.Tensor] | None


def _capture_rng() -> _RngState:
    cuda: list[torch.Tensor] | None = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        cuda = list(torch.cuda.get_rng_state_all())
    return _RngState(
        python=random.getstate(),
        numpy=np.random.get_state(legacy=False),  # type: ignore[dict-item]
        torch_cpu=torch.get_rng_state(),
        cuda=cuda,
    )


def _restore_rng(state: _RngState) -> None:
    random.setstate(state.python)
    np.random.set_state(state.numpy)
    torch.set_rng_state(state.torch_cpu)
    if state.cuda is not None:
        torch.cuda.set_rng_state_all(state.cuda)


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", copy=True)


@dataclass
class Snapshot:
    """The saved state; build it with :func:`take_snapshot`, write it back with :meth:`restore`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    slots: list[_TensorSlot]
    grads: list[tuple[torch.nn.Parameter, int]]
    opt_state: list[tuple[torch.Tensor, dict[str, Any]]]
    opt_state_devices: dict[tuple[int, str], torch.device]
    groups: list[dict[str, Any]]
    group_objects: list[dict[str, Any]]
    opt_attrs: dict[str, Any]
    modes: list[tuple[torch.nn.Module, bool]]
    scheduler_state: dict[str, Any] | None
    rng: _RngState
    tensors: list[torch.Tensor] | None
    path: Path | None = None
    _tempdir: Path | None = field(default=None, repr=False)
    restored: bool = False

    def _load_tensors(self) -> list[torch.Tensor]:
        if self.tensors is not None:
            return self.tensors
        assert self.path is not None  # internal invariant, not user input
        loaded = torch.load(self.path, map_location="cpu", weights_only=True)
        return list(loaded)

    def restore(self) -> None:
        """Write every saved value back in place (bitwise) and delete any temporary files."""
        try:
            tensors = self._load_tensors()
            with torch.no_grad():
                for slot in self.slots:
                    original = slot.original
                    if original is None:
                        slot.owner[slot.key] = None
                    else:
                        if slot.owner.get(slot.key) is not original:
                            slot.owner[slot.key] = original
                        original.copy_(tensors[slot.index])
                had_grad = {id(p): i for p, i in self.grads}
                for group in self.optimizer.param_groups:
                    for p in group["params"]:
                        self._restore_grad(p, had_grad, tensors)
                for module in self.model.modules():
                    for p in module._parameters.values():
                        if p is not None:
                            self._restore_grad(p, had_grad, tensors)
            # optimizer per-parameter state: replace wholesale (moments created during the test
            # disappear, saved ones come back on their original device)
            state = self.optimizer.state
            state.clear()
            for param, saved in self.opt_state:
                restored: dict[str, Any] = {}
                for key, value in saved.items():
                    if isinstance(value, int) and (id(param), key) in self.opt_state_devices:
                        device = self.opt_state_devices[(id(param), key)]
                        restored[key] = tensors[value].to(device, copy=True)
                    else:
                        restored[key] = copy.deepcopy(value)
                state[param] = restored
            pairs = zip(self.optimizer.param_groups, self.groups, self.group_objects, strict=True)
            for group, saved_group, objects in pairs:
                for key in [k for k in group if k != "params" and k not in saved_group]:
                    del group[key]
                for key, value in saved_group.items():
                    original = objects.get(key)
                    if isinstance(original, torch.Tensor) and isinstance(value, torch.Tensor):
                        with torch.no_grad():  # e.g. a tensor lr: same object, old value
                            original.copy_(value)
                        group[key] = original
                    else:
                        group[key] = copy.deepcopy(value)
            for name in _OPT_ATTRS:
                if name in self.opt_attrs:
                    setattr(self.optimizer, name, self.opt_attrs[name])
                elif name in vars(self.optimizer):
                    delattr(self.optimizer, name)
            if self.scheduler is not None and self.scheduler_state is not None:
                self.scheduler.load_state_dict(copy.deepcopy(self.scheduler_state))
            for module, training in self.modes:
                module.training = training
            _restore_rng(self.rng)
            self.restored = True
        finally:
            self.discard()

    def _restore_grad(
        self, p: torch.Tensor, had_grad: dict[int, int], tensors: list[torch.Tensor]
    ) -> None:
        index = had_grad.get(id(p))
        if index is None:
            p.grad = None
        elif p.grad is not None and p.grad.shape == tensors[index].shape:
            p.grad.copy_(tensors[index])
        else:
            p.grad = tensors[index].to(p.device, copy=True)

    def discard(self) -> None:
        """Delete the on-disk copy (if any). Safe to call more than once."""
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
            self.path = None


# attributes some torch versions / schedulers set on the optimizer object during ``step``
_OPT_ATTRS = ("_opt_called",)


def take_snapshot(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    scheduler: Any | None = None,
    where: str = "memory",
) -> Snapshot:
    """Save the state of ``model``, ``optimizer``, ``scheduler`` and the global RNGs.

    ``where="memory"`` keeps one CPU copy of every tensor; ``where="disk"`` writes the tensors
    to one file in a fresh temporary directory that :meth:`Snapshot.restore` removes.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> snap = take_snapshot(model, opt)
        >>> with torch.no_grad():
        ...     _ = model.weight.add_(1.0)
        >>> snap.restore()
    """
    tensors: list[torch.Tensor] = []
    slots: list[_TensorSlot] = []
    saved_at: dict[int, int] = {}  # id of a tensor already saved -> its index in tensors
    modes: list[tuple[torch.nn.Module, bool]] = []
    for module in model.modules():
        modes.append((module, module.training))
        for owner in (module._parameters, module._buffers):
            for key, value in owner.items():
                if value is None:
                    slots.append(_TensorSlot(owner, key, None, -1))  # type: ignore[arg-type]
                    continue
                if id(value) not in saved_at:  # a shared (tied) tensor is saved once
                    saved_at[id(value)] = len(tensors)
                    tensors.append(_cpu_copy(value))
                index = saved_at[id(value)]
                slots.append(_TensorSlot(owner, key, value, index))  # type: ignore[arg-type]
    grads: list[tuple[torch.nn.Parameter, int]] = []
    grad_seen: set[int] = set()
    all_params = [p for g in optimizer.param_groups for p in g["params"]] + list(model.parameters())
    for p in all_params:
        if id(p) in grad_seen:
            continue
        grad_seen.add(id(p))
        if p.grad is not None:
            grads.append((p, len(tensors)))
            tensors.append(_cpu_copy(p.grad))
    opt_state: list[tuple[torch.Tensor, dict[str, Any]]] = []
    devices: dict[tuple[int, str], torch.device] = {}
    for param, pstate in optimizer.state.items():
        saved: dict[str, Any] = {}
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                devices[(id(param), key)] = value.device
                saved[key] = len(tensors)
                tensors.append(_cpu_copy(value))
            else:
                saved[key] = copy.deepcopy(value)
        opt_state.append((param, saved))
    groups = [
        {k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups
    ]
    opt_attrs = {name: vars(optimizer)[name] for name in _OPT_ATTRS if name in vars(optimizer)}
    scheduler_state = None
    if scheduler is not None:
        scheduler_state = copy.deepcopy(scheduler.state_dict())
    snapshot = Snapshot(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        slots=slots,
        grads=grads,
        opt_state=opt_state,
        opt_state_devices=devices,
        groups=groups,
        group_objects=[
            {k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups
        ],
        opt_attrs=opt_attrs,
        modes=modes,
        scheduler_state=scheduler_state,
        rng=_capture_rng(),
        tensors=tensors,
    )
    if where == "disk":
        tempdir = Path(tempfile.mkdtemp(prefix="lrkit-find-"))
        snapshot._tempdir = tempdir
        snapshot.path = tempdir / "snapshot.pt"
        try:
            torch.save(tensors, snapshot.path)
        except BaseException:
            snapshot.discard()
            raise
        snapshot.tensors = None
        logger.debug("range-test snapshot written to %s", snapshot.path)
    return snapshot
