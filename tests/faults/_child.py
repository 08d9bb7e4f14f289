"""Child processes of the fault-injection suite, and the helpers the tests share.

A test runs ``python tests/faults/_child.py CASE '<json args>'`` with its own ``TMPDIR`` (so
"no file left behind" is checked on a folder nobody else writes to) and reads the last stdout
line, a JSON report. Signals and resource limits stay inside the child.

Every case checks the state the user cares about bit for bit: the model's parameters and
buffers (and their object identities), the gradients, the optimizer's per-parameter state and
param groups, every module's train/eval flag, python's / numpy's / torch's global RNG and the
DataLoader's own ``generator``.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

#: the names of what ``capture`` / ``differences`` compare (the invariants of every case)
STATE_PARTS = (
    "parameters and buffers",
    "tensor identities",
    "gradients",
    "optimizer state",
    "param groups",
    "train/eval flags",
    "python RNG",
    "numpy RNG",
    "torch RNG",
    "DataLoader generator",
)


# ---------------------------------------------------------------------------- parent side
def run_child(
    case: str,
    args: dict[str, Any] | list[Any],
    tmp: Path,
    *,
    timeout: float = 120.0,
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run one case in a fresh interpreter with ``TMPDIR=tmp``; return (report, process)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
    env.pop("LRKIT_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, str(HERE / "_child.py"), case, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO),
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(
            f"child {case} printed no report (rc={proc.returncode})\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1]), proc


def leftovers(folder: Path) -> list[str]:
    """Every file or folder under ``folder`` (relative paths)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------------------- state capture
def capture(model: Any, opt: Any, generators: list[Any] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    import numpy as np
    import torch

    return {
        "parameters and buffers": {
            k: v.detach().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]
        },
        "tensor identities": (
            [id(v) for _, v in model.named_parameters()],
            [id(v) for _, v in model.named_buffers()],
            [id(p) for g in opt.param_groups for p in g["params"]],
        ),
        "gradients": {
            k: None if v.grad is None else v.grad.detach().clone()
            for k, v in model.named_parameters()
        },
        "optimizer state": {
            id(p): {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
            for p, s in opt.state.items()
        },
        "param groups": [
            {k: (v.clone() if torch.is_tensor(v) else v) for k, v in g.items() if k != "params"}
            for g in opt.param_groups
        ],
        "train/eval flags": [(n, m.training) for n, m in model.named_modules()],
        "python RNG": random.getstate(),
        "numpy RNG": np.random.get_state(legacy=False),
        "torch RNG": torch.get_rng_state(),
        "DataLoader generator": [g.get_state() for g in generators],
    }


def _same(a: Any, b: Any) -> bool:
    import numpy as np
    import torch

    if torch.is_tensor(a) or torch.is_tensor(b):
        return (
            torch.is_tensor(a)
            and torch.is_tensor(b)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(torch.equal(a, b))
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The parts of the state that differ (empty: identical bit for bit)."""
    return [part for part in STATE_PARTS if not _same(before[part], after[part])]


# ---------------------------------------------------------------------------- signal helpers
class Sender(threading.Thread):
    """Sends SIGINT to this process after each delay (seconds, from the previous one)."""

    def __init__(self, delays: list[float], sig: int = signal.SIGINT) -> None:
        super().__init__(daemon=True)
        self.delays = delays
        self.sig = sig
        self.stopped = threading.Event()
        self.sent = 0

    def run(self) -> None:
        for delay in self.delays:
            if self.stopped.wait(delay):
                return
            os.kill(os.getpid(), self.sig)
            self.sent += 1


def quiet_signals(sender: Sender | None) -> None:
    """Stop the sender and swallow any signal still on its way (the harness must survive)."""
    while True:
        try:
            if sender is not None:
                sender.stopped.set()
                if sender.is_alive():
                    sender.join()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            continue


#: while True, SIGINT raises KeyboardInterrupt (the user's Ctrl-C); outside the call under test
#: a late signal from a sender is dropped, so the harness itself can never be interrupted
_ARMED = [False]


def _harness_sigint(signum: int, frame: FrameType | None) -> None:
    if _ARMED[0]:
        raise KeyboardInterrupt


def under_signals(call: Callable[[], str], senders: list[Sender]) -> tuple[str, str | None]:
    """Run ``call`` (it returns its outcome) while ``senders`` fire; survive late signals.

    Returns ("interrupted", None) after a KeyboardInterrupt, ("error", text) after any other
    exception. On return no signal is pending and SIGINT is ignored until the caller resets it.
    """
    outcome, error = "interrupted", None
    signal.signal(signal.SIGINT, _harness_sigint)
    try:
        try:
            _ARMED[0] = True
            for sender in senders:
                sender.start()
            outcome = call()
        except KeyboardInterrupt:
            outcome = "interrupted"
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            _ARMED[0] = False
            sys.settrace(None)
    except KeyboardInterrupt:  # a late signal while the above was handled
        _ARMED[0] = False
    for sender in senders or [None]:
        quiet_signals(sender)
    return outcome, error


def start_tracing(names: set[str], line: int) -> list[int]:
    """Send SIGINT at the ``line``-th line run inside lrkit functions called ``names``.

    Traces this thread from now on; stop with ``sys.settrace(None)``.
    """
    count = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            count[0] += 1
            if count[0] == line:
                os.kill(os.getpid(), signal.SIGINT)
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if event == "call" and code.co_name in names and "lrkit" in code.co_filename:
            return local
        return None

    sys.settrace(tracer)
    return count


def limit_file_size(size: int) -> None:
    """A full disk in miniature: writes beyond ``size`` bytes fail with EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))


