"""What a trial worker does to itself before it runs submitted code.

Submitted code runs in trial workers only, and those must not hold the platform's secrets: the
worker drops every environment variable that could carry a credential or point at the
platform's state (database URLs, the tracking server, cloud keys) before it imports anything of
a submission. Resource limits and network isolation belong to the cluster (containers, network
policies); see infra/.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

_PREFIXES = ("MEDARENA_", "MLFLOW_", "AWS_", "AZURE_", "GOOGLE_", "GCP_", "DATABASE", "PG", "HF_")
_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "CREDENTIAL", "API_KEY", "ACCESS_KEY", "_DSN")
# Ray's own variables are needed by the worker process itself and carry no platform secret.
_KEEP_PREFIXES = ("RAY_",)


def is_sensitive(name: str) -> bool:
    """Whether an environment variable may carry a credential or the platform's state."""
    upper = name.upper()
    if upper.startswith(_KEEP_PREFIXES):
        return False
    return upper.startswith(_PREFIXES) or any(marker in upper for marker in _MARKERS)


def scrub_environment(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove the sensitive variables from ``environ`` (the process's by default); return their
    names, sorted."""
    env = os.environ if environ is None else environ
    removed = sorted(name for name in env if is_sensitive(name))
    for name in removed:
        del env[name]
    return removed
