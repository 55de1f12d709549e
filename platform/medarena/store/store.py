"""Reading and writing the leaderboard database (SQLite or PostgreSQL, by URL).

:class:`Store` is put together by concern: ``_base`` opens the database and holds the one
checked change of status, ``_states`` moves submissions through their states, ``_reads`` builds
progress, the queue and the frames of leaderboards; tasks, trials and plain reads are here.
Everything it returns is a value of :mod:`medarena.store.values` (or a frame), never a row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from medarena.exceptions import SplitMismatchError
from medarena.numbers import float_or_none
from medarena.store._base import score_value, submission_value, task_value, trial_value
from medarena.store._reads import Reads
from medarena.store._states import SubmissionStates
from medarena.store.models import ScoreRow, SubmissionRow, TaskRow, TrialRow
from medarena.store.values import (
    Status,
    StoredScore,
    StoredSubmission,
    StoredTask,
    StoredTrial,
    TrialState,
)


class Store(SubmissionStates, Reads):
    """The leaderboard database at ``url``; its schema is migrated to the newest on opening.

    Thread safety: each method opens its own session, so one store may serve several threads
    (the heartbeat stamps from its own); the changes of status are single conditional UPDATEs,
    safe between processes.
    """

    def ensure_task(
        self, *, name: str, version: int, kind: str, title: str, split_hash: str, primary: str
    ) -> int:
        """The id of this task version, created if new; refuses a different split hash.

        Processes that open a new home at once race to create the row: the loser of the
        unique constraint reads the winner's row."""
        try:
            return self._ensure_task(name, version, kind, title, split_hash, primary)
        except IntegrityError:
            return self._ensure_task(name, version, kind, title, split_hash, primary)

    def _ensure_task(
        self, name: str, version: int, kind: str, title: str, split_hash: str, primary: str
    ) -> int:
        with self.session() as s, s.begin():
            row = s.scalar(select(TaskRow).filter_by(name=name, version=version))
            if row is None:
                row = TaskRow(
                    name=name,
                    version=version,
                    kind=kind,
                    title=title,
                    split_hash=split_hash,
                    primary_metric=primary,
                )
                s.add(row)
                s.flush()
            if row.split_hash != split_hash:
                raise SplitMismatchError(
                    f"task {name!r} version {version} was scored on split {row.split_hash[:12]}, "
                    f"but its data or split now hash to {split_hash[:12]}; results on different "
                    f"splits cannot share a leaderboard. Raise 'version' in tasks/{name}/task.yaml."
                )
            return row.id

    def task(self, task_id: int) -> StoredTask | None:
        """A task version (name, version, kind, split hash, primary metric)."""
        with self.session() as s:
            row = s.get(TaskRow, task_id)
            return None if row is None else task_value(row)

    def task_id(self, name: str, version: int) -> int | None:
        """The id of a task version, or ``None`` if nothing was ever submitted to it."""
        with self.session() as s:
            return s.scalar(select(TaskRow.id).filter_by(name=name, version=version))

    def task_name_version(self, task_id: int) -> tuple[str, int]:
        with self.session() as s:
            row = s.get_one(TaskRow, task_id)
            return row.name, row.version

    def submission(self, submission_id: int) -> StoredSubmission | None:
        with self.session() as s:
            row = s.get(SubmissionRow, submission_id)
            return None if row is None else submission_value(row)

    def submissions(self, task_id: int) -> list[StoredSubmission]:
        """Every submission to a task version, in any state."""
        with self.session() as s:
            rows = s.scalars(select(SubmissionRow).filter_by(task_id=task_id))
            return [submission_value(row) for row in rows]

    def queued(self) -> list[StoredSubmission]:
        """The queued submissions, oldest first (the order workers start them in)."""
        with self.session() as s:
            query = (
                select(SubmissionRow)
                .filter_by(status=Status.QUEUED.value)
                .order_by(SubmissionRow.id)
            )
            return [submission_value(row) for row in s.scalars(query)]

    def add_trial(
        self,
        submission_id: int,
        *,
        number: int,
        state: str,
        params: dict[str, Any],
        value: float,
        best_epoch: int,
        epochs: int,
        fit_seconds: float,
        error: str,
        attempts: int = 1,
    ) -> None:
        """Record a finished trial; ``state`` is a :class:`~medarena.store.values.TrialState`
        (or its value) and a NaN ``value`` is stored as missing."""
        with self.session() as s, s.begin():
            s.add(
                TrialRow(
                    submission_id=submission_id,
                    number=number,
                    state=TrialState(state).value,
                    params=params,
                    value=float_or_none(value),
                    best_epoch=best_epoch,
                    epochs=epochs,
                    fit_seconds=fit_seconds,
                    error=error,
                    attempts=attempts,
                )
            )

    def trials(self, submission_id: int) -> list[StoredTrial]:
        """The recorded trials of a submission, by number."""
        with self.session() as s:
            query = (
                select(TrialRow).filter_by(submission_id=submission_id).order_by(TrialRow.number)
            )
            return [trial_value(row) for row in s.scalars(query)]

    def scores(self, submission_id: int) -> list[StoredScore]:
        """A submission's aggregate scores (with intervals and split hash), by metric name."""
        with self.session() as s:
            query = (
                select(ScoreRow).filter_by(submission_id=submission_id).order_by(ScoreRow.metric)
            )
            return [score_value(row) for row in s.scalars(query)]
