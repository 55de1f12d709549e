"""One MLflow experiment per task, a parent run per submission and a nested run per trial.

Runs are written from the trusted process after each trial returns, with batched calls, so
workers need no access to the tracking server and a trial costs one round trip to it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from medarena.exceptions import PlatformError
from medarena.schema_lock import schema_lock

log = logging.getLogger(__name__)
_MAX_PARAM_LENGTH = 6000


def _params(values: dict[str, Any]) -> list[Param]:
    return [Param(k, str(v)[:_MAX_PARAM_LENGTH]) for k, v in sorted(values.items())]


def _tags(values: dict[str, str]) -> list[RunTag]:
    return [RunTag(k, v) for k, v in sorted(values.items())]


def _metrics(values: dict[str, float], *, step: int = 0) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in values.items() if not math.isnan(v)]


def _artifact_location(tracking_uri: str) -> str | None:
    """Artifacts (the scored weights) of a local SQLite store go beside it, in the home, not
    into ``./mlruns`` of whatever folder the command ran in; a server decides for itself."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()


class Tracker:
    """Writes a submission's runs to the MLflow tracking store at ``tracking_uri``."""

    def __init__(self, tracking_uri: str, *, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        try:
            with schema_lock(tracking_uri):  # MLflow creates its tables on first use
                self.client = MlflowClient(tracking_uri)
                found = self.client.get_experiment_by_name(experiment)
                self.experiment_id = (
                    found.experiment_id
                    if found
                    else self.client.create_experiment(
                        experiment, artifact_location=_artifact_location(tracking_uri)
                    )
                )
        except MlflowException as exc:
            raise PlatformError(f"cannot open the MLflow store at {tracking_uri}: {exc}") from exc

    def start_submission(self, *, name: str, tags: dict[str, str], params: dict[str, Any]) -> str:
        """Create the parent run of a submission; returns its run id."""
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.client.log_batch(run.info.run_id, params=_params(params))
        return str(run.info.run_id)

    def log_trial(
        self,
        parent_run_id: str,
        *,
        number: int,
        params: dict[str, Any],
        history: list[dict[str, float]],
        summary: dict[str, float],
        tags: dict[str, str],
        failed: bool,
    ) -> str:
        """A nested run with the trial's parameters, per-epoch curves and summary values."""
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{number:03d}",
            tags={**tags, "mlflow.parentRunId": parent_run_id, "trial": str(number)},
        )
        run_id = str(run.info.run_id)
        metrics = _metrics(summary)
        for row in history:
            epoch = int(row["epoch"])
            metrics += _metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
        self.client.log_batch(run_id, metrics=metrics, params=_params(params))
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
        return run_id

    def discard_unrecorded_trials(self, parent_run_id: str, recorded: set[int]) -> list[int]:
        """Delete (MLflow's soft delete) the nested runs of trials outside ``recorded``: a
        driver killed between logging a trial and storing it left them, and the resumed sweep
        trains those trials again, so each trial keeps one run. Returns the discarded numbers."""
        children = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
            max_results=10_000,
        )
        discarded = []
        for run in children:
            number = run.data.tags.get("trial", "")
            if number.isdigit() and int(number) not in recorded:
                self.client.delete_run(run.info.run_id)
                discarded.append(int(number))
        if discarded:
            log.info("discarded the unrecorded trials %s of run %s", discarded, parent_run_id)
        return sorted(discarded)

    def finish_submission(
        self,
        run_id: str,
        *,
        metrics: dict[str, float],
        tags: dict[str, str],
        failed: bool,
        artifacts: tuple[Path, ...] = (),
    ) -> None:
        """Record the final test metrics and files (the scored model's weights), and close the
        parent run."""
        self.client.log_batch(run_id, metrics=_metrics(metrics), tags=_tags(tags))
        for path in artifacts:
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, status="FAILED" if failed else "FINISHED")
