"""A job whose worker died is run again, the same, a bounded number of times: on a fake pool.
The end-to-end version (a real Ray worker killed mid-trial) is
tests/integration/test_execution_faults.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sweeping import boring, drive, states, studies_url, sweep, task

from medarena.exceptions import PlatformError, SubmissionError, TrialError
from medarena.execution import TrialJob
from medarena.execution.supervisor import TrialOutcome
from medarena.testing import FakePool, FakePredictions, WorkerDied, cheap_outcome, fake_weights
from medarena.tuning import FairShare, run_sweep
from medarena.tuning.jobs import base_config, dry_run


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """This test's study database."""
    yield from studies_url(tmp_path)


def _run(pool: FakePool, url: str, name: str, n_trials: int, **options: object):  # type: ignore[no-untyped-def]
    return run_sweep(
        pool, boring(), task(), storage_url=url, study_name=name, n_trials=n_trials,
        config=base_config(boring(), task(), use_gpu=False), **options,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_trial_whose_worker_died_runs_again_with_the_same_configuration(url: str) -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.key == 1 and job.attempt == 1 and job.weights is None:
            raise WorkerDied(after_s=1.5, reason="out of memory")
        return cheap_outcome(job)

    pool = FakePool(2, behaviour)
    progress = []
    result = _run(pool, url, "retried", 3, on_trial=lambda record, p: progress.append(p.retried))

    assert [t.state for t in result.trials] == ["complete"] * 3
    assert [t.attempts for t in result.trials] == [1, 2, 1]
    first, again = (job for job in pool.started if job.key == 1 and job.weights is None)
    assert (first.attempt, again.attempt) == (1, 2)
    assert again.config == first.config  # the same parameters and seed
    assert pool.replaced == 1 and progress[-1] == 1
    assert [e.what for e in pool.events if e.job is first] == ["start", "lost"]
    # The retry took the freed worker at once (1.5 s in), before any new trial.
    assert pool.started.index(again) == pool.started.index(first) + 1
    assert states(url, "retried") == [(n, "COMPLETE") for n in range(3)]


def test_a_trial_whose_worker_keeps_dying_fails_after_bounded_attempts(url: str) -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        raise WorkerDied(reason="segmentation fault")

    pool = FakePool(1, behaviour)
    with pytest.raises(TrialError, match=r"(?s)worker process died in each of 2 attempts"):
        _run(pool, url, "always-dies", 1, max_attempts=2)
    assert [job.attempt for job in pool.started] == [1, 2]
    assert pool.replaced == 2 and pool.idle == 1
    assert states(url, "always-dies") == [(0, "FAIL")]


def test_other_trials_go_on_when_one_keeps_losing_its_worker(url: str) -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.key == 0 and job.weights is None:
            raise WorkerDied(after_s=0.5, reason="segmentation fault")
        return cheap_outcome(job)

    pool = FakePool(2, behaviour)
    result = _run(pool, url, "one-dies", 3)
    assert [(t.state, t.attempts) for t in result.trials] == [
        ("failed", 3), ("complete", 1), ("complete", 1)
    ]  # fmt: skip
    assert "in each of 3 attempts; the last time: " in result.trials[0].outcome.error
    assert "segmentation fault" in result.trials[0].outcome.error
    assert result.best.number in (1, 2)


def test_a_lost_inference_job_runs_again_with_the_best_weights(url: str) -> None:
    lost: list[TrialJob] = []

    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.weights is not None and not lost:
            lost.append(job)
            raise WorkerDied()
        return cheap_outcome(job)

    pool = FakePool(2, behaviour)
    result = _run(pool, url, "inference-lost", 3)
    inference = [job for job in pool.started if job.weights is not None]
    assert [job.attempt for job in inference] == [1, 2]
    best = next(job for job in pool.started if job.key == result.best.number)
    assert result.test_predictions == FakePredictions(fake_weights(best))


def test_a_failed_dry_run_is_the_participants_error(url: str) -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.dry_run:
            return TrialOutcome(ok=False, error="ValueError: wrong shape")
        return cheap_outcome(job)

    pool = FakePool(1, behaviour)
    share = FairShare(pool)
    dry = sweep(url, "dry-run-fails", 2, dry_run=True)
    share.add(dry)
    assert share.step(timeout=None) == [dry]
    assert isinstance(dry.error, SubmissionError)
    assert "dry run" in str(dry.error) and "ValueError: wrong shape" in str(dry.error)
    assert [job.dry_run for job in pool.started] == [True]


def test_a_dry_run_whose_worker_died_runs_again(url: str) -> None:
    def behaviour(job: TrialJob) -> TrialOutcome:
        if job.dry_run and job.attempt == 1:
            raise WorkerDied(reason="out of memory")
        return cheap_outcome(job)

    pool = FakePool(1, behaviour)
    share = FairShare(pool)
    retried = sweep(url, "dry-run-retried", 2, dry_run=True)
    share.add(retried)
    assert drive(share) == [retried] and retried.error is None
    assert [(job.dry_run, job.attempt) for job in pool.started[:3]] == [
        (True, 1), (True, 2), (False, 1)
    ]  # fmt: skip
    assert [t.state for t in retried.result().trials] == ["complete"] * 2


def test_a_dry_run_that_keeps_losing_its_worker_is_the_platforms_fault(url: str) -> None:
    """Sandboxed code cannot kill its worker: the participant is not blamed (SubmissionError)."""

    def behaviour(job: TrialJob) -> TrialOutcome:
        raise WorkerDied(reason="node lost")

    pool = FakePool(1, behaviour)
    share = FairShare(pool)
    doomed = sweep(url, "dry-run-lost", 2, dry_run=True, max_attempts=2)
    share.add(doomed)
    assert drive(share) == [doomed]
    assert isinstance(doomed.error, PlatformError)
    assert "died in each of 2 attempts; the last time: " in str(doomed.error)
    assert [job.attempt for job in pool.started] == [1, 2] and pool.replaced == 2

    # The foreground path (`medarena submit` checks the submission before its sweep) alike.
    alone = FakePool(1, behaviour)
    with pytest.raises(PlatformError, match="died in each of 3 attempts"):
        dry_run(alone, boring(), base_config(boring(), task(), use_gpu=False))
    assert [job.attempt for job in alone.started] == [1, 2, 3]
