"""The jobs a sweep gives its workers: the configuration shared by a submission's trials, each
trial's training seed, and the dry run (one batch, to fail fast before any trial starts)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import optuna

from medarena.exceptions import PlatformError, SubmissionError
from medarena.execution import Pool, TrialJob, TrialResult
from medarena.execution.supervisor import TrialConfig
from medarena.submissions import SubmissionBundle
from medarena.tasks import TaskSpec
from medarena.tuning.space import to_distributions

MAX_ATTEMPTS = 3
"""How many times a job (a trial, a dry run, an inference) is started when its worker process
keeps dying."""


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
        time_limit_s=task.budget.time_limit_s,
    )


def trial_seed(config: TrialConfig, number: int) -> int:
    """The training seed of trial ``number``."""
    return config.seed + number


def dry_run_job(
    bundle: SubmissionBundle, config: TrialConfig, *, owner: int = 0, attempt: int = 1
) -> TrialJob:
    """The job that runs the submission for one batch (see :func:`dry_run`); ``attempt`` counts
    from 1, as a trial's does.

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
    return TrialJob(
        key=-1,
        config=replace(config, params=params),
        files=bundle.files,
        dry_run=True,
        attempt=attempt,
        owner=owner,
    )


def check_dry_run(bundle: SubmissionBundle, result: TrialResult) -> None:
    """Raise :class:`SubmissionError` if the dry run's ``result`` says it failed, or
    :class:`PlatformError` if its worker process died (sandboxed code cannot cause that)."""
    if result.lost:
        raise PlatformError(
            f"{bundle.source}: the worker process of the dry run died in each of "
            f"{result.job.attempt} attempts; the last time: {result.outcome.error}"
        )
    if not result.outcome.ok:
        raise SubmissionError(
            f"{bundle.source}: the dry run of {bundle.spec.entry_point} failed:\n"
            f"{result.outcome.error}"
        )


def dry_run(
    pool: Pool,
    bundle: SubmissionBundle,
    config: TrialConfig,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> None:
    """Run the submission for one batch on a worker; raise :class:`SubmissionError` if it fails.

    A dry run whose worker process died runs again, ``max_attempts`` times at most (then
    :class:`PlatformError`). Call it on a pool that runs nothing else.
    """
    attempt = 0
    while True:
        attempt += 1
        pool.submit(dry_run_job(bundle, config, attempt=attempt))
        result = pool.next_result()
        assert result is not None
        if not result.lost or attempt >= max_attempts:
            check_dry_run(bundle, result)
            return
