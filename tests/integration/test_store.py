"""The leaderboard store, run against every backend: SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from medarena.exceptions import SplitMismatchError
from medarena.metrics import get_metric
from medarena.scoring.ranking import leaderboard
from medarena.store import Store

TASK = {"name": "t", "version": 1, "kind": "classification", "title": "T", "primary": "auc"}


def _submission(store: Store, task_id: int, name: str, *, split_hash: str = "a" * 64) -> int:
    return store.create_submission(
        task_id=task_id, name=name, team="team", sha256="f" * 64, n_trials=3, seed=0,
        split_hash=split_hash, study_name="s", mlflow_run_id="r",
    )  # fmt: skip


def test_tasks_are_versioned_by_split_hash(db_url: str) -> None:
    store = Store(db_url)
    first = store.ensure_task(**TASK, split_hash="a" * 64)
    assert store.ensure_task(**TASK, split_hash="a" * 64) == first
    with pytest.raises(SplitMismatchError, match="Raise 'version'"):
        store.ensure_task(**TASK, split_hash="b" * 64)
    assert store.ensure_task(**{**TASK, "version": 2}, split_hash="b" * 64) != first
    assert store.task_id("t", 1) == first and store.task_id("t", 3) is None


def test_only_scored_submissions_reach_the_leaderboard(db_url: str) -> None:
    store = Store(db_url)
    task_id = store.ensure_task(**TASK, split_hash="a" * 64)
    good, bad, running = (_submission(store, task_id, n) for n in ("good", "bad", "running"))
    store.add_trial(
        good, number=0, state="complete", params={"lr": 0.1}, value=0.9, best_epoch=2,
        epochs=4, fit_seconds=1.5, error="",
    )  # fmt: skip
    store.add_trial(
        good, number=1, state="failed", params={"lr": 9.0}, value=float("nan"), best_epoch=-1,
        epochs=0, fit_seconds=0.0, error="boom",
    )  # fmt: skip
    store.finish_submission(
        good, status="scored", scores={"auc": (0.9, 0.85, 0.95), "accuracy": (0.7, 0.6, 0.8)},
        best_params={"lr": 0.1}, wall_seconds=3.0,
    )  # fmt: skip
    store.finish_submission(bad, status="failed", error="every trial failed")

    frame = store.scores_frame(task_id)
    assert set(frame["submission"]) == {"good"}
    board = leaderboard(frame, metrics=[get_metric("auc"), get_metric("accuracy")])
    assert board.loc[0, "auc"] == pytest.approx(0.9)
    assert board.loc[0, "accuracy_ci_high"] == pytest.approx(0.8)

    rows = {row.name: row for row in store.submissions(task_id)}
    assert rows["bad"].status == "failed" and rows["bad"].error == "every trial failed"
    assert rows["running"].status == "running" and rows["good"].best_params == {"lr": 0.1}
    assert running != good


def test_scores_on_another_split_are_never_shown(db_url: str) -> None:
    store = Store(db_url)
    task_id = store.ensure_task(**TASK, split_hash="a" * 64)
    stale = _submission(store, task_id, "stale", split_hash="c" * 64)
    store.finish_submission(stale, status="scored", scores={"auc": (0.99, 0.98, 1.0)})
    assert store.scores_frame(task_id).empty


def test_migrations_build_exactly_the_models_schema(db_url: str) -> None:
    """A model change without a migration (or the reverse) fails here, on every backend."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from medarena.store.models import Base

    store = Store(db_url)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert context.get_current_revision() is not None
    Store(db_url)  # opening an up-to-date database again changes nothing
