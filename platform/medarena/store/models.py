"""Tables: tasks, submissions, trials and scores (the store hands out :mod:`.values`, never these
rows).

A task row is one version of a task with one split hash. Every score carries the split hash it was
computed on, so results from different splits can never be mixed on one leaderboard.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from medarena.store.values import Status


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(400))
    split_hash: Mapped[str] = mapped_column(String(64))
    primary_metric: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=_now)

    submissions: Mapped[list[SubmissionRow]] = relationship(back_populates="task")


class SubmissionRow(Base):
    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=Status.RUNNING.value, index=True)
    n_trials: Mapped[int]
    seed: Mapped[int]
    split_hash: Mapped[str] = mapped_column(String(64))
    study_name: Mapped[str] = mapped_column(String(200), default="")
    mlflow_run_id: Mapped[str] = mapped_column(String(64), default="")
    best_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    conventions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    wall_seconds: Mapped[float | None]
    error: Mapped[str] = mapped_column(Text, default="")
    sandboxed: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    """False when its code ran without a sandbox (allowed by the operator); shown on boards."""
    created_at: Mapped[datetime] = mapped_column(default=_now)
    finished_at: Mapped[datetime | None]
    heartbeat: Mapped[float | None]
    """When its driver last said it is alive (Unix time; every few seconds while it runs)."""

    task: Mapped[TaskRow] = relationship(back_populates="submissions")
    trials: Mapped[list[TrialRow]] = relationship(back_populates="submission")
    scores: Mapped[list[ScoreRow]] = relationship(back_populates="submission")


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("submission_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    value: Mapped[float | None]
    best_epoch: Mapped[int]
    epochs: Mapped[int]
    fit_seconds: Mapped[float]
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=1)  # > 1: the worker died and it was re-run

    submission: Mapped[SubmissionRow] = relationship(back_populates="trials")


class ScoreRow(Base):
    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("submission_id", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    metric: Mapped[str] = mapped_column(String(80))
    value: Mapped[float | None]
    ci_low: Mapped[float | None]
    ci_high: Mapped[float | None]
    split_hash: Mapped[str] = mapped_column(String(64))

    submission: Mapped[SubmissionRow] = relationship(back_populates="scores")


class CaseScoreRow(Base):
    """One value per test case, metric and submission: what rankings and statistics build on."""

    __tablename__ = "case_scores"
    __table_args__ = (UniqueConstraint("submission_id", "case_id", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    case_id: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(80))
    value: Mapped[float | None]
