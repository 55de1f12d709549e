"""The queue worker's scheduler: which queued submissions start, when, and how they end.

The queue is first come, first served between tasks (an arena holds one task's pool at a time):
the submissions at the head of the queue that share its first one's task start together, with
any that arrive for that task while they run (up to the first queued submission of another
task), and share the pool's workers fairly (:class:`medarena.tuning.FairShare`). Each one's dry
run is its first job. Interrupted (Ctrl-C, SIGTERM), the scheduler hands its running submissions
back to the queue: the next worker continues each from its study, finished trials kept.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Protocol

from medarena.arena._records import score_best
from medarena.arena._run import (
    CANCELLED,
    ORPHANED,
    REQUEUED,
    EventCallback,
    QueueTrialCallback,
    Run,
    TrialCallback,
    error_text,
    log_failure,
    operator_text,
    study_name,
)
from medarena.store import Status

if TYPE_CHECKING:
    from medarena.arena._heartbeat import Heartbeat
    from medarena.arena._records import Records
    from medarena.arena._run import ArenaConfig
    from medarena.store import Store, StoredSubmission
    from medarena.submissions import SubmissionBundle
    from medarena.tasks import TaskSpec
    from medarena.tuning import FairShare, Sweep, SweepProgress, TrialRecord

ALL_WORKERS = 1 << 30
"""A queue worker's pool takes every slot the cluster has for the task."""


class Platform(Protocol):
    """What the scheduler uses of the arena (:class:`medarena.arena.Arena` is one)."""

    @property
    def config(self) -> ArenaConfig: ...
    @property
    def store(self) -> Store: ...
    @property
    def heartbeat(self) -> Heartbeat: ...
    @property
    def records(self) -> Records: ...
    def kept_submission(self, row: StoredSubmission) -> tuple[TaskSpec, SubmissionBundle]: ...
    def prepare_run(
        self, row: StoredSubmission, spec: TaskSpec, bundle: SubmissionBundle, *, max_workers: int
    ) -> Run: ...


