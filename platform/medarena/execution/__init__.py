"""Execution on Ray: the only package that imports ray.

Long-lived trial workers (Ray actors) receive a task's data once through the object store and run
many jobs each; each worker is a trusted supervisor that runs the submitted code in sandboxes
(:mod:`medarena.execution.supervisor`, no ray there). The driver hands them configurations and
collects plain results. See :class:`WorkerPool`, and :mod:`medarena.execution.base` for what any
pool is (the jobs, the results, the contract), which needs no Ray.

Ray is imported when one of its names is first used (:class:`WorkerPool`, :class:`Service`,
:func:`connect`, :class:`ClusterInfo`; :func:`shutdown` only if Ray was imported), so that code
which only handles jobs and results (the sweeps, in tests with ``medarena.testing.FakePool``)
does not pay for it.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from medarena.execution.base import (
    LocalService,
    Pool,
    ServiceFactory,
    ServiceHandle,
    TrialJob,
    TrialResult,
)

if TYPE_CHECKING:
    from medarena.execution.cluster import ClusterInfo, connect
    from medarena.execution.pool import Service, WorkerPool

__all__ = [
    "ClusterInfo",
    "LocalService",
    "Pool",
    "Service",
    "ServiceFactory",
    "ServiceHandle",
    "TrialJob",
    "TrialResult",
    "WorkerPool",
    "connect",
    "shutdown",
]

_ON_RAY = {
    "ClusterInfo": "cluster",
    "connect": "cluster",
    "Service": "pool",
    "WorkerPool": "pool",
}


def shutdown() -> None:
    """Disconnect from the cluster (and stop it if it was started here). A process that never
    imported Ray has nothing to disconnect: Ray is not imported for that."""
    if "ray" in sys.modules:
        from medarena.execution.cluster import shutdown as disconnect

        disconnect()


def __getattr__(name: str) -> Any:
    """The names that need Ray, imported on first use."""
    module = _ON_RAY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
