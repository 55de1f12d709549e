"""The platform in one process: run a submission end to end and read leaderboards.

This is the layer between the command line (or web app) and the engine's packages: it validates
a submission, prepares the task's data, runs the sweep on the worker pool, scores the best
trial's test predictions against the hidden labels, and records everything in the store and in
MLflow. A failure after the submission was recorded marks it failed; nothing is lost or left
half-written on the leaderboard.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medarena.exceptions import PlatformError, UserError
from medarena.metrics import get_metric
from medarena.submissions import load_submission
from medarena.tasks import TaskCatalogue, TaskData, TaskSpec, load_task_data

if TYPE_CHECKING:
    import pandas as pd

    from medarena.execution import WorkerPool
    from medarena.scoring.score import MetricValue
    from medarena.store import Store
    from medarena.submissions import SubmissionBundle
    from medarena.submissions.trial import TrialConfig
    from medarena.tracking import Tracker
    from medarena.tuning import SweepProgress, TrialRecord
    from medarena.tuning.sweep import TrialState

log = logging.getLogger(__name__)


def _study_name(spec: TaskSpec, submission_id: int) -> str:
    """The Optuna study of a submission (in the study database, never the leaderboard's)."""
    return f"{spec.name}-v{spec.version}/submission-{submission_id}"


StageCallback = Callable[[str], None]
TrialCallback = Callable[["TrialRecord", "SweepProgress"], None]


@dataclass(frozen=True)
class ArenaConfig:
    """Where the platform keeps its state; built from :class:`medarena.settings.Settings`."""

    catalogue_dir: Path
    cache_dir: Path
    db_url: str
    study_url: str
    tracking_uri: str
    ray_address: str | None = None
    num_cpus: int | None = None
    worker_start_timeout_s: float = 300.0
    artifacts_dir: Path | None = None
    """Kept per submission: its code and the best trial's test predictions (so that an
    interrupted sweep can be resumed and scored); default: ``artifacts`` next to the cache."""

    @property
    def artifacts(self) -> Path:
        return self.artifacts_dir or self.cache_dir.parent / "artifacts"


@dataclass(frozen=True)
class SubmissionResult:
    """What a finished submission produced."""

    submission_id: int
    task: str
    name: str
    team: str
    split_hash: str
    scores: dict[str, MetricValue]
    best_params: dict[str, Any]
    trials: list[TrialRecord]
    sweep_seconds: float
    workers: int
    mlflow_run_id: str

    @property
    def fit_seconds(self) -> float:
        return sum(t.outcome.fit_seconds for t in self.trials)

    @property
    def overhead_per_trial(self) -> float:
        """Worker-seconds per trial not spent in ``Trainer.fit``: scheduling, data, tracking."""
        return (self.sweep_seconds * self.workers - self.fit_seconds) / len(self.trials)


@dataclass(frozen=True)
class _Run:
    """What the sweep-and-score half of a submission needs (shared by submit and resume)."""

    submission_id: int
    spec: TaskSpec
    runtime: _TaskRuntime
    pool: WorkerPool
    bundle: SubmissionBundle
    config: TrialConfig
    n_trials: int
    team: str
    tags: dict[str, str]
    tracker: Tracker
    parent: str


@dataclass
class _TaskRuntime:
    data: TaskData
    task_id: int
    pool: WorkerPool | None = None


@dataclass
class Arena:
    """One process's platform: catalogue, leaderboard store, tracker, and a pool per task."""

    config: ArenaConfig
    _store: Store | None = field(default=None, init=False)
    _tasks: dict[str, _TaskRuntime] = field(default_factory=dict, init=False)

    @property
    def catalogue(self) -> TaskCatalogue:
        return TaskCatalogue(self.config.catalogue_dir)

    @property
    def store(self) -> Store:
        if self._store is None:
            from medarena.store import Store

            self._store = Store(self.config.db_url)
        return self._store

    def task_data(self, spec: TaskSpec) -> TaskData:
        """The task's arrays and split (cached on disk under the cache folder)."""
        return self._runtime(spec).data

    def _runtime(self, spec: TaskSpec) -> _TaskRuntime:
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
            runtime = self._tasks[spec.name] = _TaskRuntime(data=data, task_id=task_id)
        return runtime

    def _pool(self, runtime: _TaskRuntime, *, max_workers: int) -> WorkerPool:
        from medarena.execution import WorkerPool, connect

        if runtime.pool is None:
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
        """Validate, sweep, score and record one submission; see the module docstring."""
        from medarena.tracking import Tracker
        from medarena.tuning.sweep import base_config, dry_run

        stage = on_stage or (lambda _: None)
        spec = self.catalogue.get(task_name)
        stage("validating the submission")
        bundle = load_submission(path)
        n_trials = trials or spec.budget.trials
        if n_trials < 1:
            raise UserError(f"--trials must be at least 1, got {n_trials}")
        stage(f"preparing task {spec.name}")
        runtime = self._runtime(spec)
        stage("starting trial workers")
        pool = self._pool(runtime, max_workers=n_trials)
        config = base_config(bundle, spec, use_gpu=spec.budget.gpus_per_trial > 0)
        stage("dry run")
        dry_run(pool, bundle, config)

        data = runtime.data
        tags = {
            "task": spec.name,
            "task_version": str(spec.version),
            "split_hash": data.split_hash,
            "submission": bundle.spec.name,
            "submission_sha256": bundle.sha256,
            "team": team,
        }
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
        self.store.update_submission(submission_id, study_name=_study_name(spec, submission_id))
        self._keep_code(submission_id, bundle)
        run = _Run(
            submission_id=submission_id, spec=spec, runtime=runtime, pool=pool, bundle=bundle,
            config=config, n_trials=n_trials, team=team, tags=tags, tracker=tracker, parent=parent,
        )  # fmt: skip
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
        again with their own parameters; the result equals an uninterrupted run's on CPU.
        """
        from medarena.tracking import Tracker
        from medarena.tuning.sweep import base_config

        stage = on_stage or (lambda _: None)
        row = self.store.submission(submission_id)
        if row is None:
            raise UserError(f"there is no submission {submission_id}")
        if row.status not in ("running", "failed"):
            raise UserError(
                f"submission {submission_id} is {row.status}; only a running or interrupted "
                "(failed) submission can be resumed"
            )
        task_name, version = self.store.task_name_version(row.task_id)
        spec = self.catalogue.get(task_name)
        if spec.version != version:
            raise UserError(
                f"submission {submission_id} ran on {task_name} version {version}, but the "
                f"catalogue now has version {spec.version}; it cannot be resumed"
            )
        stage("loading the submitted code")
        bundle = load_submission(self._code_dir(submission_id))
        if bundle.sha256 != row.sha256:
            raise PlatformError(
                f"the kept code of submission {submission_id} hashes to {bundle.sha256[:12]}, "
                f"not {row.sha256[:12]}"
            )
        stage(f"preparing task {spec.name}")
        runtime = self._runtime(spec)
        stage("starting trial workers")
        pool = self._pool(runtime, max_workers=row.n_trials)
        config = base_config(bundle, spec, use_gpu=spec.budget.gpus_per_trial > 0)
        tags = {
            "task": spec.name,
            "task_version": str(spec.version),
            "split_hash": runtime.data.split_hash,
            "submission": bundle.spec.name,
            "submission_sha256": bundle.sha256,
            "team": row.team,
        }
        tracker = Tracker(self.config.tracking_uri, experiment=f"medarena/{spec.name}")
        self.store.update_submission(submission_id, status="running", error="", finished_at=None)
        run = _Run(
            submission_id=submission_id, spec=spec, runtime=runtime, pool=pool, bundle=bundle,
            config=config, n_trials=row.n_trials, team=row.team, tags=tags, tracker=tracker,
            parent=row.mlflow_run_id,
        )  # fmt: skip
        finished = self._recorded_trials(submission_id)
        return self._sweep_and_score(run, on_stage=stage, on_trial=on_trial, finished=finished)

    def _code_dir(self, submission_id: int) -> Path:
        return self.config.artifacts / str(submission_id) / "submission"

    def _predictions_path(self, submission_id: int, number: int) -> Path:
        return self.config.artifacts / str(submission_id) / f"trial-{number:04d}-test.pkl"

    def _keep_code(self, submission_id: int, bundle: SubmissionBundle) -> None:
        """Copy the submitted files, so that the submission can be resumed from them alone."""
        folder = self._code_dir(submission_id)
        for name, data in bundle.files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def _recorded_trials(self, submission_id: int) -> dict[int, TrialRecord]:
        """The trials a previous driver recorded, with the best one's test predictions."""
        from medarena.submissions.trial import TrialOutcome
        from medarena.tuning import TrialRecord

        records = {}
        for row in self.store.trials(submission_id):
            path = self._predictions_path(submission_id, row.number)
            outcome = TrialOutcome(
                ok=row.state == "complete",
                best_value=math.nan if row.value is None else row.value,
                best_epoch=row.best_epoch,
                epochs=row.epochs,
                fit_seconds=row.fit_seconds,
                error=row.error,
                test_predictions=pickle.loads(path.read_bytes()) if path.exists() else None,
            )
            state: TrialState = (
                "complete"
                if row.state == "complete"
                else "pruned"
                if row.state == "pruned"
                else "failed"
            )
            records[row.number] = TrialRecord(
                row.number,
                row.params,
                state,
                outcome,
                attempts=row.attempts,
            )
        return records

    def _sweep_and_score(
        self,
        run: _Run,
        *,
        on_stage: StageCallback,
        on_trial: TrialCallback | None,
        finished: dict[int, TrialRecord],
    ) -> SubmissionResult:
        """Run (or continue) the sweep, score the best trial, and record everything."""
        from medarena.tuning import run_sweep

        stage = on_stage
        spec, bundle, tracker, parent, tags = (
            run.spec,
            run.bundle,
            run.tracker,
            run.parent,
            run.tags,
        )
        submission_id, data, pool = run.submission_id, run.runtime.data, run.pool
        study_name = _study_name(spec, submission_id)
        primary = spec.metrics.primary
        kept: list[Path] = [
            p for n in finished if (p := self._predictions_path(submission_id, n)).exists()
        ]

        def record(trial: TrialRecord, progress: SweepProgress) -> None:
            # Durable before the study hears of it: predictions (of a new best), MLflow, store.
            outcome = trial.outcome
            best = progress.best_number == trial.number
            path = self._predictions_path(submission_id, trial.number)
            if best and outcome.test_predictions is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial")
                partial.write_bytes(pickle.dumps(outcome.test_predictions))
                partial.replace(path)
            tracker.log_trial(
                parent,
                number=trial.number,
                params=trial.params,
                history=outcome.history,
                summary={
                    f"best_val_{primary}": outcome.best_value,
                    "fit_seconds": outcome.fit_seconds,
                    "attempts": float(trial.attempts),
                },
                tags=tags,
                failed=trial.state == "failed",
            )
            self.store.add_trial(
                submission_id,
                number=trial.number,
                state=trial.state,
                params=trial.params,
                value=outcome.best_value,
                best_epoch=outcome.best_epoch,
                epochs=outcome.epochs,
                fit_seconds=outcome.fit_seconds,
                error=outcome.error,
                attempts=trial.attempts,
            )
            if best and path.exists():  # older bests' predictions are no longer needed
                for old in kept:
                    old.unlink(missing_ok=True)
                kept[:] = [path]
            if on_trial is not None:
                on_trial(trial, progress)

        try:
            stage("sweep")
            sweep = run_sweep(
                pool,
                bundle,
                spec,
                storage_url=self.config.study_url,
                study_name=study_name,
                n_trials=run.n_trials,
                config=run.config,
                on_trial=record,
                finished=finished,
            )
            stage("scoring on the hidden test set")
            scores = self._score(spec, data, sweep.best.outcome.test_predictions)
        except BaseException as exc:
            message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self.store.finish_submission(submission_id, status="failed", error=message)
            tracker.finish_submission(
                parent, metrics={}, tags={"error": message[:5000]}, failed=True
            )
            raise
        self.store.finish_submission(
            submission_id,
            status="scored",
            scores={name: s.as_tuple() for name, s in scores.items()},
            best_params=sweep.best.params,
            wall_seconds=sweep.wall_seconds,
        )
        test_metrics = {f"test_{k}": v.value for k, v in scores.items()}
        test_metrics["sweep_seconds"] = sweep.wall_seconds
        tracker.finish_submission(
            parent,
            metrics=test_metrics,
            tags={"best_trial": str(sweep.best.number), "study": study_name},
            failed=False,
        )
        return SubmissionResult(
            submission_id=submission_id,
            task=spec.name,
            name=bundle.spec.name,
            team=run.team,
            split_hash=data.split_hash,
            scores=scores,
            best_params=sweep.best.params,
            trials=sweep.trials,
            sweep_seconds=sweep.wall_seconds,
            workers=pool.size,
            mlflow_run_id=parent,
        )

    def _score(self, spec: TaskSpec, data: TaskData, predictions: Any) -> dict[str, MetricValue]:
        """The best model's test predictions against the hidden labels: the task's metrics."""
        from medarena.scoring.score import score_predictions

        if predictions is None:
            raise PlatformError("the best trial returned no test predictions")
        scores = score_predictions(
            spec.kind, predictions, data.reference("test"), conventions=spec.conventions(),
            seed=spec.budget.seed,
        )  # fmt: skip
        return {name: scores[name] for name in spec.metrics.names}

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
        if stop_cluster:
            shutdown()
