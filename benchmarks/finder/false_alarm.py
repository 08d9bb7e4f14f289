"""How often lrkit's rule answers on a flat curve (a false alarm), and how often the others do.

A flat range-test curve is i.i.d. Gaussian noise around a constant loss over find_lr's default
ramp (1e-7 -> 10, 100 points). lrkit's flat-curve test is a rank test and the rule ignores the
loss's units and offset, so the noise level does not matter. Run::

    .venv/bin/python benchmarks/finder/false_alarm.py   # writes results/finder_false_alarm.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lrkit.finder import METHODS, ema, ramp, suggest

RESULTS = Path(__file__).resolve().parents[1] / "results" / "finder_false_alarm.json"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=2000)
    parser.add_argument("--points", type=int, default=100)
    args = parser.parse_args(argv)
    lrs = ramp(1e-7, 10.0, args.points)
    answered = dict.fromkeys(METHODS, 0)
    for seed in range(args.curves):
        losses = 2.0 + np.random.default_rng(seed).normal(0.0, 0.02, args.points)
        smoothed = ema(losses, 0.98)
        for method in METHODS:
            answered[method] += suggest(lrs, losses, smoothed, method).lr is not None
    rates = {m: answered[m] / args.curves for m in METHODS}
    payload = {
        "benchmark": "finder_false_alarm",
        "command": "python benchmarks/finder/false_alarm.py"
        + ("" if argv == [] else " " + " ".join(argv)),
        "curves": args.curves,
        "points": args.points,
        "noise": "i.i.d. normal, sd 0.02 around 2.0 (seeds 0..curves-1)",
        "answered": answered,
        "false_alarm_rate": rates,
    }
    RESULTS.write_text(json.dumps(payload, indent=1) + "\n")
    for m in METHODS:
        print(f"{m:20s} answered {answered[m]:5d} / {args.curves} ({100 * rates[m]:.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
