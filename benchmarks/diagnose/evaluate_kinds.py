"""Evaluate lrkit's offline ``diagnose``, the tutorial baseline and the live ``Guard`` on the
labelled corpus (``corpus.json.gz``, built by ``generate.py``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/diagnose/evaluate_kinds.py  # -> results/diagnose_kinds.json
    .venv/bin/python benchmarks/diagnose/evaluate_kinds.py --holdout digits_cnn,char_mlp

Figures are reported separately for the tuning tasks and the HELD-OUT tasks (whole tasks that
no threshold was tuned on). Runs labelled ``borderline*`` (plain lr sweeps at 0.1x, 3x and 10x
the grid-best lr, which can be fine or not on a half-decade grid) are left out of the class
metrics; lrkit's verdicts on them are listed under ``lrkit_verdicts_on_excluded``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

logging.getLogger("lrkit.diagnosis._guard").setLevel(logging.ERROR)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from _lightning import FabricStandIn  # noqa: E402
from baseline import baseline_verdict  # noqa: E402

CLASSES = [
    "healthy",
    "diverged",
    "diverging",
    "spiking",
    "oscillating",
    "too_slow",
    "plateau",
    "overfitting",
]
# coarse groups: what the user does about it is the same inside a group
GROUPS = {
    "healthy": "healthy",
    "diverged": "blow_up",
    "diverging": "blow_up",
    "spiking": "spiking",
    "oscillating": "oscillating",
    "too_slow": "stalled",
    "plateau": "stalled",
    "overfitting": "overfitting",
}
DEFAULT_HOLDOUT = ("digits_cnn", "char_mlp")
GUARD_CLASSES = ("diverged", "diverging", "spiking")


def load_corpus(path: Path) -> list[dict[str, Any]]:
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            runs = list(json.load(fh)["runs"])
        for r in runs:
            r["steps"] = list(range(len(r["train_loss"])))
        return runs
    # generation still running: label the partial file the same way
    from generate import PARTIAL, label

    runs = [json.loads(x) for x in PARTIAL.read_text().splitlines() if x.strip()]
    for r in runs:
        r["label"] = label(r)
        r["steps"] = list(range(len(r["train_loss"])))
    return runs


def _arr(values: list[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def lrkit_verdict(
    run: dict[str, Any], *, lr: bool = True, grad_norm: bool = True
) -> tuple[str, int | None]:
    from lrkit.diagnosis import diagnose

    d = diagnose(
        _arr(run["train_loss"]),
        steps=run["steps"],
        val_loss=_arr(run["val_loss"]) if run["val_loss"] else None,
        val_steps=run["val_steps"] if run["val_loss"] else None,
        lr=_arr(run["lr_curve"]) if lr else None,
        grad_norm=_arr(run["grad_norm"]) if grad_norm else None,
    )
    onset = d.findings[0].onset_step if d.findings else None
    return d.verdict, (None if onset is None else int(onset))


def guard_first_alarm(run: dict[str, Any], **thresholds: Any) -> tuple[int | None, str | None]:
    """Replay the run through a warn-only Guard; the first alarm's step and kind."""
    from lrkit.diagnosis._guard import Guard

    guard = Guard(policy="warn", **thresholds)
    for step, (loss, gn) in enumerate(zip(run["train_loss"], run["grad_norm"], strict=True)):
        value = math.nan if loss is None else loss
        g = math.nan if gn is None else gn
        action = guard.step(step, value, grad_norm=g)
        if action.event is not None:
            return step, action.event.kind
    return None, None


def lightning_first_alarm(run: dict[str, Any], skip_file: str) -> int | None:
    """Replay the run through Lightning's own ``SpikeDetection`` (defaults: running mean of 10,
    rtol 2, non-finite = spike); the step of its first ``TrainingSpikeException``."""
    import torch
    from lightning.fabric.utilities.spike import SpikeDetection, TrainingSpikeException

    detector = SpikeDetection(exclude_batches_path=skip_file)
    fabric = FabricStandIn()
    for step, loss in enumerate(run["train_loss"]):
        value = torch.tensor(math.nan if loss is None else loss)
        try:
            detector.on_train_batch_end(fabric, value, None, step)  # type: ignore[arg-type]
        except TrainingSpikeException:
            return step
    return None


