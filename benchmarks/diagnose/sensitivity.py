"""How much the design-task figures move when each new threshold moves (one at a time).

Usage (from the repository root; design tasks only, the fresh ones are never used to choose)::

    .venv/bin/python benchmarks/diagnose/sensitivity.py   # -> results/diagnose_sensitivity.json

Each threshold added for issue 13 is set to a lower and a higher value around its default;
macro-F1, false alarms and wrong-direction advice are recomputed on the design tasks (every
series logged). Flat figures mean the defaults were not picked off a sharp optimum.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import evaluate as ev  # noqa: E402
import outcome  # noqa: E402

from lrkit.diagnosis import Thresholds, diagnose  # noqa: E402

VARIED = {
    "falling_share": (0.15, 0.35),
    "val_rise": (0.1, 0.3),
    "val_min_share": (0.4, 0.8),
    "overfit_zigzag": (1.2, 2.0),
    "jump_ratio": (2.0, 5.0),
}


def score(runs: list[dict[str, Any]], th: Thresholds) -> dict[str, Any]:
    rows = []
    for r in runs:
        d = diagnose(ev._arr(r["loss"]), thresholds=th, **ev.inputs(r, val=True))
        rows.append(
            {
                "task": r["task"],
                "label": r["label"],
                "factor_to_best": r["factor_to_best"],
                "p": ev.action_class(d.action),
            }
        )
    s = ev.class_scores(rows, "p")
    return {
        "macro_f1": s["macro_f1"],
        "false_alarm_rate_ok": s["false_alarm_rate_ok"],
        "wrong_direction_rate": s["wrong_direction_rate"],
    }


def main() -> None:
    runs = [r for r in outcome.load("design") if r["fault"] is None]
    base = Thresholds()
    out: dict[str, Any] = {"default": score(runs, base), "varied": {}}
    for name, values in VARIED.items():
        for v in values:
            out["varied"][f"{name}={v}"] = score(runs, base.replace(**{name: v}))
            print(name, v, out["varied"][f"{name}={v}"], flush=True)
    out["defaults"] = {k: getattr(base, k) for k in VARIED}
    out["runs"] = len(runs)
    out["command"] = "python benchmarks/diagnose/sensitivity.py"
    out["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path = HERE.parent / "results" / "diagnose_sensitivity.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"default {out['default']}; wrote {path}")


if __name__ == "__main__":
    main()
