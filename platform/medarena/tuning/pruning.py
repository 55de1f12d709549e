"""Pruning during a sweep: Optuna's median pruner, fed live by the trial workers.

Workers never see the study database (the trust boundary holds): after each epoch they report the
validation value to a :class:`PruningBoard`, a small object in a service of the pool (on Ray, an
actor of its own; see :meth:`medarena.execution.Pool.service`) that keeps an
in-memory Optuna study with a :class:`optuna.pruners.MedianPruner` and answers whether to stop.
The driver tells the board when trials finish (and, on resume, which trials finished before), and
writes the curves into the SQL study itself. With pruning on, which trials are pruned depends on
which others have finished at the time, so a sweep is no longer exactly reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeVar

import optuna

from medarena.execution import ServiceFactory, ServiceHandle
from medarena.tasks import TaskSpec
from medarena.tuning.study import direction

S = TypeVar("S")
P = ParamSpec("P")

PRUNER_STARTUP_TRIALS = 2
"""The median pruner prunes nothing until this many trials have completed."""
PRUNER_WARMUP_EPOCHS = 1
"""... nor in a trial's first epochs."""


class PruningBoard:
    """An in-memory study that answers "should this trial stop now?" with the median rule."""

    def __init__(
        self, direction: Literal["maximize", "minimize"], n_startup_trials: int, n_warmup_steps: int
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            direction=direction,
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
            ),
        )
        self.running: dict[int, tuple[int, optuna.Trial]] = {}

    def report(self, number: int, attempt: int, step: int, value: float) -> bool:
        """Attempt ``attempt`` of trial ``number`` reached ``value`` at epoch ``step``: should it
        stop? A new attempt of the same trial replaces the earlier one (which fails)."""
        entry = self.running.get(number)
        if entry is None or entry[0] != attempt:  # first report of this attempt
            if entry is not None:
                self.study.tell(entry[1], state=optuna.trial.TrialState.FAIL)
            entry = self.running[number] = (attempt, self.study.ask())
        trial = entry[1]
        trial.report(value, step)
        return trial.should_prune()

    def finish(self, number: int, value: float | None) -> None:
        """A trial ended: complete with ``value``, or pruned/failed when ``None``."""
        entry = self.running.pop(number, None)
        if entry is None:
            return
        if value is None:
            self.study.tell(entry[1], state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(entry[1], value)

    def add_completed(self, value: float, curve: dict[int, float]) -> None:
        """A trial finished by an earlier driver of the same sweep."""
        trial = optuna.trial.create_trial(value=value, intermediate_values=curve)
        self.study.add_trial(trial)


@dataclass(frozen=True)
class PruningHook:
    """What a worker calls after each epoch (see :data:`medarena.submissions.trial.EpochHook`)."""

    board: ServiceHandle[PruningBoard]
    number: int
    attempt: int
    metric: str

    def __call__(self, epoch: int, row: dict[str, float]) -> bool:
        value = row.get(f"val_{self.metric}", float("nan"))
        if value != value:  # NaN: nothing to compare
            return False
        return bool(self.board.call(PruningBoard.report, self.number, self.attempt, epoch, value))


def _ray_service(cls: Callable[P, S], /, *args: P.args, **kwargs: P.kwargs) -> ServiceHandle[S]:
    """A service in a Ray actor of its own (the default: Ray is imported only when needed)."""
    from medarena.execution import Service

    return Service(cls, *args, **kwargs)


def start_board(
    task: TaskSpec, services: ServiceFactory | None = None
) -> ServiceHandle[PruningBoard] | None:
    """The pruning board of a sweep on ``task``, started where its jobs can reach it
    (``services``: the pool's :meth:`~medarena.execution.Pool.service`; default a Ray actor), or
    ``None`` if the task does not prune."""
    if task.budget.pruner != "median":
        return None
    return (services or _ray_service)(
        PruningBoard, direction(task), PRUNER_STARTUP_TRIALS, PRUNER_WARMUP_EPOCHS
    )
