"""Checks that every pool of trial workers passes: the contract of :class:`medarena.execution.Pool`.

One suite for every implementation, as Optuna runs one over every storage: the Ray
:class:`~medarena.execution.WorkerPool`, :class:`~medarena.testing.FakePool`, and any other
(another cluster, another executor). A test module runs each check of :data:`CHECKS` on a
:class:`PoolHarness` per implementation::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
    def test_pool_contract(harness: PoolHarness, check: Check) -> None:
        check(harness)

Each check starts and leaves the pool idle (every job collected or cancelled), so one pool can
serve all of them; a check that needs more than one worker says so with :class:`Skip`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from medarena.execution import Pool, TrialJob, TrialResult

__all__ = ["CHECKS", "Check", "PoolHarness", "Skip", "Tally"]


class PoolHarness(Protocol):
    """A pool under test, and how to make jobs for it and kill its workers.

    ``pool`` is started and ready, with at least one worker.
    """

    @property
    def pool(self) -> Pool: ...

    def job(self, key: int, *, hangs: bool = False, owner: int = 0) -> TrialJob:
        """A job that passes on its own (soon), or with ``hangs`` one that runs until it is
        stopped. Every job of one harness belongs to one submission (one sandbox per worker)."""
        ...

    def kill(self) -> None:
        """Kill the process of the worker that runs a job now; exactly one job is running, and
        it hangs."""
        ...


Check = Callable[[PoolHarness], None]


class Skip(Exception):  # noqa: N818  (pytest.skip's counterpart, without importing pytest)
    """Raised by a check that does not apply to this pool (too few workers)."""


class Tally:
    """A small service for :func:`check_services`: a running total."""

    def __init__(self, start: int) -> None:
        self.total = start

    def add(self, amount: int) -> int:
        self.total += amount
        return self.total


class _Other:
    def add(self, amount: int) -> int:
        return amount


def _assert_idle(pool: Pool) -> None:
    assert pool.running == 0, f"{pool.running} jobs still running"
    assert pool.idle == pool.size, f"{pool.idle} of {pool.size} workers idle"


def _collect(pool: Pool, jobs: list[TrialJob]) -> list[TrialResult]:
    """Every result of ``jobs``, each checked to be one of them, once, and passed."""
    results = []
    while pool.running:
        result = pool.next_result(timeout=None)
        assert result is not None, "next_result(timeout=None) returned nothing"
        assert pool.idle + pool.running == pool.size
        results.append(result)
    returned = [r.job for r in results]
    assert sorted(j.key for j in returned) == sorted(j.key for j in jobs), returned
    for result in results:
        assert any(result.job is job for job in jobs), "a result carries a job not submitted"
        assert 0 <= result.worker < pool.size
        assert not result.lost and result.outcome.ok, result.outcome.error
    return results


def check_a_ready_pool_is_idle(harness: PoolHarness) -> None:
    """All workers are idle; nothing runs, so nothing is cancelled."""
    pool = harness.pool
    assert pool.size >= 1
    _assert_idle(pool)
    assert pool.cancel() == []
    _assert_idle(pool)


def check_jobs_on_every_worker_come_back_once(harness: PoolHarness) -> None:
    """As many jobs as workers run at once, one on each, and each comes back once, as itself."""
    pool = harness.pool
    jobs = [harness.job(key) for key in range(pool.size)]
    for n, job in enumerate(jobs, start=1):
        pool.submit(job)
        assert (pool.running, pool.idle) == (n, pool.size - n)
    results = _collect(pool, jobs)
    assert len({r.worker for r in results}) == pool.size  # one job per worker
    _assert_idle(pool)


def check_more_jobs_than_workers_run_as_workers_free_up(harness: PoolHarness) -> None:
    """A driver that submits whenever a worker is idle gets every job back exactly once."""
    pool = harness.pool
    jobs = [harness.job(key) for key in range(2 * pool.size + 1)]
    waiting = list(jobs)
    results: list[TrialResult] = []
    while waiting or pool.running:
        while waiting and pool.idle:
            pool.submit(waiting.pop(0))
        result = pool.next_result(timeout=None)
        assert result is not None
        assert not result.lost and result.outcome.ok, result.outcome.error
        results.append(result)
    assert sorted(r.job.key for r in results) == [job.key for job in jobs]
    _assert_idle(pool)


def check_next_result_times_out_while_a_job_runs_on(harness: PoolHarness) -> None:
    """``next_result(timeout)`` returns ``None`` when nothing finished in time, and the job runs
    on until it is cancelled."""
    pool = harness.pool
    replaced = pool.replaced
    job = harness.job(0, hangs=True)
    pool.submit(job)
    assert pool.next_result(timeout=0.5) is None
    assert pool.running == 1
    stopped = pool.cancel()
    assert len(stopped) == 1 and stopped[0] is job
    assert pool.replaced == replaced + 1
    _assert_idle(pool)


def check_cancel_stops_the_selected_jobs_only(harness: PoolHarness) -> None:
    """``cancel(where)`` stops and returns the jobs it selects, in the order they were
    submitted; the others run on and come back; cancelled jobs never do."""
    pool = harness.pool
    if pool.size < 2:
        raise Skip("needs two workers")
    replaced = pool.replaced
    hanging = [harness.job(key, hangs=True, owner=1) for key in range(pool.size - 1)]
    other = harness.job(pool.size, owner=2)
    for job in [*hanging, other]:
        pool.submit(job)
    assert pool.cancel(lambda job: job.owner == 3) == []
    stopped = pool.cancel(lambda job: job.owner == 1)
    assert [id(job) for job in stopped] == [id(job) for job in hanging]
    assert pool.replaced == replaced + len(hanging)
    assert pool.running == 1 and pool.idle == pool.size - 1
    (result,) = _collect(pool, [other])
    assert result.job is other
    _assert_idle(pool)


def check_a_dead_worker_is_replaced_and_its_job_comes_back_lost(harness: PoolHarness) -> None:
    """A job whose worker died comes back ``lost`` (not ok, the platform's error text); its
    worker is replaced and runs the next job."""
    pool = harness.pool
    replaced = pool.replaced
    job = harness.job(0, hangs=True)
    pool.submit(job)
    harness.kill()
    result = pool.next_result(timeout=None)
    assert result is not None and result.job is job
    assert result.lost and not result.outcome.ok
    assert "worker process died" in result.outcome.error, result.outcome.error
    assert pool.replaced == replaced + 1
    _assert_idle(pool)
    again = [harness.job(key) for key in range(1, pool.size + 1)]
    for job in again:
        pool.submit(job)
    _collect(pool, again)
    _assert_idle(pool)


def check_services(harness: PoolHarness) -> None:
    """A service keeps its state between calls, answers with its method's result, refuses a
    method of another class, and stops."""
    service = harness.pool.service(Tally, 1)
    try:
        assert service.call(Tally.add, 2) == 3
        assert service.call(Tally.add, amount=4) == 7
        try:
            service.call(_Other.add, 1)  # type: ignore[arg-type]
        except TypeError:
            pass
        else:
            raise AssertionError("a method of another class was called on the service")
    finally:
        service.stop()


CHECKS: tuple[Check, ...] = (
    check_a_ready_pool_is_idle,
    check_jobs_on_every_worker_come_back_once,
    check_more_jobs_than_workers_run_as_workers_free_up,
    check_next_result_times_out_while_a_job_runs_on,
    check_cancel_stops_the_selected_jobs_only,
    check_a_dead_worker_is_replaced_and_its_job_comes_back_lost,
    check_services,
)
"""Every check, in a sensible order (cheap ones first)."""
