"""Execution on Ray: the only package that imports ray.

Long-lived trial workers (Ray actors) receive a task's data once through the object store and run
many jobs each; each worker is a trusted supervisor that runs the submitted code in sandboxes
(:mod:`medarena.execution.supervisor`, no ray there). The driver hands them configurations and
collects plain results. See :class:`WorkerPool`.
"""

from __future__ import annotations

from medarena.execution.cluster import ClusterInfo, connect, shutdown
from medarena.execution.pool import Service, TrialJob, TrialResult, WorkerPool

__all__ = ["ClusterInfo", "Service", "TrialJob", "TrialResult", "WorkerPool", "connect", "shutdown"]
