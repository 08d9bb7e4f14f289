"""Score lrkit's diagnosis on the outcome-labelled corpus (``outcome.py``): the proof of issue 13.

Usage (from the repository root)::

    .venv/bin/python benchmarks/diagnose/evaluate.py   # -> benchmarks/results/diagnose.json
    .venv/bin/python benchmarks/diagnose/evaluate.py --split design   # design tasks only

Every plain run is diagnosed from its logged series (training loss, lr, gradient norm, and the
validation curve in the "with validation" variant; without it in the other), and each verdict's
ACTION is read as a class: keep the lr -> ``ok``; lower it -> ``too_high``; raise it ->
``too_low``; "log more steps" -> ``inconclusive``; anything else (roll back and skip batches,
stop early) -> ``other``. Scored against the outcome labels (``ok`` / ``too_high`` /
``too_low``; ``borderline`` runs are left out of the class figures):

* macro-F1 over the three classes, per-class precision and recall;
* false alarms: the share of ``ok`` runs whose verdict is a problem (anything but ``ok`` and
  ``inconclusive``);
* wrong-direction advice: the share of ALL plain runs (borderline included) told to raise the
  lr while it is at or above the best lr of its configuration, or to lower it while at or below;
* the live Guard replayed step by step (policy ``warn``): false interventions on ``ok`` runs;
* fault runs: whether the injected fault was caught (diagnosis and Guard).

Methods, in one run on the same runs: ``lrkit`` (this branch), ``lrkit_before`` (the detectors
before issue 13, run from git: ``frozen.py``) and ``tutorial`` (the seed's rule set,
``baseline.py``). Fresh tasks are reported first.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import outcome  # noqa: E402
from baseline import epoch_points, tutorial_rule  # noqa: E402
from frozen import seed_modules  # noqa: E402

logging.getLogger("lrkit").setLevel(logging.ERROR)
logging.getLogger("lrkit_seed_diagnose").setLevel(logging.ERROR)

CLASSES = ("ok", "too_high", "too_low")
METHODS = ("lrkit", "lrkit_before", "tutorial")
#: which logged series a variant gives the diagnosis: (key, validation curve, lr + grad norm)
VARIANTS = (("val", True, True), ("noval", False, True), ("losses", True, False))
TUTORIAL_CLASS = {
    "NONFINITE": "too_high",
    "DIVERGING": "too_high",
    "OSCILLATING": "too_high",
    "STUCK": "too_low",
    "OVERFITTING": "other",
    "OK": "ok",
}


def _arr(values: list[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def action_class(action: Any) -> str:
    """The class an action stands for (works on the new and the frozen ``Action`` alike)."""
    kind, params = action.kind, action.params
    if kind == "none":
        return "ok"
    if kind == "collect_more":
        return "inconclusive"
    factor = params.get("factor") if kind == "scale_lr" else params.get("lr_factor")
    if factor is None:
        return "other"
    return "too_high" if float(factor) < 1.0 else "too_low"


def inputs(run: dict[str, Any], *, val: bool, extra: bool = True) -> dict[str, Any]:
    """diagnose()'s inputs: the training loss, the lr and gradient norm (``extra``), and the
    validation curve (``val``)."""
    kw: dict[str, Any] = {}
    if extra:
        kw["lr"] = outcome.lr_curve(run)
        kw["grad_norm"] = _arr(run["grad_norm"])
    if val and run["val"]:
        kw["val_loss"] = _arr(run["val"])
        kw["val_steps"] = run["val_steps"]
    return kw


def predict(run: dict[str, Any], method: str, *, val: bool, extra: bool = True) -> tuple[str, str]:
    """``(class, verdict)`` of one method on one run."""
    loss = _arr(run["loss"])
    if method == "tutorial":
        r = {"train_loss": run["loss"], "val_loss": run["val"], "val_steps": run["val_steps"]}
        train, v = epoch_points(r)
        rule = tutorial_rule(train, v if val else np.zeros(0))
        return TUTORIAL_CLASS[rule], rule
    if method == "lrkit":
        from lrkit.diagnosis import diagnose
    else:
        diagnose = seed_modules()["_diagnosis"].diagnose
    d = diagnose(loss, **inputs(run, val=val, extra=extra))
    return action_class(d.action), d.verdict


def guard_first_alarm(run: dict[str, Any], method: str) -> tuple[int | None, str | None]:
    """Replay a run through a warn-only Guard; the first alarm's step and kind."""
    if method == "lrkit":
        from lrkit.diagnosis import Guard
    else:
        Guard = seed_modules()["_guard"].Guard  # noqa: N806
    guard = Guard(policy="warn")
    for step, (loss, gn) in enumerate(zip(run["loss"], run["grad_norm"], strict=True)):
        value = math.nan if loss is None else loss
        g = math.nan if gn is None else gn
        action = guard.step(step, value, grad_norm=g)
        if action.event is not None:
            return step, action.event.kind
    return None, None


