"""Diagnose learning-rate trouble from loss curves and logs.

``diagnose(train_loss, ...)`` gives a :class:`Diagnosis` (verdict, findings, action);
``diagnose_file(path)`` reads TensorBoard, Lightning CSV, Hugging Face ``trainer_state.json``,
JSON lines or CSV logs first.
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.diagnosis._diagnosis import diagnose
    from lrkit.diagnosis._files import diagnose_file, read_log
    from lrkit.diagnosis._findings import PROBLEMS, VERDICTS, Action, Diagnosis, Finding
    from lrkit.diagnosis._guard import Guard, GuardAction, GuardError, GuardEvent
    from lrkit.diagnosis._monitor import LossMonitor
    from lrkit.diagnosis._readers import Log, LogFormatError
    from lrkit.diagnosis._rules import Thresholds

__all__ = [
    "PROBLEMS",
    "VERDICTS",
    "Action",
    "Diagnosis",
    "Finding",
    "Guard",
    "GuardAction",
    "GuardError",
    "GuardEvent",
    "LossMonitor",
    "Log",
    "LogFormatError",
    "Thresholds",
    "diagnose",
    "diagnose_file",
    "read_log",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.diagnosis._diagnosis": ["diagnose"],
            "lrkit.diagnosis._files": ["diagnose_file", "read_log"],
            "lrkit.diagnosis._findings": ["PROBLEMS", "VERDICTS", "Action", "Diagnosis", "Finding"],
            "lrkit.diagnosis._guard": ["Guard", "GuardAction", "GuardError", "GuardEvent"],
            "lrkit.diagnosis._monitor": ["LossMonitor"],
            "lrkit.diagnosis._readers": ["Log", "LogFormatError"],
            "lrkit.diagnosis._rules": ["Thresholds"],
        },
    )
