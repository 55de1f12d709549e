"""Cancelling a sweep: its running trials stop at once and fail in its study, its finished ones
stay, and the other sweeps on the pool go on. On a fake pool; the end-to-end version (the
queue, `medarena cancel`, sandboxes killed) is tests/integration/test_queue.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sweeping import boring, drive, states, studies_url, sweep, task

from medarena.execution import TrialJob
from medarena.execution.supervisor import TrialOutcome
from medarena.testing import FakePool, Hang, cheap_outcome
from medarena.tuning import FairShare, SweepCancelled, TrialRecord, run_sweep
from medarena.tuning.jobs import base_config
from medarena.tuning.records import SweepProgress


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """This test's study database."""
    yield from studies_url(tmp_path)


def test_should_stop_stops_the_running_trials_and_keeps_the_finished_ones(url: str) -> None:
    recorded: list[int] = []
    polls: list[int] = []

    def on_trial(record: TrialRecord, progress: SweepProgress) -> None:
        recorded.append(record.number)

    def should_stop() -> bool:
        polls.append(len(recorded))
        return bool(recorded)

    pool = FakePool(2)
    with pytest.raises(SweepCancelled, match="'cancelled' was cancelled"):
        run_sweep(
            pool, boring(), task(), storage_url=url, study_name="cancelled", n_trials=6,
            config=base_config(boring(), task(), use_gpu=False), on_trial=on_trial,
            should_stop=should_stop, poll_s=0.0,
        )  # fmt: skip

    assert polls[0] == 0 and polls[-1] == 1  # polled before the first trial, stopped after it
    assert recorded == [0]
    # Trial 0 freed its worker for trial 2 before it was recorded; 1 and 2 were stopped.
    assert [job.key for job in pool.started] == [0, 1, 2]
    assert [job.key for job in pool.stopped] == [1, 2]
    assert pool.replaced == 2 and pool.idle == pool.size and pool.running == 0
    assert states(url, "cancelled") == [(0, "COMPLETE"), (1, "FAIL"), (2, "FAIL")]


def test_cancelling_one_sweep_of_a_fair_share_leaves_the_other_running(url: str) -> None:
    pool = FakePool(2)
    share = FairShare(pool)
    kept, dropped = sweep(url, "kept", 4, owner=1), sweep(url, "dropped", 4, owner=2)
    share.add(kept)
    share.add(dropped)
    assert share.step(timeout=None) == []  # one trial of "kept" finished
    assert pool.running == 2

    share.cancel(dropped)
    assert share.sweeps == [kept]
    assert [(job.owner, job.key) for job in pool.stopped] == [(2, 0)]
    assert drive(share) == [kept]
    assert [t.state for t in kept.result().trials] == ["complete"] * 4
    assert states(url, "dropped") == [(0, "FAIL")]
    assert not [job for job in pool.started[2:] if job.owner == 2]  # nothing started after


def test_a_sweep_cancelled_during_its_dry_run_asked_no_trial(url: str) -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.dry_run:
            raise Hang
        return cheap_outcome(job)

    pool = FakePool(1, behaviour)
    share = FairShare(pool)
    waiting = sweep(url, "cancelled-in-dry-run", 3, dry_run=True)
    share.add(waiting)
    assert share.step(timeout=0.5) == []  # the dry run runs on
    share.cancel(waiting)
    assert [job.dry_run for job in pool.stopped] == [True]
    assert share.sweeps == [] and pool.idle == 1
    assert states(url, "cancelled-in-dry-run") == []
