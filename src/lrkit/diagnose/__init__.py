"""Diagnose learning-rate trouble from loss curves and logs.

``diagnose(train_loss, ...)`` gives a :class:`Diagnosis` (verdict, findings, action);
``diagnose_file(path)`` reads TensorBoard, Lightning CSV, Hugging Face ``trainer_state.json``,
JSON lines or CSV logs first.
"""

from lrkit.diagnose._diagnosis import diagnose
from lrkit.diagnose._files import diagnose_file, read_log
from lrkit.diagnose._findings import PROBLEMS, VERDICTS, Action, Diagnosis, Finding
from lrkit.diagnose._guard import Guard, GuardAction, GuardError, GuardEvent, LossMonitor
from lrkit.diagnose._readers import Log, LogFormatError
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
    "LogFormatError",
    "Thresholds",
    "diagnose",
    "diagnose_file",
    "read_log",
]
