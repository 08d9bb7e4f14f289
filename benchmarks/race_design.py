"""Design measurements for the verified learning rate (issue 11), on the 12 DESIGN tasks only.

    nice -n 10 .venv/bin/python benchmarks/race_design.py             # trains what is not cached
    nice -n 10 .venv/bin/python benchmarks/race_design.py --cached    # cached runs only

Tasks: the 7 built-in tasks and benchmarks/finder's HELDOUT_TASKS and FRESH_TASKS (all of them
seen while lrkit was designed: these are design tasks, not evidence). Ground truth: the cached
grids of benchmarks/finder (3 points per decade, seeds 0-2, full budget, constant lr and cosine
decay). A method's lr is scored by the mean final validation loss of 3 full runs with seeds
0-2, which no search used; regret = that / grid best - 1.

Part "race": ``lrkit.race.run_race`` on each task, schedule, budget (1.5, 2, 3, 4 user runs)
and search seed (3, 4, 5: the range test and every trial use that seed), for each variant of
the design (``compress``: the schedule replayed over each rung; ``prefix``: each rung runs the
first steps of the full schedule; ``_tolN``: the winner is the lowest lr within N% of the best
last-rung loss). Reported per variant, schedule and budget: median regret,
the worst task (the highest per-task median over the search seeds), the hit rate (share of
runs under 10%), the compute spent (user runs), and the median log10(chosen / best lr) (the
short-horizon bias). Trials and range tests are cached in benchmarks/race_cache/.

Part "quick": the range test's own rule, chosen by leave-one-task-out (see ``quick_loto``).

Results: benchmarks/results/race_design.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "finder"))

from common import (  # noqa: E402
    GRID_SEEDS,
    SCHEDULES,
    RunCache,
    all_tasks,
    get_task,
    lr_key,
    run_grid,
)

RESULTS = HERE / "results" / "race_design.json"
CACHE = HERE / "race_cache"
BUDGETS = (1.5, 2.0, 3.0, 4.0)
SEARCH_SEEDS = (3, 4, 5)
VARIANTS: dict[str, dict[str, Any]] = {
    f"{kind}{'' if tol == 0 else f'_tol{round(100 * tol)}'}": {
        "compress": "all" if kind == "compress" else "warmup",
        "tolerance": tol,
    }
    for kind in ("compress", "prefix")
    for tol in (0.0, 0.02, 0.05)
}
HIT = 0.10


# ----------------------------------------------------------------------------- caching
class ScoreCache(RunCache):
    """The finder benchmark's cached full runs (read, never written) plus the ones this script
    trains, kept in benchmarks/race_cache/score_<task>.json."""

    def __init__(self, task: Any) -> None:
        super().__init__(task)  # the grid and runs of benchmarks/finder/cache
        self.path = CACHE / f"score_{task.name}.json"
        if self.path.exists():
            mine = json.loads(self.path.read_text())["runs"]
            for schedule, by_lr in mine.items():
                for lr, seeds in by_lr.items():
                    self.runs.setdefault(schedule, {}).setdefault(lr, {}).update(seeds)

    def save(self) -> None:
        CACHE.mkdir(exist_ok=True)
        payload = {"task": self.task.name, "budget": self.budget, "runs": self.runs}
        self.path.write_text(json.dumps(payload, separators=(",", ":")) + "\n")


class TaskCache:
    """Race trials and range tests of one task, saved as JSON after each new entry."""

    def __init__(self, name: str, *, allow: bool) -> None:
        self.path = CACHE / f"{name}.json"
        self.allow = allow
        data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.trials: dict[str, Any] = data.get("trials", {})
        self.tests: dict[str, Any] = data.get("range_tests", {})

    def save(self) -> None:
        CACHE.mkdir(exist_ok=True)
        payload = {"trials": self.trials, "range_tests": self.tests}
        self.path.write_text(json.dumps(payload, separators=(",", ":")) + "\n")


def _install_trial_cache(cache: TaskCache) -> None:
    """Make RaceObjective.train read and fill ``cache`` (same inputs, same outcome)."""
    from lrkit.race import _trial
    from lrkit.race._schedule import resolve_schedule, rung_schedule

    original = _trial.RaceObjective.train

    def train(self: Any, lr: float, steps: int, counter: list[int] | None = None) -> Any:
        full = resolve_schedule(self.schedule, self.total_steps)
        schedule = rung_schedule(full, self.total_steps, steps, self.compress)
        key = f"{lr_key(lr)}|{steps}|{schedule}|{self.seed}|{self.evaluations}"
        hit = cache.trials.get(key)
        if hit is None:
            if not cache.allow:
                raise KeyError(f"trial {key} not cached")
            outcome = original(self, lr, steps, counter)
            hit = {
                "steps_done": outcome.steps_done,
                "val_steps": outcome.val_steps,
                "val_losses": [v if math.isfinite(v) else str(v) for v in outcome.val_losses],
                "value": outcome.value if math.isfinite(outcome.value) else "inf",
                "stop_reason": outcome.stop_reason,
            }
            cache.trials[key] = hit
            cache.save()
        return _trial.TrialOutcome(
            hit["steps_done"],
            list(hit["val_steps"]),
            [float(v) for v in hit["val_losses"]],
            float(hit["value"]),
            hit["stop_reason"],
        )

    _trial.RaceObjective.train = train  # type: ignore[method-assign]


def _range_test(task: Any, cache: TaskCache, seed: int, steps: int) -> Any:
    from lrkit.finder import RangeTest, find_lr

    key = f"{seed}|{steps}"
    if key not in cache.tests:
        if not cache.allow:
            raise KeyError(f"range test {task.name} {key} not cached")
        setup = task.setup(seed=seed)
        test = find_lr(
            setup.model, setup.optimizer, setup.loss_fn, setup.train_loader, num_steps=steps
        )
        cache.tests[key] = test.to_dict()
        cache.save()
    return RangeTest.from_dict(cache.tests[key])


# ----------------------------------------------------------------------------- the race part
def race_task(args: tuple[str, list[float], list[int], list[str], bool]) -> list[dict[str, Any]]:
    """Every race on one task (runs in a worker process, one torch thread)."""
    import torch

    torch.set_num_threads(1)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from lrkit.race import run_race
    from lrkit.race._race import _range_steps

    name, budgets, seeds, variants, allow = args
    task = get_task(name)
    cache = TaskCache(name, allow=allow)
    _install_trial_cache(cache)
    grid_cache = ScoreCache(task)
    grids = run_grid(task, grid_cache, allow_train=False)
    rows = []
    for variant in variants:
        options = VARIANTS[variant]
        for schedule in SCHEDULES:
            if schedule == "constant" and options["compress"] != "all":
                continue  # a constant lr is the same replayed or not
            best = grids[schedule]["best"]
            best_lr = grids[schedule]["best_lr"]
            for budget in budgets:
                for seed in seeds:
                    steps = _range_steps(budget, task.budget, None)
                    test = _range_test(task, cache, seed, steps)
                    start = time.perf_counter()
                    result = run_race(
                        task,
                        schedule=schedule,
                        budget=budget,
                        seed=seed,
                        range_test=test,
                        **options,
                    )
                    seconds = time.perf_counter() - start
                    lr = result.lr
                    if lr is None:
                        regret = math.inf
                    else:
                        mean = grid_cache.mean_val_loss(
                            schedule, float(lr_key(lr)), GRID_SEEDS, allow_train=allow
                        )
                        regret = mean / best - 1 if math.isfinite(mean) else math.inf
                    interval = result.interval
                    rows.append(
                        {
                            "task": name,
                            "variant": variant,
                            "schedule": schedule,
                            "budget": budget,
                            "seed": seed,
                            "lr": lr,
                            "best_lr": best_lr,
                            "regret": regret if math.isfinite(regret) else "inf",
                            "spent_budgets": round(result.spent_budgets, 4),
                            "candidates": len(result.candidates),
                            "rungs": [r.to_dict() for r in result.rungs],
                            "covered": interval is not None
                            and interval.low <= best_lr <= interval.high * 1.0001,
                            "quick_lr": result.quick_lr,
                            "seconds": round(seconds, 3),
                        }
                    )
                    print(
                        f"{name:18s} {variant:8s} {schedule:8s} B={budget:<4g} s={seed} "
                        f"lr={lr if lr is None else f'{lr:.3g}':>8} best={best_lr:.3g} "
                        f"regret={100 * regret:6.1f}% spent={result.spent_budgets:.2f}",
                        flush=True,
                    )
    return rows


def ground_truth_noise(tasks: list[str]) -> dict[str, dict[str, float]]:
    """Seed-to-seed spread of the grid's best point, in regret units: the standard deviation of
    the 3 seeds' final validation losses at the best grid lr, divided by their mean (a single
    run, as a race trial is, is this noisy around the truth)."""
    out: dict[str, dict[str, float]] = {}
    for name in tasks:
        task = get_task(name)
        cache = ScoreCache(task)
        grid = run_grid(task, cache, allow_train=False)
        out[name] = {}
        for schedule in SCHEDULES:
            values = [cache.val_loss(schedule, grid[schedule]["best_lr"], s) for s in GRID_SEEDS]
            out[name][schedule] = statistics.stdev(values) / statistics.fmean(values)
    return out


def per_task(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant/schedule/budget: each task's median regret over the search seeds."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in rows:
        key = f"{r['variant']}|{r['schedule']}|{r['budget']:g}"
        out.setdefault(key, {}).setdefault(r["task"], []).append(float(r["regret"]))  # type: ignore[arg-type]
    return {
        k: {t: statistics.median(v) for t, v in tasks.items()}  # type: ignore[arg-type]
        for k, tasks in out.items()
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    keys = sorted({(r["variant"], r["schedule"], r["budget"]) for r in rows})
    for variant, schedule, budget in keys:
        sel = [
            r
            for r in rows
            if (r["variant"], r["schedule"], r["budget"]) == (variant, schedule, budget)
        ]
        regrets = [float(r["regret"]) for r in sel]
        per_task: dict[str, list[float]] = {}
        for r in sel:
            per_task.setdefault(r["task"], []).append(float(r["regret"]))
        medians = {t: statistics.median(v) for t, v in per_task.items()}
        worst = max(medians, key=lambda t: medians[t])
        bias = [
            math.log10(r["lr"] / r["best_lr"]) for r in sel if r["lr"] is not None and r["lr"] > 0
        ]
        out.append(
            {
                "variant": variant,
                "schedule": schedule,
                "budget": budget,
                "runs": len(sel),
                "median_regret": statistics.median(regrets),
                "worst_task": worst,
                "worst_task_regret": medians[worst],
                "hit_rate": sum(v < HIT for v in regrets) / len(regrets),
                "mean_spent_budgets": statistics.fmean(r["spent_budgets"] for r in sel),
                "max_spent_budgets": max(r["spent_budgets"] for r in sel),
                "interval_covers_best": sum(r["covered"] for r in sel) / len(sel),
                "median_log10_lr_over_best": statistics.median(bias) if bias else None,
            }
        )
    return out


def _pct(value: float) -> str:
    return "diverged" if not math.isfinite(value) else f"{100 * value:.1f}%"


def print_race(summary: list[dict[str, Any]]) -> None:
    print(
        "\n| variant | schedule | budget | median regret | worst task | hit rate | spent "
        "(mean / max) | interval covers best | median log10(lr / best) |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for s in summary:
        bias = s["median_log10_lr_over_best"]
        print(
            f"| {s['variant']} | {s['schedule']} | {s['budget']:g} | {_pct(s['median_regret'])} "
            f"| {s['worst_task']} {_pct(s['worst_task_regret'])} | "
            f"{100 * s['hit_rate']:.0f}% | {s['mean_spent_budgets']:.2f} / "
            f"{s['max_spent_budgets']:.2f} | {100 * s['interval_covers_best']:.0f}% | "
            f"{'-' if bias is None else f'{bias:+.2f}'} |"
        )


# ----------------------------------------------------------------------------- the quick part
#: the forms of the quick rule compared by leave-one-task-out: the anchor feature(s) of the
#: curve (log10 lrs; see lrkit.finder._rules.curve_features) whose constant factor is fitted
QUICK_FORMS = {
    "half": lambda f: f["half"],
    "bottom": lambda f: f["bottom"],
    "half_edge": lambda f: (f["half"] + f["edge"]) / 2,
    "bottom_edge": lambda f: (f["bottom"] + f["edge"]) / 2,
    "edge": lambda f: f["edge"],
}
#: how the factor is fitted on the training tasks: the mean of the per-task median regrets, or
#: the worst of them (minimax; the mean breaks ties)
OBJECTIVES = ("mean", "minimax")
#: the constant-lr answer stays below this fraction of the edge (the stability limit)
EDGE_CAP = 0.5
REGRET_CAP = 2.0  # a diverged or far-off answer counts as 200% while fitting


def _features(entry: dict[str, Any]) -> dict[str, float] | None:
    import numpy as np
    from common import curve_arrays

    from lrkit.finder._rules import _curve, curve_features

    lrs, losses, smoothed = curve_arrays(entry)
    x, y, _ = _curve(lrs, losses, smoothed)
    if len(x) < 20:
        return None
    f = curve_features(x, y)
    edge = float(x[f.i_edge]) if f.i_edge is not None else float(x[-1])
    return {
        "half": float(np.log10(f.lr_half)),
        "bottom": float(np.log10(f.lr_bottom)),
        "edge": float(np.log10(edge)),
    }


def _regret_fn(grid: dict[str, Any]) -> Any:
    """Regret at any lr: mean validation loss interpolated linearly in log lr between the
    grid's points; above the last finite point (or a diverged one) it counts as diverged."""
    import numpy as np

    x = np.log10(np.asarray(grid["lrs"], dtype=float))
    y = np.asarray(grid["loss"], dtype=float)
    best = grid["best"]

    def regret(log_lr: float) -> float:
        if log_lr <= x[0]:
            return float(y[0] / best - 1)
        i = int(np.searchsorted(x, log_lr))
        if i >= len(x) or not (math.isfinite(y[i - 1]) and math.isfinite(y[i])):
            return math.inf
        t = (log_lr - x[i - 1]) / (x[i] - x[i - 1])
        return float(((1 - t) * y[i - 1] + t * y[i]) / best - 1)

    return regret


