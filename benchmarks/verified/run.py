"""The verified-learning-rate benchmark: which lr each method picks, scored against a full grid.

    nice -n 10 python benchmarks/verified/run.py              # trains what is not cached
    python benchmarks/verified/run.py --quick                 # cached runs only (seconds)
    python benchmarks/verified/run.py --methods lrkit_quick,lrkit_verified,tpe,hb

Protocol (benchmarks/verified/README.md): 6 fresh tasks (fresh_tasks.py, frozen before any
method ran on them) and the 12 design tasks of the range-test benchmark; a grid of learning
rates (>= 4 per decade near the optimum, 3 seeds, full budget) per schedule (constant, cosine)
gives the best mean final validation loss; every method chooses an lr for 5 search seeds;
each choice is trained with 3 seeds no search used; regret = mean val loss / grid best - 1;
compute = every optimizer step spent before choosing, in training budgets.
Results: benchmarks/results/verified.json, the plot docs/verified_regret_compute.png, tables
on stdout (markdown).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from methods import LADDER, RACES, RULES, SEARCH_RANGE, SEARCHES, TPE_STARTUP, race_available
from pipeline import SCORE_SEEDS, SEARCH_SEEDS, evaluate_task, task_names
from report import plot, summarise, tables, targets
from runcache import LATTICE
from truth import GRID_SEEDS

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "verified.json"
FIGURE = ROOT / "docs" / "verified_regret_compute.png"
ALL_METHODS = (*RULES, *RACES, *SEARCHES)
#: rough seconds per task (one thread), the slowest first so two workers finish together
SLOW_FIRST = ("charlm_gru", "charlm", "digits")


def _finder_module(name: str) -> Any:
    """A script of the range-test benchmark (benchmarks/finder/NAME.py), loaded by path: its
    name clashes with this directory's."""
    spec = importlib.util.spec_from_file_location(
        f"finder_{name}", ROOT / "benchmarks" / "finder" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="use only cached runs")
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    parser.add_argument("--tasks", default=",".join(task_names()))
    parser.add_argument(
        "--ladder",
        default=",".join(f"{c:g}" for c in LADDER),
        help="compute caps (training budgets) for tpe and hb",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(ALL_METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; valid: {', '.join(ALL_METHODS)}")
    notes: list[str] = []
    if not race_available():
        dropped = [m for m in methods if m in RACES]
        methods = [m for m in methods if m not in RACES]
        if dropped:
            notes.append(f"lrkit.race not importable: {', '.join(dropped)} not run")
    ladder = tuple(float(c) for c in args.ladder.split(","))
    names = args.tasks.split(",")
    names.sort(key=lambda n: SLOW_FIRST.index(n) if n in SLOW_FIRST else len(SLOW_FIRST))
    start = time.perf_counter()
    torch.set_num_threads(1)
    results: list[dict[str, Any]] = []
    if args.workers > 1 and len(names) > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
            futures = [
                pool.submit(evaluate_task, n, methods, ladder, allow_train=not args.quick)
                for n in names
            ]
            for future in futures:
                results.append(future.result())
                print(f"  {results[-1]['task']}: {results[-1]['seconds']}s", file=sys.stderr)
    else:
        for n in names:
            results.append(evaluate_task(n, methods, ladder, allow_train=not args.quick))
            print(f"  {n}: {results[-1]['seconds']}s", file=sys.stderr, flush=True)
    order = task_names()
    results.sort(key=lambda r: order.index(r["task"]))
    for r in results:
        notes.extend(f"{r['task']}: {s}" for s in r["skipped"])
    summary = summarise(results)
    quick = (
        "lrkit_quick"
        if any("lrkit_quick" in r["methods"]["constant"] for r in results)
        else ("lrkit_rule")
    )
    checks = targets(summary, quick)
    payload = {
        "benchmark": "verified_lr",
        "command": "python benchmarks/verified/run.py " + " ".join(argv),
        "settings": {
            "grid": "2 per decade over the span, 4 per decade within a decade of the optimum",
            "grid_seeds": list(GRID_SEEDS),
            "search_seeds": list(SEARCH_SEEDS),
            "score_seeds": list(SCORE_SEEDS),
            "lattice_points_per_decade": LATTICE,
            "optuna_lr_range": list(SEARCH_RANGE),
            "tpe_startup_trials": TPE_STARTUP,
            "ladder": list(ladder),
            "hit": "regret < 10%",
            "torch_threads": 1,
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "notes": notes,
        "summary": summary,
        "targets": checks,
        "tasks": results,
        "seconds": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    safe = _finder_module("run")._finite(payload)
    # readable head, one compact line per task (the file stays small)
    tasks = ",\n  ".join(json.dumps(t, separators=(",", ":")) for t in safe.pop("tasks"))
    head = json.dumps(safe, indent=1)[:-2]
    args.out.write_text(f'{head},\n "tasks": [\n  {tasks}\n ]\n}}\n')
    plot(summary, args.figure)
    print(tables(results, summary, checks))
    for note in notes:
        print(f"note: {note}")
    print(f"\nwrote {args.out} and {args.figure} in {payload['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
