"""Turn an :class:`~lrkit.pipeline.AutoResult` into the report's text and plots.

Plots are drawn by the owners' renderers (``RangeTest.plot``, ``plot_schedule``) onto
matplotlib ``Figure`` objects created without pyplot (no GUI backend, nothing global), then
saved as PNG bytes. matplotlib is the ``plot`` extra.
"""

from __future__ import annotations

import io
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lrkit._optional import require
from lrkit.advice import fmt_lr
from lrkit.pipeline._report import Card, Figure, ReportContent, Section, Tone

if TYPE_CHECKING:
    from lrkit.pipeline._pipeline import AutoResult

__all__ = ["build_content"]

_GOOD = {"healthy"}
_BAD = {"diverged", "diverging"}


def _new_axes(width: float = 7.6, height: float = 3.8) -> Any:
    mfigure = require("matplotlib.figure", "plot")
    fig = mfigure.Figure(figsize=(width, height), layout="constrained")
    return fig.subplots()


def _png(ax: Any) -> bytes:
    buf = io.BytesIO()
    ax.figure.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _range_figure(result: AutoResult) -> Figure | None:
    rt = result.range_test
    if rt is None:
        return None
    ax = _new_axes()
    rt.plot(ax=ax, schedule=result.finder_schedule)
    return Figure(
        "range_test",
        _png(ax),
        "range test: loss against learning rate",
        f"Loss while the learning rate ramps up; the suggestion for {result.schedule} and the "
        "suggested range are marked.",
    )


def _schedule_figure(result: AutoResult) -> Figure | None:
    from lrkit.plotting._schedule import plot_schedule
    from lrkit.schedules import parse

    steps = result.total_steps or result.train_steps or 1000
    shown = (
        f"over {steps} steps"
        if result.total_steps or result.train_steps
        else f"drawn over {steps} steps (no budget given)"
    )
    ax = _new_axes(7.6, 3.2)
    plot_schedule(parse(result.schedule), steps, lr=result.lr, ax=ax)
    ax.set_title("The recommended schedule", fontsize=11, loc="left")
    return Figure(
        "schedule",
        _png(ax),
        f"learning rate schedule {result.schedule}",
        f"{result.schedule} with peak lr {fmt_lr(result.lr)} {shown}.",
    )


def _finite(values: list[Any]) -> list[float]:
    return [float(v) if v is not None and math.isfinite(float(v)) else math.nan for v in values]


