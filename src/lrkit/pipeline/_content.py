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
from lrkit.pipeline._result import lr_of, training_curves

if TYPE_CHECKING:
    from lrkit.pipeline._result import AutoResult

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


def _training_figure(result: AutoResult) -> Figure | None:
    """The last check run: lrkit.plotting's diagnosis figure, with the Guard's events."""
    diagnosis = result.diagnosis
    plot = getattr(diagnosis, "plot", None)
    if result.training is None or not callable(plot):
        return None
    ax = _new_axes()
    plot(ax=ax)
    for event in result.guard_events:
        step = event.get("step")
        if isinstance(step, int):
            ax.axvline(step, color="tab:purple", ls=":", lw=1.0)
    verdict = getattr(diagnosis, "verdict", None)
    runs = len(result.attempts)
    which = f"check run {runs} of {runs}" if runs > 1 else "check run"
    ax.set_title("")  # the diagnosis figure's own title: the verdict, said below
    ax.set_title(
        f"{which.capitalize()}: {result.train_steps} steps at {fmt_lr(result.attempts[-1].lr)}"
        + (f" - diagnosis: {verdict}" if verdict else ""),
        fontsize=11,
        loc="left",
    )
    return Figure(
        "training",
        _png(ax),
        "training and validation loss of the check run",
        "The last check run with the recommended schedule; dashed lines mark where a problem "
        "started, dotted purple lines the Guard's events.",
    )


def _race_figure(result: AutoResult) -> Figure | None:
    """The race next to the range test it started from."""
    race = result.race
    if race is None or not race.candidates:
        return None
    from lrkit.plotting import plot_race, plot_race_range

    mfigure = require("matplotlib.figure", "plot")
    fig = mfigure.Figure(figsize=(11.5, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.25))
    plot_race_range(race, ax=left)
    plot_race(race, ax=right)
    return Figure(
        "race",
        _png(right),
        "the race: each candidate's validation loss on each rung, next to the range test",
        "Left: the range test, the interval raced over and each candidate. Right: each "
        "candidate's validation loss on each rung (dashed: the first, shortest rung); a cross "
        "marks where successive halving stopped it, red at the top where the Guard did; the "
        "star is the winner.",
    )


def _race_sections(result: AutoResult) -> list[Section]:
    race = result.race
    if race is None:
        return []
    total = race.total_steps
    rows = [
        (
            f"{c.lr:.3g}" + (" (winner)" if c.winner else ""),
            c.state,
            ", ".join(f"{t.value:.4g}" if t.value is not None else t.state for t in c.trials),
            c.reason,
        )
        for c in race.candidates
    ]
    rungs = ", then ".join(f"{r.count} x {r.steps} steps" for r in race.rungs)
    paragraphs = [
        f"Candidates: {race.interval.reason if race.interval else 'none'}; "
        f"{len(race.candidates)} points of a log lattice (3 a decade). Successive halving: "
        f"{rungs}; the best third of each rung goes on. Every trial trains a fresh copy with "
        f"the schedule as the run starts it (compress={race.compress!r}), "
        "watched by a Guard, and is scored on validation loss "
        f"({race.validation}).",
        f"{race.reason}. The range test alone would have said {fmt_lr(race.quick_lr)}."
        if race.quick_lr is not None
        else f"{race.reason}.",
    ]
    sections = [
        Section(
            "Race",
            paragraphs=tuple(paragraphs),
            figure=_race_figure(result),
            headers=("learning rate", "outcome", "validation loss per rung", "why"),
            rows=tuple(rows),
            anchor="race",
            highlight=tuple(i for i, c in enumerate(race.candidates) if c.winner),
        )
    ]
    cost: list[tuple[str, ...]] = []
    for stage, steps in race.stage_steps.items():
        what = "range test"
        if stage.startswith("rung "):
            r = race.rungs[int(stage.split()[1])]
            what = f"{stage}: {r.count} candidates x {r.steps} steps"
        cost.append((what, str(steps), f"{steps / total:.2f}"))
    cost.append(("search in all", str(race.spent_steps), f"{race.spent_budgets:.2f}"))
    for i, attempt in enumerate(result.attempts):
        n = len(attempt.training.train_loss) if attempt.training is not None else 0
        cost.append((f"check run {i + 1} (after choosing)", str(n), f"{n / total:.2f}"))
    sections.append(
        Section(
            "What each stage cost",
            paragraphs=(
                f"Optimizer steps, and the same in runs of your {total} steps. The budget was "
                f"{race.budget:g} runs for the search (range test and race); check runs come "
                "after the choice.",
            ),
            headers=("stage", "optimizer steps", "runs"),
            rows=tuple(cost),
            anchor="cost",
        )
    )
    return sections