def event_step(run: dict[str, Any]) -> int | None:
    """When the trouble starts: the injected event, else the first non-finite loss."""
    if run["event"] is not None and run["event"]["kind"] != "lr_drop":
        return int(run["event"]["step"])
    if run["first_nonfinite"] is not None:
        return int(run["first_nonfinite"])
    return None


def class_metrics(pairs: list[tuple[str, str]], classes: list[str]) -> dict[str, Any]:
    """Per-class precision/recall/F1 and macro F1 over ``classes`` (labels outside: ignored)."""
    per: dict[str, dict[str, float | int]] = {}
    f1s = []
    for c in classes:
        tp = sum(1 for t, p in pairs if t == c and p == c)
        fp = sum(1 for t, p in pairs if t != c and p == c)
        fn = sum(1 for t, p in pairs if t == c and p != c)
        support = tp + fn
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / support if support else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[c] = {"precision": prec, "recall": rec, "f1": f1, "support": support}
        if support:
            f1s.append(f1)
    healthy = [p for t, p in pairs if t == "healthy"]
    false_alarm = sum(1 for p in healthy if p not in ("healthy", "inconclusive")) / max(
        len(healthy), 1
    )
    problems = [(t, p) for t, p in pairs if t != "healthy"]
    detected = sum(1 for _, p in problems if p not in ("healthy", "inconclusive")) / max(
        len(problems), 1
    )
    return {
        "n": len(pairs),
        "accuracy": sum(1 for t, p in pairs if t == p) / max(len(pairs), 1),
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "false_alarm_rate_healthy": false_alarm,
        "problem_detection_rate": detected,
        "per_class": per,
        "confusion": {f"{t}->{p}": n for (t, p), n in sorted(Counter(pairs).items())},
    }


def summarize_delays(delays: list[int]) -> dict[str, Any]:
    if not delays:
        return {"n": 0}
    a = np.array(delays)
    return {
        "n": len(delays),
        "median": float(np.median(a)),
        "mean": float(a.mean()),
        "p90": float(np.percentile(a, 90)),
        "max": int(a.max()),
    }


def guard_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    healthy = [r for r in rows if r["label"] == "healthy"]
    out: dict[str, Any] = {
        "false_alarm_rate_healthy": sum(1 for r in healthy if r["guard_step"] is not None)
        / max(len(healthy), 1),
        "healthy_runs": len(healthy),
        "alarm_rate_by_label": {},
        "delay_by_event": {},
    }
    for lab in CLASSES:
        sel = [r for r in rows if r["label"] == lab]
        if sel:
            out["alarm_rate_by_label"][lab] = sum(
                1 for r in sel if r["guard_step"] is not None
            ) / len(sel)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["label"] not in GUARD_CLASSES or r["event_step"] is None:
            continue
        kind = r["event"]["kind"] if r["event"] else "high_lr_nonfinite"
        by_kind.setdefault(f"{kind}->{r['label']}", []).append(r)
    all_delays: list[int] = []
    detected = total = early = 0
    for key, sel in sorted(by_kind.items()):
        delays = []
        missed = 0
        before = 0
        for r in sel:
            total += 1
            if r["guard_step"] is None:
                missed += 1
                continue
            d = r["guard_step"] - r["event_step"]
            if d < 0 and r["event"] is not None:
                before += 1  # alarm before an injected event: a false alarm on that run
                continue
            delays.append(d)
        detected += len(delays)
        early += before
        all_delays += delays
        out["delay_by_event"][key] = {
            **summarize_delays(delays),
            "runs": len(sel),
            "missed": missed,
            "alarm_before_event": before,
        }
    out["detection_rate"] = detected / max(total, 1)
    out["alarm_before_injected_event"] = early
    out["delay_all"] = summarize_delays(all_delays)
    return out


