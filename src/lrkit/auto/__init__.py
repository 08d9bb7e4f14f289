"""The main job: advise -> range test -> race -> guarded check runs -> diagnosis -> report.

Example:
    >>> from lrkit.auto import auto
    >>> result = auto(task="digits", train_steps=100, out="report/")  # doctest: +SKIP
    >>> result.lr, result.schedule, result.diagnosis.verdict  # doctest: +SKIP
"""

from lrkit.auto._infer import infer_architecture, infer_optimizer
from lrkit.auto._pipeline import MAX_ATTEMPTS, auto
from lrkit.auto._report import (
    Card,
    Figure,
    ReportContent,
    Section,
    render_html,
    render_markdown,
    write_report,
)
from lrkit.auto._result import Attempt, AutoResult
from lrkit.auto._snippet import code_snippet

__all__ = [
    "MAX_ATTEMPTS",
    "Attempt",
    "AutoResult",
    "Card",
    "Figure",
    "ReportContent",
    "Section",
    "auto",
    "code_snippet",
    "infer_architecture",
    "infer_optimizer",
    "render_html",
    "render_markdown",
    "write_report",
]
