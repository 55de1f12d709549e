"""Connecting to a Ray cluster, or starting a local one on free ports."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ray

from medarena.exceptions import PlatformError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterInfo:
    """The cluster the driver is attached to."""

    address: str
    cpus: float
    gpus: float


def connect(address: str | None = None, *, num_cpus: int | None = None) -> ClusterInfo:
    """Attach to the Ray cluster at ``address``, or start a local one when it is ``None``.

    A local cluster lets Ray choose free ports (its usual head port, 6379, is often Redis's).
    Calling it again while connected returns the same cluster.
    """
    if not ray.is_initialized():
        try:
            ray.init(
                address=address,
                num_cpus=num_cpus if address is None else None,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise PlatformError(
                f"could not connect to the Ray cluster at {address!r}: {exc}"
            ) from exc
    resources = ray.cluster_resources()
    return ClusterInfo(
        address=ray.get_runtime_context().gcs_address,
        cpus=float(resources.get("CPU", 0.0)),
        gpus=float(resources.get("GPU", 0.0)),
    )


def shutdown() -> None:
    """Disconnect from the cluster (and stop it if it was started here)."""
    if ray.is_initialized():
        ray.shutdown()
