"""What pages, the queue and leaderboards read: progress, the queue, scores as frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import pandas as pd
from sqlalchemy import ColumnElement, select

from medarena.store._base import StoreBase, submission_value, trial_value
from medarena.store.models import CaseScoreRow, ScoreRow, SubmissionRow, TaskRow, TrialRow
from medarena.store.values import (
    ACTIVE,
    Status,
    StoredSubmission,
    StoredTrial,
    TrialState,
    best_trial,
)


class Progress(TypedDict):
    """Where a submission stands (``medarena progress``, the web page's progress line)."""

    submission_id: int
    status: Status
    total: int
    done: int
    failed: int
    pruned: int
    retried: int
    best_value: float | None
    metric: str
    error: str


class QueueEntry(Progress):
    """A queued or running submission (``medarena queue``): who, what, progress, place."""

    task: str
    submission: str
    team: str
    created_at: str
    place: int | None


def _progress(row: StoredSubmission, primary: str, trials: Sequence[StoredTrial]) -> Progress:
    from medarena.metrics import get_metric

    best = best_trial(trials, higher_is_better=get_metric(primary).higher_is_better)
    return {
        "submission_id": row.id,
        "status": row.status,
        "total": row.n_trials,
        "done": len(trials),
        "failed": sum(t.state is TrialState.FAILED for t in trials),
        "pruned": sum(t.state is TrialState.PRUNED for t in trials),
        "retried": sum(t.attempts - 1 for t in trials),
        "best_value": None if best is None else best.value,
        "metric": primary,
        "error": row.error,
    }


class Reads(StoreBase):
    """Progress and the queue (one query each), and the frames leaderboards are built from."""

    def _with_trials(
        self, where: ColumnElement[bool]
    ) -> list[tuple[StoredSubmission, str, str, list[StoredTrial]]]:
        """The submissions ``where`` holds, oldest first, each with its task's name and primary
        metric and its trials by number: one query."""
        query = (
            select(SubmissionRow, TaskRow.name, TaskRow.primary_metric, TrialRow)
            .join(TaskRow, TaskRow.id == SubmissionRow.task_id)
            .outerjoin(TrialRow, TrialRow.submission_id == SubmissionRow.id)
            .where(where)
            .order_by(SubmissionRow.id, TrialRow.number)
        )
        found: dict[int, tuple[StoredSubmission, str, str, list[StoredTrial]]] = {}
        with self.session() as s:
            for row, task, primary, trial in s.execute(query).tuples():
                entry = found.get(row.id)
                if entry is None:
                    entry = found[row.id] = (submission_value(row), task, primary, [])
                if trial is not None:
                    entry[3].append(trial_value(trial))
        return list(found.values())

    def progress(self, submission_id: int) -> Progress:
        """Where a submission stands, for a web page: status, trials done/failed/pruned of the
        total, and the best validation value so far (``None`` before any); :class:`KeyError`
        for an unknown submission."""
        found = self._with_trials(SubmissionRow.id == submission_id)
        if not found:
            raise KeyError(submission_id)
        ((row, _, primary, trials),) = found
        return _progress(row, primary, trials)

    def queue(self) -> list[QueueEntry]:
        """The queued and running submissions, oldest first, each with its progress (see
        :meth:`progress`), its task, name and team, and its place in the queue (queued ones)."""
        active = SubmissionRow.status.in_(sorted(state.value for state in ACTIVE))
        entries: list[QueueEntry] = []
        place = 0
        for row, task, primary, trials in self._with_trials(active):
            queued = row.status is Status.QUEUED
            place += queued
            progress = _progress(row, primary, trials)
            entries.append(
                {
                    "submission_id": row.id,
                    "task": task,
                    "submission": row.name,
                    "team": row.team,
                    "created_at": str(row.created_at),
                    "status": progress["status"],
                    "total": progress["total"],
                    "done": progress["done"],
                    "failed": progress["failed"],
                    "pruned": progress["pruned"],
                    "retried": progress["retried"],
                    "best_value": progress["best_value"],
                    "metric": progress["metric"],
                    "error": progress["error"],
                    "place": place if queued else None,
                }
            )
        return entries

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

    def scores_frame(self, task_id: int) -> pd.DataFrame:
        """One row per scored submission and metric on the task's current split: the raw
        material of a leaderboard (:func:`medarena.scoring.boards.load_board` ranks it)."""
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
                SubmissionRow.status == Status.SCORED.value,
                ScoreRow.split_hash == TaskRow.split_hash,
            )
        )
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)
