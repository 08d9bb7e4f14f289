"""Generate the labelled diagnosis corpus by really training small models on CPU.

Usage (from the repository root)::

    .venv/bin/python benchmarks/diagnose/generate.py            # grid (cached) + all runs
    .venv/bin/python benchmarks/diagnose/generate.py --finalize # only rebuild corpus.json.gz

Steps:

1. ``best_lr.json``: for each (task, optimizer) a small grid of constant learning rates (half
   decades) is trained for 300 steps with seed 0; the best is the lr with the lowest mean of the
   last three validation losses. Cached; delete the file to recompute.
2. Runs are planned deterministically (``plan()``), trained one by one with
   ``torch.set_num_threads(1)`` and appended to ``corpus_partial.jsonl`` (resumable).
3. ``--finalize`` (also run at the end) labels every run from HOW IT WAS MADE (see ``label()``
   and README.md) and writes ``corpus.json.gz`` (floats rounded to float32 precision).

Labels never look at lrkit's output. The only outcome used is whether the training loss went
non-finite (then the run is ``diverged``), which any logger shows.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import TASKS, TaskData  # noqa: E402

from lrkit.schedules import attach  # noqa: E402

HERE = Path(__file__).resolve().parent
BEST = HERE / "best_lr.json"
PARTIAL = HERE / "corpus_partial.jsonl"
CORPUS = HERE / "corpus.json.gz"

STEPS = 400
VAL_EVERY = 20
OVERFIT_STEPS = 1000
OVERFIT_VAL_EVERY = 25
OVERFIT_SUBSET = {
    "digits_mlp": 60,
    "digits_cnn": 60,
    "teacher_reg": 25,
    "spiral": 40,
    "char_mlp": 300,
}
FACTORS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
OPTIMIZERS = ["sgd", "adam"]
SCHEDULES = ["constant", "cosine", "warmup_cosine"]
SEEDS = [0, 1, 2]
GRID = {"sgd": [10 ** (e / 2) for e in range(-6, 2)], "adam": [10 ** (e / 2) for e in range(-8, 0)]}
STOP_AFTER_NONFINITE = 20


def schedule_spec(name: str, steps: int) -> str:
    if name == "constant":
        return "constant()"
    if name == "cosine":
        return f"cosine({steps})"
    if name == "warmup_cosine":
        w = steps // 10
        return f"warmup({w}, cosine({steps - w}), start=0.0)"
    if name == "early_decay":
        return f"cosine({steps // 8})"
    if name == "cyclic_high":
        # lr cycles between 1x and 20x the best lr (lr_factor=20, low=0.05), period 50 steps
        return "cyclic(25, down=25, low=0.05)"
    raise ValueError(name)


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(name)


def lr_multiplier(event: dict[str, Any] | None, step: int) -> float:
    """Extra lr multiplier of an injected lr event at ``step``."""
    if event is None:
        return 1.0
    kind, k = event["kind"], event["step"]
    if kind == "lr_bump" and step >= k:
        return float(event["factor"])
    if kind == "lr_spike" and k <= step < k + event["length"]:
        return float(event["factor"])
    if kind == "lr_ramp" and step >= k:
        return float(event["rate"]) ** (step - k)
    if kind == "lr_drop" and step >= k:
        return 1e-4
    return 1.0


def train(
    task: TaskData,
    *,
    optimizer: str,
    lr: float,
    schedule: str,
    steps: int,
    seed: int,
    val_every: int,
    event: dict[str, Any] | None = None,
    subset: int | None = None,
) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = task.make_model()
    opt = make_optimizer(optimizer, model.parameters(), lr)
    sched = attach(opt, schedule)
    xt, yt = task.x_train, task.y_train
    if subset is not None:
        xt, yt = xt[:subset], yt[:subset]
    n = xt.shape[0]
    g = torch.Generator().manual_seed(10_000 + seed)
    perm = torch.randperm(n, generator=g)
    pos = 0
    bs = min(task.batch_size, n)
    losses: list[float] = []
    lrs: list[float] = []
    gns: list[float] = []
    val_steps: list[int] = []
    val_losses: list[float] = []
    first_bad: int | None = None
    params = [p for p in model.parameters()]
    for step in range(steps):
        if pos + bs > n:
            perm = torch.randperm(n, generator=g)
            pos = 0
        idx = perm[pos : pos + bs]
        pos += bs
        xb, yb = xt[idx], yt[idx]
        if event is not None and event["kind"] == "bad_batch" and step == event["step"]:
            if "scale" in task.corrupt:
                xb = xb * 100.0
            if "labels" in task.corrupt:
                yb = torch.randint(0, int(yt.max()) + 1, yb.shape, generator=g)
        mult = lr_multiplier(event, step)
        if mult != 1.0:
            for group in opt.param_groups:
                group["lr"] = group["lr"] * mult
        lrs.append(float(opt.param_groups[0]["lr"]))
        model.train()
        out = model(xb)
        loss = task.loss_fn(out, yb)
        if event is not None and event["kind"] == "nan" and step == event["step"]:
            loss = loss * float("nan")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        opt.step()
        sched.step()
        value = float(loss.item())
        losses.append(value)
        gns.append(float(gn.item()))
        if first_bad is None and not math.isfinite(value):
            first_bad = step
        if (step + 1) % val_every == 0:
            model.eval()
            with torch.no_grad():
                v = float(task.loss_fn(model(task.x_val), task.y_val).item())
            val_steps.append(step)
            val_losses.append(v)
        if first_bad is not None and step >= first_bad + STOP_AFTER_NONFINITE:
            break
    return {
        "train_loss": losses,
        "lr_curve": lrs,
        "grad_norm": gns,
        "val_steps": val_steps,
        "val_loss": val_losses,
        "first_nonfinite": first_bad,
    }


def best_lrs() -> dict[str, dict[str, Any]]:
    if BEST.exists():
        return dict(json.loads(BEST.read_text()))
    result: dict[str, dict[str, Any]] = {}
    for name, make in TASKS.items():
        task = make(0)
        for opt in OPTIMIZERS:
            scores = {}
            for lr in GRID[opt]:
                r = train(
                    task,
                    optimizer=opt,
                    lr=lr,
                    schedule="constant()",
                    steps=300,
                    seed=0,
                    val_every=VAL_EVERY,
                )
                v = r["val_loss"][-3:]
                score = sum(v) / len(v) if len(v) == 3 and all(map(math.isfinite, v)) else math.inf
                scores[f"{lr:.6g}"] = score
            best = min(scores, key=lambda k: scores[k])
            result[f"{name}/{opt}"] = {"best": float(best), "grid": scores}
            print(f"grid {name}/{opt}: best {best} {scores}", flush=True)
    BEST.write_text(json.dumps(result, indent=1))
    return result


def plan() -> list[dict[str, Any]]:
    """Every run to make, deterministically ordered (seed-major so a partial corpus is usable)."""
    runs: list[dict[str, Any]] = []
    for seed in SEEDS:
        for task in TASKS:
            for oi, opt in enumerate(OPTIMIZERS):
                rng = random.Random(f"{task}/{opt}/{seed}")
                base = {"task": task, "seed": seed, "optimizer": opt}
                for fi, factor in enumerate(FACTORS):
                    sched = SCHEDULES[(fi + seed + oi) % 3]
                    runs.append(
                        {
                            **base,
                            "lr_factor": factor,
                            "schedule": sched,
                            "event": None,
                            "setup": "lr_sweep",
                        }
                    )

                def ev(
                    kind: str, lo: float, hi: float, r: random.Random = rng, **extra: Any
                ) -> dict[str, Any]:
                    return {
                        "kind": kind,
                        "step": r.randint(int(lo * STEPS), int(hi * STEPS)),
                        **extra,
                    }

                sched = SCHEDULES[(seed + oi) % 3]
                events = [
                    ev("nan", 0.25, 0.75),
                    ev("bad_batch", 0.3, 0.75),
                    ev("lr_spike", 0.3, 0.75, factor=50.0, length=3),
                    ev("lr_bump", 0.3, 0.6, factor=30.0),
                    ev("lr_ramp", 0.25, 0.5, rate=1.03),
                    ev("lr_drop", 0.08, 0.2),
                ]
                for e in events:
                    s = "constant" if e["kind"] in ("lr_drop", "lr_bump", "lr_ramp") else sched
                    runs.append(
                        {**base, "lr_factor": 1.0, "schedule": s, "event": e, "setup": "event"}
                    )
                runs.append(
                    {
                        **base,
                        "lr_factor": 1.0,
                        "schedule": "early_decay",
                        "event": None,
                        "setup": "early_decay",
                    }
                )
                runs.append(
                    {
                        **base,
                        "lr_factor": 1.0,
                        "schedule": "constant",
                        "event": None,
                        "setup": "overfit",
                    }
                )
                for extra in (1, 2):
                    runs.append(
                        {
                            **base,
                            "lr_factor": 1.0,
                            "event": None,
                            "setup": "healthy_extra",
                            "schedule": SCHEDULES[(4 + seed + oi + extra) % 3],
                        }
                    )
                runs.append(
                    {
                        **base,
                        "lr_factor": 20.0,
                        "schedule": "cyclic_high",
                        "event": None,
                        "setup": "cyclic_high",
                    }
                )
    for i, r in enumerate(runs):
        ev_ = r["event"]["kind"] if r["event"] else r["setup"]
        r["id"] = f"{i:04d}-{r['task']}-{r['optimizer']}-s{r['seed']}-x{r['lr_factor']:g}-{ev_}"
    return runs


HEALTHY_FACTORS = (0.3, 1.0)
TOO_HIGH_FACTOR = 30.0


def label(run: dict[str, Any]) -> str:
    """The label of a run, from how it was made; never from lrkit's output.

    In order: the training loss went non-finite -> diverged; the overfit setup (small train
    subset, long run) -> overfitting; the lr dropped to ~0 early (early cosine decay or an
    injected drop to 1e-4 x) -> plateau; the lr cycling up to 20x the best -> oscillating;
    a corrupted batch or a 3-step lr spike (50x) -> spiking when the loss of the last 20 steps
    is back below 3x that of the 20 steps before the event, else diverging; a sudden lr bump
    (30x) or an lr ramp (x1.03 per step) -> diverging. Plain lr sweeps by the factor of the
    task's grid-best lr: <= 0.03 -> too_slow; 0.3 or 1 -> healthy; >= 30 -> oscillating (lr
    far too high but the loss stayed finite: unstable, no steady progress); 0.1, 3 and 10 are
    ambiguous on a half-decade grid -> borderline / borderline_high (left out of the scores).
    """
    if run["first_nonfinite"] is not None:
        return "diverged"
    setup = run["setup"]
    kind = run["event"]["kind"] if run["event"] else None
    if setup == "overfit":
        return "overfitting"
    if setup == "early_decay" or kind == "lr_drop":
        return "plateau"
    if setup == "cyclic_high":
        return "oscillating"
    if kind in ("bad_batch", "lr_spike"):
        return "spiking" if recovered(run) else "diverging"
    if kind in ("lr_bump", "lr_ramp"):
        return "diverging"
    f = run["lr_factor"]
    if f <= 0.03:
        return "too_slow"
    if f in HEALTHY_FACTORS:
        return "healthy"
    if f >= TOO_HIGH_FACTOR:
        return "oscillating"
    return "borderline_high" if f >= 10 else "borderline"


def recovered(run: dict[str, Any]) -> bool:
    """After a one-off event: is the mean loss of the last 20 steps < 3x that of the 20 before?"""
    k = run["event"]["step"]
    loss = run["train_loss"]
    before = loss[max(0, k - 20) : k]
    after = loss[-20:]
    return sum(after) / len(after) < 3.0 * sum(before) / len(before)


def _r(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.7g}")


def finalize() -> None:
    """Label every run and write ``corpus.json.gz`` (from the partial file while it exists,
    else relabel the runs already in ``corpus.json.gz``)."""
    if PARTIAL.exists():
        runs = [json.loads(line) for line in PARTIAL.read_text().splitlines() if line.strip()]
    else:
        with gzip.open(CORPUS, "rt", encoding="utf-8") as fh:
            runs = list(json.load(fh)["runs"])
    order = {r["id"]: i for i, r in enumerate(plan())}
    runs.sort(key=lambda r: order.get(r["id"], 1 << 30))
    out = []
    for r in runs:
        r = dict(r)
        r["label"] = label(r)
        r.pop("steps", None)  # steps are 0..n-1: the reader rebuilds them
        for key in ("train_loss", "lr_curve", "grad_norm", "val_loss"):
            r[key] = [_r(v) for v in r[key]]
        r["lr"] = _r(r["lr"])
        out.append(r)
    doc = {
        "format": 1,
        "description": "lrkit diagnosis benchmark corpus; see benchmarks/diagnose/README.md",
        "labels_rule": label.__doc__,
        "runs": out,
    }
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    with CORPUS.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(text)  # mtime=0: the same runs give the same bytes
    counts: dict[str, int] = {}
    for r in out:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    print(f"wrote {CORPUS} with {len(out)} runs: {counts}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--finalize", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.finalize:
        finalize()
        return
    best = best_lrs()
    done = set()
    if PARTIAL.exists():
        done = {json.loads(x)["id"] for x in PARTIAL.read_text().splitlines() if x.strip()}
    tasks: dict[str, TaskData] = {}
    todo = [r for r in plan() if r["id"] not in done][: args.limit]
    t0 = time.time()
    for i, spec in enumerate(todo):
        task = tasks.get(spec["task"]) or TASKS[spec["task"]](0)
        tasks[spec["task"]] = task
        lr_best = best[f"{spec['task']}/{spec['optimizer']}"]["best"]
        overfit = spec["setup"] == "overfit"
        steps = OVERFIT_STEPS if overfit else STEPS
        result = train(
            task,
            optimizer=spec["optimizer"],
            lr=lr_best * spec["lr_factor"],
            schedule=schedule_spec(spec["schedule"], steps),
            steps=steps,
            seed=spec["seed"],
            val_every=OVERFIT_VAL_EVERY if overfit else VAL_EVERY,
            event=spec["event"],
            subset=OVERFIT_SUBSET[spec["task"]] if overfit else None,
        )
        rec = {**spec, "lr": lr_best * spec["lr_factor"], "lr_best": lr_best, **result}
        with PARTIAL.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if i % 20 == 0:
            print(f"{i + 1}/{len(todo)} {spec['id']} {time.time() - t0:.0f}s", flush=True)
    finalize()


if __name__ == "__main__":
    main()
