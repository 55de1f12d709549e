"""The leaderboard database: SQLAlchemy models and the queries the platform needs."""

from __future__ import annotations

from medarena.store.models import Base, ScoreRow, Status, SubmissionRow, TaskRow, TrialRow
from medarena.store.store import Store

__all__ = ["Base", "ScoreRow", "Status", "Store", "SubmissionRow", "TaskRow", "TrialRow"]
