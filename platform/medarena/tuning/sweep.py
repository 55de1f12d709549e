"""The sweep: an Optuna random search, seeded and stored in SQL, run on a worker pool.

The driver asks the study for configurations with ask/tell and keeps every worker busy: as soon as
a trial finishes, its result is told to the study and the next configuration is started. The
random sampler draws in ask order, so the same seed gives the same configurations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import optuna

from medarena.exceptions import SubmissionError, TrialError
from medarena.execution import TrialJob, WorkerPool
from medarena.metrics import get_metric
from medarena.submissions import SubmissionBundle
from medarena.submissions.trial import TrialConfig, TrialOutcome
from medarena.tasks import TaskSpec
from medarena.tuning.space import to_distributions


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial as the platform records it."""

    number: int
    params: dict[str, Any]
    state: Literal["complete", "failed"]
    outcome: TrialOutcome

    @property
    def value(self) -> float:
        return self.outcome.best_value


@dataclass
class SweepProgress:
    """Where a sweep stands; passed to the progress callback after every trial."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    best_value: float = math.nan
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass(frozen=True)
class SweepResult:
    """Every trial of a sweep and the best one."""

    study_name: str
    trials: list[TrialRecord]
    best: TrialRecord
    wall_seconds: float


def base_config(bundle: SubmissionBundle, task: TaskSpec, *, use_gpu: bool) -> TrialConfig:
    """The trial configuration shared by all trials of a submission on a task."""
    return TrialConfig(
        submission_sha256=bundle.sha256,
        entry_file=bundle.spec.entry_point.file,
        entry_class=bundle.spec.entry_point.cls,
        params={},
        metrics=tuple(task.metrics.names),
        max_epochs=task.budget.max_epochs,
        patience=task.budget.patience,
        batch_size=task.budget.batch_size,
        seed=task.budget.seed,
        use_gpu=use_gpu,
    )


def dry_run(pool: WorkerPool, bundle: SubmissionBundle, config: TrialConfig) -> None:
    """Run the submission for one batch on a worker; raise :class:`SubmissionError` if it fails.

    Uses the middle of every search-space range so that the check does not consume a sample of
    the seeded sampler.
    """
    params: dict[str, Any] = {}
    for name, dist in to_distributions(bundle.spec.search_space).items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            params[name] = dist.choices[0]
        else:
            assert isinstance(
                dist, optuna.distributions.FloatDistribution | optuna.distributions.IntDistribution
            )
            mid = math.sqrt(dist.low * dist.high) if dist.log else (dist.low + dist.high) / 2
            params[name] = (
                round(mid) if isinstance(dist, optuna.distributions.IntDistribution) else mid
            )
    job = TrialJob(key=-1, config=replace(config, params=params), files=bundle.files, dry_run=True)
    pool.submit(job)
    result = pool.next_result()
    if not result.outcome.ok:
        raise SubmissionError(
            f"{bundle.source}: the dry run of {bundle.spec.entry_point} failed:\n"
            f"{result.outcome.error}"
        )


def run_sweep(
    pool: WorkerPool,
    bundle: SubmissionBundle,
    task: TaskSpec,
    *,
    storage_url: str,
    study_name: str,
    n_trials: int,
    config: TrialConfig,
    on_trial: Callable[[TrialRecord, SweepProgress], None] | None = None,
) -> SweepResult:
    """Search ``n_trials`` configurations with a seeded random sampler; return every trial.

    Raises :class:`TrialError` with the first error if every trial failed.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction: Literal["maximize", "minimize"] = (
        "maximize" if get_metric(task.metrics.primary).higher_is_better else "minimize"
    )
    study = optuna.create_study(
        study_name=study_name,
        storage=storage_url,
        sampler=optuna.samplers.RandomSampler(seed=task.budget.seed),
        direction=direction,
        load_if_exists=True,
    )
    distributions = to_distributions(bundle.spec.search_space)
    info = get_metric(task.metrics.primary)
    progress = SweepProgress(total=n_trials)
    records: list[TrialRecord] = []
    pending: dict[int, optuna.Trial] = {}
    asked = 0

    def top_up() -> None:
        nonlocal asked
        while asked < n_trials and pool.idle:
            trial = study.ask(distributions)
            pending[trial.number] = trial
            job_config = replace(config, params=trial.params, seed=config.seed + trial.number)
            pool.submit(TrialJob(key=trial.number, config=job_config, files=bundle.files))
            asked += 1

    top_up()
    while pool.running:
        result = pool.next_result()
        trial = pending.pop(result.job.key)
        outcome = result.outcome
        if outcome.ok:
            study.tell(trial, outcome.best_value)
            record = TrialRecord(trial.number, trial.params, "complete", outcome)
            if math.isnan(progress.best_value) or info.better(
                outcome.best_value, progress.best_value
            ):
                progress.best_value = outcome.best_value
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            record = TrialRecord(trial.number, trial.params, "failed", outcome)
            progress.failed += 1
        top_up()  # keep the worker busy before recording the finished trial
        records.append(record)
        progress.done += 1
        progress.running = pool.running
        if on_trial is not None:
            on_trial(record, progress)

    completed = [r for r in records if r.state == "complete"]
    if not completed:
        raise TrialError(f"every trial failed; the first error was:\n{records[0].outcome.error}")
    best = completed[0]
    for record in completed[1:]:
        if info.better(record.value, best.value):
            best = record
    records.sort(key=lambda r: r.number)
    return SweepResult(
        study_name=study_name, trials=records, best=best, wall_seconds=progress.elapsed
    )
