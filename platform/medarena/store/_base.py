"""The store's foundation: the engine (migrated on opening), sessions, the one checked change of
a submission's status, and the conversion of rows into the values the store hands out."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, create_engine, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from medarena.exceptions import PlatformError, UserError
from medarena.store.migrate import upgrade
from medarena.store.models import ScoreRow, SubmissionRow, TaskRow, TrialRow
from medarena.store.values import (
    Status,
    StoredScore,
    StoredSubmission,
    StoredTask,
    StoredTrial,
    TrialState,
    sources,
)

V = TypeVar("V")


class StoreBase:
    """The leaderboard database at ``url``; its schema is migrated to the newest on opening."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise UserError(
                "the leaderboard database URL (MEDARENA_DB_URL) is not a database URL; give "
                "sqlite:///PATH or postgresql+psycopg2://USER@HOST/DATABASE"
            ) from None
        if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = create_engine(url)
        except (NoSuchModuleError, ImportError) as exc:  # an unknown dialect, a missing driver
            raise UserError(
                f"the leaderboard database URL {parsed!r} (MEDARENA_DB_URL) needs a driver this "
                f"installation lacks ({exc}); name an installed one, as in "
                "postgresql+psycopg2://USER@HOST/DATABASE"
            ) from None
        try:
            upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise PlatformError(f"cannot open the leaderboard database {parsed!r}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    @staticmethod
    def _move(
        s: Session,
        submission_id: int,
        new: Status,
        *,
        only_from: Collection[Status] | None = None,
        where: ColumnElement[bool] | None = None,
        also: Mapping[Any, Any] | None = None,
    ) -> bool:
        """Every change of a submission's status goes through here: move it to ``new`` if the
        status it has now may become ``new`` (:data:`~medarena.store.values.TRANSITIONS`), is
        one of ``only_from`` (the caller's narrower move) and ``where`` holds; also set the
        columns ``also`` (``{SubmissionRow.column: value}``). One conditional UPDATE, so two
        processes never both make the same move; false if the submission was not moved."""
        allowed = sources(new) if only_from is None else sources(new) & set(only_from)
        if not allowed:
            return False
        conditions = [
            SubmissionRow.id == submission_id,
            SubmissionRow.status.in_(sorted(state.value for state in allowed)),
        ]
        if where is not None:
            conditions.append(where)
        result = s.execute(
            update(SubmissionRow)
            .where(*conditions)
            .values({SubmissionRow.status: new.value, **(also or {})})
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _copy(value_type: type[V], row: object, **converted: object) -> V:
    """A ``value_type`` with the fields of ``row`` of the same names (``converted`` instead
    where given)."""
    values = {f.name: getattr(row, f.name) for f in fields(value_type)}  # type: ignore[arg-type]
    return value_type(**(values | converted))


def task_value(row: TaskRow) -> StoredTask:
    return _copy(StoredTask, row)


def submission_value(row: SubmissionRow) -> StoredSubmission:
    return _copy(StoredSubmission, row, status=Status(row.status))


def trial_value(row: TrialRow) -> StoredTrial:
    return _copy(StoredTrial, row, state=TrialState(row.state))


def score_value(row: ScoreRow) -> StoredScore:
    return _copy(StoredScore, row)
