"""The :class:`Arena`: submit, resume, queue and cancel submissions, read leaderboards."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medarena.arena._heartbeat import Heartbeat
from medarena.arena._records import Records, score_best
from medarena.arena._run import (
    CANCELLED,
    ORPHANED,
    REQUEUED,
    ArenaConfig,
    EventCallback,
    QueueTrialCallback,
    Run,
    StageCallback,
    SubmissionResult,
    TaskRuntime,
    TrialCallback,
    error_text,
    study_name,
)
from medarena.exceptions import PlatformError, UserError
from medarena.metrics import get_metric
from medarena.store.models import Status
from medarena.submissions import load_submission
from medarena.tasks import TaskCatalogue, TaskSpec, load_task_data

if TYPE_CHECKING:
    import pandas as pd

    from medarena.execution import WorkerPool
    from medarena.store import Store, SubmissionRow
    from medarena.submissions import SubmissionBundle
    from medarena.tuning import FairShare, Sweep, SweepProgress, TrialRecord

log = logging.getLogger(__name__)

ALL_WORKERS = 1 << 30
"""A queue worker's pool takes every slot the cluster has for the task."""


@dataclass
class Arena:
    """One process's platform: catalogue, leaderboard store, tracker, and a pool per task."""

    config: ArenaConfig
    _store: Store | None = field(default=None, init=False)
    _heartbeat: Heartbeat | None = field(default=None, init=False)
    _tasks: dict[str, TaskRuntime] = field(default_factory=dict, init=False)

    @property
    def catalogue(self) -> TaskCatalogue:
        return TaskCatalogue(self.config.catalogue_dir)

    @property
    def store(self) -> Store:
        if self._store is None:
            from medarena.store import Store

            self._store = Store(self.config.db_url)
        return self._store

    @property
    def heartbeat(self) -> Heartbeat:
        """Stamps the submissions this process drives, so that workers know it is alive."""
        if self._heartbeat is None:
            self._heartbeat = Heartbeat(self.store, interval_s=self.config.heartbeat_s)
        return self._heartbeat

    @property
    def records(self) -> Records:
        """Where this arena's submissions are recorded: the store and the artifacts folder."""
        return Records(self.store, self.config.artifacts)

    def _runtime(self, spec: TaskSpec) -> TaskRuntime:
        runtime = self._tasks.get(spec.name)
        if runtime is None:
            data = load_task_data(spec, cache_dir=self.config.cache_dir)
            task_id = self.store.ensure_task(
                name=spec.name,
                version=spec.version,
                kind=spec.kind,
                title=spec.title,
                split_hash=data.split_hash,
                primary=spec.metrics.primary,
            )
            runtime = self._tasks[spec.name] = TaskRuntime(data=data, task_id=task_id)
        return runtime

    def _pool(self, runtime: TaskRuntime, *, max_workers: int) -> WorkerPool:
        from medarena.execution import WorkerPool, connect
        from medarena.sandbox import check_runtime_paths

        if runtime.pool is None:
            config = self.config
            check_runtime_paths([config.cache_dir, config.artifacts, config.catalogue_dir])
            # One task's workers at a time: another task's idle pool would hold the slots.
            self._release_pools()
            budget = runtime.data.spec.budget
            cluster = connect(self.config.ray_address, num_cpus=self.config.num_cpus)
            fits = WorkerPool.plan_size(
                cluster_cpus=cluster.cpus,
                cluster_gpus=cluster.gpus,
                cpus=budget.cpus_per_trial,
                gpus=budget.gpus_per_trial,
            )
            if fits < 1:
                raise UserError(
                    f"task {runtime.data.spec.name!r} asks for {budget.cpus_per_trial} CPUs and "
                    f"{budget.gpus_per_trial} GPUs per trial; the cluster has {cluster.cpus} CPUs "
                    f"and {cluster.gpus} GPUs"
                )
            runtime.pool = WorkerPool(
                runtime.data.worker_data(),
                size=min(fits, max_workers),
                cpus=budget.cpus_per_trial,
                gpus=budget.gpus_per_trial,
                limits=budget.limits,
                allow_unsandboxed=self.config.allow_unsandboxed,
            )
            runtime.pool.ready(timeout=self.config.worker_start_timeout_s)
        return runtime.pool

    def _release_pools(self) -> None:
        for runtime in self._tasks.values():
            if runtime.pool is not None:
                runtime.pool.shutdown()
                runtime.pool = None

    def submit(
        self,
        path: Path,
        task_name: str,
        *,
        trials: int | None = None,
        team: str = "anonymous",
        on_stage: StageCallback | None = None,
        on_trial: TrialCallback | None = None,
    ) -> SubmissionResult:
        """Validate, sweep, score and record one submission; see the module docstring.

        Runs in this process at once (next to any queue worker); ``medarena cancel`` stops it
        like a queued one, and it then raises :class:`UserError`.
        """
        from medarena.tracking import Tracker
        from medarena.tuning.sweep import base_config, dry_run

        stage = on_stage or (lambda _: None)
        spec = self.catalogue.get(task_name)
        stage("validating the submission")
        bundle = load_submission(path)
        n_trials = self._n_trials(spec, trials)
        stage(f"preparing task {spec.name}")
        runtime = self._runtime(spec)
        stage("starting trial workers")
        pool = self._pool(runtime, max_workers=n_trials)
        config = base_config(bundle, spec, use_gpu=spec.budget.gpus_per_trial > 0)
        stage("dry run")
        dry_run(pool, bundle, config)

        data = runtime.data
        tags = self._tags(spec, runtime, bundle, team)
        tracker = Tracker(self.config.tracking_uri, experiment=f"medarena/{spec.name}")
        parent = tracker.start_submission(
            name=f"{team}/{bundle.spec.name}",
            tags=tags,
            params={"n_trials": n_trials, "seed": spec.budget.seed, **spec.budget.model_dump()},
        )
        submission_id = self.store.create_submission(
            task_id=runtime.task_id,
            name=bundle.spec.name,
            team=team,
            sha256=bundle.sha256,
            n_trials=n_trials,
            seed=spec.budget.seed,
            split_hash=data.split_hash,
            study_name="",
            mlflow_run_id=parent,
        )
        self.heartbeat.add(submission_id)
        self.store.update_submission(submission_id, study_name=study_name(spec, submission_id))
        self.records.keep_code(submission_id, bundle)
        run = Run(
            submission_id=submission_id, spec=spec, runtime=runtime, pool=pool, bundle=bundle,
            config=config, n_trials=n_trials, team=team, tags=tags, tracker=tracker, parent=parent,
        )  # fmt: skip
        return self._sweep_and_score(run, on_stage=stage, on_trial=on_trial, finished={})

    @staticmethod
    def _n_trials(spec: TaskSpec, trials: int | None) -> int:
        n_trials = trials or spec.budget.trials
        if n_trials < 1:
            raise UserError(f"--trials must be at least 1, got {n_trials}")
        return n_trials

    @staticmethod
    def _tags(
        spec: TaskSpec, runtime: TaskRuntime, bundle: SubmissionBundle, team: str
    ) -> dict[str, str]:
        return {
            "task": spec.name,
            "task_version": str(spec.version),
            "split_hash": runtime.data.split_hash,
            "submission": bundle.spec.name,
            "submission_sha256": bundle.sha256,
            "team": team,
        }

    def resume(
        self,
        submission_id: int,
        *,
        on_stage: StageCallback | None = None,
        on_trial: TrialCallback | None = None,
    ) -> SubmissionResult:
        """Continue a submission whose driver died or was interrupted, from its stored study.

        Trials already recorded are kept (not run again); trials that were in flight are run
        again with their own parameters; the result equals an uninterrupted run's on CPU. A
        submission whose cancellation was asked while its driver was gone becomes cancelled.
        """
        from medarena.tracking import Tracker
        from medarena.tuning.sweep import base_config

        stage = on_stage or (lambda _: None)
        row = self.store.submission(submission_id)
        if row is None:
            raise UserError(f"there is no submission {submission_id}")
        if row.status == Status.CANCELLING:
            self.store.finish_submission(submission_id, status=Status.CANCELLED, error=CANCELLED)
            raise UserError(f"submission {submission_id} was cancelled; it is not resumed")
        if row.status not in (Status.RUNNING, Status.FAILED):
            raise UserError(
                f"submission {submission_id} is {row.status}; only a running or interrupted "
                "(failed) submission can be resumed"
            )
        self.heartbeat.add(submission_id)  # this process drives it now: no worker takes it over
        stage("loading the submitted code")
        spec, bundle = self._kept_submission(row)
        stage(f"preparing task {spec.name}")
        runtime = self._runtime(spec)
        stage("starting trial workers")
        pool = self._pool(runtime, max_workers=row.n_trials)
        config = base_config(bundle, spec, use_gpu=spec.budget.gpus_per_trial > 0)
        tags = self._tags(spec, runtime, bundle, row.team)
        tracker = Tracker(self.config.tracking_uri, experiment=f"medarena/{spec.name}")
        self.store.update_submission(
            submission_id, status=Status.RUNNING, error="", finished_at=None, heartbeat=time.time()
        )
        run = Run(
            submission_id=submission_id, spec=spec, runtime=runtime, pool=pool, bundle=bundle,
            config=config, n_trials=row.n_trials, team=row.team, tags=tags, tracker=tracker,
            parent=row.mlflow_run_id,
        )  # fmt: skip
        finished = self.records.recorded_trials(submission_id)
        return self._sweep_and_score(run, on_stage=stage, on_trial=on_trial, finished=finished)

    def _kept_submission(self, row: SubmissionRow) -> tuple[TaskSpec, SubmissionBundle]:
        """The task and the kept code of a stored submission, checked against its row."""
        task_name, version = self.store.task_name_version(row.task_id)
        spec = self.catalogue.get(task_name)
        if spec.version != version:
            raise UserError(
                f"submission {row.id} was made for {task_name} version {version}, but the "
                f"catalogue now has version {spec.version}; it cannot be run"
            )
        bundle = load_submission(self.records.code_dir(row.id))
        if bundle.sha256 != row.sha256:
            raise PlatformError(
                f"the kept code of submission {row.id} hashes to {bundle.sha256[:12]}, "
                f"not {row.sha256[:12]}"
            )
        return spec, bundle

    # The queue: enqueue, cancel, and the worker loop.

    def enqueue(
        self, path: Path, task_name: str, *, trials: int | None = None, team: str = "anonymous"
    ) -> int:
        """Validate a submission (statically: its dry run happens when it starts) and queue it;
        returns its id. A worker (:meth:`work`, ``medarena worker``) runs it later."""
        spec = self.catalogue.get(task_name)
        bundle = load_submission(path)
        n_trials = self._n_trials(spec, trials)
        runtime = self._runtime(spec)
        submission_id = self.store.create_submission(
            task_id=runtime.task_id,
            name=bundle.spec.name,
            team=team,
            sha256=bundle.sha256,
            n_trials=n_trials,
            seed=spec.budget.seed,
            split_hash=runtime.data.split_hash,
            study_name="",
            mlflow_run_id="",
            status=Status.QUEUED,
            # The code is in place before a worker can see the row.
            before_commit=lambda new_id: self.records.keep_code(new_id, bundle),
        )
        self.store.update_submission(submission_id, study_name=study_name(spec, submission_id))
        return submission_id

    def cancel(self, submission_id: int) -> str:
        """Cancel a queued submission, or ask a running one's driver to stop it (it keeps its
        finished trials); returns the status now: ``cancelled`` or ``cancelling``."""
        row = self.store.submission(submission_id)
        if row is None:
            raise UserError(f"there is no submission {submission_id}")
        if row.status in Status.FINISHED:
            raise UserError(
                f"submission {submission_id} is already {row.status}; only a queued or running "
                "submission can be cancelled"
            )
        return self.store.request_cancel(submission_id)

    def work(
        self,
        *,
        exit_when_idle: bool = False,
        poll_s: float = 1.0,
        on_event: EventCallback | None = None,
        on_trial: QueueTrialCallback | None = None,
    ) -> int:
        """Run queued submissions: until the queue is empty with ``exit_when_idle``, else forever.

        The queue is first come, first served between tasks (the arena holds one task's pool at
        a time): the submissions at the head of the queue that share its first one's task start
        together, with any that arrive for that task while they run (up to the first queued
        submission of another task), and share the pool's workers fairly
        (:class:`medarena.tuning.FairShare`). Each one's dry run is its first job. The store is
        read at most every ``poll_s`` seconds for new submissions and cancellations. Returns how
        many submissions this call finished (scored, failed or cancelled). Interrupted (Ctrl-C,
        SIGTERM), it hands its running submissions back to the queue: the next worker continues
        each from its study, finished trials kept.
        """
        event = on_event or (lambda _id, _status, _detail: None)
        share: FairShare | None = None
        active: dict[int, tuple[Run, Sweep]] = {}
        ended = 0
        polled = -math.inf
        try:
            while True:
                if time.monotonic() - polled >= poll_s:
                    polled = time.monotonic()
                    if share is not None:
                        for submission_id in sorted(self.store.cancelling() & active.keys()):
                            run, sweep = active.pop(submission_id)
                            self.heartbeat.discard(submission_id)
                            share.cancel(sweep)
                            self.records.cancelled(run)
                            event(submission_id, Status.CANCELLED, CANCELLED)
                            ended += 1
                    stale = self.config.stale_after_s
                    for submission_id in self.store.requeue_stale(stale, exclude=active.keys()):
                        event(submission_id, Status.QUEUED, ORPHANED)
                    share = self._admit(share, active, on_trial=on_trial, event=event)
                if not active:
                    if exit_when_idle and not self.store.queued():
                        return ended
                    time.sleep(max(0.0, polled + poll_s - time.monotonic()))
                    continue
                assert share is not None
                for sweep in share.step(timeout=poll_s):
                    run, _ = active.pop(sweep.owner)
                    self._conclude(run, sweep, event)
                    self.heartbeat.discard(sweep.owner)
                    ended += 1
        except (KeyboardInterrupt, SystemExit):  # stopped (Ray turns SIGTERM into SystemExit)
            for submission_id, (run, _) in sorted(active.items()):
                self.heartbeat.discard(submission_id)
                if self.store.requeue(submission_id):
                    event(submission_id, Status.QUEUED, REQUEUED)
                else:  # cancel was asked
                    self.records.cancelled(run)
                    event(submission_id, Status.CANCELLED, CANCELLED)
            raise
        except BaseException:  # the platform failed: say what was left running
            for submission_id in sorted(active):
                event(
                    submission_id,
                    Status.RUNNING,
                    f"left running: the next worker takes it over once this one is silent, "
                    f"or `medarena resume {submission_id}` continues it now",
                )
            raise

    def _admit(
        self,
        share: FairShare | None,
        active: dict[int, tuple[Run, Sweep]],
        *,
        on_trial: QueueTrialCallback | None,
        event: EventCallback,
    ) -> FairShare | None:
        """Start the queued submissions at the head of the queue for the task that runs now (or
        for the head's task, when none runs); returns the fair share they run under."""
        from medarena.tuning import FairShare

        for row in self.store.queued():
            running = {run.runtime.task_id for run, _ in active.values()}
            if running and row.task_id not in running:
                break  # first come, first served between tasks
            if not self.store.claim(row.id):
                continue  # cancelled, or another worker took it
            self.heartbeat.add(row.id)
            event(row.id, Status.RUNNING, f"{row.team}/{row.name}")
            try:
                run, sweep = self._start_queued(row, on_trial)
            except Exception as exc:
                self.heartbeat.discard(row.id)
                message = error_text(exc)
                self.store.finish_submission(row.id, status=Status.FAILED, error=message)
                event(row.id, Status.FAILED, message)
                continue
            if share is None or share.pool is not run.pool:
                share = FairShare(run.pool)
            share.add(sweep)
            active[row.id] = (run, sweep)
        return share

    def _start_queued(
        self, row: SubmissionRow, on_trial: QueueTrialCallback | None
    ) -> tuple[Run, Sweep]:
        """Everything a claimed queued submission needs to run: pool, MLflow run, its sweep."""
        from medarena.tracking import Tracker
        from medarena.tuning import Sweep
        from medarena.tuning.sweep import base_config

        spec, bundle = self._kept_submission(row)
        runtime = self._runtime(spec)
        pool = self._pool(runtime, max_workers=ALL_WORKERS)
        config = base_config(bundle, spec, use_gpu=spec.budget.gpus_per_trial > 0)
        tags = self._tags(spec, runtime, bundle, row.team)
        tracker = Tracker(self.config.tracking_uri, experiment=f"medarena/{spec.name}")
        parent = row.mlflow_run_id or tracker.start_submission(
            name=f"{row.team}/{bundle.spec.name}",
            tags=tags,
            params={"n_trials": row.n_trials, "seed": row.seed, **spec.budget.model_dump()},
        )
        self.store.update_submission(row.id, mlflow_run_id=parent)
        run = Run(
            submission_id=row.id, spec=spec, runtime=runtime, pool=pool, bundle=bundle,
            config=config, n_trials=row.n_trials, team=row.team, tags=tags, tracker=tracker,
            parent=parent,
        )  # fmt: skip
        finished = self.records.recorded_trials(row.id)
        relay: TrialCallback | None = None
        if on_trial is not None:
            callback = on_trial

            def relay(record: TrialRecord, progress: SweepProgress) -> None:
                callback(row.id, record, progress)

        try:
            sweep = Sweep(
                bundle,
                spec,
                storage_url=self.config.study_url,
                study_name=study_name(spec, row.id),
                n_trials=row.n_trials,
                config=config,
                on_trial=self.records.trial_recorder(run, finished, relay),
                finished=finished,
                owner=row.id,
                team=row.team,
                dry_run=True,
            )
        except Exception as exc:
            self.records.failed(run, exc)
            raise
        return run, sweep

    def _conclude(self, run: Run, sweep: Sweep, event: EventCallback) -> None:
        """Score and record a queued submission whose sweep ended, or record its failure."""
        submission_id = run.submission_id
        try:
            if sweep.error is not None:
                raise sweep.error
            result = sweep.result()
            scores = score_best(run.spec, run.runtime.data, result.test_predictions)
        except Exception as exc:
            self.records.failed(run, exc)
            event(submission_id, Status.FAILED, error_text(exc))
            return
        self.records.scored(run, result, scores)
        primary = run.spec.metrics.primary
        event(submission_id, Status.SCORED, f"test {primary} {scores.metrics[primary].value:.4f}")

    def _sweep_and_score(
        self,
        run: Run,
        *,
        on_stage: StageCallback,
        on_trial: TrialCallback | None,
        finished: dict[int, TrialRecord],
    ) -> SubmissionResult:
        """Run (or continue) the sweep, score the best trial, and record everything."""
        from medarena.tuning import SweepCancelled, run_sweep

        submission_id = run.submission_id
        try:
            on_stage("sweep")
            sweep = run_sweep(
                run.pool,
                run.bundle,
                run.spec,
                storage_url=self.config.study_url,
                study_name=study_name(run.spec, submission_id),
                n_trials=run.n_trials,
                config=run.config,
                on_trial=self.records.trial_recorder(run, finished, on_trial),
                finished=finished,
                should_stop=lambda: self.store.cancel_requested(submission_id),
            )
            on_stage("scoring on the hidden test set")
            scores = score_best(run.spec, run.runtime.data, sweep.test_predictions)
        except SweepCancelled:
            self.records.cancelled(run)
            raise UserError(
                f"submission {submission_id} was cancelled; its finished trials are kept"
            ) from None
        except BaseException as exc:
            self.records.failed(run, exc)
            raise
        finally:
            self.heartbeat.discard(submission_id)
        return self.records.scored(run, sweep, scores)

    def leaderboard(self, task_name: str) -> pd.DataFrame:
        """The ranked leaderboard of a task (its newest version)."""
        from medarena.scoring.ranking import leaderboard

        spec = self.catalogue.get(task_name)
        metrics = [get_metric(name) for name in spec.metrics.names]
        task_id = self.store.task_id(task_name, spec.version)
        frame = self.store.scores_frame(task_id) if task_id is not None else None
        return leaderboard(frame, metrics=metrics)

    def close(self, *, stop_cluster: bool = True) -> None:
        """Stop the worker pools, and disconnect from Ray unless ``stop_cluster`` is false."""
        from medarena.execution import shutdown

        self._release_pools()
        self._tasks.clear()
        if self._heartbeat is not None:
            self._heartbeat.close()
            self._heartbeat = None
        if stop_cluster:
            shutdown()
