"""A pool of long-lived trial workers on Ray.

Each worker is a trusted :class:`~medarena.execution.supervisor.Supervisor`: it never imports
submitted code, but runs it in sandboxes it starts ahead (importing torch in a sandbox costs
seconds; a trial of a small model costs less). A pool starts its workers once per task, puts the
task's :class:`WorkerData` into the object store once, and then feeds the workers one job at a
time. Submitted code is shipped with each job as bytes; no shared filesystem is needed. Ray only
carries objects built by trusted code: jobs from the driver, outcomes from the supervisors.

Resources: each worker is an actor with the task's ``num_cpus`` and ``num_gpus`` (fractions of a
GPU included, so several small trials share one device); Ray packs the actors onto the cluster's
free slots. Faults: a worker whose process dies (killed, out of memory, a crash in native code)
is replaced by a new actor with the same data, and the job it was running comes back as a
:class:`TrialResult` with ``lost=True`` so that the caller can run it again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import ray

from medarena.exceptions import PlatformError
from medarena.execution.base import TrialJob, TrialResult
from medarena.execution.supervisor import TrialOutcome
from medarena.sandbox import SandboxLimits
from medarena.tasks.data import WorkerData

log = logging.getLogger(__name__)

S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")


class Service(Generic[S]):
    """A small stateful object of class ``cls`` living in its own Ray actor, callable from the
    driver and from trial workers alike (the handle pickles). Used for the pruning board; a
    :class:`~medarena.execution.base.ServiceHandle`.

    Methods are named by the class's own function, so that type checkers see the call::

        board = Service(PruningBoard, "maximize", 2, 1)
        board.call(PruningBoard.finish, number, value)
    """

    def __init__(self, cls: Callable[P, S], *args: P.args, **kwargs: P.kwargs) -> None:
        self._cls = cls
        self._actor: Any = ray.remote(cls).options(num_cpus=0).remote(*args, **kwargs)

    def call(self, method: Callable[Concatenate[S, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``method`` (a function of the service's class) in the actor; return its result."""
        name = method.__name__
        if getattr(self._cls, name, None) is not method:
            raise TypeError(f"{method.__qualname__} is not a method of {self._cls!r}")
        try:
            result: R = ray.get(getattr(self._actor, name).remote(*args, **kwargs))
        except ray.exceptions.RayError as exc:
            raise PlatformError(f"service call {name} failed: {exc}") from exc
        return result

    def stop(self) -> None:
        ray.kill(self._actor)


class _TrialWorker:
    """A Ray actor: a trusted supervisor holding one task's data (see :class:`Supervisor`)."""

    def __init__(
        self, data: WorkerData, num_threads: int, limits: SandboxLimits, allow_unsandboxed: bool
    ) -> None:
        from medarena.execution.supervisor import Supervisor

        self.supervisor = Supervisor(
            data,
            limits=limits,
            allow_unsandboxed=allow_unsandboxed,
            threads=max(1, num_threads),
            gpu=bool(ray.get_gpu_ids()),
        )

    def run(self, job: TrialJob) -> TrialOutcome:
        if job.weights is not None:
            return self.supervisor.predict(job.config, job.files, job.weights)
        return self.supervisor.run(job)

    def warm(self) -> str:
        """Wait for the spare sandbox; returns the Ray node (proof that the worker is up)."""
        self.supervisor.warm()
        return self.node_id()

    def close(self) -> None:
        self.supervisor.close()

    def node_id(self) -> str:
        """The Ray node this worker runs on (it also proves the worker has started)."""
        return str(ray.get_runtime_context().get_node_id())

    def memory(self) -> dict[str, int]:
        """This worker process's memory in bytes, from ``/proc/self/smaps_rollup`` (Linux):
        ``rss``, ``shared`` (mapped from elsewhere: the object store's task data) and
        ``private`` (the worker's own)."""
        fields: dict[str, int] = {}
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        return {
            "rss": fields["Rss"],
            "shared": fields["Shared_Clean"] + fields["Shared_Dirty"],
            "private": fields["Private_Clean"] + fields["Private_Dirty"],
        }