def _training_figure(result: AutoResult) -> Figure | None:
    training = result.training
    if training is None:
        return None
    from lrkit.pipeline._pipeline import _curves

    train_loss, val_steps, val_loss, lrs = _curves(training, [])
    ax = _new_axes()
    diagnosis = result.diagnosis
    raw_smooth = getattr(diagnosis, "smoothed", None)
    smoothed: list[Any] = [] if raw_smooth is None else list(raw_smooth)
    has_smooth = len(smoothed) == len(train_loss) > 0
    ax.plot(
        range(len(train_loss)),
        _finite(train_loss),
        lw=0.8,
        color="tab:blue",
        alpha=0.35 if has_smooth else 0.9,
        label="train loss",
    )
    if has_smooth:
        ax.plot(
            range(len(train_loss)),
            _finite(smoothed),
            lw=1.6,
            color="tab:blue",
            label="train loss (smoothed)",
        )
    if val_loss:
        ax.plot(
            val_steps,
            _finite(val_loss),
            "o-",
            ms=3,
            lw=1.4,
            color="tab:orange",
            label="validation loss",
        )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    shown = [v for v in _finite(train_loss) + _finite(val_loss) if not math.isnan(v)]
    if shown and min(shown) > 0 and max(shown) / min(shown) > 20:
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)")
    ax.grid(True, alpha=0.3)
    for finding in list(getattr(diagnosis, "findings", []) or []):
        onset = getattr(finding, "onset_step", None)
        if onset is None:
            continue
        ax.axvline(onset, color="tab:red", ls="--", lw=1.0)
        ax.annotate(
            str(getattr(finding, "kind", getattr(finding, "verdict", "finding"))),
            (onset, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="tab:red",
        )
    for event in result.guard_events:
        step = event.get("step")
        if isinstance(step, int):
            ax.axvline(step, color="tab:purple", ls=":", lw=1.0)
    lines, labels = ax.get_legend_handles_labels()
    if lrs:
        twin = ax.twinx()
        twin.plot(range(len(lrs)), lrs, color="tab:gray", lw=1.0, ls="--", label="learning rate")
        twin.set_ylabel("learning rate", color="tab:gray")
        twin.tick_params(axis="y", labelcolor="tab:gray", labelsize=8)
        more, more_labels = twin.get_legend_handles_labels()
        lines, labels = lines + more, labels + more_labels
    # under the plot, where it covers neither the curves nor the finding labels
    ax.legend(
        lines,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=len(labels),
        fontsize=8,
        frameon=False,
    )
    verdict = getattr(diagnosis, "verdict", None)
    ax.set_title(
        f"Check run: {result.train_steps} steps" + (f" - diagnosis: {verdict}" if verdict else ""),
        fontsize=11,
        loc="left",
    )
    return Figure(
        "training",
        _png(ax),
        "training and validation loss of the check run",
        "The check run with the recommended schedule; dashed red lines mark where a problem "
        "started, dotted purple lines the Guard's events.",
    )


def _tone(verdict: str | None) -> Tone:
    if verdict is None:
        return "neutral"
    if verdict in _GOOD:
        return "good"
    return "bad" if verdict in _BAD else "warn"


def _final_loss(training: Any) -> str:
    from lrkit.pipeline._pipeline import _curves

    train_loss, _, val_loss, _ = _curves(training, [])
    parts = []
    if train_loss:
        parts.append(f"final train loss {float(train_loss[-1]):.4g}")
    if val_loss and val_loss[-1] is not None:
        parts.append(f"validation loss {float(val_loss[-1]):.4g}")
    return ", ".join(parts)


def build_content(result: AutoResult) -> ReportContent:
    """The report of ``result``: summary cards, plots, tables, the code snippet and notes."""
    advice = result.advice
    diagnosis = result.diagnosis
    verdict = getattr(diagnosis, "verdict", None)
    action = getattr(diagnosis, "action", None)
    action_text = str(getattr(action, "text", action) or "") if action is not None else ""

    cards = [
        Card("Learning rate", fmt_lr(result.lr), result.lr_source, "good"),
        Card(
            "Search range",
            "-"
            if result.lr_range is None
            else f"{fmt_lr(result.lr_range[0])} .. {fmt_lr(result.lr_range[1])}",
            "from the range test (cyclic / one-cycle bounds)"
            if result.lr_range is not None
            else "the range test gave none",
        ),
        Card("Schedule", advice.schedule_name, result.schedule),
        Card(
            "Diagnosis",
            verdict or "not run",
            action_text if verdict else "pass --train-steps N for a guarded check run",
            _tone(verdict),
        ),
    ]
    named = "" if advice.schedule_name in result.schedule else f" ({advice.schedule_name})"
    headline = (
        f"Use {result.optimizer} at learning rate {fmt_lr(result.lr)} with {result.schedule}"
        f"{named} for this {result.architecture}."
    )
    if verdict:
        headline += f" The {result.train_steps}-step check run is {verdict}"
        final = _final_loss(result.training)
        headline += f" ({final})." if final else "."
        if verdict not in _GOOD and action_text:
            headline += f" The diagnosis says: {action_text}."
    sections: list[Section] = [
        Section(
            "Recommendation",
            paragraphs=(
                f"Optimizer {result.optimizer}, peak learning rate {fmt_lr(result.lr)} "
                f"({result.lr_source}), schedule {result.schedule}. "
                + (
                    f"The advisor's starting point was {fmt_lr(advice.lr)}; the range test "
                    "measured this model and data."
                    if result.suggestion is not None
                    else "The range test gave no clear answer, so this is the advisor's "
                    "generic starting point"
                    + (
                        ": the check run below tests it."
                        if result.training is not None
                        else ": test it with a check run (--train-steps N)."
                    )
                ),
            ),
            code=result.snippet,
            anchor="recommendation",
        )
    ]
    rt = result.range_test
    if rt is not None:
        rows: list[tuple[str, ...]] = []
        family = result.finder_schedule
        constant = _suggest_all(rt, "constant")
        scheduled = _suggest_all(rt, family) if family != "constant" else constant
        # a second column only where some rule answers differently for the schedule
        both = any(_lr_text(v) != _lr_text(scheduled.get(m)) for m, v in constant.items())
        highlight: list[int] = []
        for method, value in constant.items():
            cells = [method, _lr_text(value)]
            if both:
                cells.append(_lr_text(scheduled.get(method)))
            if method == "lrkit" and result.suggestion is not None:
                highlight.append(len(rows))
                cells[0] = "lrkit (used)"
            rows.append(tuple(cells))
        if result.lr_range is not None:
            low, high = result.lr_range
            span = f"{fmt_lr(low)} .. {fmt_lr(high)}"
            rows.append(
                ("range (low .. high)", "", span) if both else ("range (low .. high)", span)
            )
        paragraphs = [
            f"{len(rt.lrs)} steps with the learning rate growing exponentially from "
            f"{fmt_lr(float(rt.lrs[0]))} (stopped: {rt.stop_reason}); the model and optimizer "
            "were restored afterwards.",
        ]
        if result.suggestion is not None:
            paragraphs.append(
                f"Suggestion: {fmt_lr(result.suggestion)}, "
                f"{result.suggestion_reason or 'lrkit rule'}"
                + (
                    f" (the peak of a {family} schedule)."
                    if family != "constant"
                    else " (a constant learning rate)."
                )
            )
        sections.append(
            Section(
                "Range test",
                paragraphs=tuple(paragraphs),
                figure=_range_figure(result),
                headers=("rule", "constant lr", f"peak lr, {family} schedule")
                if both
                else ("rule", "learning rate"),
                rows=tuple(rows),
                anchor="range-test",
                highlight=tuple(highlight),
            )
        )
    sections.append(
        Section(
            "Schedule",
            paragraphs=tuple(
                f"{r.topic}: {r.why} ({r.source})"
                for r in advice.reasons
                if r.topic in ("schedule", "warmup")
            ),
            figure=_schedule_figure(result),
            anchor="schedule",
        )
    )
    if result.training is not None:
        findings = list(getattr(diagnosis, "findings", []) or [])
        rows = []
        for f in findings:
            rows.append(
                (
                    str(getattr(f, "kind", getattr(f, "verdict", ""))),
                    str(getattr(f, "severity", "")),
                    str(getattr(f, "onset_step", "")),
                    str(getattr(f, "message", getattr(f, "summary", ""))),
                )
            )
        for e in result.guard_events:
            rows.append(
                (
                    "guard: " + str(e.get("kind", e.get("event", ""))),
                    "",
                    str(e.get("step", "")),
                    str(e.get("message", e.get("action", ""))),
                )
            )
        sections.append(
            Section(
                "Check run and diagnosis",
                paragraphs=(
                    f"{result.train_steps} steps with {result.train_schedule} at peak lr "
                    f"{fmt_lr(result.lr)}, watched live by a Guard (warn policy: it records, it "
                    f"does not intervene), which recorded {len(result.guard_events)} event(s). "
                    f"Diagnosis: {verdict}." + (f" Action: {action_text}." if action_text else ""),
                ),
                figure=_training_figure(result),
                headers=("finding", "severity", "from step", "detail") if rows else (),
                rows=tuple(rows),
                anchor="diagnosis",
            )
        )
    sections.append(
        Section(
            "Why these numbers",
            headers=("what", "value", "why", "source"),
            rows=tuple(
                (r.topic, r.value, r.why, f"{r.source}: {r.reference}") for r in advice.reasons
            ),
            anchor="advice",
        )
    )
    notes = tuple(dict.fromkeys([*result.notes, *advice.notes]))
    read = sorted({v.split("(", 1)[-1].rstrip(")") for v in result.inferred.values()})
    subtitle = " · ".join(
        [
            result.name,
            f"{result.optimizer} + {result.architecture}"
            + (f" ({'; '.join(read)})" if read else ""),
            datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        ]
    )
    stages = [
        (label, result.timings[key])
        for key, label in (
            ("range_test", "range test"),
            ("training", "check run"),
        )
        if key in result.timings
    ]
    footer = " · ".join(f"{label} {seconds:.1f} s" for label, seconds in stages)
    return ReportContent(
        footer=footer,
        title=f"lrkit auto: {result.name}",
        subtitle=subtitle,
        cards=tuple(cards),
        headline=headline,
        headline_tone=_tone(verdict) if verdict else "good",
        sections=tuple(sections),
        notes=notes,
        data=result.to_dict(),
    )


def _lr_text(value: Any) -> str:
    from lrkit.pipeline._pipeline import _lr_of

    lr = _lr_of(value)
    return fmt_lr(lr) if lr is not None else "no clear answer"


def _suggest_all(range_test: Any, schedule: str) -> dict[str, Any]:
    suggest_all = getattr(range_test, "suggest_all", None)
    if not callable(suggest_all):
        return {}
    return dict(suggest_all(schedule=schedule))
