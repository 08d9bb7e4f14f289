"""The methods the verified-lr benchmark compares; each answers one (task, schedule, seed).

Every method returns ``Choice(lr, spent, reason)``: the learning rate it picked (None: no
answer) and every optimizer step it spent before choosing (range tests, stopped and finished
trials). The search seed seeds the range test's setup, the samplers and every trial's training
run (a user's search runs with one seed); the chosen lr is scored elsewhere with seeds no
search uses.

- ``minimum`` / ``valley``: fastai's rules (minimum/10, valley) on lrkit's range-test curve
  (``lrkit.finder.find_lr`` defaults: 1e-7 -> 10 in 100 steps).
- ``lrkit_rule``: lrkit's default range-test rule (``RangeTest.suggest()``, told the schedule;
  the optimizer is the one the test ran with) on the same curves: the quick answer as it is
  today, without the race.
- ``lrkit_quick`` / ``lrkit_verified``: ``lrkit.race.run_race`` with ``budget=0`` / its default
  budget (only when ``lrkit.race`` exists; cached with a hash of ``src/lrkit`` so a changed
  library reruns).
- ``tpe@C``: Optuna's TPESampler (4 random start-up trials, as ``lrkit.tune`` sets it for small
  studies), full-budget trials, lr log-uniform in [1e-5, 1], trials while their steps fit in
  C training budgets (at least one); the best final validation loss wins.
- ``hb@C``: Optuna's RandomSampler + HyperbandPruner (min resource budget // 27, factor 3, as
  ``lrkit.tune`` sets it), same range; each trial reports its validation loss at every rung;
  the search stops when C budgets are spent (a trial running then is cut there). The winner
  is the trial that got furthest (completed ones first), lowest loss there.
  ``tpe@lrkit`` / ``hb@lrkit``: C = what ``lrkit_verified`` spent on the same task, schedule
  and seed.

Searches with more budget start as the searches with less (same seeds, sequential trials), so
each is simulated once up to the largest compute and read off at every C.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from runcache import CACHE, BenchTask, RunCache, schedule_spec

from lrkit.finder import RangeTest, ema, find_lr

SEARCH_RANGE = (1e-5, 1.0)
TPE_STARTUP = 4
RULES = ("minimum", "valley", "lrkit_rule")
RACES = ("lrkit_quick", "lrkit_verified")
SEARCHES = ("tpe", "hb")
LADDER = (1.0, 2.0, 3.0, 4.0, 6.0)
SRC = Path(__file__).resolve().parents[2] / "src" / "lrkit"

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Choice:
    lr: float | None
    spent: int
    reason: str = ""


def race_available() -> bool:
    try:
        from lrkit.race import run_race  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- range tests
class Curves:
    """lrkit range-test curves of one task per search seed, cached (``curves_<task>.json``)."""

    def __init__(self, task: BenchTask, *, allow_run: bool) -> None:
        self.task = task
        self.allow_run = allow_run
        self.path = CACHE / f"curves_{task.name}.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, seed: int) -> tuple[RangeTest, int]:
        """The curve of ``seed`` and the optimizer steps it took."""
        entry = self.data.get(str(seed))
        if entry is None:
            if not self.allow_run:
                raise KeyError(f"range test {self.task.name} seed {seed} not cached")
            setup = self.task.setup(seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # what the model draws (dropout), as run_race seeds it
                test = find_lr(setup.model, setup.optimizer, setup.loss_fn, setup.train_loader)
            assert test.train_losses is not None
            entry = {
                "lrs": [float(f"{v:.6g}") for v in test.lrs],
                "losses": [float(f"{v:.6g}") if math.isfinite(v) else str(v) for v in test.losses],
                "stop_reason": test.stop_reason,
                "steps": len(test.train_losses),
                "optimizer": test.optimizer,
                "smoothing": test.settings["smoothing"],
            }
            self.data[str(seed)] = entry
            CACHE.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, separators=(",", ":")) + "\n")
        losses = [float(v) for v in entry["losses"]]
        test = RangeTest(
            lrs=entry["lrs"],
            losses=losses,
            smoothed=ema(losses, entry["smoothing"]),
            stop_reason=entry["stop_reason"],
            settings={"optimizer": entry["optimizer"]},
        )
        return test, int(entry["steps"])


def rule(curves: Curves, method: str, schedule: str, seed: int) -> Choice:
    test, steps = curves.get(seed)
    s = test.suggest(schedule=schedule) if method == "lrkit_rule" else test.suggest(method)
    return Choice(s.lr, steps, s.reason)


# ----------------------------------------------------------------------------- lrkit.race
def library_hash() -> str:
    """A short hash of lrkit's source: a race result cached under another hash is stale."""
    digest = hashlib.sha1()
    for path in sorted(SRC.rglob("*.py")):
        digest.update(str(path.relative_to(SRC)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class Races:
    """``run_race`` results of one task, cached (``race_<task>.json``) with the library hash."""

    def __init__(self, task: BenchTask, *, allow_run: bool) -> None:
        self.task = task
        self.allow_run = allow_run
        self.path = CACHE / f"race_{task.name}.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.hash = library_hash()

    def get(self, method: str, schedule: str, seed: int) -> Choice:
        name = f"{method}/{schedule}/{seed}"
        entry = self.data.get(name)
        if entry is None or (entry["lrkit"] != self.hash and self.allow_run):
            if not self.allow_run:
                raise KeyError(f"{self.task.name}: {name} not cached")
            from lrkit.race import run_race

            kwargs: dict[str, Any] = {"budget": 0} if method == "lrkit_quick" else {}
            result = run_race(
                self.task,
                schedule=schedule_spec(schedule, self.task.budget) or "constant",
                total_steps=self.task.budget,
                seed=seed,
                workers=1,
                **kwargs,
            )
            entry = {
                "lr": result.lr,
                "spent": int(result.spent_steps),
                "spent_budgets": float(result.spent_budgets),
                "reason": str(getattr(result, "reason", "") or ""),
                "lrkit": self.hash,
            }
            self.data[name] = entry
            CACHE.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=0) + "\n")
        return Choice(entry["lr"], entry["spent"], entry["reason"])


