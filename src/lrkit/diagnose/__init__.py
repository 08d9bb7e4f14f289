"""Diagnose learning-rate trouble from loss curves and logs.

``diagnose(train_loss, ...)`` gives a :class:`Diagnosis` (verdict, findings, action);
``diagnose_file(path)`` reads TensorBoard, Lightning CSV, Hugging Face ``trainer_state.json``,
JSON lines or CSV logs first.
"""

from typing import TYPE_CHECKING

from lrkit._lazy import lazy_exports

if TYPE_CHECKING:
    from lrkit.diagnose._diagnosis import diagnose
    from lrkit.diagnose._files import diagnose_file, read_log
    from lrkit.diagnose._findings import PROBLEMS, VERDICTS, Action, Diagnosis, Finding
    from lrkit.diagnose._guard import Guard, GuardAction, GuardError, GuardEvent, LossMonitor
    from lrkit.diagnose._readers import Log
    from lrkit.diagnose._rules import Thresholds

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
    "Thresholds",
    "diagnose",
    "diagnose_file",
    "read_log",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "lrkit.diagnose._diagnosis": ["diagnose"],
            "lrkit.diagnose._files": ["diagnose_file", "read_log"],
            "lrkit.diagnose._findings": ["PROBLEMS", "VERDICTS", "Action", "Diagnosis", "Finding"],
            "lrkit.diagnose._guard": [
                "Guard",
                "GuardAction",
                "GuardError",
                "GuardEvent",
                "LossMonitor",
            ],
            "lrkit.diagnose._readers": ["Log"],
            "lrkit.diagnose._rules": ["Thresholds"],
        },
    )
