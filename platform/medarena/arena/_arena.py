"""The :class:`Arena`: submit, resume, queue and cancel submissions, read leaderboards.

A thin facade over the arena's services: the prepared tasks and their pools
(:class:`~medarena.arena._tasks.TaskPools`), the records a submission leaves
(:class:`~medarena.arena._records.Records`), the heartbeat of the submissions this process
drives, and the queue's scheduler (:mod:`medarena.arena.scheduler`). Submit, resume and the
queue all prepare a run with :meth:`Arena.prepare_run`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from medarena.arena._heartbeat import Heartbeat
from medarena.arena._records import Records, score_best
from medarena.arena._run import (
    CANCELLED,
    ArenaConfig,
    EventCallback,
    QueueTrialCallback,
    Run,
    StageCallback,
    SubmissionResult,
    TrialCallback,
    error_text,
    study_name,
)
from medarena.arena._tasks import TaskPools
from medarena.exceptions import PlatformError, UserError
from medarena.store import Status
from medarena.submissions import load_submission
from medarena.tasks import TaskCatalogue, TaskSpec

if TYPE_CHECKING:
    import pandas as pd

    from medarena.scoring.boards import Board
    from medarena.store import Store, StoredSubmission
    from medarena.submissions import SubmissionBundle
    from medarena.tuning import TrialRecord

log = logging.getLogger(__name__)


@dataclass
class Arena:
    """One process's platform: catalogue, leaderboard store, tracker, and a pool per task."""

    config: ArenaConfig
    _store: Store | None = field(default=None, init=False)
    _heartbeat: Heartbeat | None = field(default=None, init=False)
    _tasks: TaskPools | None = field(default=None, init=False)

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

    @property
    def tasks(self) -> TaskPools:
        """The tasks this process prepared, and the worker pool of the one that runs."""
        if self._tasks is None:
            self._tasks = TaskPools(self.config, self.store)
        return self._tasks

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
        """Validate, dry-run, sweep, score and record one submission, in this process at once
        (next to any queue worker). A failed dry run records nothing. ``medarena cancel`` stops
        it like a queued one, and it then raises :class:`UserError`."""
        from medarena.tuning.jobs import base_config, dry_run

        stage = on_stage or (lambda _: None)
        spec = self.catalogue.get(task_name)
        stage("validating the submission")
        bundle = load_submission(path)
        n_trials = self._n_trials(spec, trials)
        _check_team(team)
        stage(f"preparing task {spec.name}")
        runtime = self.tasks.runtime(spec)
        stage("starting trial workers")
        pool = self.tasks.pool(runtime, max_workers=n_trials)
        stage("dry run")
        dry_run(pool, bundle, base_config(bundle, spec, use_gpu=spec.budget.gpus_per_trial > 0))

        submission_id = self._create(spec, bundle, n_trials=n_trials, team=team, queued=False)
        self.heartbeat.add(submission_id)
        row = self._row(submission_id)
        try:
            run = self.prepare_run(row, spec, bundle, max_workers=n_trials)
        except BaseException as exc:
            self.heartbeat.discard(submission_id)
            self.store.finish_submission(submission_id, status=Status.FAILED, error=error_text(exc))
            raise
        return self._sweep_and_score(run, on_stage=stage, on_trial=on_trial, finished={})

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
        stage = on_stage or (lambda _: None)
        row = self._row(submission_id)
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
        spec, bundle = self.kept_submission(row)
        stage(f"preparing task {spec.name}")
        self.tasks.runtime(spec)
        stage("starting trial workers")
        run = self.prepare_run(row, spec, bundle, max_workers=row.n_trials)
        if not self.store.restart(submission_id):  # cancelled or finished meanwhile
            self.heartbeat.discard(submission_id)
            now = self.store.submission(submission_id)
            raise UserError(
                f"submission {submission_id} became {now.status if now else 'unknown'} while it "
                "was being resumed; it is not resumed"
            )
        finished = self.records.recorded_trials(submission_id)
        return self._sweep_and_score(run, on_stage=stage, on_trial=on_trial, finished=finished)

    def prepare_run(
        self, row: StoredSubmission, spec: TaskSpec, bundle: SubmissionBundle, *, max_workers: int
    ) -> Run:
        """Everything a stored submission's sweep needs: the task's pool, the trial
        configuration, the tags, and its MLflow parent run (started here if it has none)."""
        from medarena.tracking import Tracker
        from medarena.tuning.jobs import base_config

        runtime = self.tasks.runtime(spec)
        pool = self.tasks.pool(runtime, max_workers=max_workers)
        tags = {
            "task": spec.name,
            "task_version": str(spec.version),
            "split_hash": runtime.data.split_hash,
            "submission": bundle.spec.name,
            "submission_sha256": bundle.sha256,
            "team": row.team,
        }
        tracker = Tracker(self.config.tracking_uri, experiment=f"medarena/{spec.name}")
        parent = row.mlflow_run_id
        if not parent:
            parent = tracker.start_submission(
                name=f"{row.team}/{bundle.spec.name}",
                tags=tags,
                params={"n_trials": row.n_trials, "seed": row.seed, **spec.budget.model_dump()},
            )
            self.store.set_mlflow_run_id(row.id, parent)
        return Run(
            submission_id=row.id, spec=spec, runtime=runtime, pool=pool, bundle=bundle,
            config=base_config(bundle, spec, use_gpu=spec.budget.gpus_per_trial > 0),
            n_trials=row.n_trials, team=row.team, tags=tags, tracker=tracker, parent=parent,
        )  # fmt: skip

    def kept_submission(self, row: StoredSubmission) -> tuple[TaskSpec, SubmissionBundle]:
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

    def enqueue(
        self, path: Path, task_name: str, *, trials: int | None = None, team: str = "anonymous"
    ) -> int:
        """Validate a submission (statically: its dry run happens when it starts) and queue it;
        returns its id. A worker (:meth:`work`, ``medarena worker``) runs it later."""
        spec = self.catalogue.get(task_name)
        bundle = load_submission(path)
        n_trials = self._n_trials(spec, trials)
        _check_team(team)
        return self._create(spec, bundle, n_trials=n_trials, team=team, queued=True)

    def cancel(self, submission_id: int) -> Status:
        """Cancel a queued submission, or ask a running one's driver to stop it (it keeps its
        finished trials); returns the status now: ``cancelled`` or ``cancelling``."""
        row = self._row(submission_id)
        if row.status.finished:
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
        """Run queued submissions (see :mod:`medarena.arena.scheduler`): until the queue is
        empty with ``exit_when_idle``, else forever. Returns how many submissions this call
        finished (scored, failed or cancelled)."""
        from medarena.arena.scheduler import QueueScheduler

        scheduler = QueueScheduler(self, on_event=on_event, on_trial=on_trial)
        return scheduler.run(exit_when_idle=exit_when_idle, poll_s=poll_s)

    def board(self, task_name: str) -> Board:
        """The leaderboard of a task (its newest version), as the web app loads it too."""
        from medarena.scoring.boards import load_board

        return load_board(self.store, self.catalogue.get(task_name))

    def leaderboard(self, task_name: str) -> pd.DataFrame:
        """The ranked leaderboard of a task (its newest version), as a frame."""
        return self.board(task_name).frame

    def close(self, *, stop_cluster: bool = True) -> None:
        """Stop the worker pools, and disconnect from Ray (when this arena connected) unless
        ``stop_cluster`` is false."""
        connected = self._tasks is not None and self._tasks.connected
        if self._tasks is not None:
            self._tasks.close()
            self._tasks = None
        if self._heartbeat is not None:
            self._heartbeat.close()
            self._heartbeat = None
        if self._store is not None:
            self._store.engine.dispose()
            self._store = None
        if stop_cluster and connected:
            from medarena.execution import shutdown

            shutdown()

    # Helpers.

    def _row(self, submission_id: int) -> StoredSubmission:
        row = self.store.submission(submission_id)
        if row is None:
            raise UserError(f"there is no submission {submission_id}")
        return row

    @staticmethod
    def _n_trials(spec: TaskSpec, trials: int | None) -> int:
        n_trials = trials or spec.budget.trials
        if n_trials < 1:
            raise UserError(f"--trials must be at least 1, got {n_trials}")
        return n_trials

    def _create(
        self, spec: TaskSpec, bundle: SubmissionBundle, *, n_trials: int, team: str, queued: bool
    ) -> int:
        """Record a new submission (running, or queued for a worker) with its kept code; its
        MLflow run is started when it runs (:meth:`prepare_run`)."""
        runtime = self.tasks.runtime(spec)
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
            status=Status.QUEUED if queued else Status.RUNNING,
            # The code is in place before a worker can see the row.
            before_commit=lambda new_id: self.records.keep_code(new_id, bundle),
        )
        self.store.set_study_name(submission_id, study_name(spec, submission_id))
        return submission_id

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


def _check_team(team: str) -> None:
    """A team name goes into the store, MLflow's run name (``team/submission``), the pages and
    the CSV board (where a cell starting with ``=``, ``+``, ``-`` or ``@`` is a formula)."""
    if (
        not 1 <= len(team) <= 64
        or not team.isprintable()
        or not team[0].isalnum()
        or team != team.rstrip()
        or "/" in team
    ):
        raise UserError(
            f"--team {team!r}: a team name is 1 to 64 printable characters that start with a "
            "letter or digit, without '/' and without spaces at the end"
        )