def unlimit_file_size() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


def tmp_files() -> list[str]:
    import tempfile

    return leftovers(Path(tempfile.gettempdir()))


# ---------------------------------------------------------------------------- the user's setup
def setup(seed: int, opt_name: str, width: int = 64, depth: int = 2) -> dict[str, Any]:
    """A small user setup: MLP with batch norm and dropout, a stateful optimizer, a shuffling
    DataLoader with its own generator, and the global RNGs at seed-dependent states."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = [torch.nn.Linear(16, width), torch.nn.BatchNorm1d(width)]
    for _ in range(depth - 1):
        layers += [torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(width, width)]
    layers += [torch.nn.ReLU(), torch.nn.Linear(width, 1)]
    model = torch.nn.Sequential(*layers)
    opt: torch.optim.Optimizer
    if opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(256, 16)
    y = x[:, :3].sum(1, keepdim=True) + 0.1 * torch.randn(256, 1)
    gen = torch.Generator().manual_seed(seed + 1)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True, generator=gen
    )
    # optimizer state exists, a leftover gradient on one layer, one module in eval mode
    xb, yb = next(iter(loader))
    torch.nn.functional.mse_loss(model(xb), yb).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    model[-1].weight.grad = torch.full_like(model[-1].weight, 0.25)
    model[1].eval()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed + 2)
    return {"model": model, "opt": opt, "loader": loader, "gen": gen}


# ---------------------------------------------------------------------------- cases
def _range_run(s: dict[str, Any], args: dict[str, Any], progress: Any = None) -> None:
    import torch

    from lrkit.finder import find_lr

    find_lr(
        s["model"],
        s["opt"],
        torch.nn.functional.mse_loss,
        s["loader"],
        num_steps=args.get("steps", 30),
        end_lr=1.0,
        diverge_factor=None,
        snapshot=args["snapshot"],
        progress=progress or False,
    )


def _range_once(seed: int, args: dict[str, Any], duration: float) -> dict[str, Any]:
    """One range test on a fresh setup, with the signals of ``args["mode"]``."""
    mode, steps = args["mode"], args.get("steps", 30)
    rng = random.Random(seed)
    s = setup(seed, ("sgd", "adam")[seed % 2], args.get("width", 64), args.get("depth", 2))
    before = capture(s["model"], s["opt"], [s["gen"]])
    files_before = tmp_files()
    senders: list[Sender] = []
    traced: list[list[int]] = []
    line = 0
    progress = None
    if mode == "storm":  # 1-5 signals 1-20 ms apart, starting anywhere in the call
        first = rng.uniform(0.0, 1.1 * duration)
        senders.append(
            Sender([first] + [rng.uniform(0.001, 0.02) for _ in range(rng.randint(0, 4))])
        )
    else:  # the first Ctrl-C at a random step, the next one(s) during the restore it starts
        at_step, line = rng.randint(1, steps - 1), rng.randint(1, 40)
        gaps = [rng.uniform(0.001, 0.02), rng.uniform(0.001, 0.02)]

        def progress(step: int, total: int, loss: float) -> None:
            if step != at_step:
                return
            if mode == "restore-traced":
                traced.append(start_tracing({"restore", "_write_back", "_restore_grad"}, line))
            else:
                senders.append(Sender(gaps))
                senders[-1].start()
            os.kill(os.getpid(), signal.SIGINT)

    def call() -> str:
        _range_run(s, args, progress)
        return "completed"

    outcome, error = under_signals(call, list(senders))
    for sender in senders:  # also the one the progress callback started
        quiet_signals(sender)
    after = capture(s["model"], s["opt"], [s["gen"]])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return {
        "seed": seed,
        "outcome": outcome,
        "error": error,
        "signals": sum(x.sent for x in senders) + (mode != "storm"),
        # restore-traced: did the second SIGINT fire inside the restore?
        "hit": bool(traced) and traced[0][0] >= line,
        "diffs": differences(before, after),
        "files": sorted(set(tmp_files()) - set(files_before)),
    }


def case_range_sigint(args: dict[str, Any]) -> dict[str, Any]:
    """SIGINT storms during ``find_lr``: at random times, or aimed at its restore."""
    import torch

    torch.set_num_threads(1)
    warm = setup(0, "adam", args.get("width", 64), args.get("depth", 2))
    _range_run(warm, args)  # the first call pays one-time costs: time the second
    began = time.perf_counter()
    _range_run(warm, args)
    duration = time.perf_counter() - began
    first = args["first_seed"]
    rows = [_range_once(seed, args, duration) for seed in range(first, first + args["seeds"])]
    return {"rows": rows, "duration": duration}


def case_range_disk_full(args: dict[str, Any]) -> dict[str, Any]:
    """``find_lr(snapshot="disk")`` when the snapshot cannot be written (RLIMIT_FSIZE)."""
    import torch

    from lrkit.finder import find_lr

    torch.set_num_threads(1)
    rows = []
    for seed, size in enumerate(args["sizes"]):
        s = setup(seed, ("sgd", "adam")[seed % 2], width=args.get("width", 64))
        before = capture(s["model"], s["opt"], [s["gen"]])
        files_before = tmp_files()
        limit_file_size(size)
        outcome, error, errno_ = "completed", None, None
        try:
            find_lr(
                s["model"], s["opt"], torch.nn.functional.mse_loss, s["loader"],
                num_steps=12, snapshot="disk",
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            outcome, error = type(exc).__name__, str(exc)
            errno_ = getattr(exc, "errno", None)
            error_is_oserror = isinstance(exc, OSError)
        else:
            error_is_oserror = False
        finally:
            unlimit_file_size()
        after = capture(s["model"], s["opt"], [s["gen"]])
        rows.append(
            {
                "size": size,
                "outcome": outcome,
                "error": error,
                "oserror": error_is_oserror,
                "errno": errno_,
                "diffs": differences(before, after),
                "files": sorted(set(tmp_files()) - set(files_before)),
            }
        )
    return {"rows": rows}


def case_range_sigterm(args: dict[str, Any]) -> dict[str, Any]:
    """SIGTERM at a random moment of a loop of disk-snapshot range tests (in forked children).

    The process must end by SIGTERM, as it would without lrkit, and leave no file behind.
    """
    import torch

    torch.set_num_threads(1)
    run_args = {"snapshot": "disk", "steps": 20}
    warm = setup(0, "sgd")
    _range_run(warm, run_args)
    began = time.perf_counter()
    _range_run(warm, run_args)
    duration = time.perf_counter() - began
    rows = []
    for seed in range(args["first_seed"], args["first_seed"] + args["seeds"]):
        delay = random.Random(seed).uniform(0.0, 2.0 * duration)
        files_before = tmp_files()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked child
            code = 0
            try:
                s = setup(seed, ("sgd", "adam")[seed % 2])
                Sender([delay], signal.SIGTERM).start()
                for _ in range(200):
                    _range_run(s, run_args)
            except BaseException:  # noqa: BLE001 - anything but death by SIGTERM is wrong
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        rows.append(
            {
                "seed": seed,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "files": sorted(set(tmp_files()) - set(files_before)),
            }
        )
    return {"rows": rows}


# ---------------------------------------------------------------------------- the Guard
GUARD_PARTS = ("parameters and buffers", "tensor identities", "optimizer state", "param groups",
               "train/eval flags")  # fmt: skip


def _guard_diffs(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What a rollback restores (not the gradients nor the RNGs: training goes on anew)."""
    return [part for part in GUARD_PARTS if not _same(before[part], after[part])]