def class_scores(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """3-class figures of the predictions ``row[key]`` (plain runs of one split)."""
    lab = [r for r in rows if r["label"] in CLASSES]
    per: dict[str, Any] = {}
    f1s = []
    for c in CLASSES:
        tp = sum(1 for r in lab if r["label"] == c and r[key] == c)
        fp = sum(1 for r in lab if r["label"] != c and r[key] == c)
        fn = sum(1 for r in lab if r["label"] == c and r[key] != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[c] = {"precision": prec, "recall": rec, "f1": f1, "support": tp + fn}
        f1s.append(f1)
    ok = [r for r in lab if r["label"] == "ok"]
    wrong = [
        r
        for r in rows
        if (r[key] == "too_low" and r["factor_to_best"] >= 1.0)
        or (r[key] == "too_high" and r["factor_to_best"] <= 1.0)
    ]
    return {
        "labelled_runs": len(lab),
        "macro_f1": float(np.mean(f1s)),
        "accuracy": sum(1 for r in lab if r[key] == r["label"]) / max(len(lab), 1),
        "false_alarm_rate_ok": sum(1 for r in ok if r[key] not in ("ok", "inconclusive"))
        / max(len(ok), 1),
        "inconclusive_rate": sum(1 for r in lab if r[key] == "inconclusive") / max(len(lab), 1),
        "wrong_direction_rate": len(wrong) / max(len(rows), 1),
        "wrong_direction_runs": len(wrong),
        "plain_runs": len(rows),
        "per_class": per,
        "confusion": {
            f"{t}->{p}": n
            for (t, p), n in sorted(Counter((r["label"], r[key]) for r in rows).items())
        },
    }


def guard_scores(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    ok = [r for r in rows if r["label"] == "ok"]
    high = [r for r in rows if r["label"] == "too_high"]
    return {
        "ok_runs": len(ok),
        "false_intervention_rate_ok": sum(1 for r in ok if r[key] is not None) / max(len(ok), 1),
        "false_interventions_ok": sum(1 for r in ok if r[key] is not None),
        "alarm_rate_too_high": sum(1 for r in high if r[key] is not None) / max(len(high), 1),
        "alarm_kinds_ok": dict(Counter(r[key + "_kind"] for r in ok if r[key] is not None)),
    }


def fault_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in outcome.FAULTS:
        sel = [r for r in rows if r["fault"] == kind]
        if not sel:
            continue
        entry: dict[str, Any] = {"runs": len(sel)}
        for m in ("lrkit", "lrkit_before"):
            entry[f"{m}_caught"] = sum(1 for r in sel if r[f"{m}_caught"]) / len(sel)
            before = [r for r in sel if r[f"guard_{m}"] is not None and r[f"guard_{m}"] < r["at"]]
            delays = [
                r[f"guard_{m}"] - r["at"]
                for r in sel
                if r[f"guard_{m}"] is not None and r[f"guard_{m}"] >= r["at"]
            ]
            entry[f"guard_{m}_caught"] = len(delays) / len(sel)
            entry[f"guard_{m}_alarm_before_fault"] = len(before)
            entry[f"guard_{m}_median_delay"] = float(np.median(delays)) if delays else None
        out[kind] = entry
    return out


CAUGHT = {"nan": ("diverged",), "bad_batch": None, "lr_spike": None}


def caught(run: dict[str, Any], method: str) -> bool:
    """Did the diagnosis report the injected fault (a finding of a loss event at its step)?"""
    if method == "lrkit":
        from lrkit.diagnosis import diagnose
    else:
        diagnose = seed_modules()["_diagnosis"].diagnose
    d = diagnose(_arr(run["loss"]), **inputs(run, val=True))
    at = run["fault"]["step"]
    for f in d.findings:
        if f.kind not in ("diverged", "diverging", "spiking", "oscillating"):
            continue
        if f.onset_step is not None and at - 2 <= f.onset_step <= at + 10:
            return True
    return False


def evaluate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    plain = [r for r in runs if r["fault"] is None and r["label"] != "unbracketed"]
    faults = [r for r in runs if r["fault"] is not None]
    seconds: dict[str, float] = {}
    rows = []
    for r in plain:
        row = {
            "id": r["id"],
            "task": r["task"],
            "split": r["split"],
            "label": r["label"],
            "factor_to_best": r["factor_to_best"],
        }
        rows.append(row)
    for m in METHODS:
        for name, val, extra in VARIANTS:
            if m == "tutorial" and name == "losses":
                continue  # the tutorial rules read the losses only anyway
            key = f"{m}_{name}"
            t0 = time.perf_counter()
            for row, r in zip(rows, plain, strict=True):
                row[key], row[key + "_verdict"] = predict(r, m, val=val, extra=extra)
            seconds[key] = time.perf_counter() - t0
    for m in ("lrkit", "lrkit_before"):
        t0 = time.perf_counter()
        for row, r in zip(rows, plain, strict=True):
            row[f"guard_{m}"], row[f"guard_{m}_kind"] = guard_first_alarm(r, m)
        seconds[f"guard_{m}"] = time.perf_counter() - t0
    frows = []
    for r in faults:
        row = {"id": r["id"], "split": r["split"], "fault": r["fault"]["kind"]}
        row["at"] = r["fault"]["step"]
        for m in ("lrkit", "lrkit_before"):
            row[f"{m}_caught"] = caught(r, m)
            row[f"guard_{m}"], _ = guard_first_alarm(r, m)
        frows.append(row)

    def part(split: str) -> dict[str, Any]:
        sel = [r for r in rows if r["split"] == split]
        if not sel:
            return {"plain_runs": 0}
        out: dict[str, Any] = {
            "tasks": sorted({r["task"] for r in sel}),
            "plain_runs": len(sel),
            "label_counts": dict(Counter(r["label"] for r in sel)),
        }
        for m in METHODS:
            for v, _, _ in VARIANTS:
                if f"{m}_{v}" in sel[0]:
                    out[f"{m}_{v}"] = class_scores(sel, f"{m}_{v}")
        for m in ("lrkit", "lrkit_before"):
            out[f"guard_{m}"] = guard_scores(sel, f"guard_{m}")
        out["faults"] = fault_scores([r for r in frows if r["split"] == split])
        out["borderline_verdicts_lrkit_val"] = dict(
            Counter(r["lrkit_val"] for r in sel if r["label"] == "borderline")
        )
        out["per_task_lrkit_val"] = {
            t: {
                "macro_f1": class_scores([r for r in sel if r["task"] == t], "lrkit_val")[
                    "macro_f1"
                ],
                "false_alarm_rate_ok": class_scores(
                    [r for r in sel if r["task"] == t], "lrkit_val"
                )["false_alarm_rate_ok"],
                "wrong_direction_runs": class_scores(
                    [r for r in sel if r["task"] == t], "lrkit_val"
                )["wrong_direction_runs"],
            }
            for t in out["tasks"]
        }
        out["mistakes_lrkit_val"] = [
            {
                "id": r["id"],
                "label": r["label"],
                "verdict": r["lrkit_val_verdict"],
                "factor_to_best": round(r["factor_to_best"], 4),
            }
            for r in sel
            if r["label"] in CLASSES and r["lrkit_val"] != r["label"]
        ]
        return out

    return {
        "runs": len(runs),
        "plain_runs": len(plain),
        "fault_runs": len(faults),
        "seconds": seconds,
        "fresh": part("fresh"),
        "design": part("design"),
    }


def ground_truth_noise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Seed-to-seed spread of the final validation loss at the anchor (both seeds), in % of
    their mean, per split: how sharp the 10% / 50% label bands are."""
    out: dict[str, Any] = {}
    for split in ("fresh", "design"):
        pairs: dict[str, list[float]] = {}
        for r in runs:
            if r["split"] == split and r["fault"] is None and r["k"] == 0 and r["final"]:
                pairs.setdefault(f"{r['task']}/{r['schedule']}x{r['length']}", []).append(
                    float(r["final"])
                )
        spreads = [
            abs(a - b) / ((a + b) / 2) for a, b in (v for v in pairs.values() if len(v) == 2)
        ]
        if spreads:
            out[split] = {
                "configurations": len(spreads),
                "median_pct": 100 * float(np.median(spreads)),
                "p90_pct": 100 * float(np.percentile(spreads, 90)),
            }
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(result: dict[str, Any]) -> str:
    """The tables quoted in the docs: fresh tasks first, then the design tasks."""
    names = {"lrkit": "lrkit", "lrkit_before": "lrkit before", "tutorial": "tutorial rules"}
    lines: list[str] = []
    for split in ("fresh", "design"):
        p = result[split]
        if not p["plain_runs"]:
            continue
        counts = p["label_counts"]
        lines += [
            f"**{split.capitalize()} tasks** ({len(p['tasks'])}: {', '.join(p['tasks'])}; "
            f"{p['plain_runs']} runs: ok {counts.get('ok', 0)}, too high "
            f"{counts.get('too_high', 0)}, too low {counts.get('too_low', 0)}, borderline "
            f"{counts.get('borderline', 0)}). All series logged (training and validation "
            "loss, lr, gradient norm):",
            "",
            "| figure | " + " | ".join(names.values()) + " |",
            "|---|" + "---:|" * len(names),
        ]

        def row(name: str, get: Any, p: dict[str, Any] = p) -> str:
            return f"| {name} | " + " | ".join(get(p[f"{m}_val"]) for m in names) + " |"

        lines.append(row("macro-F1 (ok / too high / too low)", lambda s: f"{s['macro_f1']:.3f}"))
        lines.append(row("false alarms on ok runs", lambda s: _pct(s["false_alarm_rate_ok"])))
        lines.append(
            row("wrong-direction advice (all runs)", lambda s: _pct(s["wrong_direction_rate"]))
        )
        lines.append(row("inconclusive", lambda s: _pct(s["inconclusive_rate"])))
        for c in CLASSES:
            lines.append(
                row(
                    f"{c.replace('_', ' ')}: precision / recall",
                    lambda s, c=c: (
                        f"{s['per_class'][c]['precision']:.2f} / {s['per_class'][c]['recall']:.2f}"
                    ),
                )
            )
        g, gb = p["guard_lrkit"], p["guard_lrkit_before"]
        lines.append(
            f"| live Guard: false interventions on ok runs | "
            f"{_pct(g['false_intervention_rate_ok'])} | "
            f"{_pct(gb['false_intervention_rate_ok'])} | - |"
        )
        for kind, f in p["faults"].items():
            lines.append(
                f"| fault `{kind}` caught: diagnose / Guard ({f['runs']} runs) | "
                f"{_pct(f['lrkit_caught'])} / {_pct(f['guard_lrkit_caught'])} | "
                f"{_pct(f['lrkit_before_caught'])} / {_pct(f['guard_lrkit_before_caught'])} "
                "| - |"
            )
        lines += [
            "",
            "| with fewer series (macro-F1 / false alarms / wrong direction) | "
            + " | ".join(names.values())
            + " |",
            "|---|" + "---:|" * len(names),
        ]
        for v, label in (("noval", "no validation curve"), ("losses", "losses only (no lr)")):
            cells = []
            for m in names:
                sc = p.get(f"{m}_{v}")
                cells.append(
                    "-"
                    if sc is None
                    else f"{sc['macro_f1']:.3f} / {_pct(sc['false_alarm_rate_ok'])} / "
                    f"{_pct(sc['wrong_direction_rate'])}"
                )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    noise = result.get("ground_truth_noise", {})
    if noise:
        lines.append(
            "Ground-truth noise (seed-to-seed spread of the final validation loss at the anchor "
            "lr, 2 seeds): "
            + "; ".join(
                f"{s} tasks median {v['median_pct']:.1f}%, 90th percentile {v['p90_pct']:.1f}% "
                f"({v['configurations']} configurations)"
                for s, v in noise.items()
            )
            + "."
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("design", "fresh"))
    ap.add_argument("--tasks", default="")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "diagnose.json"))
    args = ap.parse_args()
    tasks = [t for t in args.tasks.split(",") if t] or None
    runs = outcome.load(args.split, tasks)
    result = evaluate(runs)
    result["ground_truth_noise"] = ground_truth_noise(runs)
    result["command"] = "python benchmarks/diagnose/evaluate.py " + " ".join(sys.argv[1:])
    result["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
