"""What the store hands out: frozen values, never SQLAlchemy rows, and the states they go through.

:class:`Status` is a submission's state and :data:`TRANSITIONS` the one table of the moves
between states that the store allows (every state change checks it and refuses the others);
:class:`TrialState` is a recorded trial's end. The ``Stored*`` values carry the columns of their
table under the same names; :func:`best_trial` is the one definition of a submission's best
trial.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from medarena.exceptions import PlatformError


class Status(StrEnum):
    """The states of a submission, as stored in ``submissions.status``::

        queued ──► running ──► scored | failed | cancelled
           │          ├──► cancelling ──► cancelled  (cancel asked; or scored | failed, when
           │          │                               the run ended before it stopped)
           │          ├──► queued                    (its worker was stopped, or died)
           │          └──► running                   (resumed: a new driver takes it over)
           └──► cancelled                            (cancelled before it started)
        failed ──► running                           (resumed after an interruption)

    A worker claims a queued submission by moving it to running, and hands it back to the queue
    when it is stopped (the next worker continues it from its study); a running submission whose
    driver stopped beating (killed, a lost machine) is handed back by the next worker that looks;
    ``medarena cancel`` moves a queued one straight to cancelled and a running one to
    cancelling, which its driver turns into cancelled after stopping the running trials
    (finished trials are kept). :data:`TRANSITIONS` is the drawing above as a table.
    """

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SCORED = "scored"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        """Queued, running or cancelling: someone has work left to do on it."""
        return self in ACTIVE

    @property
    def finished(self) -> bool:
        """Scored, failed or cancelled: its driver is done with it."""
        return self in FINISHED


ACTIVE: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING, Status.CANCELLING})
FINISHED: frozenset[Status] = frozenset({Status.SCORED, Status.FAILED, Status.CANCELLED})
INITIAL: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING})
"""The states a submission is created in: queued (``--queue``) or running (run at once)."""

TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED}),
    Status.RUNNING: frozenset(
        {Status.RUNNING, Status.QUEUED, Status.CANCELLING}
        | {Status.SCORED, Status.FAILED, Status.CANCELLED}
    ),
    Status.CANCELLING: frozenset({Status.SCORED, Status.FAILED, Status.CANCELLED}),
    Status.SCORED: frozenset(),
    Status.FAILED: frozenset({Status.RUNNING}),
    Status.CANCELLED: frozenset(),
}
"""The moves of a submission's status the store allows: state -> the states it may become."""


def sources(new: Status) -> frozenset[Status]:
    """The states from which :data:`TRANSITIONS` allows a submission to become ``new``."""
    return frozenset(old for old, targets in TRANSITIONS.items() if new in targets)


class TransitionError(PlatformError):
    """A change of a submission's status that :data:`TRANSITIONS` does not allow from the state
    it is in (another process moved it first, or the caller is wrong)."""


class TrialState(StrEnum):
    """How a recorded trial ended (``trials.state``)."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StoredTask:
    """One version of a task, with the split hash its scores were computed on."""

    id: int
    name: str
    version: int
    kind: str
    title: str
    split_hash: str
    primary_metric: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSubmission:
    """A submission: who sent what, for which task version, and where it stands."""

    id: int
    task_id: int
    name: str
    team: str
    sha256: str
    status: Status
    n_trials: int
    seed: int
    split_hash: str
    study_name: str
    mlflow_run_id: str
    best_params: dict[str, Any]
    conventions: dict[str, Any]
    wall_seconds: float | None
    error: str
    sandboxed: bool
    """False when its code ran without a sandbox (allowed by the operator); shown on boards."""
    created_at: datetime
    finished_at: datetime | None
    heartbeat: float | None
    """When its driver last said it is alive (Unix time; every few seconds while it runs)."""


@dataclass(frozen=True, slots=True)
class StoredTrial:
    """A finished trial of a submission: its parameters and best validation value."""

    id: int
    submission_id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    best_epoch: int
    epochs: int
    fit_seconds: float
    error: str
    attempts: int
    """More than 1 when its worker died and it was run again."""


@dataclass(frozen=True, slots=True)
class StoredScore:
    """A submission's aggregate test score on one metric, with its interval."""

    id: int
    submission_id: int
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    split_hash: str


def best_trial(trials: Iterable[StoredTrial], *, higher_is_better: bool) -> StoredTrial | None:
    """The complete trial with the best value (ties go to the lower number, as in the sweep);
    ``None`` before any."""
    best: StoredTrial | None = None
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state is not TrialState.COMPLETE or trial.value is None:
            continue
        if (
            best is None
            or best.value is None
            or (trial.value > best.value if higher_is_better else trial.value < best.value)
        ):
            best = trial
    return best