def evaluate(
    runs: list[dict[str, Any]], holdout: tuple[str, ...], *, lightning: bool = True
) -> dict[str, Any]:
    rows = []
    t0 = time.perf_counter()
    for r in runs:
        verdict, onset = lrkit_verdict(r)
        rows.append({"run": r, "verdict": verdict, "onset": onset})
    t_diag = time.perf_counter() - t0
    t0 = time.perf_counter()
    for row in rows:
        row["baseline"] = baseline_verdict(row["run"])
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    for row in rows:
        row["guard_step"], row["guard_kind"] = guard_first_alarm(row["run"])
    t_guard = time.perf_counter() - t0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            row["lightning_step"] = None
            if lightning and row["run"]["label"] in CLASSES:
                row["lightning_step"] = lightning_first_alarm(
                    row["run"], str(Path(tmp) / "skip.json")
                )
    t_lightning = time.perf_counter() - t0

    def split(name: str, sel: list[dict[str, Any]]) -> dict[str, Any]:
        lab = [x for x in sel if x["run"]["label"] in CLASSES]
        pairs = [(x["run"]["label"], x["verdict"]) for x in lab]
        bpairs = [(x["run"]["label"], x["baseline"]) for x in lab]
        coarse = sorted(set(GROUPS.values()))

        def grp(v: str) -> str:
            return GROUPS.get(v, v)

        gpairs = [(grp(t), grp(p)) for t, p in pairs]
        gbpairs = [(grp(t), grp(p)) for t, p in bpairs]
        excluded = Counter(x["run"]["label"] for x in sel if x["run"]["label"] not in CLASSES)
        border = {
            lab_: dict(Counter(x["verdict"] for x in sel if x["run"]["label"] == lab_))
            for lab_ in excluded
        }
        grows = [
            {
                "label": x["run"]["label"],
                "event": x["run"]["event"],
                "event_step": event_step(x["run"]),
                "guard_step": x["guard_step"],
            }
            for x in lab
        ]
        lrows = [{**g, "guard_step": x["lightning_step"]} for g, x in zip(grows, lab, strict=True)]
        return {
            "tasks": sorted({x["run"]["task"] for x in sel}),
            "runs": len(sel),
            "labelled_runs": len(lab),
            "label_counts": dict(Counter(x["run"]["label"] for x in lab)),
            "excluded_counts": dict(excluded),
            "lrkit_verdicts_on_excluded": border,
            "lrkit_inconclusive": sum(1 for _, p in pairs if p == "inconclusive"),
            "lrkit": class_metrics(pairs, CLASSES),
            "baseline": class_metrics(bpairs, CLASSES),
            "lrkit_coarse": class_metrics(gpairs, coarse),
            "baseline_coarse": class_metrics(gbpairs, coarse),
            "guard": guard_metrics(grows),
            "lightning_spike_detection": guard_metrics(lrows) if lightning else None,
            "name": name,
        }

    # which logged series the figures depend on: the same runs without the lr and / or the
    # gradient-norm series (many logs have only the losses)
    ablation: dict[str, dict[str, float]] = {}
    for name, use_lr, use_grad in (
        ("losses only", False, False),
        ("losses + lr", True, False),
        ("losses + grad norm", False, True),
    ):
        for part, sel_rows in (
            ("tuning", [x for x in rows if x["run"]["task"] not in holdout]),
            ("held_out", [x for x in rows if x["run"]["task"] in holdout]),
        ):
            pairs = [
                (x["run"]["label"], lrkit_verdict(x["run"], lr=use_lr, grad_norm=use_grad)[0])
                for x in sel_rows
                if x["run"]["label"] in CLASSES
            ]
            m = class_metrics(pairs, CLASSES)
            ablation.setdefault(name, {})[part + "_macro_f1"] = m["macro_f1"]
            ablation[name][part + "_false_alarm_rate_healthy"] = m["false_alarm_rate_healthy"]
    per_task = {}
    for task in sorted({x["run"]["task"] for x in rows}):
        sel = [x for x in rows if x["run"]["task"] == task and x["run"]["label"] in CLASSES]
        m = class_metrics([(x["run"]["label"], x["verdict"]) for x in sel], CLASSES)
        b = class_metrics([(x["run"]["label"], x["baseline"]) for x in sel], CLASSES)
        per_task[task] = {
            "held_out": task in holdout,
            "runs": len(sel),
            "lrkit_macro_f1": m["macro_f1"],
            "lrkit_false_alarm_rate_healthy": m["false_alarm_rate_healthy"],
            "baseline_macro_f1": b["macro_f1"],
        }
    tune = [x for x in rows if x["run"]["task"] not in holdout]
    held = [x for x in rows if x["run"]["task"] in holdout]
    return {
        "corpus_runs": len(runs),
        "holdout_tasks": list(holdout),
        "seconds": {
            "lrkit_diagnose": t_diag,
            "baseline": t_base,
            "guard_replay": t_guard,
            "lightning_replay": t_lightning,
        },
        "per_task": per_task,
        "series_ablation": ablation,
        "onset_error_by_event": onset_errors(rows),
        "tuning": split("tuning", tune),
        "held_out": split("held_out", held),
        "all": split("all", rows),
        "mistakes_held_out": [
            {"id": x["run"]["id"], "label": x["run"]["label"], "lrkit": x["verdict"]}
            for x in held
            if x["run"]["label"] in CLASSES and x["verdict"] != x["run"]["label"]
        ],
        "guard_false_alarms": [
            {"id": x["run"]["id"], "step": x["guard_step"], "kind": x["guard_kind"]}
            for x in rows
            if x["run"]["label"] == "healthy" and x["guard_step"] is not None
        ],
    }


