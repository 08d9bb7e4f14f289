"""Snapshot and exact restore of the user's training state: the one home of this mechanism.

Used by the range test (:func:`lrkit.finder.find_lr`) and by the Guard's rollback
(:class:`lrkit.diagnosis.Guard`). One :class:`Snapshot` holds a single copy (CPU, on the tensors'
device, or in one file) of the model's parameters and buffers, optionally the gradients that
existed, the optimizer's per-parameter state, the param-group hyper-parameters, every module's
training flag, an optional scheduler's state, optionally the global RNG states (python
``random``, numpy's global generator, torch CPU and, when initialised, CUDA) and the state of
any generator objects given (a DataLoader's ``generator``, a sampler's).

:meth:`Snapshot.restore` writes all of it back in place, bitwise, keeps object identities (the
optimizer keeps pointing at the same ``Parameter`` objects) and cannot be interrupted: SIGINT /
SIGTERM arriving during it are delivered when it has finished (:mod:`lrkit._signals`). A disk
copy is deleted only after a restore has succeeded; when a restore fails, the file is kept and
its path is added to the exception. A disk copy that is never restored is deleted when the
snapshot is discarded, garbage-collected or the interpreter exits (``weakref.finalize``).
"""

from __future__ import annotations

import copy
import logging
import os
import random
import shutil
import tempfile
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrkit._signals import uninterruptible

__all__ = ["Snapshot", "SnapshotError", "find_generators", "take_snapshot"]

logger = logging.getLogger(__name__)


class SnapshotError(OSError):
    """The state could not be saved (a full disk, a missing permission, ...).

    Raised before anything of the user's state was changed; a partial file is removed.
    ``errno`` is the underlying error's, when there is one.
    """


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


Generator = torch.Generator | np.random.Generator | random.Random


def _generator_state(gen: Generator) -> Any:
    if isinstance(gen, torch.Generator):
        return gen.get_state()
    if isinstance(gen, np.random.Generator):
        return copy.deepcopy(gen.bit_generator.state)
    return gen.getstate()


def _set_generator_state(gen: Generator, state: Any) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    elif isinstance(gen, np.random.Generator):
        gen.bit_generator.state = copy.deepcopy(state)
    else:
        gen.setstate(state)


def find_generators(*objects: object) -> list[Generator]:
    """The random generators a data loader draws from: its ``generator``, its samplers'.

    Looks at ``generator``, ``sampler`` and ``batch_sampler`` attributes (two levels deep) and
    returns each torch / numpy / python generator object found once.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> loader = torch.utils.data.DataLoader(list(range(8)), shuffle=True, generator=g)
        >>> find_generators(loader) == [g]
        True
    """
    found: dict[int, Generator] = {}

    def visit(obj: object, depth: int) -> None:
        if isinstance(obj, (torch.Generator, np.random.Generator, random.Random)):
            found.setdefault(id(obj), obj)
            return
        if depth > 2 or obj is None or isinstance(obj, (str, bytes, int, float)):
            return
        for name in ("generator", "sampler", "batch_sampler"):
            try:
                value = getattr(obj, name, None)
            except Exception:  # a property that raises: not ours to judge
                continue
            if value is not None and value is not obj:
                visit(value, depth + 1)

    for obj in objects:
        visit(obj, 0)
    return list(found.values())


@dataclass
class Snapshot:
    """The saved state; build it with :func:`take_snapshot`, write it back with :meth:`restore`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    slots: list[_TensorSlot]
    grads: list[tuple[torch.nn.Parameter, int]] | None
    opt_state: list[tuple[torch.Tensor, dict[str, Any]]]
    opt_state_devices: dict[tuple[int, str], torch.device]
    groups: list[dict[str, Any]]
    group_objects: list[dict[str, Any]]
    opt_attrs: dict[str, Any]
    modes: list[tuple[torch.nn.Module, bool]]
    scheduler_state: dict[str, Any] | None
    rng: _RngState | None
    generators: list[tuple[Generator, Any]]
    tensors: list[torch.Tensor] | None
    path: Path | None = None
    _tempdir: Path | None = field(default=None, repr=False)
    _finalizer: weakref.finalize | None = field(default=None, repr=False)  # type: ignore[type-arg]
    restored: bool = False

    def _load_tensors(self) -> list[torch.Tensor]:
        if self.tensors is not None:
            return self.tensors
        if self.path is None:
            raise RuntimeError("this snapshot was discarded; it cannot be restored")
        loaded = torch.load(self.path, map_location="cpu", weights_only=True)
        return list(loaded)

    def restore(self, *, keep: bool = False) -> None:
        """Write every saved value back in place (bitwise); SIGINT / SIGTERM wait until done.

        Afterwards the on-disk copy is deleted, unless ``keep`` (restore again later; the
        caller then discards it). When a restore without ``keep`` fails, the on-disk copy is
        kept (also past interpreter exit) and the exception says where it is.
        """
        with uninterruptible():
            try:
                self._write_back()
            except BaseException as exc:
                if self.path is not None and not keep:
                    self._keep_file()
                    exc.add_note(
                        f"lrkit: the state saved before is kept in {self.path} "
                        "(a list of tensors: torch.load(path, weights_only=True))"
                    )
                raise
            self.restored = True
            if not keep:
                self.discard()

    def _write_back(self) -> None:
        tensors = self._load_tensors()  # a disk copy is read completely before any write
        with torch.no_grad():
            for slot in self.slots:
                original = slot.original
                if original is None:
                    slot.owner[slot.key] = None
                else:
                    if slot.owner.get(slot.key) is not original:
                        slot.owner[slot.key] = original
                    original.copy_(tensors[slot.index])
            if self.grads is not None:
                had_grad = {id(p): i for p, i in self.grads}
                for group in self.optimizer.param_groups:
                    for p in group["params"]:
                        self._restore_grad(p, had_grad, tensors)
                for module in self.model.modules():
                    for p in module._parameters.values():
                        if p is not None:
                            self._restore_grad(p, had_grad, tensors)
        # optimizer per-parameter state: replace wholesale (moments created since disappear,
        # saved ones come back on their original device)
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
        for gen, saved_state in self.generators:
            _set_generator_state(gen, saved_state)
        if self.rng is not None:
            _restore_rng(self.rng)

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

    def _keep_file(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def discard(self) -> None:
        """Delete the on-disk copy (if any) and drop the in-memory one. Safe to call again."""
        if self._finalizer is not None:
            self._finalizer()  # deletes the file (or the temporary folder) once
            self._finalizer = None
        self._tempdir = None
        self.path = None
        self.tensors = None


# attributes some torch versions / schedulers set on the optimizer object during ``step``
_OPT_ATTRS = ("_opt_called",)


def _remove(path: Path, tempdir: Path | None) -> None:
    """Finalizer of a disk snapshot: its temporary folder, or its one file."""
    if tempdir is not None:
        shutil.rmtree(tempdir, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _save(tensors: list[torch.Tensor], path: Path) -> None:
    """Write ``tensors`` to ``path`` through a temporary name; nothing is left on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(tensors, handle)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, (OSError, RuntimeError)):
            raise
        # torch's writer reports a failed write as a RuntimeError; the OSError is its context
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        why = f"{cause.strerror or cause}" if isinstance(cause, OSError) else str(exc)
        error = SnapshotError(f"cannot save the state to {path}: {why}")
        error.errno = cause.errno if isinstance(cause, OSError) else None  # type: ignore[assignment]
        raise error from exc


