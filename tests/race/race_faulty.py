"""A picklable task whose trials kill their worker process once (for tests/race/test_faults.py).

``FaultyTask(marker)`` builds the built-in ``diabetes`` task's setup; in a worker process that
is not the test's own (``os.getpid() != parent``), the first trial above lr 1e-3 that sees no
``marker`` file creates it and exits at once, as a killed worker would. In the test's process a
trial above 1e-3 first waits (up to ``wait`` seconds) for that to have happened, so that the new
worker, however slowly it starts, gets such a trial to run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FaultyTask:
    marker: str
    parent: int
    name: str = "faulty_diabetes"
    budget: int = 60
    optimizer: str = "rmsprop"
    wait: float = 180.0

    def setup(self, *, lr: float | None = None, seed: int = 0) -> Any:
        from lrkit.tasks import get_task

        path = Path(self.marker)
        if lr is not None and lr > 1e-3 and os.getpid() == self.parent:
            deadline = time.monotonic() + self.wait
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        if lr is not None and lr > 1e-3 and os.getpid() != self.parent:
            if not path.exists():
                path.write_text(str(os.getpid()))
                os._exit(17)
        return get_task("diabetes").setup(lr=lr, seed=seed)
