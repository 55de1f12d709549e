"""Fair sharing of one pool between sweeps (FairShare), on a fake pool: who gets each idle
worker, what one sweep's failure does to the others, and that sharing changes when trials run,
never what they compute. The end-to-end version with Ray and the queue is
tests/integration/test_queue.py."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest
from sweeping import drive, states, studies_url, sweep

from medarena.exceptions import SubmissionError
from medarena.execution import TrialJob
from medarena.execution.supervisor import TrialOutcome
from medarena.testing import FakePool, cheap_outcome
from medarena.tuning import FairShare, TrialRecord, run_sweep
from medarena.tuning.records import SweepProgress


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """This test's study database."""
    yield from studies_url(tmp_path)


def _trials(jobs: list[TrialJob]) -> list[TrialJob]:
    return [job for job in jobs if not job.dry_run and job.weights is None]


def test_a_small_sweep_runs_beside_a_big_one(url: str) -> None:
    pool = FakePool(2)
    share = FairShare(pool)
    recorded: list[int] = []  # the owner of each trial, in the order they were recorded

    def on_trial(owner: int) -> object:
        return lambda record, progress: recorded.append(owner)

    big = sweep(url, "big", 6, owner=1, team="big", dry_run=True, on_trial=on_trial(1))
    small = sweep(url, "small", 2, owner=2, team="small", dry_run=True, on_trial=on_trial(2))
    share.add(big)
    share.add(small)

    assert drive(share) == [small, big]
    # Both dry runs first, then one worker each while both have trials; first come, first served
    # would have run six "big" trials before the small sweep's first.
    assert [(j.owner, j.dry_run) for j in pool.started[:2]] == [(1, True), (2, True)]
    assert [j.owner for j in _trials(pool.started)][:4] == [1, 2, 1, 2]
    assert recorded[:4] == [1, 2, 1, 2] and recorded.count(1) == 6
    # The small sweep's inference took a worker while the big sweep still had trials to start.
    (inference,) = (i for i, j in enumerate(pool.started) if j.owner == 2 and j.weights is not None)
    assert len([j for j in _trials(pool.started[:inference]) if j.owner == 1]) < 6

    # Sharing changes when trials run, not what they compute: the same configurations (the
    # same task seed) and values in slots 0 and 1, and the small sweep's result is a solo one's.
    small_result, big_result = small.result(), big.result()
    assert [(t.params, t.value) for t in small_result.trials] == [
        (t.params, t.value) for t in big_result.trials[:2]
    ]
    solo = run_sweep(
        FakePool(1), small.bundle, small.task, storage_url=url, study_name="solo", n_trials=2,
        config=small.config,
    )  # fmt: skip
    assert [(t.params, t.value, t.state) for t in solo.trials] == [
        (t.params, t.value, t.state) for t in small_result.trials
    ]
    assert solo.test_predictions == small_result.test_predictions
    assert states(url, "small") == states(url, "solo") == [(0, "COMPLETE"), (1, "COMPLETE")]


def test_teams_share_the_workers_before_their_sweeps_do(url: str) -> None:
    pool = FakePool(4)
    share = FairShare(pool)
    for owner, team in ((1, "a"), (2, "a"), (3, "b")):
        share.add(sweep(url, f"team-{owner}", 6, owner=owner, team=team))
    share.step(timeout=None)
    # While every sweep has work, team a's two sweeps hold as many workers as team b's one.
    first = [job.owner for job in pool.started[:4]]
    assert first == [1, 3, 2, 3]
    running: collections.Counter[int] = collections.Counter()
    for event in pool.events:
        if event.what == "start":
            running[event.job.owner] += 1
        else:
            running[event.job.owner] -= 1
        if event.time < 6:  # every sweep still has trials to start
            teams = {"a": running[1] + running[2], "b": running[3]}
            assert max(teams.values()) <= 2, (event, teams)
    drive(share)


def test_with_one_worker_the_sweeps_take_turns(url: str) -> None:
    pool = FakePool(1)
    share = FairShare(pool)
    first, second = sweep(url, "turns-1", 3, owner=1), sweep(url, "turns-2", 3, owner=2)
    share.add(first)
    share.add(second)
    drive(share)
    assert [j.owner for j in _trials(pool.started)] == [1, 2, 1, 2, 1, 2]
    assert first.result().best.number >= 0 and second.result().best.number >= 0


def test_a_failed_dry_run_ends_its_sweep_only(url: str) -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.dry_run and job.owner == 2:
            return TrialOutcome(ok=False, error="RuntimeError: no")
        return cheap_outcome(job)

    pool = FakePool(2, behaviour)
    share = FairShare(pool)
    good = sweep(url, "good", 3, owner=1, dry_run=True)
    bad = sweep(url, "bad-dry-run", 3, owner=2, dry_run=True)
    share.add(good)
    share.add(bad)
    ended = drive(share)
    assert ended == [bad, good]
    assert isinstance(bad.error, SubmissionError) and "RuntimeError: no" in str(bad.error)
    assert not [job for job in pool.started if job.owner == 2 and not job.dry_run]
    assert states(url, "bad-dry-run") == []  # no trial was asked
    assert [t.state for t in good.result().trials] == ["complete"] * 3


def test_a_sweep_whose_recording_fails_stops_its_running_trials_only(url: str) -> None:
    def fail_second(record: TrialRecord, progress: SweepProgress) -> None:
        if progress.done == 2:
            raise OSError("disk full")

    pool = FakePool(4)
    share = FairShare(pool)
    healthy = sweep(url, "healthy", 4, owner=1)
    broken = sweep(url, "broken", 4, owner=2, on_trial=fail_second)
    share.add(healthy)
    share.add(broken)
    ended = drive(share)
    assert ended == [broken, healthy]
    assert isinstance(broken.error, OSError)
    # Its two running trials were stopped (their workers replaced) and failed in the study; the
    # trial whose recording failed was never told, so a resumed sweep would run it again.
    assert [(j.owner, j.key) for j in pool.stopped] == [(2, 2), (2, 3)] and pool.replaced == 2
    assert states(url, "broken") == [(0, "COMPLETE"), (1, "RUNNING"), (2, "FAIL"), (3, "FAIL")]
    assert [t.state for t in healthy.result().trials] == ["complete"] * 4
    assert pool.idle == pool.size


def test_a_sweep_cannot_be_added_twice(url: str) -> None:
    share = FairShare(FakePool(1))
    share.add(sweep(url, "once", 1, owner=7))
    with pytest.raises(Exception, match="owner 7 is already running"):
        share.add(sweep(url, "twice", 1, owner=7))