def take_snapshot(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    scheduler: Any | None = None,
    where: str = "memory",
    path: str | os.PathLike[str] | None = None,
    generators: Iterable[Generator] = (),
    rng: bool = True,
    grads: bool = True,
    on_device: bool = False,
) -> Snapshot:
    """Save the state of ``model``, ``optimizer``, ``scheduler`` and the RNGs.

    ``where="memory"`` keeps one copy of every tensor (on the CPU, or on the tensors' own device
    with ``on_device=True``); ``where="disk"`` writes them to ``path`` (default: one file in a
    fresh temporary folder) and keeps none in memory. ``generators`` are generator objects
    (torch, numpy or python) whose state is saved too (see :func:`find_generators`);
    ``rng=False`` leaves the global RNGs out, ``grads=False`` the gradients (restore then leaves
    them as they are). Raises :class:`SnapshotError` when the file cannot be written.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> snap = take_snapshot(model, opt)
        >>> with torch.no_grad():
        ...     _ = model.weight.add_(1.0)
        >>> snap.restore()
    """
    if where not in ("memory", "disk"):
        raise ValueError(f"where must be one of 'memory', 'disk', but got where={where!r}")
    to_cpu = where == "disk" or not on_device

    def save(tensor: torch.Tensor) -> torch.Tensor:
        if to_cpu:
            return tensor.detach().to("cpu", copy=True)
        return tensor.detach().clone()

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
                    tensors.append(save(value))
                index = saved_at[id(value)]
                slots.append(_TensorSlot(owner, key, value, index))  # type: ignore[arg-type]
    grad_list: list[tuple[torch.nn.Parameter, int]] | None = None
    if grads:
        grad_list = []
        grad_seen: set[int] = set()
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for p in params + list(model.parameters()):
            if id(p) in grad_seen:
                continue
            grad_seen.add(id(p))
            if p.grad is not None:
                grad_list.append((p, len(tensors)))
                tensors.append(save(p.grad))
    opt_state: list[tuple[torch.Tensor, dict[str, Any]]] = []
    devices: dict[tuple[int, str], torch.device] = {}
    for param, pstate in optimizer.state.items():
        saved: dict[str, Any] = {}
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                devices[(id(param), key)] = value.device
                saved[key] = len(tensors)
                tensors.append(save(value))
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
    gens: dict[int, Generator] = {id(g): g for g in generators}
    snapshot = Snapshot(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        slots=slots,
        grads=grad_list,
        opt_state=opt_state,
        opt_state_devices=devices,
        groups=groups,
        group_objects=[
            {k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups
        ],
        opt_attrs=opt_attrs,
        modes=modes,
        scheduler_state=scheduler_state,
        rng=_capture_rng() if rng else None,
        generators=[(g, _generator_state(g)) for g in gens.values()],
        tensors=tensors,
    )
    if where == "disk":
        _write_disk_copy(snapshot, tensors, None if path is None else Path(path))
    return snapshot


def _write_disk_copy(snapshot: Snapshot, tensors: list[torch.Tensor], path: Path | None) -> None:
    # the folder/file exists only while a finalizer is registered for it: no signal can slip in
    # between (a KeyboardInterrupt waits for the end of the block, then the finalizer cleans up)
    with uninterruptible():
        if path is None:
            tempdir = Path(tempfile.mkdtemp(prefix="lrkit-snapshot-"))
            target = tempdir / "snapshot.pt"
        else:
            tempdir, target = None, path
        snapshot._tempdir = tempdir
        snapshot.path = target
        snapshot._finalizer = weakref.finalize(snapshot, _remove, target, tempdir)
        try:
            _save(tensors, target)
        except BaseException:
            snapshot.discard()
            raise
    snapshot.tensors = None
    logger.debug("snapshot written to %s", target)