def _attempts_section(result: AutoResult) -> Section | None:
    if len(result.attempts) < 2 and not any(a.factor for a in result.attempts):
        return None
    rows = tuple(
        (
            str(i + 1),
            fmt_lr(a.lr),
            str(a.verdict),
            str(len(a.guard_events)),
            f"{a.final_val_loss:.4g}" if math.isfinite(a.final_val_loss) else "-",
            a.decision,
        )
        for i, a in enumerate(result.attempts)
    )
    return Section(
        "Check runs (closed loop)",
        paragraphs=(
            "When a check run's diagnosis (or its Guard) says the learning rate is too high or "
            "too low, the lr is changed as it says and checked again.",
        ),
        headers=("run", "learning rate", "diagnosis", "guard events", "val loss", "then"),
        rows=rows,
        anchor="attempts",
    )


def _tone(verdict: str | None) -> Tone:
    if verdict is None:
        return "neutral"
    if verdict in _GOOD:
        return "good"
    return "bad" if verdict in _BAD else "warn"


def _final_loss(training: Any) -> str:
    train_loss, _, val_loss, _ = training_curves(training)
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

    race = result.race
    cards = [
        Card("Learning rate", fmt_lr(result.lr), result.lr_source, "good"),
        Card(
            "Search",
            f"race of {len(race.candidates)}" if race is not None else "range test",
            f"{race.spent_budgets:.2f} of {race.budget:g} runs spent"
            if race is not None
            else "the quick answer (budget 0)",
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
    verified = (
        "the race verified it on validation loss"
        if race is not None and race.lr is not None
        else "the range test measured this model and data"
    )
    sections: list[Section] = [
        Section(
            "Recommendation",
            paragraphs=(
                f"Optimizer {result.optimizer}, peak learning rate {fmt_lr(result.lr)} "
                f"({result.lr_source}), schedule {result.schedule}. "
                + (
                    f"The advisor's starting point was {fmt_lr(advice.lr)}; {verified}."
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
    sections += _race_sections(result)
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
                    f"{fmt_lr(result.attempts[-1].lr if result.attempts else result.lr)}, "
                    "watched live by a Guard (warn policy: it records, it "
                    f"does not intervene), which recorded {len(result.guard_events)} event(s). "
                    f"Diagnosis: {verdict}." + (f" Action: {action_text}." if action_text else ""),
                ),
                figure=_training_figure(result),
                headers=("finding", "severity", "from step", "detail") if rows else (),
                rows=tuple(rows),
                anchor="diagnosis",
            )
        )
        attempts = _attempts_section(result)
        if attempts is not None:
            sections.append(attempts)
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
            ("race", "race"),
            ("training", "check runs" if len(result.attempts) > 1 else "check run"),
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
    lr = lr_of(value)
    return fmt_lr(lr) if lr is not None else "no clear answer"


def _suggest_all(range_test: Any, schedule: str) -> dict[str, Any]:
    suggest_all = getattr(range_test, "suggest_all", None)
    if not callable(suggest_all):
        return {}
    return dict(suggest_all(schedule=schedule))
