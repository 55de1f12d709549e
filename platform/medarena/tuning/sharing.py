"""The drivers of sweeps: several sweeps on one worker pool, sharing its workers fairly
(:class:`FairShare`), and one sweep alone (:func:`run_sweep`, a ``FairShare`` of one).

Whenever a worker is idle, it goes to the sweep that has work and the smallest share now: first
the team with the fewest running trials, then, within it, the sweep with the fewest running
trials, then the sweep that was served least recently (so that with one worker the sweeps take
turns), then the sweep that started first. A team's 100-trial sweep therefore cannot starve
another team's 5-trial one: while both have work, each runs on half of the workers.

Each sweep's configurations depend only on its seed and trial numbers (see
:mod:`medarena.tuning.sweep`), and each trial runs alone on its worker, so sharing changes when
trials run, never what they compute.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable

from medarena.exceptions import PlatformError
from medarena.execution import Pool
from medarena.execution.supervisor import TrialConfig
from medarena.submissions import SubmissionBundle
from medarena.tasks import TaskSpec
from medarena.tuning.jobs import MAX_ATTEMPTS
from medarena.tuning.records import SweepProgress, SweepResult, TrialRecord
from medarena.tuning.sweep import Sweep

log = logging.getLogger(__name__)


class SweepCancelled(Exception):  # noqa: N818  (a signal, not an error of the sweep)
    """Raised by :func:`run_sweep` when ``should_stop`` answered true; running trials stopped."""


class FairShare:
    """Drives the sweeps added to it on ``pool``; not thread safe (one driver thread)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._sweeps: dict[int, Sweep] = {}  # by owner, in the order they were added
        self._served: dict[int, int] = {}  # owner -> serial number of the last job it got
        self._serial = 0

    @property
    def sweeps(self) -> list[Sweep]:
        """The sweeps still running, in the order they were added."""
        return list(self._sweeps.values())

    def add(self, sweep: Sweep) -> None:
        if sweep.owner in self._sweeps:
            raise PlatformError(f"a sweep with owner {sweep.owner} is already running")
        self._sweeps[sweep.owner] = sweep
        self._served[sweep.owner] = -1

    def _fill(self) -> None:
        """Give every idle worker a job, each to the sweep with the smallest share."""
        while self.pool.idle:
            teams: collections.Counter[str] = collections.Counter()
            for sweep in self._sweeps.values():
                teams[sweep.team] += sweep.running
            order = sorted(
                enumerate(self._sweeps.values()),
                key=lambda item: (
                    teams[item[1].team],
                    item[1].running,
                    self._served[item[1].owner],
                    item[0],
                ),
            )
            for _, sweep in order:
                if sweep.error is not None:
                    continue
                try:
                    job = sweep.want_job()
                except Exception as exc:
                    self._fail(sweep, exc)
                    continue
                if job is not None:
                    self.pool.submit(job)
                    self._serial += 1
                    self._served[sweep.owner] = self._serial
                    break
            else:
                return

    def _fail(self, sweep: Sweep, exc: Exception) -> None:
        """End ``sweep`` with ``exc``: its running jobs are stopped; the others go on."""
        log.info("sweep %s ended with an error: %s", sweep.study_name, exc)
        sweep.error = exc
        sweep.stopped(self.pool.cancel(lambda job: job.owner == sweep.owner))

    def cancel(self, sweep: Sweep) -> None:
        """Stop ``sweep``'s running trials (they fail in its study) and drop it."""
        sweep.stopped(self.pool.cancel(lambda job: job.owner == sweep.owner))
        sweep.close()
        self._sweeps.pop(sweep.owner, None)
        self._served.pop(sweep.owner, None)

    def _ended(self) -> list[Sweep]:
        ended = [s for s in self._sweeps.values() if s.error is not None or s.finished]
        for sweep in ended:
            del self._sweeps[sweep.owner]
            del self._served[sweep.owner]
        return ended

    def step(self, timeout: float | None) -> list[Sweep]:
        """Start jobs on the idle workers, wait up to ``timeout`` seconds (``None``: until one
        finishes) for a job to finish, and hand its result to its sweep.

        Returns the sweeps that ended, which are dropped: finished (call :meth:`Sweep.result`),
        or failed (:attr:`Sweep.error` is set). An error of one sweep (a failed dry run, a
        callback that raised) ends that sweep only; the pool's own errors propagate.
        """
        self._fill()
        ended = self._ended()
        if ended or not self.pool.running:
            if not ended and self._sweeps:
                raise PlatformError("sweeps have work but no worker runs or takes any")
            return ended
        result = self.pool.next_result(timeout)
        if result is None:
            return []
        sweep = self._sweeps.get(result.job.owner)
        if sweep is None:
            log.warning("a result for sweep owner %d, which is gone", result.job.owner)
            return []
        try:
            record = sweep.accept(result)
            self._fill()  # keep the workers busy before recording the finished trial
            if record is not None:
                sweep.record(record)
        except Exception as exc:
            self._fail(sweep, exc)
        self._fill()
        return self._ended()


def run_sweep(
    pool: Pool,
    bundle: SubmissionBundle,
    task: TaskSpec,
    *,
    storage_url: str,
    study_name: str,
    n_trials: int,
    config: TrialConfig,
    on_trial: Callable[[TrialRecord, SweepProgress], None] | None = None,
    finished: dict[int, TrialRecord] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    should_stop: Callable[[], bool] | None = None,
    poll_s: float = 1.0,
) -> SweepResult:
    """Run (or continue) the sweep until ``n_trials`` trials have finished; return every trial.

    The single-submission case of :class:`Sweep` (see it for ``on_trial`` and ``finished``),
    driven by a :class:`FairShare` holding it alone, its pruning board a service of ``pool``.
    ``should_stop`` is polled at most once every ``poll_s`` seconds; when it answers true the
    running trials are stopped, marked failed in the study, and :class:`SweepCancelled` is
    raised.

    Raises :class:`TrialError` with the first error if every trial failed.
    """
    sweep = Sweep(
        bundle,
        task,
        storage_url=storage_url,
        study_name=study_name,
        n_trials=n_trials,
        config=config,
        on_trial=on_trial,
        finished=finished,
        max_attempts=max_attempts,
        services=pool.service,
    )
    share = FairShare(pool)
    share.add(sweep)
    polled = -math.inf
    try:
        while True:
            if should_stop is not None and time.monotonic() - polled >= poll_s:
                polled = time.monotonic()
                if should_stop():
                    share.cancel(sweep)
                    raise SweepCancelled(f"sweep {study_name!r} was cancelled")
            if share.step(timeout=None if should_stop is None else poll_s):
                break
    finally:
        sweep.close()
    if sweep.error is not None:
        raise sweep.error
    return sweep.result()