def _answer(form: str, log_c: float, f: dict[str, float], schedule: str) -> float:
    value = QUICK_FORMS[form](f) + log_c
    if schedule == "constant":
        value = min(value, f["edge"] + math.log10(EDGE_CAP))
    return value


def _fit(
    form: str, tasks: list[str], feats: Any, regrets: Any, schedule: str, objective: str
) -> float:
    """The log10 factor minimising the mean (or the worst, then the mean) over ``tasks`` of
    the median regret per task."""
    import numpy as np

    best_c, best_score = 0.0, (math.inf, math.inf)
    for log_c in np.arange(-2.0, 2.0001, 0.025):
        medians = [
            statistics.median(
                min(REGRET_CAP, regrets[t][schedule](_answer(form, log_c, f, schedule)))
                for f in feats[t]
            )
            for t in tasks
        ]
        mean = statistics.fmean(medians)
        score = (max(medians), mean) if objective == "minimax" else (mean, 0.0)
        if score < best_score:
            best_c, best_score = float(log_c), score
    return best_c


def quick_loto(tasks: list[str], *, allow_train: bool, trained: bool = False) -> dict[str, Any]:
    """The quick rule (range test only) chosen by how it generalises: leave-one-task-out.

    For each form in QUICK_FORMS, each optimizer family split (one factor per family and
    schedule, or one per schedule) and each task: fit the factor on the other 11 tasks (6
    range-test curves each, cached 100-step tests, seeds 0-5), answer on the held-out task's 6
    curves, score by interpolating its grid. Reported: median regret over the held-out answers,
    the worst task (highest per-task median), hit rate (< 10%), answers above the edge (constant
    lr) and "no answer" count, next to fastai's minimum/10 and valley on the same curves,
    scored the same way. With ``trained``, the best form's held-out answers and the published
    rules' answers are also trained for real (seeds 0-2).
    """
    from common import curve_arrays, range_curves

    from lrkit.finder import suggest

    seeds = list(range(6))
    feats: dict[str, list[dict[str, float]]] = {}
    curves: dict[str, dict[str, Any]] = {}
    regrets: dict[str, dict[str, Any]] = {}
    grids: dict[str, Any] = {}
    family: dict[str, str] = {}
    no_answer: dict[str, int] = {}
    for name in tasks:
        task = get_task(name)
        grids[name] = run_grid(task, ScoreCache(task), allow_train=False)
        regrets[name] = {s: _regret_fn(grids[name][s]) for s in SCHEDULES}
        curves[name] = range_curves(task, seeds, allow_run=False)  # never writes the finder cache
        found = [_features(curves[name][str(s)]) for s in seeds]
        no_answer[name] = sum(f is None for f in found)
        feats[name] = [f for f in found if f is not None]
        family[name] = "sgd" if task.optimizer == "sgd_momentum" else "adaptive"
    out: dict[str, Any] = {"forms": [], "edge_cap": EDGE_CAP, "curve_seeds": seeds}
    results: dict[tuple[str, bool], dict[str, Any]] = {}
    for form, split, objective in itertools.product(QUICK_FORMS, (True, False), OBJECTIVES):
        if True:
            per_schedule: dict[str, Any] = {}
            for schedule in SCHEDULES:
                held: dict[str, list[float]] = {}
                answers: dict[str, list[float]] = {}
                above = 0
                for name in tasks:
                    train = [
                        t for t in tasks if t != name and (not split or family[t] == family[name])
                    ]
                    log_c = _fit(form, train, feats, regrets, schedule, objective)
                    answers[name] = [_answer(form, log_c, f, schedule) for f in feats[name]]
                    held[name] = [regrets[name][schedule](a) for a in answers[name]]
                    above += sum(
                        a >= f["edge"] for a, f in zip(answers[name], feats[name], strict=True)
                    )
                flat = [v for vs in held.values() for v in vs]
                medians = {t: statistics.median(v) for t, v in held.items()}
                worst = max(medians, key=lambda t: medians[t])
                per_schedule[schedule] = {
                    "median_regret": statistics.median(flat),
                    "worst_task": worst,
                    "worst_task_regret": medians[worst],
                    "hit_rate": sum(v < HIT for v in flat) / len(flat),
                    "above_edge": above,
                    "answers": answers,
                    "per_task": medians,
                }
            results[(form, split, objective)] = per_schedule
            out["forms"].append(
                {
                    "form": form,
                    "per_family": split,
                    "objective": objective,
                    **{
                        s: {k: v for k, v in per_schedule[s].items() if k != "answers"}
                        for s in SCHEDULES
                    },
                }
            )

    # the best form: lowest worst task, then lowest median (summed over both schedules)
    def key(item: tuple[tuple[str, bool, str], dict[str, Any]]) -> tuple[float, float]:
        r = item[1]
        return (
            sum(min(REGRET_CAP, r[s]["worst_task_regret"]) for s in SCHEDULES),
            sum(r[s]["median_regret"] for s in SCHEDULES),
        )

    (form, split, objective), chosen = min(results.items(), key=key)
    out["chosen"] = {"form": form, "per_family": split, "objective": objective}
    out["factors_all_tasks"] = {
        s: {
            fam: 10
            ** _fit(
                form,
                [t for t in tasks if not split or family[t] == fam],
                feats,
                regrets,
                s,
                objective,
            )
            for fam in ("adaptive", "sgd")
        }
        for s in SCHEDULES
    }
    out["no_answer"] = no_answer
    # the published rules on the same curves, scored the same way (interpolated)
    from lrkit.finder import suggest as published_suggest

    out["published"] = {}
    for schedule in SCHEDULES:
        out["published"][schedule] = {}
        for method in ("minimum", "valley"):
            per: dict[str, list[float]] = {}
            for name in tasks:
                values = []
                for seed in seeds:
                    lrs, losses, smoothed = curve_arrays(curves[name][str(seed)])
                    lr = published_suggest(lrs, losses, smoothed, method).lr
                    values.append(
                        regrets[name][schedule](math.log10(lr)) if lr is not None else math.inf
                    )
                per[name] = values
            flat = [v for vs in per.values() for v in vs]
            medians = {t: statistics.median(v) for t, v in per.items()}
            worst = max(medians, key=lambda t: medians[t])
            out["published"][schedule][method] = {
                "median_regret": statistics.median(flat),
                "worst_task": worst,
                "worst_task_regret": medians[worst],
                "hit_rate": sum(v < HIT for v in flat) / len(flat),
                "over_100pct": sum(v > 1.0 for v in flat),
            }
    out["chosen_over_100pct"] = {
        s: sum(regrets[name][s](a) > 1.0 for name in tasks for a in chosen[s]["answers"][name])
        for s in SCHEDULES
    }
    # the chosen form's held-out answers and the published rules, trained for real
    trained: dict[str, Any] = {}
    for schedule in SCHEDULES if trained else ():
        rows: dict[str, dict[str, list[float]]] = {"lrkit LOTO": {}, "minimum": {}, "valley": {}}
        for name in tasks:
            task = get_task(name)
            cache = ScoreCache(task)
            best = grids[name][schedule]["best"]

            def score(
                lr: float | None,
                cache: RunCache = cache,
                schedule: str = schedule,
                best: float = best,
            ) -> float:
                if lr is None:
                    return math.inf
                mean = cache.mean_val_loss(
                    schedule, float(f"{lr:.3g}"), GRID_SEEDS, allow_train=allow_train
                )
                return mean / best - 1 if math.isfinite(mean) else math.inf

            rows["lrkit LOTO"][name] = [score(10**a) for a in chosen[schedule]["answers"][name]]
            for method in ("minimum", "valley"):
                values = []
                for s in seeds:
                    lrs, losses, smoothed = curve_arrays(curves[name][str(s)])
                    values.append(score(suggest(lrs, losses, smoothed, method).lr))
                rows[method][name] = values
        trained[schedule] = {}
        for method, per_task in rows.items():
            flat = [v for vs in per_task.values() for v in vs]
            medians = {t: statistics.median(v) for t, v in per_task.items()}
            worst = max(medians, key=lambda t: medians[t])
            trained[schedule][method] = {
                "median_regret": statistics.median(flat),
                "worst_task": worst,
                "worst_task_regret": medians[worst],
                "hit_rate": sum(v < HIT for v in flat) / len(flat),
                "diverged": sum(not math.isfinite(v) for v in flat),
                "over_100pct": sum(v > 1.0 for v in flat),
                "per_task": {t: (m if math.isfinite(m) else "inf") for t, m in medians.items()},
            }
    out["trained"] = trained
    print("\nQuick rule, leave-one-task-out (interpolated regret)\n")
    print(
        "| form | per family | fitted by | schedule | median | worst task | hit rate | above edge |"
    )
    print("|---|---|---|---|---:|---|---:|---:|")
    for r in out["forms"]:
        for s in SCHEDULES:
            x = r[s]
            print(
                f"| {r['form']} | {r['per_family']} | {r['objective']} | {s} | "
                f"{_pct(x['median_regret'])} | "
                f"{x['worst_task']} {_pct(x['worst_task_regret'])} | {100 * x['hit_rate']:.0f}% |"
                f" {x['above_edge']} |"
            )
    print(f"\nchosen: {out['chosen']}; factors on all tasks: {out['factors_all_tasks']}\n")
    print("| schedule | rule (interpolated) | median | worst task | hit rate | >100% |")
    print("|---|---|---:|---|---:|---:|")
    for s in SCHEDULES:
        x = chosen[s]
        print(
            f"| {s} | lrkit LOTO | {_pct(x['median_regret'])} | {x['worst_task']} "
            f"{_pct(x['worst_task_regret'])} | {100 * x['hit_rate']:.0f}% | "
            f"{out['chosen_over_100pct'][s]} |"
        )
        for method, y in out["published"][s].items():
            print(
                f"| {s} | {method} | {_pct(y['median_regret'])} | {y['worst_task']} "
                f"{_pct(y['worst_task_regret'])} | {100 * y['hit_rate']:.0f}% | "
                f"{y['over_100pct']} |"
            )
    print(
        "| schedule | rule (held-out answers, trained) | median | worst task | hit rate | >100% |"
    )
    print("|---|---|---:|---|---:|---:|")
    for s in trained:
        for method, x in trained[s].items():
            print(
                f"| {s} | {method} | {_pct(x['median_regret'])} | {x['worst_task']} "
                f"{_pct(x['worst_task_regret'])} | {100 * x['hit_rate']:.0f}% | "
                f"{x['over_100pct']} |"
            )
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("race", "quick", "all"), default="all")
    parser.add_argument("--cached", action="store_true", help="use cached runs only")
    parser.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEARCH_SEEDS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--tasks", nargs="+", default=[t.name for t in all_tasks()])
    parser.add_argument("--jobs", type=int, default=2, help="processes (at most 2)")
    parser.add_argument(
        "--train-quick",
        action="store_true",
        help="also train the quick rule's held-out answers (3 seeds each; hours of CPU)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    command = "nice -n 10 .venv/bin/python benchmarks/race_design.py " + " ".join(argv)
    out: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.part in ("quick", "all"):
        out["quick"] = quick_loto(args.tasks, allow_train=not args.cached, trained=args.train_quick)
    if args.part in ("race", "all"):
        jobs = [
            (name, args.budgets, args.seeds, args.variants, not args.cached) for name in args.tasks
        ]
        rows: list[dict[str, Any]] = []
        if args.jobs > 1:
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(2, args.jobs)) as pool:
                for part in pool.imap_unordered(race_task, jobs):
                    rows.extend(part)
        else:
            for job in jobs:
                rows.extend(race_task(job))
        summary = summarise(rows)
        print_race(summary)
        out["race"] = {
            "command": command,
            "tasks": args.tasks,
            "budgets": args.budgets,
            "search_seeds": args.seeds,
            "scoring_seeds": list(GRID_SEEDS),
            "summary": summary,
            "per_task_median": per_task(rows),
            "ground_truth_noise": ground_truth_noise(args.tasks),
            "runs": rows,
        }
    out.pop("command", None)
    out["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {RESULTS} in {out['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
