"""Cost of a range test: lrkit.find_lr vs a bare training loop vs torch-lr-finder, one run.

For each model, the same number of optimizer steps (all three run every step: divergence stops
are disabled and the lr range is kept below divergence) is timed:

* ``bare``: ``zero_grad / forward / loss / backward / step`` over pre-built batches, no lr
  changes, no ``.item()``: the cheapest possible loop;
* ``lrkit``: ``find_lr(...)`` with its defaults otherwise, snapshot + exact restore included;
* ``lrkit-val``: the same in validation-loss mode (2 validation batches, the size of a
  training batch, evaluated after every step): what Smith's recommended mode costs;
* ``torch-lr-finder`` 0.2.2: ``LRFinder(...)`` (its memory snapshot), ``range_test`` and
  ``reset()``. It insists on a ``DataLoader``, so it gets one over the same pre-built batches
  with ``batch_size=None`` (no collation work).

Repeats are interleaved (bare, lrkit, torch-lr-finder, bare, ...) and the median is reported,
with ``torch.set_num_threads(1)``. Run::

    .venv/bin/python benchmarks/finder_cost.py     # writes benchmarks/results/finder_cost.json
    .venv/bin/python benchmarks/finder_cost.py --repeats 3 --no-write   # quick look
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrkit.finder import find_lr

RESULTS = Path(__file__).parent / "results" / "finder_cost.json"


def mlp_adam(g: torch.Generator) -> tuple[nn.Module, Callable[..., torch.optim.Optimizer], Any]:
    model = nn.Sequential(
        nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )
    batches = [
        (torch.randn(128, 256, generator=g), torch.randint(0, 10, (128,), generator=g))
        for _ in range(20)
    ]
    return model, lambda p: torch.optim.Adam(p, lr=1e-3), batches


def cnn_bn_sgd(g: torch.Generator) -> tuple[nn.Module, Callable[..., torch.optim.Optimizer], Any]:
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )
    batches = [
        (torch.randn(64, 1, 16, 16, generator=g), torch.randint(0, 10, (64,), generator=g))
        for _ in range(20)
    ]
    return model, lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9), batches


def tiny_mlp_sgd(g: torch.Generator) -> tuple[nn.Module, Callable[..., torch.optim.Optimizer], Any]:
    """Worst case for per-step overhead: a step costs well under a millisecond."""
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))
    batches = [
        (torch.randn(32, 20, generator=g), torch.randint(0, 10, (32,), generator=g))
        for _ in range(20)
    ]
    return model, lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9), batches


MODELS = {"mlp-adam": mlp_adam, "cnn-bn-sgd": cnn_bn_sgd, "tiny-mlp-sgd": tiny_mlp_sgd}
LOSS = nn.CrossEntropyLoss()
START_LR, END_LR = 1e-6, 1e-2


def run_bare(model: nn.Module, opt: torch.optim.Optimizer, batches: list[Any], steps: int) -> None:
    model.train()
    n = len(batches)
    for i in range(steps):
        x, y = batches[i % n]
        opt.zero_grad(set_to_none=True)
        loss = LOSS(model(x), y)
        loss.backward()
        opt.step()


def run_lrkit(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    batches: list[Any],
    steps: int,
    val: list[Any] | None = None,
) -> None:
    result = find_lr(
        model,
        opt,
        LOSS,
        batches,
        val_loader=val,
        start_lr=START_LR,
        end_lr=END_LR,
        num_steps=steps,
        diverge_factor=None,
    )
    assert len(result) == steps, (len(result), result.stop_reason)


class _Batches(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Any:
        return self.batches[i]


def run_tlf(model: nn.Module, opt: torch.optim.Optimizer, loader: Any, steps: int) -> None:
    from torch_lr_finder import LRFinder

    for group in opt.param_groups:  # torch-lr-finder starts from the optimizer's lr
        group["lr"] = START_LR
    finder = LRFinder(model, opt, LOSS, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, end_lr=END_LR, num_iter=steps, diverge_th=1e30)
    assert len(finder.history["lr"]) == steps
    finder.reset()


def bench(name: str, steps: int, repeats: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model, make_opt, batches = MODELS[name](g)
    opt = make_opt(model.parameters())
    loader = torch.utils.data.DataLoader(_Batches(batches), batch_size=None, shuffle=False)
    logging.getLogger("torch_lr_finder").setLevel(logging.ERROR)
    runners: dict[str, Callable[[], None]] = {
        "bare": lambda: run_bare(model, opt, batches, steps),
        "lrkit": lambda: run_lrkit(model, opt, batches, steps),
        "lrkit-val": lambda: run_lrkit(model, opt, batches, steps, val=batches[-2:]),
        "torch-lr-finder": lambda: run_tlf(model, opt, loader, steps),
    }
    times: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, list[float]] = {k: [] for k in runners}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()
    for rep in range(repeats + 1):  # the first round warms up and is dropped
        for key, fn in runners.items():
            model.load_state_dict(state)
            opt.load_state_dict(opt_state)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            elapsed = time.perf_counter() - start
            elapsed_cpu = time.process_time() - start_cpu
            if rep > 0:
                times[key].append(elapsed)
                cpu[key].append(elapsed_cpu)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return {
        "model": name,
        "steps": steps,
        "repeats": repeats,
        "params": sum(p.numel() for p in model.parameters()),
        "median_s": med,
        "all_s": times,
        "median_cpu_s": med_cpu,
        "all_cpu_s": cpu,
        "lrkit_vs_bare_cpu": med_cpu["lrkit"] / med_cpu["bare"],
        "torch_lr_finder_vs_bare_cpu": med_cpu["torch-lr-finder"] / med_cpu["bare"],
        "step_ms_bare": 1000 * med["bare"] / steps,
        "lrkit_vs_bare": med["lrkit"] / med["bare"],
        "lrkit_val_vs_bare": med["lrkit-val"] / med["bare"],
        "torch_lr_finder_vs_bare": med["torch-lr-finder"] / med["bare"],
        "lrkit_overhead_us_per_step": 1e6 * (med["lrkit"] - med["bare"]) / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import torch_lr_finder

    rows = [bench(name, args.steps, args.repeats) for name in args.models]
    print(
        f"{'model':<14} {'step ms':>8} {'bare s':>7} {'lrkit s':>7} {'tlf s':>7} "
        f"{'lrkit/bare':>10} {'tlf/bare':>8} {'cpu lrkit/bare':>14} {'cpu tlf/bare':>12} "
        f"{'val/bare':>8}"
    )
    for r in rows:
        m = r["median_s"]
        print(
            f"{r['model']:<14} {r['step_ms_bare']:>8.3f} {m['bare']:>7.3f} {m['lrkit']:>7.3f} "
            f"{m['torch-lr-finder']:>7.3f} {r['lrkit_vs_bare']:>10.3f} "
            f"{r['torch_lr_finder_vs_bare']:>8.3f} {r['lrkit_vs_bare_cpu']:>14.3f} "
            f"{r['torch_lr_finder_vs_bare_cpu']:>12.3f} {r['lrkit_val_vs_bare']:>8.3f}"
        )
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "benchmark": "finder_cost",
                    "command": "python benchmarks/finder_cost.py "
                    f"--steps {args.steps} --repeats {args.repeats}",
                    "torch": torch.__version__,
                    "torch_lr_finder": getattr(torch_lr_finder, "__version__", "0.2.2"),
                    "python": platform.python_version(),
                    "threads": 1,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