def _guarded_steps(
    s: dict[str, Any],
    guard: Any,
    steps: range,
    nan_at: int | None = None,
    before_step: Callable[[int], None] | None = None,
    seen: dict[int, dict[str, Any]] | None = None,
) -> tuple[dict[int, dict[str, Any]], Any]:
    """A plain loop; returns the state seen at each guard.step call and the last action.

    ``seen`` (filled as the loop goes) keeps the states when ``guard.step`` raises.
    """
    import torch

    model, opt = s["model"], s["opt"]
    seen = {} if seen is None else seen
    action = None
    batches = iter(s["loader"])
    for step in steps:
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(s["loader"])
            x, y = next(batches)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        seen[step] = capture(model, opt)
        if before_step is not None:
            before_step(step)
        value = float("nan") if step == nan_at else loss
        action = guard.step(step, value)
        if action.rollback or action.skip_update:
            return seen, action
        opt.step()
    return seen, action


def case_guard_sigint(args: dict[str, Any]) -> dict[str, Any]:
    """SIGINT (and storms of them) while the Guard rolls back."""
    import torch

    from lrkit.diagnosis import Guard

    torch.set_num_threads(1)
    rows = []
    folder = Path(args["folder"]) if args.get("folder") else None
    for seed in range(args["first_seed"], args["first_seed"] + args["seeds"]):
        rng = random.Random(seed)
        s = setup(seed, ("sgd", "adam")[seed % 2], width=args.get("width", 64))
        guard = Guard(
            policy="rollback",
            model=s["model"],
            optimizer=s["opt"],
            snapshot_every=5,
            snapshot=args["snapshot"],
            snapshot_dir=folder,
            min_history=3,
            on=("nonfinite",),
        )
        nan_at = rng.randint(6, 14)
        seen, _ = _guarded_steps(s, guard, range(nan_at))
        restored_step = max(k for k in guard.snapshot_steps if k < nan_at)
        before = capture(s["model"], s["opt"])
        sender: Sender | None = None
        traced: list[int] = []
        line = rng.randint(1, 60)
        if args["mode"] == "traced":
            # inside the restore itself ("_restore": the Guard's own, before issue 12)
            traced = start_tracing({"restore", "_write_back", "_restore"}, line)
        else:
            gaps = [rng.uniform(0.001, 0.02) for _ in range(rng.randint(0, 3))]
            sender = Sender([rng.uniform(0.0, 0.003), *gaps])

        def call(guard: Any = guard, step: int = nan_at) -> str:
            action = guard.step(step, float("nan"))
            return "rolled back" if action.rollback else "no rollback"

        outcome, error = under_signals(call, [sender] if sender is not None else [])
        after = capture(s["model"], s["opt"])
        restored = not _guard_diffs(seen[restored_step], after)
        untouched = not _guard_diffs(before, after)
        # rolled back: exactly the snapshot; interrupted: the snapshot or (if the signal came
        # before the rollback began) the state as it was, never a mix of the two
        ok = restored if outcome == "rolled back" else (restored or untouched)
        files_while_open = leftovers(folder) if folder else []
        getattr(guard, "close", lambda: None)()  # (lrkit before issue 12 had no close)
        rows.append(
            {
                "seed": seed,
                "outcome": outcome,
                "error": error,
                "restored": restored,
                "untouched": untouched,
                "hit": bool(traced) and traced[0] >= line,
                "diffs": [] if ok else _guard_diffs(seen[restored_step], after),
                "files_while_open": files_while_open,
                "files": leftovers(folder) if folder else [],
            }
        )
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return {"rows": rows}