# ----------------------------------------------------------------------------- Optuna
@dataclass(frozen=True)
class Report:
    """One reported validation loss: after ``cum`` steps of the whole search."""

    cum: int
    trial: int
    lr: float
    step: int
    value: float


def _suggest(trial: optuna.Trial) -> float:
    return trial.suggest_float("lr", *SEARCH_RANGE, log=True)


def tpe_reports(cache: RunCache, schedule: str, seed: int, max_spend: int) -> list[Report]:
    """TPE with full-budget trials until ``max_spend`` steps are spent (one report per trial)."""
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP)
    study = optuna.create_study(sampler=sampler, study_name=f"tpe-{seed}")
    out: list[Report] = []
    cum = 0
    while cum < max_spend:
        trial = study.ask()
        lr = _suggest(trial)
        value = cache.final(schedule, lr, seed)
        cum += cache.spent(schedule, lr, seed)
        study.tell(trial, value)
        out.append(Report(cum, trial.number, lr, cache.task.budget, value))
    return out


def hb_reports(cache: RunCache, schedule: str, seed: int, max_spend: int) -> list[Report]:
    """Random sampling + Hyperband pruning until ``max_spend`` steps are spent."""
    budget = cache.task.budget
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=max(1, budget // 27), max_resource=budget, reduction_factor=3
        ),
        study_name=f"hb-{seed}",
    )
    out: list[Report] = []
    cum = 0
    while cum < max_spend:
        trial = study.ask()
        lr = _suggest(trial)
        done, value = 0, math.inf
        state = optuna.trial.TrialState.COMPLETE
        for step in cache.rungs:
            value = cache.value(schedule, lr, seed, step)
            spent = cache.spent(schedule, lr, seed, step)
            cum += spent - done
            done = spent
            out.append(Report(cum, trial.number, lr, step, value))
            if not math.isfinite(value):
                state = optuna.trial.TrialState.PRUNED
                break
            trial.report(value, step)
            if step < budget and trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        if state == optuna.trial.TrialState.COMPLETE:
            study.tell(trial, value)
        else:
            study.tell(trial, state=state)
    return out


def choose(reports: list[Report], cap: float, *, full_only: bool) -> Choice:
    """What a search stopped after ``cap`` steps picks from the reports it had by then.

    ``full_only`` (TPE): only whole trials count; a trial cut by the cap gives nothing, and
    the steps it spent are not counted (the search would not have started it); at least one
    trial always runs. Otherwise (Hyperband) the trial that got furthest wins, lowest loss
    there, and the search spent ``cap`` steps (all it had).
    """
    seen = [r for r in reports if r.cum <= cap] or reports[:1]
    total = reports[-1].cum
    best: dict[int, Report] = {}
    for r in seen:
        best[r.trial] = r  # the last (furthest) report of each trial
    ranked = sorted(
        best.values(), key=lambda r: (-r.step, r.value if math.isfinite(r.value) else math.inf)
    )
    winner = ranked[0]
    if not math.isfinite(winner.value):
        return Choice(None, seen[-1].cum, "every trial diverged")
    spent = seen[-1].cum if full_only else int(min(cap, total))
    return Choice(winner.lr, spent)


def searches(
    cache: RunCache, kind: str, schedule: str, seed: int, caps: dict[str, float]
) -> Iterator[tuple[str, Choice]]:
    """``(label, choice)`` for every compute cap (in training budgets) of one search."""
    budget = cache.task.budget
    max_spend = math.ceil(max(caps.values()) * budget)
    if kind == "tpe":
        reports = tpe_reports(cache, schedule, seed, max_spend)
    else:
        reports = hb_reports(cache, schedule, seed, max_spend)
    for label, cap in caps.items():
        yield label, choose(reports, cap * budget, full_only=kind == "tpe")
