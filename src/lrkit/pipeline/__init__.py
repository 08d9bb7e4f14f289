"""The main job: advise -> range test -> race -> guarded check runs -> diagnosis -> report.

Example:
    >>> from lrkit.pipeline import auto
    >>> result = auto(task="digits", train_steps=100, out="report/")  # doctest: +SKIP
    >>> result.lr, result.schedule, result.diagnosis.verdict  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.pipeline._infer import infer_architecture, infer_optimizer
    from lrkit.pipeline._pipeline import MAX_ATTEMPTS, auto
    from lrkit.pipeline._report import (
        Card,
        Figure,
        ReportContent,
        Section,
        render_html,
        render_markdown,
        write_report,
    )
    from lrkit.pipeline._result import Attempt, AutoResult
    from lrkit.pipeline._snippet import code_snippet

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

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.pipeline._infer": ["infer_architecture", "infer_optimizer"],
            "lrkit.pipeline._pipeline": ["MAX_ATTEMPTS", "auto"],
            "lrkit.pipeline._result": ["Attempt", "AutoResult"],
            "lrkit.pipeline._snippet": ["code_snippet"],
            "lrkit.pipeline._report": [
                "Card",
                "Figure",
                "ReportContent",
                "Section",
                "render_html",
                "render_markdown",
                "write_report",
            ],
        },
    )