def case_guard_disk_full(args: dict[str, Any]) -> dict[str, Any]:
    """The disk fills up (RLIMIT_FSIZE from a random step on) while the Guard writes its
    snapshots or its event log; a NaN at step 14 then asks for a rollback."""
    import logging

    import torch

    from lrkit.diagnosis import Guard, GuardError

    logging.disable(logging.WARNING)  # the guard warns about each failed write: expected here
    rows = []
    base = Path(args["folder"])
    for seed in range(args["first_seed"], args["first_seed"] + args["seeds"]):
        rng = random.Random(seed)
        size, full_from = rng.choice([0, 1, 100, 4096, 20_000]), rng.randint(0, 14)
        folder = base / f"{args['what']}{seed}"
        folder.mkdir(parents=True)
        s = setup(seed, ("sgd", "adam")[seed % 2])
        guard = Guard(
            policy="rollback",
            model=s["model"],
            optimizer=s["opt"],
            snapshot_every=4,
            snapshot="disk" if args["what"] == "snapshot" else "memory",
            snapshot_dir=folder / "snaps",
            log_path=folder / "guard.json" if args["what"] == "log" else None,
            min_history=3,
            on=("nonfinite",),
        )
        nan_at = 14

        def fill_up(step: int, at: int = full_from, limit: int = size) -> None:
            if step == at:
                limit_file_size(limit)

        outcome, error, resume = "no rollback", None, None
        seen: dict[int, dict[str, Any]] = {}
        try:
            _, action = _guarded_steps(s, guard, range(nan_at + 1), nan_at, fill_up, seen)
            if action is not None and action.rollback:
                outcome, resume = "rolled back", action.resume_step
        except GuardError as exc:
            outcome, error = "GuardError", str(exc)
        except BaseException as exc:  # noqa: BLE001 - anything else escaping is the defect
            outcome, error = type(exc).__name__, str(exc)
        finally:
            unlimit_file_size()
        after = capture(s["model"], s["opt"])
        # rolled back: the snapshot's state; GuardError: untouched (the state at the NaN step)
        expected = seen.get(resume) if resume is not None else seen.get(nan_at)
        files = leftovers(folder)
        complete = True
        for name in files:
            path = folder / name
            try:
                if path.suffix == ".pt":
                    torch.load(path, weights_only=True)
                elif path.suffix == ".json":
                    json.loads(path.read_text())
            except Exception:  # noqa: BLE001 - a partial file is the defect
                complete = False
        failures = getattr(guard, "to_dict", dict)().get("snapshot_failures")
        getattr(guard, "close", lambda: None)()  # (lrkit before issue 12 had no close)
        rows.append(
            {
                "seed": seed,
                "size": size,
                "full_from": full_from,
                "outcome": outcome,
                "error": error,
                "failures": failures,
                "diffs": _guard_diffs(expected, after) if expected is not None else ["?"],
                "files": files,
                "complete": complete,
                "left_after_close": leftovers(folder / "snaps"),
            }
        )
    return {"rows": rows}


