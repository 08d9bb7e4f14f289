"""A worker process for the multi-process tuning tests (run as a script, not collected).

usage: python tune_worker.py STORAGE STUDY N_TRIALS MARKER_DIR SEED [WAIT_FOR]

Each trial appends its worker's pid to MARKER_DIR/started-<pid> when it starts, so the test
knows when a worker is mid-trial and can SIGKILL it there. With WAIT_FOR, the worker (once its
imports are done) waits for that file to exist before it starts trials: the test lets the
worker it will kill begin first, so that worker surely gets trials however the start-ups race.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

STEPS = 6
STEP_SECONDS = 0.1


def objective(params: dict[str, float], report: object) -> float:
    marker = Path(os.environ["LRKIT_TEST_MARKERS"]) / f"started-{os.getpid()}"
    with marker.open("a") as f:
        f.write("x")
    x = math.log10(params["lr"]) + 3.0
    for step in range(1, STEPS + 1):
        time.sleep(STEP_SECONDS)
        report(step, x * x + 1.0 / step)  # type: ignore[operator]
    return x * x


def main() -> None:
    storage, study, n_trials, markers, seed = sys.argv[1:6]
    os.environ["LRKIT_TEST_MARKERS"] = markers
    from lrkit.tuning import tune

    if len(sys.argv) > 6:
        deadline = time.monotonic() + 60
        while not Path(sys.argv[6]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    result = tune(
        objective,
        storage=storage,
        study_name=study,
        n_trials=int(n_trials),
        strategy="random",
        early_stopping="median",
        seed=int(seed),
        heartbeat_interval=1,
        grace_period=3,
    )
    print(f"worker {os.getpid()} done: best={result.best_value} storage={result.storage}")


if __name__ == "__main__":
    main()
