"""Tune / check lrkit.diagnose's thresholds on the labelled corpus (whole tasks held out).

Reads ``benchmarks/diagnose/corpus.json.gz`` (or ``corpus_partial.jsonl`` while it is being
generated, labelled with the generator's own ``label()``), diagnoses every run and prints the
confusion matrix, per-class precision/recall, macro F1 and false alarms on healthy runs,
separately for the tuning tasks and the held-out tasks.

Run: ``.venv/bin/python benchmarks/diagnose_tune.py --holdout digits_cnn,char_mlp [--no-lr]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from lrkit.diagnose import diagnose

HERE = Path(__file__).resolve().parent / "diagnose"
LABELS = [
    "healthy",
    "diverged",
    "diverging",
    "spiking",
    "oscillating",
    "too_slow",
    "plateau",
    "overfitting",
]


def load() -> list[dict[str, Any]]:
    corpus = HERE / "corpus.json.gz"
    if corpus.exists():
        with gzip.open(corpus, "rt", encoding="utf-8") as fh:
            return list(json.load(fh)["runs"])
    sys.path.insert(0, str(HERE))
    from generate import label  # type: ignore[import-not-found]

    runs = []
    for line in (HERE / "corpus_partial.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            r["label"] = label(r)
            runs.append(r)
    return runs


def run_one(r: dict[str, Any], use_lr: bool) -> str:
    def arr(v: Any) -> np.ndarray:  # type: ignore[type-arg]
        return np.array([np.nan if x is None else x for x in v], dtype=float)

    d = diagnose(
        arr(r["train_loss"]),
        val_loss=arr(r["val_loss"]) if r.get("val_loss") else None,
        val_steps=r.get("val_steps") or None,
        lr=arr(r["lr_curve"]) if use_lr and r.get("lr_curve") else None,
        grad_norm=arr(r["grad_norm"]) if r.get("grad_norm") else None,
    )
    return d.verdict


def report(name: str, pairs: list[tuple[str, str, str]]) -> float:
    pairs = [p for p in pairs if not p[0].startswith("borderline")]
    print(f"\n== {name}: {len(pairs)} runs")
    labels = LABELS
    f1s = []
    for lab in labels:
        tp = sum(1 for t, p, _ in pairs if t == lab and p == lab)
        fp = sum(1 for t, p, _ in pairs if t != lab and p == lab)
        fn = sum(1 for t, p, _ in pairs if t == lab and p != lab)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if tp + fn:
            f1s.append(f1)
        conf = Counter(p for t, p, _ in pairs if t == lab)
        print(f"{lab:12s} n={tp + fn:3d} P={prec:.2f} R={rec:.2f} F1={f1:.2f}  -> {dict(conf)}")
    healthy = [p for t, p, _ in pairs if t == "healthy"]
    fa = sum(1 for p in healthy if p not in ("healthy", "inconclusive")) / max(1, len(healthy))
    macro = float(np.mean(f1s)) if f1s else 0.0
    print(f"macro F1 {macro:.3f}  false alarms on healthy {fa:.1%}")
    return macro


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--holdout", default="digits_cnn,char_mlp")
    ap.add_argument("--no-lr", action="store_true")
    ap.add_argument("--show", default="", help="print ids of runs with this true label")
    args = ap.parse_args()
    runs = load()
    hold = set(args.holdout.split(","))
    t0 = time.perf_counter()
    pairs = [(r["label"], run_one(r, not args.no_lr), r["id"]) for r in runs]
    dt = time.perf_counter() - t0
    print(f"{len(runs)} runs diagnosed in {dt:.2f} s")
    tune = [p for p, r in zip(pairs, runs, strict=True) if r["task"] not in hold]
    held = [p for p, r in zip(pairs, runs, strict=True) if r["task"] in hold]
    report("tuning tasks", tune)
    report(f"held-out tasks {sorted(hold)}", held)
    if args.show:
        for t, p, i in tune:
            if (t == args.show or args.show == "all") and p != t:
                print("  miss", i, "->", p)
            if p == args.show and t != args.show and args.show != "all":
                print("  false", i, "true", t)


if __name__ == "__main__":
    main()