class WorkerPool:
    """``size`` trial workers for one task, each with ``cpus`` CPUs and ``gpus`` GPUs: the
    :class:`~medarena.execution.base.Pool` on Ray.

    Not thread safe: one driver thread submits jobs and collects results.
    """

    def __init__(
        self,
        data: WorkerData,
        *,
        size: int,
        cpus: float = 1.0,
        gpus: float = 0.0,
        limits: SandboxLimits | None = None,
        allow_unsandboxed: bool = False,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        if size < 1:
            raise PlatformError("a worker pool needs at least one worker")
        options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus, "max_restarts": 0}
        if runtime_env:
            options["runtime_env"] = runtime_env
        self._actor = ray.remote(_TrialWorker).options(**options)
        self._threads = max(1, round(cpus))
        self._limits = limits or SandboxLimits()
        self._allow_unsandboxed = allow_unsandboxed
        self._data_ref = ray.put(data)
        self.size = size
        self.cpus = cpus
        self.gpus = gpus
        self.replaced = 0
        self._workers: list[Any] = [self._start() for _ in range(size)]
        self._nodes: list[str] = [""] * size
        self._idle = list(range(size))
        self._running: dict[Any, tuple[TrialJob, int]] = {}

    def _start(self) -> Any:
        return self._actor.remote(
            self._data_ref, self._threads, self._limits, self._allow_unsandboxed
        )

    @staticmethod
    def plan_size(*, cluster_cpus: float, cluster_gpus: float, cpus: float, gpus: float) -> int:
        """How many workers of the given shape fit on the cluster at once."""
        fits = int(cluster_cpus // cpus) if cpus > 0 else 1 << 30
        if gpus > 0:
            fits = min(fits, int(round(cluster_gpus / gpus, 6)))
        return max(fits, 0)

    def ready(self, *, timeout: float | None = None) -> None:
        """Block until every worker has started (data mapped, a spare sandbox started).

        Raises :class:`PlatformError` if they are not up within ``timeout`` seconds, which is
        what happens when the cluster has no free slot of the requested shape.
        """
        try:
            self._nodes = ray.get([w.warm.remote() for w in self._workers], timeout=timeout)
        except ray.exceptions.GetTimeoutError as exc:
            free = ray.available_resources()
            raise PlatformError(
                f"{len(self._workers)} trial workers did not start within {timeout:.0f} s; "
                f"free cluster resources: CPU {free.get('CPU', 0)}, GPU {free.get('GPU', 0)}"
            ) from exc
        except ray.exceptions.RayActorError as exc:
            cause = getattr(exc, "cause", None) or exc
            raise PlatformError(f"trial workers failed to start: {cause}") from exc
        except ray.exceptions.RayError as exc:
            raise PlatformError(f"trial workers failed to start: {exc}") from exc

    def memory(self) -> list[dict[str, int]]:
        """Each worker's memory (see ``_TrialWorker.memory``); Linux only."""
        return list(ray.get([w.memory.remote() for w in self._workers]))

    @property
    def node_ids(self) -> list[str]:
        """The Ray node of each worker (known once :meth:`ready` returned)."""
        return list(self._nodes)

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

    def next_result(self, timeout: float | None = None) -> TrialResult | None:
        """Wait for the next job to finish; call only while :attr:`running` is positive.

        Returns ``None`` if nothing finished within ``timeout`` seconds (``None``: wait).
        """
        done, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if not done:
            return None
        job, worker = self._running.pop(done[0])
        try:
            outcome: TrialOutcome = ray.get(done[0])
        except ray.exceptions.RayActorError as exc:
            # Ray's text names the node's address and the process: the operator's, not public.
            log.warning("trial worker %d on node %s died: %s", worker, self._nodes[worker], exc)
            self._replace(worker)
            died = f"the trial's worker process died ({type(exc).__name__})"
            return TrialResult(
                job=job,
                outcome=TrialOutcome(ok=False, error=died),
                worker=worker,
                node_id=self._nodes[worker],
                lost=True,
            )
        except ray.exceptions.RayError as exc:
            self._idle.append(worker)
            raise PlatformError(f"trial worker {worker} failed: {exc}") from exc
        self._idle.append(worker)
        return TrialResult(job=job, outcome=outcome, worker=worker, node_id=self._nodes[worker])

    def _replace(self, *workers: int) -> None:
        """Start new actors in place of dead ones; they become idle once they answer (started
        together, so replacing several costs one start-up time)."""
        for worker in workers:
            ray.kill(self._workers[worker], no_restart=True)
            self._workers[worker] = self._start()
            self.replaced += 1
        try:
            nodes = ray.get([self._workers[w].node_id.remote() for w in workers])
        except ray.exceptions.RayError as exc:
            raise PlatformError(f"could not replace dead trial workers {workers}: {exc}") from exc
        for worker, node in zip(workers, nodes, strict=True):
            self._nodes[worker] = node
            self._idle.append(worker)

    def service(self, cls: Callable[P, S], /, *args: P.args, **kwargs: P.kwargs) -> Service[S]:
        """Start ``cls(*args, **kwargs)`` in an actor of its own, which jobs can call."""
        return Service(cls, *args, **kwargs)

    def cancel(self, where: Callable[[TrialJob], bool] | None = None) -> list[TrialJob]:
        """Stop the running jobs (those for which ``where`` is true; default all), replacing
        their workers; returns the jobs that were stopped."""
        jobs, workers = [], []
        for ref, (job, worker) in list(self._running.items()):
            if where is None or where(job):
                del self._running[ref]
                jobs.append(job)
                workers.append(worker)
        if workers:
            self._replace(*workers)
        return jobs

    def shutdown(self) -> None:
        """Close the supervisors (their sandboxes and files), then stop the actors."""
        # A dead or stuck worker: killing it below ends its sandboxes too.
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get([w.close.remote() for w in self._workers], timeout=30)
        for worker in self._workers:
            ray.kill(worker)
        self._workers = []
