"""A pool of long-lived trial workers on Ray.

Starting a Python process that imports torch and Lightning costs seconds; a trial of a small
model costs less. So a pool starts its workers once per task, puts the task's :class:`WorkerData`
into the object store once (every worker maps the same arrays, zero-copy), and then feeds the
workers one trial at a time. Submitted code is shipped with each job as bytes and imported once
per worker, keyed by its hash; no shared filesystem is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray

from medarena.exceptions import PlatformError
from medarena.submissions.trial import TrialConfig, TrialOutcome
from medarena.tasks.data import WorkerData


@dataclass(frozen=True)
class TrialJob:
    """One unit of work: a configuration of a submission, with the submission's files."""

    key: int
    config: TrialConfig
    files: dict[str, bytes]
    dry_run: bool = False


@dataclass(frozen=True)
class TrialResult:
    """A finished job: its outcome, or for a dry run the error text ('' when it passed)."""

    job: TrialJob
    outcome: TrialOutcome
    worker: int


class _TrialWorker:
    """A Ray actor that holds one task's data and runs trials of any submission on it."""

    def __init__(self, data: WorkerData, num_threads: int) -> None:
        import torch

        from medarena.submissions.trial import SubmissionCode, quiet_lightning

        torch.set_num_threads(max(1, num_threads))
        quiet_lightning()
        self.data = data
        self.code = SubmissionCode()

    def run(self, job: TrialJob) -> TrialOutcome:
        from medarena.submissions.trial import dry_run, run_trial, user_traceback

        config = job.config
        try:
            model_cls = self.code.load_class(
                config.submission_sha256, job.files, config.entry_file, config.entry_class
            )
        except Exception as exc:
            return TrialOutcome(ok=False, error=user_traceback(exc))
        if job.dry_run:
            error = dry_run(model_cls, self.data, config)
            return TrialOutcome(ok=not error, error=error)
        return run_trial(model_cls, self.data, config)

    def ping(self) -> bool:
        return True


class WorkerPool:
    """``size`` trial workers for one task, each with ``cpus`` CPUs and ``gpus`` GPUs."""

    def __init__(
        self, data: WorkerData, *, size: int, cpus: float = 1.0, gpus: float = 0.0
    ) -> None:
        if size < 1:
            raise PlatformError("a worker pool needs at least one worker")
        actor = ray.remote(_TrialWorker).options(num_cpus=cpus, num_gpus=gpus)
        data_ref = ray.put(data)
        self.size = size
        self._workers: list[Any] = [actor.remote(data_ref, round(cpus) or 1) for _ in range(size)]
        self._idle = list(range(size))
        self._running: dict[Any, tuple[TrialJob, int]] = {}

    @staticmethod
    def plan_size(*, cluster_cpus: float, cluster_gpus: float, cpus: float, gpus: float) -> int:
        """How many workers of the given shape fit on the cluster at once."""
        fits = int(cluster_cpus // cpus) if cpus > 0 else 1 << 30
        if gpus > 0:
            fits = min(fits, int(cluster_gpus // gpus))
        return max(fits, 0)

    def ready(self) -> None:
        """Block until every worker has started (imports done, data mapped)."""
        ray.get([w.ping.remote() for w in self._workers])

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, job: TrialJob) -> None:
        """Start ``job`` on an idle worker; call only while :attr:`idle` is positive."""
        worker = self._idle.pop()
        ref = self._workers[worker].run.remote(job)
        self._running[ref] = (job, worker)

    def next_result(self) -> TrialResult:
        """Wait for the next job to finish; call only while :attr:`running` is positive."""
        done, _ = ray.wait(list(self._running), num_returns=1)
        job, worker = self._running.pop(done[0])
        self._idle.append(worker)
        try:
            outcome: TrialOutcome = ray.get(done[0])
        except ray.exceptions.RayError as exc:
            raise PlatformError(f"trial worker {worker} failed: {exc}") from exc
        return TrialResult(job=job, outcome=outcome, worker=worker)

    def shutdown(self) -> None:
        for worker in self._workers:
            ray.kill(worker)
        self._workers = []
