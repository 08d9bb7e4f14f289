"""The objective of ``lrkit tune --task NAME``: train a built-in task at the trial's params."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lrkit._validate import check_int

if TYPE_CHECKING:
    from lrkit.tasks import Task

__all__ = ["TaskObjective"]


@dataclass(frozen=True)
class TaskObjective:
    """``objective(params, report) -> final validation loss`` for a built-in task.

    Each trial builds a fresh ``task.setup(lr=params["lr"], seed=seed)``, trains it for
    ``steps`` optimizer steps (default: the task's budget) with ``params.get("schedule")``,
    and reports the validation loss every ``steps // reports`` steps (and at the end), so
    early stopping can prune on it. A non-finite training loss reports ``inf`` (diverged:
    the trial is pruned). Picklable, so ``workers > 1`` can run it in new processes.

    Example:
        >>> from lrkit.tuning import tune
        >>> result = tune(TaskObjective("diabetes", steps=20), n_trials=3,
        ...               storage=":memory:")  # doctest: +SKIP
    """

    task: str | Task
    steps: int | None = None
    seed: int = 0
    reports: int = 9

    def __post_init__(self) -> None:
        self._task()  # validates the name now, not in the first trial
        if self.steps is not None:
            check_int("steps", self.steps, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_int("reports", self.reports, minimum=1)

    def _task(self) -> Task:
        """The task: a built-in one by name, or a :class:`~lrkit.tasks.Task` given directly
        (such a task's model builder may not pickle, which ``workers > 1`` needs)."""
        from lrkit.tasks import Task, get_task

        if isinstance(self.task, Task):
            return self.task
        return get_task(self.task)

    @property
    def budget(self) -> int:
        """Optimizer steps of one full trial."""
        return self.steps if self.steps is not None else self._task().budget

    def __call__(self, params: dict[str, Any], report: Any) -> float:
        from lrkit.tasks import evaluate, train

        task = self._task()
        n_steps = self.budget
        every = max(1, n_steps // self.reports)
        setup = task.setup(lr=float(params["lr"]), seed=self.seed)

        def on_step(step: int, loss: float) -> None:
            done = step + 1
            if not math.isfinite(loss):
                report(done, math.inf)  # diverged: prunes the trial
            elif done % every == 0 and done < n_steps:
                report(done, evaluate(setup))

        result = train(
            setup,
            lr=float(params["lr"]),
            steps=n_steps,
            schedule=params.get("schedule"),
            seed=self.seed,
            on_step=on_step,
        )
        final = float(result.final_val_loss)
        if math.isfinite(final):
            report(n_steps, final)
        else:
            report(len(result.steps), math.inf)
        return final