def case_guard_leaks(args: dict[str, Any]) -> dict[str, Any]:
    """Guard(snapshot="disk") without a folder: which files remain after each way out."""
    import gc

    import torch

    from lrkit.diagnosis import Guard, GuardError

    torch.set_num_threads(1)
    how = args["how"]
    s = setup(0, "sgd")

    def make() -> Any:
        return Guard(
            policy="rollback", model=s["model"], optimizer=s["opt"], snapshot_every=2,
            snapshot="disk", min_history=3, max_retries=0, on=("nonfinite",),
        )  # fmt: skip

    report: dict[str, Any] = {"how": how}
    files_before = set(tmp_files())

    def new_files() -> list[str]:  # torch keeps caches in TMPDIR: count only new files
        return sorted(set(tmp_files()) - files_before)

    if how == "with":
        with make() as guard:
            _guarded_steps(s, guard, range(7))
            report["while_open"] = new_files()
        report["files"] = new_files()
    elif how == "close":
        guard = make()
        _guarded_steps(s, guard, range(7))
        report["while_open"] = new_files()
        guard.close()
        guard.close()  # twice is fine
        report["files"] = new_files()
        _guarded_steps(s, guard, range(7, 11))  # usable after close: new snapshots, new folder
        report["reopened"] = new_files()
        guard.close()
        report["files_after_reuse"] = new_files()
    elif how == "gc":
        guard = make()
        _guarded_steps(s, guard, range(7))
        report["while_open"] = new_files()
        del guard
        gc.collect()
        report["files"] = new_files()
    elif how in ("exit", "guard_error"):
        # a forked interpreter that ends with the guard alive: normally, or by an uncaught
        # GuardError; its exit (atexit, finalizers) must clean up
        marker = Path(args["folder"]) / f"{how}.json"
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked child
            guard = make()
            _guarded_steps(s, guard, range(7))
            marker.write_text(json.dumps(new_files()))
            if how == "guard_error":
                sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the expected traceback
                _guarded_steps(s, guard, range(7, 12), nan_at=7)  # max_retries=0: GuardError
            sys.exit(0)  # leaves through the interpreter's normal exit
        _, status = os.waitpid(pid, 0)
        report["while_open"] = json.loads(marker.read_text()) if marker.exists() else None
        report["exit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        report["files"] = new_files()
    if "files" not in report:
        raise AssertionError(f"unknown how={how}")
    _ = GuardError
    return report


# ---------------------------------------------------------------------------- the report
def _hostile_setup() -> Any:
    import torch

    net = type("<img src=x onerror=alert(1)>**Net**", (torch.nn.Sequential,), {})
    torch.manual_seed(0)
    model = net(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x = torch.randn(128, 8)
    data = [(x[i : i + 16], x[i : i + 16, :2].sum(1, keepdim=True)) for i in range(0, 128, 16)]
    return {
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        "loss_fn": torch.nn.functional.mse_loss,
        "train_loader": data,
    }


def case_report_disk_full(args: dict[str, Any]) -> dict[str, Any]:
    """``write_report`` on a full disk, at every size limit given: whole report or nothing."""
    import torch

    from lrkit.pipeline import auto
    from lrkit.pipeline._content import build_content
    from lrkit.pipeline._report import write_report

    torch.set_num_threads(1)
    result = auto(_hostile_setup(), range_steps=20)
    content = build_content(result)
    base = Path(args["folder"])
    rows = []
    for i, size in enumerate(args["sizes"]):
        out = base / f"out{i}" / "report"
        if i % 2:  # half the runs overwrite an earlier report, which must survive intact
            write_report(content, out)
        before = {name: (out / name).read_bytes() for name in leftovers(out)}
        limit_file_size(size)
        outcome, error = "written", None
        try:
            write_report(content, out)
        except OSError as exc:
            outcome, error = "OSError", str(exc)
        except BaseException as exc:  # noqa: BLE001 - anything else is the defect
            outcome, error = type(exc).__name__, str(exc)
        finally:
            unlimit_file_size()
        now = {name: (out / name).read_bytes() for name in leftovers(out)}
        whole = sorted(leftovers(base / f"out{i}"))
        rows.append(
            {
                "size": size,
                "outcome": outcome,
                "error": error,
                "unchanged": now == before,
                "complete": outcome == "written" and len(now) == 5,
                "files": whole,
            }
        )
    md = (base / "out1" / "report" / "report.md").read_text() if args["sizes"][1:] else ""
    # the command line: one line on stderr, exit 2, nothing left in --out
    import contextlib
    import io

    from lrkit.cli import main as cli_main

    out = base / "cli" / "report"
    err = io.StringIO()
    limit_file_size(args.get("cli_size", 20_000))
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["auto", "--task", "digits", "--range-steps", "20", "--out", str(out)])
    finally:
        unlimit_file_size()
    cli = {"code": code, "stderr": err.getvalue(), "files": leftovers(base / "cli")}
    return {"rows": rows, "markdown": md, "cli": cli}


CASES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "range_sigint": case_range_sigint,
    "range_disk_full": case_range_disk_full,
    "range_sigterm": case_range_sigterm,
    "guard_sigint": case_guard_sigint,
    "guard_disk_full": case_guard_disk_full,
    "guard_leaks": case_guard_leaks,
    "report_disk_full": case_report_disk_full,
}


def main() -> None:
    """``_child.py CASE ARGS`` or ``_child.py batch '[[CASE, ARGS], ...]'`` (one interpreter)."""
    import torch

    torch.set_num_threads(1)  # before any work: forked children must not inherit thread pools
    case, raw = sys.argv[1], json.loads(sys.argv[2])
    if case == "batch":
        report = {"results": [CASES[name](sub) for name, sub in raw]}
    else:
        report = CASES[case](raw)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
