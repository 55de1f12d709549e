"""The tasks an arena has prepared: each one's data and store id, and its worker pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medarena.arena._run import ArenaConfig, TaskRuntime
from medarena.exceptions import UserError
from medarena.tasks import TaskSpec, load_task_data

if TYPE_CHECKING:
    from medarena.execution import WorkerPool
    from medarena.store import Store


class TaskPools:
    """Loads a task's data once per process, and holds one task's worker pool at a time (another
    task's idle pool would hold the cluster's slots)."""

    def __init__(self, config: ArenaConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self._tasks: dict[str, TaskRuntime] = {}
        self.connected = False
        """Whether a pool was started, so that this process is connected to Ray."""

    def runtime(self, spec: TaskSpec) -> TaskRuntime:
        """The task's data (from the cache when prepared before) and its id in the store."""
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

    def pool(self, runtime: TaskRuntime, *, max_workers: int) -> WorkerPool:
        """The task's worker pool, started (and its workers ready) on first use."""
        from medarena.execution import WorkerPool, connect
        from medarena.sandbox import check_runtime_paths

        if runtime.pool is None:
            config = self.config
            check_runtime_paths([config.cache_dir, config.artifacts, config.catalogue_dir])
            self.release()
            budget = runtime.data.spec.budget
            cluster = connect(config.ray_address, num_cpus=config.num_cpus)
            self.connected = True
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
                allow_unsandboxed=config.allow_unsandboxed,
            )
            runtime.pool.ready(timeout=config.worker_start_timeout_s)
        return runtime.pool

    @property
    def pools(self) -> list[WorkerPool]:
        """The worker pools running now (at most one)."""
        return [r.pool for r in self._tasks.values() if r.pool is not None]

    def release(self) -> None:
        """Stop every worker pool; the tasks' data stay loaded."""
        for runtime in self._tasks.values():
            if runtime.pool is not None:
                runtime.pool.shutdown()
                runtime.pool = None

    def close(self) -> None:
        self.release()
        self._tasks.clear()
