"""A submission's life in the store: created, claimed, stamped, handed back, cancelled,
resumed, finished. Every change of status is checked against
:data:`~medarena.store.values.TRANSITIONS` (see :meth:`StoreBase._move`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from medarena.numbers import float_or_none
from medarena.store._base import StoreBase
from medarena.store.models import CaseScoreRow, ScoreRow, SubmissionRow
from medarena.store.values import FINISHED, INITIAL, Status, TransitionError


class SubmissionStates(StoreBase):
    """The writes that move submissions through their states, and the reads workers poll."""

    def create_submission(
        self,
        *,
        task_id: int,
        name: str,
        team: str,
        sha256: str,
        n_trials: int,
        seed: int,
        split_hash: str,
        study_name: str,
        mlflow_run_id: str,
        status: Status = Status.RUNNING,
        before_commit: Callable[[int], None] | None = None,
    ) -> int:
        """A new submission, queued or running (its driver is this process);
        ``before_commit(id)`` runs before anyone else can see it (to keep a queued submission's
        code in place before a worker may pick it up)."""
        status = Status(status)
        if status not in INITIAL:
            raise ValueError(f"a submission starts queued or running, not {status}")
        with self.session() as s, s.begin():
            row = SubmissionRow(
                task_id=task_id,
                name=name,
                team=team,
                sha256=sha256,
                n_trials=n_trials,
                seed=seed,
                split_hash=split_hash,
                study_name=study_name,
                mlflow_run_id=mlflow_run_id,
                status=status.value,
                heartbeat=time.time() if status is Status.RUNNING else None,
            )
            s.add(row)
            s.flush()
            if before_commit is not None:
                before_commit(row.id)
            return row.id

    def set_study_name(self, submission_id: int, study_name: str) -> None:
        """Name the Optuna study of a submission (known once it has its id)."""
        self._set(submission_id, {SubmissionRow.study_name: study_name})

    def set_mlflow_run_id(self, submission_id: int, run_id: str) -> None:
        """Link a submission to its MLflow parent run (made when it starts)."""
        self._set(submission_id, {SubmissionRow.mlflow_run_id: run_id})

    def _set(self, submission_id: int, values: dict[Any, Any]) -> None:
        with self.session() as s, s.begin():
            query = update(SubmissionRow).where(SubmissionRow.id == submission_id).values(values)
            if not s.execute(query).rowcount:  # type: ignore[attr-defined]
                raise KeyError(submission_id)

    def claim(self, submission_id: int) -> bool:
        """Move a queued submission to running; false if it is no longer queued (another worker
        took it, or it was cancelled). Atomic, so two workers never run the same submission."""
        with self.session() as s, s.begin():
            return self._move(
                s, submission_id, Status.RUNNING, only_from={Status.QUEUED},
                also={SubmissionRow.heartbeat: time.time()},
            )  # fmt: skip

    def restart(self, submission_id: int) -> bool:
        """A new driver takes over a running or interrupted (failed) submission: it becomes
        running again, without its error, stamped now; false if it is in another state."""
        with self.session() as s, s.begin():
            return self._move(
                s, submission_id, Status.RUNNING, only_from={Status.RUNNING, Status.FAILED},
                also={SubmissionRow.error: "", SubmissionRow.finished_at: None,
                      SubmissionRow.heartbeat: time.time()},
            )  # fmt: skip

    def beat(self, submission_ids: Collection[int]) -> None:
        """Say that the driver of these submissions is alive (finished ones are left alone)."""
        if submission_ids:
            with self.session() as s, s.begin():
                s.execute(
                    update(SubmissionRow)
                    .where(
                        SubmissionRow.id.in_(list(submission_ids)),
                        SubmissionRow.status.not_in(sorted(state.value for state in FINISHED)),
                    )
                    .values(heartbeat=time.time())
                )

    def requeue_stale(self, silent_for_s: float, *, exclude: Collection[int] = ()) -> list[int]:
        """Hand back to the queue the running submissions (but ``exclude``) whose driver has not
        beaten for ``silent_for_s`` seconds (it died without the chance to hand them back:
        SIGKILL, out of memory, a lost machine); returns their ids. Atomic per row, like
        :meth:`claim`."""
        cutoff = time.time() - silent_for_s
        silent = SubmissionRow.heartbeat < cutoff
        moved = []
        with self.session() as s, s.begin():
            query = select(SubmissionRow.id).where(
                SubmissionRow.status == Status.RUNNING.value,
                silent,
                SubmissionRow.id.not_in(list(exclude)),
            )
            for submission_id in s.scalars(query).all():
                if self._move(
                    s, submission_id, Status.QUEUED, only_from={Status.RUNNING}, where=silent
                ):
                    moved.append(submission_id)
        return moved

    def requeue(self, submission_id: int) -> bool:
        """Hand a running submission back to the queue (its worker was stopped); the next worker
        continues it from its study. False if it is no longer running (cancel was asked)."""
        with self.session() as s, s.begin():
            return self._move(s, submission_id, Status.QUEUED, only_from={Status.RUNNING})

    def cancel_queued(self, submission_id: int) -> bool:
        """Cancel a submission that has not started; false if it is not queued."""
        with self.session() as s, s.begin():
            return self._move(
                s, submission_id, Status.CANCELLED, only_from={Status.QUEUED},
                also={SubmissionRow.finished_at: datetime.now(UTC)},
            )  # fmt: skip

    def ask_to_cancel(self, submission_id: int) -> bool:
        """Ask the driver of a running submission to stop it (it becomes cancelling; the driver
        makes it cancelled); false if it is not running."""
        with self.session() as s, s.begin():
            return self._move(s, submission_id, Status.CANCELLING, only_from={Status.RUNNING})

    def request_cancel(self, submission_id: int) -> Status:
        """Cancel a queued submission (it becomes cancelled) or ask a running one's driver to
        stop (it becomes cancelling); returns the status now. A finished submission is left as
        it is (its status is returned); an unknown one raises :class:`KeyError`."""
        if self.cancel_queued(submission_id):
            return Status.CANCELLED
        if self.ask_to_cancel(submission_id):
            return Status.CANCELLING
        with self.session() as s:
            status = s.scalar(select(SubmissionRow.status).filter_by(id=submission_id))
        if status is None:
            raise KeyError(submission_id)
        return Status(status)

    def cancel_requested(self, submission_id: int) -> bool:
        """Whether someone asked to cancel this running submission (one cheap query)."""
        with self.session() as s:
            query = select(SubmissionRow.status).filter_by(id=submission_id)
            return s.scalar(query) == Status.CANCELLING.value

    def cancelling(self) -> set[int]:
        """The ids of the running submissions someone asked to cancel."""
        with self.session() as s:
            query = select(SubmissionRow.id).filter_by(status=Status.CANCELLING.value)
            return set(s.scalars(query))

    def finish_submission(
        self,
        submission_id: int,
        *,
        status: Status,
        scores: dict[str, tuple[float, float, float]] | None = None,
        case_scores: dict[str, dict[str, float]] | None = None,
        best_params: dict[str, Any] | None = None,
        conventions: dict[str, Any] | None = None,
        wall_seconds: float | None = None,
        error: str = "",
        sandboxed: bool = True,
    ) -> None:
        """Mark a submission scored (with its scores, per-case values ``{metric: {case: value}}``
        and the metric conventions that produced them), failed (with the error) or cancelled;
        ``sandboxed`` is false when its code ran without a sandbox. Raises
        :class:`~medarena.store.values.TransitionError` if its status may not become ``status``
        (nothing is written then), :class:`KeyError` for an unknown submission."""
        status = Status(status)
        if status not in FINISHED:
            raise ValueError(f"a submission finishes scored, failed or cancelled, not {status}")
        with self.session() as s, s.begin():
            query = select(SubmissionRow.split_hash, SubmissionRow.status).filter_by(
                id=submission_id
            )
            found = s.execute(query).first()
            if found is None:
                raise KeyError(submission_id)
            split_hash, was = found
            finished = self._move(
                s, submission_id, status,
                also={SubmissionRow.error: error, SubmissionRow.sandboxed: sandboxed,
                      SubmissionRow.best_params: best_params or {},
                      SubmissionRow.conventions: conventions or {},
                      SubmissionRow.wall_seconds: wall_seconds,
                      SubmissionRow.finished_at: datetime.now(UTC)},
            )  # fmt: skip
            if not finished:
                raise TransitionError(f"submission {submission_id} is {was}; it cannot be {status}")
            rows = [
                {"submission_id": submission_id, "case_id": case, "metric": metric,
                 "value": float_or_none(value)}
                for metric, values in (case_scores or {}).items()
                for case, value in values.items()
            ]  # fmt: skip
            if rows:
                s.execute(insert(CaseScoreRow), rows)
            for metric, (value, low, high) in (scores or {}).items():
                s.add(
                    ScoreRow(
                        submission_id=submission_id,
                        metric=metric,
                        value=float_or_none(value),
                        ci_low=float_or_none(low),
                        ci_high=float_or_none(high),
                        split_hash=split_hash,
                    )
                )