class QueueScheduler:
    """Runs the queued submissions of ``arena``'s store on its worker pools (one driver thread)."""

    def __init__(
        self,
        arena: Platform,
        *,
        on_event: EventCallback | None = None,
        on_trial: QueueTrialCallback | None = None,
    ) -> None:
        self.arena = arena
        self.store = arena.store
        self._event = on_event or (lambda _id, _status, _detail: None)
        self._on_trial = on_trial
        self._share: FairShare | None = None
        self._active: dict[int, tuple[Run, Sweep]] = {}
        self.ended = 0
        """How many submissions this scheduler finished (scored, failed or cancelled)."""

    def run(self, *, exit_when_idle: bool, poll_s: float) -> int:
        """Run queued submissions: until the queue is empty with ``exit_when_idle``, else
        forever. The store is read at most every ``poll_s`` seconds for new submissions and
        cancellations. Returns :attr:`ended`."""
        polled = -math.inf
        try:
            while True:
                if time.monotonic() - polled >= poll_s:
                    polled = time.monotonic()
                    self._poll()
                if not self._active:
                    if exit_when_idle and not self.store.queued():
                        return self.ended
                    time.sleep(max(0.0, polled + poll_s - time.monotonic()))
                    continue
                assert self._share is not None
                for sweep in self._share.step(timeout=poll_s):
                    run, _ = self._active.pop(sweep.owner)
                    self._conclude(run, sweep)
                    self.arena.heartbeat.discard(sweep.owner)
                    self.ended += 1
        except (KeyboardInterrupt, SystemExit):  # stopped (Ray turns SIGTERM into SystemExit)
            self._hand_back()
            raise
        except BaseException:  # the platform failed: say what was left running
            for submission_id in sorted(self._active):
                self._event(
                    submission_id,
                    Status.RUNNING,
                    f"left running: the next worker takes it over once this one is silent, "
                    f"or `medarena resume {submission_id}` continues it now",
                )
            raise

    def _poll(self) -> None:
        """Act on cancellations, take over orphaned submissions, start queued ones."""
        if self._share is not None:
            for submission_id in sorted(self.store.cancelling() & self._active.keys()):
                run, sweep = self._active.pop(submission_id)
                self.arena.heartbeat.discard(submission_id)
                self._share.cancel(sweep)
                self.arena.records.cancelled(run)
                self._event(submission_id, Status.CANCELLED, CANCELLED)
                self.ended += 1
        stale = self.arena.config.stale_after_s
        for submission_id in self.store.requeue_stale(stale, exclude=self._active.keys()):
            self._event(submission_id, Status.QUEUED, ORPHANED)
        self._admit()

    def _hand_back(self) -> None:
        """Requeue the running submissions (or cancel those whose cancellation was asked)."""
        for submission_id, (run, _) in sorted(self._active.items()):
            self.arena.heartbeat.discard(submission_id)
            if self.store.requeue(submission_id):
                self._event(submission_id, Status.QUEUED, REQUEUED)
            else:  # cancel was asked
                self.arena.records.cancelled(run)
                self._event(submission_id, Status.CANCELLED, CANCELLED)

    def _admit(self) -> None:
        """Start the queued submissions at the head of the queue for the task that runs now (or
        for the head's task, when none runs), under the pool's fair share."""
        from medarena.tuning import FairShare

        for row in self.store.queued():
            running = {run.runtime.task_id for run, _ in self._active.values()}
            if running and row.task_id not in running:
                break  # first come, first served between tasks
            if not self.store.claim(row.id):
                continue  # cancelled, or another worker took it
            self.arena.heartbeat.add(row.id)
            self._event(row.id, Status.RUNNING, f"{row.team}/{row.name}")
            try:
                run, sweep = self._start(row)
            except Exception as exc:  # recorded as failed by _start
                self.arena.heartbeat.discard(row.id)
                log_failure(row.id, exc)
                self._event(row.id, Status.FAILED, operator_text(exc))
                self.ended += 1
                continue
            if self._share is None or self._share.pool is not run.pool:
                self._share = FairShare(run.pool)
            self._share.add(sweep)
            self._active[row.id] = (run, sweep)

    def _start(self, row: StoredSubmission) -> tuple[Run, Sweep]:
        """A claimed submission's run and sweep (whose first job is its dry run). If any of it
        fails, the submission is recorded as failed and the error raised."""
        from medarena.tuning import Sweep

        arena = self.arena
        try:
            spec, bundle = arena.kept_submission(row)
            run = arena.prepare_run(row, spec, bundle, max_workers=ALL_WORKERS)
            finished = arena.records.recorded_trials(row.id)
        except Exception as exc:
            self.store.finish_submission(row.id, status=Status.FAILED, error=error_text(exc))
            raise
        relay: TrialCallback | None = None
        if self._on_trial is not None:
            callback = self._on_trial

            def relay(record: TrialRecord, progress: SweepProgress) -> None:
                callback(row.id, record, progress)

        try:
            sweep = Sweep(
                run.bundle,
                run.spec,
                storage_url=arena.config.study_url,
                study_name=study_name(run.spec, row.id),
                n_trials=row.n_trials,
                config=run.config,
                on_trial=arena.records.trial_recorder(run, finished, relay),
                finished=finished,
                owner=row.id,
                team=row.team,
                dry_run=True,
            )
        except Exception as exc:
            arena.records.failed(run, exc)
            raise
        return run, sweep

    def _conclude(self, run: Run, sweep: Sweep) -> None:
        """Score and record a submission whose sweep ended, or record its failure."""
        submission_id = run.submission_id
        try:
            if sweep.error is not None:
                raise sweep.error
            result = sweep.result()
            scores = score_best(run.spec, run.runtime.data, result.test_predictions)
        except Exception as exc:
            self.arena.records.failed(run, exc)
            log_failure(submission_id, exc)
            self._event(submission_id, Status.FAILED, operator_text(exc))
            return
        self.arena.records.scored(run, result, scores)
        primary = run.spec.metrics.primary
        value = scores.metrics[primary].value
        self._event(submission_id, Status.SCORED, f"test {primary} {value:.4f}")
