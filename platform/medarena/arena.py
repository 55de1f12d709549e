"""The platform in one process: run a submission end to end and read leaderboards.

This is the layer between the command line (or web app) and the engine's packages: it validates
a submission, prepares the task's data, runs the sweep on the worker pool, scores the best
trial's test predictions against the hidden labels, and records everything in the store and in
MLflow. A failure after the submission was recorded marks it failed; nothing is lost or left
half-written on the leaderboard.
"""

from __future__ import annotations

import logging
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
    from medarena.tuning import SweepProgress, TrialRecord

log = logging.getLogger(__name__)

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
            runtime.pool.ready()
        return runtime.pool

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
        from medarena.tuning import run_sweep
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
        study_name = f"{spec.name}-v{spec.version}/submission-{submission_id}"
        primary = spec.metrics.primary

        def record(trial: TrialRecord, progress: SweepProgress) -> None:
            outcome = trial.outcome
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
            )
            tracker.log_trial(
                parent,
                number=trial.number,
                params=trial.params,
                history=outcome.history,
                summary={
                    f"best_val_{primary}": outcome.best_value,
                    "fit_seconds": outcome.fit_seconds,
                },
                tags=tags,
                failed=trial.state == "failed",
            )
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
                n_trials=n_trials,
                config=config,
                on_trial=record,
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
            team=team,
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

        for runtime in self._tasks.values():
            if runtime.pool is not None:
                runtime.pool.shutdown()
        self._tasks.clear()
        if stop_cluster:
            shutdown()