def onset_errors(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """lrkit's reported onset step minus the injected event's step, per event kind (runs where
    the verdict is diverged / diverging / spiking). An lr change at step k first shows in the
    loss of step k + 1 (the loss is computed before the update)."""
    by_kind: dict[str, list[int]] = {}
    for row in rows:
        run = row["run"]
        if run["event"] is None or run["event"]["kind"] == "lr_drop" or row["onset"] is None:
            continue
        if row["verdict"] not in ("diverged", "diverging", "spiking"):
            continue
        step = int(run["event"]["step"])
        by_kind.setdefault(run["event"]["kind"], []).append(int(row["onset"]) - step)
    return {k: summarize_delays(v) | {"min": int(min(v))} for k, v in sorted(by_kind.items())}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    """The tables quoted in the READMEs, from a result of :func:`evaluate`."""
    held, tune = result["held_out"], result["tuning"]
    lines = [
        f"Held-out tasks: {', '.join(held['tasks'])} ({held['labelled_runs']} labelled runs); "
        f"tuning tasks: {', '.join(tune['tasks'])} ({tune['labelled_runs']} runs).",
        "",
        "| class (held-out) | runs | lrkit precision | lrkit recall | baseline precision "
        "| baseline recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in CLASSES:
        a, b = held["lrkit"]["per_class"][c], held["baseline"]["per_class"][c]
        lines.append(
            f"| {c} | {a['support']} | {a['precision']:.2f} | {a['recall']:.2f} "
            f"| {b['precision']:.2f} | {b['recall']:.2f} |"
        )
    lines += [
        "",
        "| summary | lrkit held-out | baseline held-out | lrkit tuning | baseline tuning |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key, fmt in (
        ("macro F1 (8 classes)", "macro_f1", lambda v: f"{v:.3f}"),
        ("accuracy", "accuracy", lambda v: f"{v:.3f}"),
        ("false alarms on healthy runs", "false_alarm_rate_healthy", _pct),
    ):
        lines.append(
            f"| {label} | **{fmt(held['lrkit'][key])}** | {fmt(held['baseline'][key])} "
            f"| {fmt(tune['lrkit'][key])} | {fmt(tune['baseline'][key])} |"
        )
    lines.append(
        f"| macro F1, coarse groups (blow-up, stalled merged) | "
        f"{held['lrkit_coarse']['macro_f1']:.3f} | {held['baseline_coarse']['macro_f1']:.3f} | "
        f"{tune['lrkit_coarse']['macro_f1']:.3f} | {tune['baseline_coarse']['macro_f1']:.3f} |"
    )
    for name, fig in result.get("series_ablation", {}).items():
        lines.append(
            f"| macro F1 from {name} (false alarms) | {fig['held_out_macro_f1']:.3f} "
            f"({_pct(fig['held_out_false_alarm_rate_healthy'])}) | - | "
            f"{fig['tuning_macro_f1']:.3f} ({_pct(fig['tuning_false_alarm_rate_healthy'])}) | - |"
        )
    lines += [
        "",
        "| live detection (replayed step by step) | Guard held-out | Lightning SpikeDetection "
        "held-out | Guard tuning | Lightning tuning |",
        "|---|---:|---:|---:|---:|",
    ]

    def live(part: dict[str, Any], key: str) -> dict[str, Any] | None:
        value = part.get(key)
        return value if isinstance(value, dict) else None

    cols = [
        live(held, "guard"),
        live(held, "lightning_spike_detection"),
        live(tune, "guard"),
        live(tune, "lightning_spike_detection"),
    ]

    def row(label: str, get: Any) -> str:
        return f"| {label} | " + " | ".join("-" if c is None else get(c) for c in cols) + " |"

    lines.append(row("false alarms on healthy runs", lambda g: _pct(g["false_alarm_rate_healthy"])))
    lines.append(
        row(
            "trouble caught at or after its start (injected events; high-lr runs that went NaN)",
            lambda g: _pct(g["detection_rate"]),
        )
    )
    lines.append(
        row("alarms before an injected event", lambda g: str(g["alarm_before_injected_event"]))
    )

    def delay(g: dict[str, Any], kinds: tuple[str, ...]) -> str:
        values = [
            (v["median"], v["n"])
            for k, v in g["delay_by_event"].items()
            if k.split("->")[0] in kinds and v.get("n")
        ]
        if not values:
            return "-"
        total = sum(n for _, n in values)
        return f"{max(m for m, _ in values):g} ({total} runs)"

    lines.append(
        row(
            "median delay, NaN / bad batch / lr spike / lr bump (steps, worst kind)",
            lambda g: delay(g, ("nan", "bad_batch", "lr_spike", "lr_bump")),
        )
    )
    lines.append(row("median delay, lr ramp x1.03/step (steps)", lambda g: delay(g, ("lr_ramp",))))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(HERE / "corpus.json.gz"))
    ap.add_argument("--holdout", default=",".join(DEFAULT_HOLDOUT))
    ap.add_argument("--no-lightning", action="store_true", help="skip the Lightning replay (~60 s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "diagnose_kinds.json"))
    args = ap.parse_args()
    runs = load_corpus(Path(args.corpus))
    holdout = tuple(t for t in args.holdout.split(",") if t)
    result = evaluate(runs, holdout, lightning=not args.no_lightning)
    result["command"] = "python benchmarks/diagnose/evaluate_kinds.py " + " ".join(sys.argv[1:])
    result["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    for part in ("tuning", "held_out"):
        s = result[part]
        g = s["guard"]
        lg = s["lightning_spike_detection"]
        print(
            f"{part:9s} tasks={s['tasks']} labelled={s['labelled_runs']} "
            f"lrkit macroF1={s['lrkit']['macro_f1']:.3f} "
            f"FA={s['lrkit']['false_alarm_rate_healthy']:.3f} | "
            f"baseline macroF1={s['baseline']['macro_f1']:.3f} "
            f"FA={s['baseline']['false_alarm_rate_healthy']:.3f} | "
            f"coarse lrkit={s['lrkit_coarse']['macro_f1']:.3f} "
            f"baseline={s['baseline_coarse']['macro_f1']:.3f} | "
            f"guard FA={g['false_alarm_rate_healthy']:.3f} det={g['detection_rate']:.3f} "
            f"delay={g['delay_all']}"
        )
        if lg is not None:
            print(
                f"{'':9s} Lightning SpikeDetection FA={lg['false_alarm_rate_healthy']:.3f} "
                f"det={lg['detection_rate']:.3f} delay={lg['delay_all']}"
            )
    print(markdown(result))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
