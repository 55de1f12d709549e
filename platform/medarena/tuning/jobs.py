"""The jobs a sweep gives its workers: the configuration shared by a submission's trials, each
trial's training seed, the dry run (one batch, to fail fast before any trial starts), and the rule
for jobs that must succeed once (the dry run, the test inference): run again while their worker
process dies, at most :data:`MAX_ATTEMPTS` times."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

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


class RetriedJob:
    """A job that must finish once: started (:meth:`start`) until a worker returns it alive, or
    until its worker process died ``max_attempts`` times.

    ``make(attempt)`` builds the job of each attempt (counted from 1). A driver starts the job,
    hands its result to :meth:`finish`, and starts it again while :meth:`start` gives one.
    """

    def __init__(
        self, make: Callable[[int], TrialJob], *, max_attempts: int = MAX_ATTEMPTS
    ) -> None:
        self._make, self.max_attempts = make, max_attempts
        self.state: Literal["todo", "running", "done"] = "todo"
        self.attempt = 0

    @property
    def done(self) -> bool:
        return self.state == "done"

    def start(self) -> TrialJob | None:
        """The next attempt's job, or ``None`` while one runs or once the job is done."""
        if self.state != "todo":
            return None
        self.state = "running"
        self.attempt += 1
        return self._make(self.attempt)

    def finish(self, result: TrialResult) -> bool:
        """Take the running attempt's result: ``True`` if it is final, ``False`` if its worker
        died and the job is to be started again."""
        if result.lost and result.job.attempt < self.max_attempts:
            self.state = "todo"
            return False
        self.state = "done"
        return True

    def skip(self) -> None:
        """Done without running: nothing needs it (no dry run asked, no trial to predict with)."""
        self.state = "done"

    def stopped(self) -> None:
        """The running attempt was stopped from outside (cancelled): start it again if asked."""
        self.state = "todo"


class DryRun(RetriedJob):
    """A submission's dry run: :meth:`finish` raises :class:`SubmissionError` if it failed, or
    :class:`PlatformError` if its worker process died in every attempt."""

    def __init__(
        self,
        bundle: SubmissionBundle,
        config: TrialConfig,
        *,
        owner: int = 0,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        super().__init__(
            lambda attempt: dry_run_job(bundle, config, owner=owner, attempt=attempt),
            max_attempts=max_attempts,
        )
        self.bundle = bundle

    def finish(self, result: TrialResult) -> bool:
        if not super().finish(result):
            return False
        if result.lost:
            raise PlatformError(
                f"{self.bundle.source}: the worker process of the dry run died in each of "
                f"{result.job.attempt} attempts; the last time: {result.outcome.error}"
            )
        if not result.outcome.ok:
            raise SubmissionError(
                f"{self.bundle.source}: the dry run of {self.bundle.spec.entry_point} failed:\n"
                f"{result.outcome.error}"
            )
        return True


def dry_run(
    pool: Pool,
    bundle: SubmissionBundle,
    config: TrialConfig,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> None:
    """Run the submission for one batch on a worker before anything is recorded: the
    :class:`DryRun` that :class:`~medarena.tuning.Sweep` steps as its first job, driven here
    alone. Call it on a pool that runs nothing else."""
    check = DryRun(bundle, config, max_attempts=max_attempts)
    while (job := check.start()) is not None:
        pool.submit(job)
        result = pool.next_result()
        assert result is not None
        check.finish(result)
