"""Regenerate docs/schedules.png: ``.venv/bin/python docs/schedules_png.py``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lrkit.plotting._schedule import plot_schedule  # noqa: E402
from lrkit.schedules import parse  # noqa: E402

PANELS = [
    ("warmup + cosine", "warmup(500, cosine(9500, floor=0.05), start=0.01)", False),
    ("one-cycle (torch's defaults)", "onecycle(10000)", True),
    ("warm restarts (SGDR)", "restarts(1000, mult=2.0, decay=0.7, floor=0.02)", False),
    ("WSD, 1-sqrt cooldown", "warmup(500, wsd(8000, 1500, cooldown=sqrt), start=0.0)", False),
    ("cyclic, triangular2", "cyclic(1250, low=0.1, mode=triangular2)", False),
    (
        "warmup + reduce-on-plateau (after 3 cuts)",
        "warmup(500, plateau(factor=0.5, reductions=[2500, 5000, 7000]))",
        False,
    ),
]


def main() -> None:
    fig, axes = plt.subplots(2, 3, figsize=(13.0, 7.0), layout="constrained")
    for ax, (title, spec, log) in zip(axes.flat, PANELS, strict=True):
        schedule = parse(spec)
        plot_schedule(schedule, 10_000, lr=1e-3, ax=ax, log=log)
        ax.set_title("\n".join([title, *textwrap.wrap(str(schedule), 58)]), fontsize=8.5)
        ax.get_legend().remove()
    fig.suptitle("lrkit schedules (lr = 1e-3 x multiplier; dots: key points)", fontsize=11)
    out = Path(__file__).with_name("schedules.png")
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
