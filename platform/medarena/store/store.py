"""Reading and writing the leaderboard database (SQLite or PostgreSQL, by URL)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import create_engine, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from medarena.exceptions import PlatformError, SplitMismatchError
from medarena.store.migrate import upgrade
from medarena.store.models import CaseScoreRow, ScoreRow, Status, SubmissionRow, TaskRow, TrialRow


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


class Store:
    """The leaderboard database at ``url``; its schema is migrated to the newest on opening."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = create_engine(url)
            upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise PlatformError(f"cannot open the leaderboard database {parsed!r}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    def ensure_task(
        self, *, name: str, version: int, kind: str, title: str, split_hash: str, primary: str
    ) -> int:
        """The id of this task version, created if new; refuses a different split hash."""
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
            elif row.split_hash != split_hash:
                raise SplitMismatchError(
                    f"task {name!r} version {version} was scored on split {row.split_hash[:12]}, "
                    f"but its data or split now hash to {split_hash[:12]}; results on different "
                    f"splits cannot share a leaderboard. Raise 'version' in tasks/{name}/task.yaml."
                )
            return row.id

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
        status: str = Status.RUNNING,
        before_commit: Callable[[int], None] | None = None,
    ) -> int:
        """A new submission row; ``before_commit(id)`` runs before anyone else can see it (to
        keep a queued submission's code in place before a worker may pick it up)."""
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
                status=status,
                heartbeat=time.time() if status == Status.RUNNING else None,
            )
            s.add(row)
            s.flush()
            if before_commit is not None:
                before_commit(row.id)
            return row.id

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
        with self.session() as s, s.begin():
            s.add(
                TrialRow(
                    submission_id=submission_id,
                    number=number,
                    state=state,
                    params=params,
                    value=_finite(value),
                    best_epoch=best_epoch,
                    epochs=epochs,
                    fit_seconds=fit_seconds,
                    error=error,
                    attempts=attempts,
                )
            )

    def trials(self, submission_id: int) -> list[TrialRow]:
        """The recorded trials of a submission, by number."""
        with self.session() as s:
            query = (
                select(TrialRow).filter_by(submission_id=submission_id).order_by(TrialRow.number)
            )
            return list(s.scalars(query))

    def task_name_version(self, task_id: int) -> tuple[str, int]:
        with self.session() as s:
            row = s.get_one(TaskRow, task_id)
            return row.name, row.version

    def submission(self, submission_id: int) -> SubmissionRow | None:
        with self.session() as s:
            return s.get(SubmissionRow, submission_id)

    def task(self, task_id: int) -> TaskRow | None:
        """A task version's row (name, version, kind, split hash, primary metric)."""
        with self.session() as s:
            return s.get(TaskRow, task_id)

    def scores(self, submission_id: int) -> list[ScoreRow]:
        """A submission's aggregate scores (with intervals and split hash), by metric name."""
        with self.session() as s:
            query = (
                select(ScoreRow).filter_by(submission_id=submission_id).order_by(ScoreRow.metric)
            )
            return list(s.scalars(query))

    def update_submission(self, submission_id: int, **values: Any) -> None:
        """Set columns of a submission row (``status``, ``study_name``, ``error``, ...)."""
        with self.session() as s, s.begin():
            row = s.get_one(SubmissionRow, submission_id)
            for name, value in values.items():
                if not hasattr(SubmissionRow, name):
                    raise AttributeError(f"submissions have no column {name!r}")
                setattr(row, name, value)

    def progress(self, submission_id: int) -> dict[str, Any]:
        """Where a submission stands, for a web page: status, trials done/failed/pruned of the
        total, and the best validation value so far (``None`` before any)."""
        with self.session() as s:
            row = s.get_one(SubmissionRow, submission_id)
            primary = s.get_one(TaskRow, row.task_id).primary_metric
            trials = list(s.scalars(select(TrialRow).filter_by(submission_id=submission_id)))
        from medarena.metrics import get_metric

        info = get_metric(primary)
        values = [t.value for t in trials if t.state == "complete" and t.value is not None]
        best = None
        for value in values:
            if best is None or info.better(value, best):
                best = value
        return {
            "submission_id": submission_id,
            "status": row.status,
            "total": row.n_trials,
            "done": len(trials),
            "failed": sum(t.state == "failed" for t in trials),
            "pruned": sum(t.state == "pruned" for t in trials),
            "retried": sum(t.attempts - 1 for t in trials),
            "best_value": best,
            "metric": primary,
            "error": row.error,
        }

    def queued(self) -> list[SubmissionRow]:
        """The queued submissions, oldest first (the order workers start them in)."""
        with self.session() as s:
            query = select(SubmissionRow).filter_by(status=Status.QUEUED).order_by(SubmissionRow.id)
            return list(s.scalars(query))

    def claim(self, submission_id: int) -> bool:
        """Move a queued submission to running; false if it is no longer queued (another worker
        took it, or it was cancelled). Atomic, so two workers never run the same submission."""
        return self._move(submission_id, Status.QUEUED, Status.RUNNING, heartbeat=time.time())

    def beat(self, submission_ids: Collection[int]) -> None:
        """Say that the driver of these submissions is alive (finished ones are left alone)."""
        if submission_ids:
            with self.session() as s, s.begin():
                s.execute(
                    update(SubmissionRow)
                    .where(
                        SubmissionRow.id.in_(list(submission_ids)),
                        SubmissionRow.status.not_in(Status.FINISHED),
                    )
                    .values(heartbeat=time.time())
                )

    def requeue_stale(self, silent_for_s: float, *, exclude: Collection[int] = ()) -> list[int]:
        """Hand back to the queue the running submissions (but ``exclude``) whose driver has not
        beaten for ``silent_for_s`` seconds (it died without the chance to hand them back:
        SIGKILL, out of memory, a lost machine); returns their ids. Atomic per row, like
        :meth:`claim`."""
        cutoff = time.time() - silent_for_s
        stale = (
            (SubmissionRow.status == Status.RUNNING)
            & (SubmissionRow.heartbeat < cutoff)
            & SubmissionRow.id.not_in(list(exclude))
        )
        moved = []
        with self.session() as s, s.begin():
            for submission_id in s.scalars(select(SubmissionRow.id).where(stale)).all():
                result = s.execute(
                    update(SubmissionRow)
                    .where(SubmissionRow.id == submission_id, stale)
                    .values(status=Status.QUEUED)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    moved.append(submission_id)
        return moved

    def requeue(self, submission_id: int) -> bool:
        """Hand a running submission back to the queue (its worker was stopped); the next worker
        continues it from its study. False if it is no longer running (cancel was asked)."""
        return self._move(submission_id, Status.RUNNING, Status.QUEUED)

    def _move(self, submission_id: int, old: str, new: str, **values: Any) -> bool:
        with self.session() as s, s.begin():
            moved = s.execute(
                update(SubmissionRow)
                .where(SubmissionRow.id == submission_id, SubmissionRow.status == old)
                .values(status=new, **values)
            )
            return bool(moved.rowcount)  # type: ignore[attr-defined]

    def request_cancel(self, submission_id: int) -> str:
        """Cancel a queued submission (it becomes cancelled) or ask a running one's driver to
        stop (it becomes cancelling); returns the status now. A finished submission is left as
        it is (its status is returned); an unknown one raises :class:`KeyError`."""
        now = datetime.now(UTC)
        if self._move(submission_id, Status.QUEUED, Status.CANCELLED, finished_at=now):
            return Status.CANCELLED
        if self._move(submission_id, Status.RUNNING, Status.CANCELLING):
            return Status.CANCELLING
        row = self.submission(submission_id)
        if row is None:
            raise KeyError(submission_id)
        return row.status

    def cancel_requested(self, submission_id: int) -> bool:
        """Whether someone asked to cancel this running submission (one cheap query)."""
        with self.session() as s:
            query = select(SubmissionRow.status).filter_by(id=submission_id)
            return s.scalar(query) == Status.CANCELLING

    def cancelling(self) -> set[int]:
        """The ids of the running submissions someone asked to cancel."""
        with self.session() as s:
            query = select(SubmissionRow.id).filter_by(status=Status.CANCELLING)
            return set(s.scalars(query))

    def queue(self) -> list[dict[str, Any]]:
        """The queued and running submissions, oldest first, each with its progress (see
        :meth:`progress`), its task, name and team, and its place in the queue (queued ones)."""
        with self.session() as s:
            query = (
                select(SubmissionRow, TaskRow.name)
                .join(TaskRow, TaskRow.id == SubmissionRow.task_id)
                .where(SubmissionRow.status.in_(Status.ACTIVE))
                .order_by(SubmissionRow.id)
            )
            rows = list(s.execute(query).tuples())
        entries, place = [], 0
        for row, task in rows:
            entry = {
                "submission_id": row.id,
                "task": task,
                "submission": row.name,
                "team": row.team,
                "created_at": str(row.created_at),
            }
            entry.update(self.progress(row.id))
            if row.status == Status.QUEUED:
                place += 1
            entry["place"] = place if row.status == Status.QUEUED else None
            entries.append(entry)
        return entries

    def finish_submission(
        self,
        submission_id: int,
        *,
        status: str,
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
        ``sandboxed`` is false when its code ran without a sandbox."""
        with self.session() as s, s.begin():
            row = s.get_one(SubmissionRow, submission_id)
            row.status = status
            row.error = error
            row.sandboxed = sandboxed
            row.best_params = best_params or {}
            row.conventions = conventions or {}
            rows = [
                {"submission_id": submission_id, "case_id": case, "metric": metric,
                 "value": _finite(value)}
                for metric, values in (case_scores or {}).items()
                for case, value in values.items()
            ]  # fmt: skip
            if rows:
                s.execute(insert(CaseScoreRow), rows)
            row.wall_seconds = wall_seconds
            row.finished_at = datetime.now(UTC)
            for metric, (value, low, high) in (scores or {}).items():
                s.add(
                    ScoreRow(
                        submission_id=submission_id,
                        metric=metric,
                        value=_finite(value),
                        ci_low=_finite(low),
                        ci_high=_finite(high),
                        split_hash=row.split_hash,
                    )
                )

    def case_scores(self, submission_id: int) -> pd.DataFrame:
        """The per-case values of a scored submission: one row per case, one column per value."""
        query = select(CaseScoreRow.case_id, CaseScoreRow.metric, CaseScoreRow.value).where(
            CaseScoreRow.submission_id == submission_id
        )
        with self.engine.connect() as conn:
            long = pd.read_sql(query, conn)
        if long.empty:
            return pd.DataFrame(columns=["case_id"])
        wide = long.pivot(index="case_id", columns="metric", values="value")
        return wide.reset_index().rename_axis(columns=None)

    def task_id(self, name: str, version: int) -> int | None:
        """The id of a task version, or ``None`` if nothing was ever submitted to it."""
        with self.session() as s:
            return s.scalar(select(TaskRow.id).filter_by(name=name, version=version))

    def scores_frame(self, task_id: int) -> pd.DataFrame:
        """One row per scored submission and metric: the raw material of a leaderboard."""
        query = (
            select(
                SubmissionRow.id.label("submission_id"),
                SubmissionRow.name.label("submission"),
                SubmissionRow.team,
                SubmissionRow.sha256,
                SubmissionRow.n_trials.label("trials"),
                SubmissionRow.finished_at,
                SubmissionRow.mlflow_run_id,
                SubmissionRow.sandboxed,
                ScoreRow.metric,
                ScoreRow.value,
                ScoreRow.ci_low,
                ScoreRow.ci_high,
            )
            .join(ScoreRow, ScoreRow.submission_id == SubmissionRow.id)
            .join(TaskRow, TaskRow.id == SubmissionRow.task_id)
            .where(
                SubmissionRow.task_id == task_id,
                SubmissionRow.status == Status.SCORED,
                ScoreRow.split_hash == TaskRow.split_hash,
            )
        )
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    def submissions(self, task_id: int) -> list[SubmissionRow]:
        with self.session() as s:
            return list(s.scalars(select(SubmissionRow).filter_by(task_id=task_id)))
