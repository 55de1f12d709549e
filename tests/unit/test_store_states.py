"""The status machine of submissions, walked against a real store (SQLite, and PostgreSQL where
the ``db_url`` fixture reaches one); the values the store hands out; queries per call."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from medarena.store import (
    TRANSITIONS,
    Status,
    Store,
    StoredSubmission,
    StoredTrial,
    TransitionError,
    TrialState,
    best_trial,
)

Way = Callable[[Store, int], bool]


def _finish(status: Status) -> Way:
    def finish(store: Store, submission_id: int) -> bool:
        try:
            store.finish_submission(submission_id, status=status, scores={"auc": (0.9, 0.8, 1)})
        except TransitionError:
            return False
        return True

    return finish


WAYS: dict[Status, tuple[Way, ...]] = {
    Status.QUEUED: (Store.requeue,),
    Status.RUNNING: (Store.claim, Store.restart),
    Status.CANCELLING: (Store.ask_to_cancel,),
    Status.CANCELLED: (Store.cancel_queued, _finish(Status.CANCELLED)),
    Status.SCORED: (_finish(Status.SCORED),),
    Status.FAILED: (_finish(Status.FAILED),),
}
"""Every way the store offers to bring a submission into a state; each refuses (false) without
changing anything when the move is not allowed."""


def _task(store: Store) -> int:
    return store.ensure_task(
        name="t", version=1, kind="classification", title="T", split_hash="a" * 64, primary="auc"
    )


def _create(store: Store, task_id: int, status: Status) -> int:
    return store.create_submission(
        task_id=task_id, name=f"in-{status}", team="x", sha256="f" * 64, n_trials=3, seed=0,
        split_hash="a" * 64, study_name="", mlflow_run_id="", status=status,
    )  # fmt: skip


def _in_state(store: Store, task_id: int, state: Status) -> int:
    """A new submission brought to ``state`` the way the platform brings it there."""
    if state in (Status.QUEUED, Status.RUNNING):
        return _create(store, task_id, state)
    if state is Status.CANCELLED:
        submission_id = _create(store, task_id, Status.QUEUED)
        assert store.cancel_queued(submission_id)
        return submission_id
    submission_id = _create(store, task_id, Status.RUNNING)
    if state is Status.CANCELLING:
        assert store.ask_to_cancel(submission_id)
    else:
        store.finish_submission(submission_id, status=state)
    return submission_id


def _status(store: Store, submission_id: int) -> Status:
    row = store.submission(submission_id)
    assert row is not None
    return row.status


def test_the_table_names_every_state() -> None:
    assert set(TRANSITIONS) == set(Status)
    for targets in TRANSITIONS.values():
        assert targets <= set(Status)
    assert set(WAYS) == set(Status)


def test_every_allowed_transition_succeeds_and_every_other_is_refused(db_url: str) -> None:
    store = Store(db_url)
    task_id = _task(store)
    wrong = []
    for old, new in itertools.product(Status, Status):
        submission_id = _in_state(store, task_id, old)
        assert _status(store, submission_id) is old
        moved = any(way(store, submission_id) for way in WAYS[new])
        allowed = new in TRANSITIONS[old]
        after = _status(store, submission_id)
        if moved != allowed or after is not (new if allowed else old):
            wrong.append(f"{old} -> {new}: allowed {allowed}, moved {moved}, now {after}")
    store.engine.dispose()
    assert not wrong, "\n".join(wrong)


def test_request_cancel_and_stale_requeue_follow_the_table(db_url: str) -> None:
    store = Store(db_url)
    task_id = _task(store)
    expected = {Status.QUEUED: Status.CANCELLED, Status.RUNNING: Status.CANCELLING}
    for state in Status:  # others are left as they are
        submission_id = _in_state(store, task_id, state)
        assert store.request_cancel(submission_id) is expected.get(state, state)
        assert _status(store, submission_id) is expected.get(state, state)
    with pytest.raises(KeyError):
        store.request_cancel(12345)
    ids = {state: _in_state(store, task_id, state) for state in Status}
    moved = store.requeue_stale(-1.0)  # every driver counts as silent
    assert moved == [ids[Status.RUNNING]]
    store.engine.dispose()


def test_a_refused_finish_writes_nothing(db_url: str) -> None:
    store = Store(db_url)
    task_id = _task(store)
    queued = _in_state(store, task_id, Status.QUEUED)
    with pytest.raises(TransitionError, match="is queued; it cannot be scored"):
        store.finish_submission(
            queued, status=Status.SCORED, scores={"auc": (0.9, 0.8, 1.0)},
            case_scores={"auc": {"c1": 1.0}}, error="no",
        )  # fmt: skip
    row = store.submission(queued)
    assert row is not None and row.status is Status.QUEUED and row.error == ""
    assert store.scores(queued) == [] and store.case_scores(queued).empty
    with pytest.raises(ValueError, match="finishes scored, failed or cancelled"):
        store.finish_submission(queued, status=Status.RUNNING)
    with pytest.raises(ValueError, match="starts queued or running"):
        _create(store, task_id, Status.SCORED)
    with pytest.raises(KeyError):
        store.finish_submission(12345, status=Status.FAILED)
    store.engine.dispose()


def test_restart_clears_the_error_of_an_interrupted_submission(db_url: str) -> None:
    store = Store(db_url)
    failed = _in_state(store, _task(store), Status.FAILED)
    store.engine.dispose()
    store = Store(db_url)
    with _statements(store) as seen:
        assert store.restart(failed)
    assert len(seen) == 1
    row = store.submission(failed)
    assert row is not None and row.status is Status.RUNNING and row.finished_at is None
    assert row.heartbeat is not None and row.error == ""
    store.engine.dispose()


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    """The SQL statements ``store`` runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_the_queue_is_one_query_and_values_are_frozen(db_url: str) -> None:
    store = Store(db_url)
    task_id = _task(store)
    ids = [_in_state(store, task_id, s) for s in (Status.RUNNING, Status.QUEUED, Status.QUEUED)]
    for number, (state, value) in enumerate([("complete", 0.7), ("failed", float("nan"))]):
        store.add_trial(
            ids[0], number=number, state=state, params={}, value=value, best_epoch=0, epochs=1,
            fit_seconds=0.1, error="", attempts=1 + number,
        )  # fmt: skip
    with _statements(store) as seen:
        queue = store.queue()
    assert len(seen) == 1, seen
    assert [(e["submission_id"], e["status"], e["place"], e["done"]) for e in queue] == [
        (ids[0], Status.RUNNING, None, 2),
        (ids[1], Status.QUEUED, 1, 0),
        (ids[2], Status.QUEUED, 2, 0),
    ]
    assert queue[0]["best_value"] == 0.7 and queue[0]["failed"] == 1 and queue[0]["retried"] == 1
    assert {k: v for k, v in queue[0].items() if k in store.progress(ids[0])} == dict(
        store.progress(ids[0])
    )
    row = store.submission(ids[0])
    assert isinstance(row, StoredSubmission) and isinstance(row.status, Status)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = Status.FAILED  # type: ignore[misc]
    (trial, failed) = store.trials(ids[0])
    assert trial.state is TrialState.COMPLETE and failed.value is None
    store.engine.dispose()


def _trial(
    number: int, value: float | None, state: TrialState = TrialState.COMPLETE
) -> StoredTrial:
    return StoredTrial(
        id=number, submission_id=1, number=number, state=state, params={}, value=value,
        best_epoch=0, epochs=1, fit_seconds=0.0, error="", attempts=1,
    )  # fmt: skip


def test_best_trial_takes_complete_trials_and_the_lower_number_on_ties() -> None:
    trials = [
        _trial(3, 0.9),
        _trial(1, 0.9),
        _trial(0, 0.99, TrialState.PRUNED),
        _trial(2, None),
        _trial(4, 0.2),
    ]
    best = best_trial(trials, higher_is_better=True)
    assert best is not None and best.number == 1
    lowest = best_trial(trials, higher_is_better=False)
    assert lowest is not None and lowest.number == 4
    assert best_trial([_trial(0, None, TrialState.FAILED)], higher_is_better=True) is None
