"""The outcome-labelled diagnosis corpus: real training runs on 18 tasks, labelled by how they END.

Usage (from the repository root; resumable, checkpointed after every run)::

    nice -n 10 .venv/bin/python benchmarks/diagnose/outcome.py --split design   # 10 design tasks
    nice -n 10 .venv/bin/python benchmarks/diagnose/outcome.py --split fresh    # 8 fresh tasks
    .venv/bin/python benchmarks/diagnose/outcome.py --tasks digits,charlm       # some tasks

Tasks (split by task, never by run):

* design (developed on): lrkit's 7 built-in tasks and the range-test benchmark's 3 held-out
  variants (``benchmarks/finder/common.py``: ``HELDOUT_TASKS``);
* fresh (scored once, reported first): the range-test benchmark's ``FRESH_TASKS`` (2) and the 6
  tasks of ``fresh_tasks.py`` (other data, model kinds, optimizers and losses), all written and
  committed before any diagnosis was scored on them.

Per task, with the ANCHOR learning rate ``a`` = the geometric mean of the grid-best constant and
cosine learning rates (suite tasks: ``benchmarks/finder/cache``, 3 seeds, 3 lrs per decade;
fresh_tasks.py tasks: the same grid, computed here and cached in ``outcome/anchors.json``):

* plain runs: 21 learning rates ``a * 10**(k/4)``, k = -12..8 (1/1000x to 100x, 4 per decade)
  x 6 configurations (constant, cosine, warmup + constant and warmup + cosine for the task's
  budget; constant and warmup + cosine for 3x the budget; warmup = a tenth of the run, from 0),
  one seed per run (0 and 1 alternating along the lrs; both at the anchor, for the
  seed-to-seed noise) = 132 runs;
* fault runs, seed 0, at ``a`` with the constant (1x) and warmup + cosine (3x) configurations,
  each of: the loss multiplied by NaN at one step (``nan``), one corrupted batch (inputs x100,
  or random targets for token inputs, ``bad_batch``), the lr x50 for 3 steps (``lr_spike``), at
  a seeded step in the middle 40% of the run = 6 runs.

Compute scaling (stated): the machine is 2 CPU cores shared by six sessions, so runs use one
seed each rather than several, and the two character models (4-14x costlier per step than the
others) get every other lr (11, 2 per decade) and the budget-length configurations only.

Every run logs the training loss and gradient norm per step and the validation loss 20 times
(every L/20 steps); a run stops 20 steps after its first non-finite loss. The lr curve is not
stored: it is rebuilt from the schedule spec (``lr_curve``).

Labels come from the OUTCOME only (``label_runs``): per task and configuration the reference is
the best final validation loss over the learning rates (the mean of the two seeds at the
anchor), ``best``, at
``lr*``. A plain run is

* ``ok`` when its final validation loss is within 10% of ``best``;
* ``too_high`` / ``too_low`` when it is over 50% worse (non-finite counts as worse) and its lr
  is above / below ``lr*``;
* ``borderline`` otherwise (10-50% worse, or worse at ``lr*`` itself): left out of the class
  figures, reported on its own;
* ``unbracketed`` when ``lr*`` is the lowest or highest lr of the sweep (the best is not
  bracketed, so the side and the distance to it are unknown): left out of every figure. One
  configuration of the 104 is: ``wine_logreg`` with warmup + cosine, whose validation loss
  reaches 0.0 (float32) at 100x the anchor on the separable wine data.

Fault runs keep the same outcome label plus their fault kind; they are scored on their own
(was the fault caught?).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "benchmarks" / "finder"))

OUT = HERE / "outcome"
ANCHORS = OUT / "anchors.json"

FACTOR_EXPONENTS = list(range(-12, 9))  # factor 10**(k/4): 1/1000x .. 100x
#: the two character models cost 4-14x more per step than the other tasks: 2 lrs per decade
SPARSE = ("charlm", "charlm_gru")
SEEDS = (0, 1)
CONFIGS = (
    ("constant", 1),
    ("cosine", 1),
    ("warmup_constant", 1),
    ("warmup_cosine", 1),
    ("constant", 3),
    ("warmup_cosine", 3),
)
CONFIGS_SPARSE = CONFIGS[:4]  # the character models: the budget only
FAULT_CONFIGS = (("constant", 1), ("warmup_cosine", 3))
FAULTS = ("nan", "bad_batch", "lr_spike")
EVALS = 20
STOP_AFTER_NONFINITE = 20
SPIKE_FACTOR = 50.0
SPIKE_LENGTH = 3


def design_tasks() -> dict[str, Any]:
    from common import HELDOUT_TASKS

    from lrkit.tasks import list_tasks

    return {**{t.name: t for t in list_tasks()}, **HELDOUT_TASKS}


def fresh_tasks() -> dict[str, Any]:
    from common import FRESH_TASKS
    from fresh_tasks import FRESH

    return {**FRESH_TASKS, **FRESH}


def all_tasks() -> dict[str, Any]:
    return {**design_tasks(), **fresh_tasks()}


def split_of(task: str) -> str:
    return "design" if task in design_tasks() else "fresh"


def schedule_spec(name: str, steps: int) -> str:
    w = steps // 10
    return {
        "constant": "constant()",
        "cosine": f"cosine({steps})",
        "warmup_constant": f"warmup({w}, constant(), start=0.0)",
        "warmup_cosine": f"warmup({w}, cosine({steps - w}), start=0.0)",
    }[name]


def fault_multiplier(fault: dict[str, Any] | None, steps: int) -> np.ndarray:
    m = np.ones(steps)
    if fault is not None and fault["kind"] == "lr_spike":
        k = fault["step"]
        m[k : k + SPIKE_LENGTH] = SPIKE_FACTOR
    return m


def lr_curve(run: dict[str, Any]) -> np.ndarray:
    """The learning rate of every logged step (rebuilt from the schedule and the fault)."""
    from lrkit.schedules import parse

    steps = run["steps"]
    n = len(run["loss"])
    mult = parse(schedule_spec(run["schedule"], steps)).values(steps)
    return np.asarray(run["lr"] * mult * fault_multiplier(run["fault"], steps))[:n]


# ---------------------------------------------------------------------------- anchors
def _grid_best(task: Any, schedule: str) -> float:
    """Grid-best lr (3 per decade, mean final val loss over 3 seeds) for a fresh_tasks.py task,
    with the range-test benchmark's grid rule (``common.run_grid``: widened until it brackets
    the best and reaches lrs 3x worse)."""
    from common import grid_lrs

    from lrkit.tasks import train

    lo, hi = -5.0, 0.0
    cache: dict[str, float] = {}

    def loss(lr: float) -> float:
        key = f"{lr:.4g}"
        if key not in cache:
            values = []
            for seed in (0, 1, 2):
                spec = None if schedule == "constant" else f"cosine({task.budget})"
                r = train(task.setup(lr=lr, seed=seed), lr=lr, steps=task.budget, schedule=spec)
                values.append(r.final_val_loss)
            ok = all(math.isfinite(v) for v in values)
            cache[key] = float(np.mean(values)) if ok else math.inf
        return cache[key]

    while True:
        lrs = grid_lrs(lo, hi)
        losses = [loss(lr) for lr in lrs]
        i = int(np.argmin(losses))
        top_bad = not math.isfinite(losses[-1]) or losses[-1] > 3 * losses[i]
        if i == 0 and lo > -7:
            lo -= 1
        elif (i >= len(lrs) - 2 or not top_bad) and hi < 3:
            hi += 1
        else:
            return lrs[i]


def anchors(names: list[str]) -> dict[str, float]:
    from common import FRESH_TASKS, HELDOUT_TASKS, RunCache, run_grid

    from lrkit.tasks import list_tasks

    data: dict[str, Any] = json.loads(ANCHORS.read_text()) if ANCHORS.exists() else {}
    suite = {t.name: t for t in [*list_tasks(), *HELDOUT_TASKS.values(), *FRESH_TASKS.values()]}
    tasks = all_tasks()
    for name in names:
        if name in data:
            continue
        if name in suite:
            g = run_grid(suite[name], RunCache(suite[name]), allow_train=False)
            best = {s: g[s]["best_lr"] for s in ("constant", "cosine")}
            source = "benchmarks/finder/cache"
        else:
            best = {s: _grid_best(tasks[name], s) for s in ("constant", "cosine")}
            source = "outcome.py grid (3 per decade, 3 seeds)"
        a = float(f"{math.sqrt(best['constant'] * best['cosine']):.4g}")
        entry = {"anchor": a, "grid_best": best, "source": source}
        OUT.mkdir(exist_ok=True)
        # another generator process may have added anchors meanwhile: merge, then write
        data = {**(json.loads(ANCHORS.read_text()) if ANCHORS.exists() else {}), **data}
        data[name] = entry
        ANCHORS.write_text(json.dumps(data, indent=1) + "\n")
        print(f"anchor {name}: {data[name]}", flush=True)
    return {n: float(data[n]["anchor"]) for n in names}


# ---------------------------------------------------------------------------- plan + train
def plan(task: str, budget: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    ks = FACTOR_EXPONENTS[::2] if task in SPARSE else FACTOR_EXPONENTS
    configs = CONFIGS_SPARSE if task in SPARSE else CONFIGS
    for schedule, mult in configs:
        for i, k in enumerate(ks):
            # one seed per lr, alternating; both seeds at the anchor (seed-to-seed noise)
            for seed in SEEDS if k == 0 else (SEEDS[i % 2],):
                runs.append(
                    {
                        "task": task,
                        "schedule": schedule,
                        "steps": budget * mult,
                        "length": mult,
                        "k": k,
                        "seed": seed,
                        "fault": None,
                    }
                )
    for schedule, mult in FAULT_CONFIGS:
        if (schedule, mult) not in configs:
            continue
        for kind in FAULTS:
            for seed in SEEDS[:1]:
                steps = budget * mult
                rng = random.Random(f"{task}/{schedule}/{mult}/{kind}/{seed}")
                at = rng.randint(int(0.3 * steps), int(0.7 * steps))
                runs.append(
                    {
                        "task": task,
                        "schedule": schedule,
                        "steps": steps,
                        "length": mult,
                        "k": 0,
                        "seed": seed,
                        "fault": {"kind": kind, "step": at},
                    }
                )
    for r in runs:
        f = r["fault"]["kind"] if r["fault"] else "plain"
        r["id"] = f"{task}/{r['schedule']}x{r['length']}/k{r['k']}/s{r['seed']}/{f}"
    return runs


def _sig(x: float, digits: int) -> float | None:
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def train_run(task: Any, spec: dict[str, Any], anchor: float) -> dict[str, Any]:
    from lrkit.schedules import attach
    from lrkit.tasks import evaluate
    from lrkit.tasks._train import batch_loss

    lr = anchor * 10 ** (spec["k"] / 4)
    steps = spec["steps"]
    setup = task.setup(lr=lr, seed=spec["seed"])
    model, opt = setup.model, setup.optimizer
    sched = attach(opt, schedule_spec(spec["schedule"], steps))
    fault = spec["fault"]
    mult = fault_multiplier(fault, steps)
    every = max(1, steps // EVALS)
    losses: list[float] = []
    grads: list[float] = []
    val_steps: list[int] = []
    val: list[float] = []
    first_bad: int | None = None
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(99 + spec["seed"])
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec["seed"])
        model.train()
        batches = iter(())  # type: ignore[var-annotated]
        for step in range(steps):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(setup.train_loader)
                x, y = next(batches)
            if fault is not None and fault["kind"] == "bad_batch" and step == fault["step"]:
                if x.is_floating_point():
                    x = x * 100.0
                else:
                    y = torch.randint(0, int(y.max()) + 1, y.shape, generator=gen)
            if mult[step] != 1.0:
                saved = [g["lr"] for g in opt.param_groups]
                for g in opt.param_groups:
                    g["lr"] = g["lr"] * mult[step]
            loss = batch_loss(setup, (x, y))
            if fault is not None and fault["kind"] == "nan" and step == fault["step"]:
                loss = loss * float("nan")
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            gn = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            opt.step()
            if mult[step] != 1.0:
                for g, v in zip(opt.param_groups, saved, strict=True):
                    g["lr"] = v
            sched.step()
            value = float(loss.detach())
            losses.append(value)
            grads.append(float(gn))
            if first_bad is None and not math.isfinite(value):
                first_bad = step
            if (step + 1) % every == 0 or step + 1 == steps:
                v = evaluate(setup) if first_bad is None else math.nan
                val_steps.append(step)
                val.append(v)
            if first_bad is not None and step >= first_bad + STOP_AFTER_NONFINITE:
                break
    final = val[-1] if first_bad is None and val and val_steps[-1] == steps - 1 else math.inf
    if not math.isfinite(final):
        final = math.inf
    return {
        **spec,
        "lr": lr,
        "anchor": anchor,
        "loss": [_sig(v, 5) for v in losses],
        "grad_norm": [_sig(v, 4) for v in grads],
        "val_steps": val_steps,
        "val": [_sig(v, 5) for v in val],
        "final": _sig(final, 6),  # None: diverged (non-finite)
        "first_nonfinite": first_bad,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def partial_path(task: str) -> Path:
    return OUT / f"{task}.partial.jsonl"


def final_path(task: str) -> Path:
    return OUT / f"{task}.json.gz"


def generate(task_name: str, anchor: float) -> None:
    if final_path(task_name).exists():
        return
    task = all_tasks()[task_name]
    todo = plan(task_name, task.budget)
    part = partial_path(task_name)
    done: set[str] = set()
    if part.exists():
        done = {json.loads(x)["id"] for x in part.read_text().splitlines() if x.strip()}
    t0 = time.time()
    left = [r for r in todo if r["id"] not in done]
    for i, spec in enumerate(left):
        rec = train_run(task, spec, anchor)
        with part.open("a") as fh:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        if i % 25 == 0:
            print(
                f"{task_name} {i + 1}/{len(left)} {spec['id']} {time.time() - t0:.0f}s", flush=True
            )
    order = {r["id"]: i for i, r in enumerate(todo)}
    runs = [json.loads(x) for x in part.read_text().splitlines() if x.strip()]
    runs = [r for r in runs if r["id"] in order]  # runs of an earlier, denser plan: dropped
    runs.sort(key=lambda r: order[r["id"]])
    doc = {"format": 1, "task": task_name, "split": split_of(task_name), "runs": runs}
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    with (
        final_path(task_name).open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh,
    ):
        fh.write(text)
    part.unlink()
    print(f"wrote {final_path(task_name)} ({len(runs)} runs, {time.time() - t0:.0f}s)", flush=True)


# ---------------------------------------------------------------------------- labels
OK_WITHIN = 0.10
BAD_OVER = 0.50


def label_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Label every run of ONE task from outcomes (see the module doc); returns per-configuration
    references ``{config: {"best", "best_k", "spread"}}`` and sets ``run["label"]`` and
    ``run["side"]`` (the lr's side of ``lr*``: -1, 0, +1)."""
    refs: dict[str, Any] = {}
    by_config: dict[str, dict[int, list[float]]] = {}
    for r in runs:
        if r["fault"] is None:
            c = f"{r['schedule']}x{r['length']}"
            v = math.inf if r["final"] is None else float(r["final"])
            by_config.setdefault(c, {}).setdefault(r["k"], []).append(v)
    for c, per_k in by_config.items():
        edges = (min(per_k), max(per_k))
        means = {
            k: float(np.mean(v)) if all(map(math.isfinite, v)) else math.inf
            for k, v in per_k.items()
        }
        best_k = min(means, key=lambda k: means[k])
        at_best = per_k[best_k]
        spread = (max(at_best) - min(at_best)) / means[best_k] if len(at_best) > 1 else 0.0
        refs[c] = {
            "best": means[best_k],
            "best_k": best_k,
            "spread": spread,
            "bracketed": best_k not in edges,
        }
    for r in runs:
        ref = refs[f"{r['schedule']}x{r['length']}"]
        final = math.inf if r["final"] is None else float(r["final"])
        side = int(np.sign(r["k"] - ref["best_k"]))
        r["side"] = side
        r["factor_to_best"] = 10 ** ((r["k"] - ref["best_k"]) / 4)
        if not ref["bracketed"]:
            # the best lr is the first or last of the sweep: "which side of the best" and
            # "how far from the best" are unknown
            r["label"] = "unbracketed"
            r["ratio_to_best"] = math.nan
            continue
        ratio = final / ref["best"]
        r["ratio_to_best"] = ratio
        if ratio <= 1.0 + OK_WITHIN:
            r["label"] = "ok"
        elif ratio > 1.0 + BAD_OVER and side != 0:
            r["label"] = "too_high" if side > 0 else "too_low"
        else:
            r["label"] = "borderline"
    return refs


def load(split: str | None = None, tasks: list[str] | None = None) -> list[dict[str, Any]]:
    """Every finished run (labelled), of a split or of some tasks."""
    names = tasks if tasks is not None else list(all_tasks())
    out: list[dict[str, Any]] = []
    for name in names:
        if split is not None and split_of(name) != split:
            continue
        path = final_path(name)
        if not path.exists():
            continue
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
        runs = doc["runs"]
        label_runs(runs)
        for r in runs:
            r["split"] = doc["split"]
        out.extend(runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("design", "fresh"))
    ap.add_argument("--tasks", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = [t for t in args.tasks.split(",") if t] or list(
        design_tasks() if args.split == "design" else fresh_tasks() if args.split else all_tasks()
    )
    found = anchors(names)
    for name in names:
        generate(name, found[name])


if __name__ == "__main__":
    main()
