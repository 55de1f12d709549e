"""Reading learning curves back from MLflow, for the web leaderboard.

Independent of :class:`~medarena.tracking.Tracker` (which writes): mlflow is imported inside the
function, so a caller that never draws curves never pays for importing it.
"""

from __future__ import annotations

import math

from medarena.exceptions import PlatformError

Curve = list[tuple[int, float]]


def trial_curves(tracking_uri: str, parent_run_id: str, *, metric: str) -> dict[int, Curve]:
    """Per trial number, the ``(epoch, value)`` history of ``metric`` (e.g. ``val_auc``) in the
    nested runs of a submission's parent run; trials without the metric are left out."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        client = MlflowClient(tracking_uri)
        parent = client.get_run(parent_run_id)
        children = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
            max_results=10_000,
        )
        curves: dict[int, Curve] = {}
        for run in children:
            number = run.data.tags.get("trial")
            if number is None or not number.isdigit():
                continue
            history = client.get_metric_history(run.info.run_id, metric)
            points = sorted((int(m.step), float(m.value)) for m in history)
            points = [(step, value) for step, value in points if math.isfinite(value)]
            if points:
                curves[int(number)] = points
    except MlflowException as exc:
        raise PlatformError(
            f"cannot read the runs of {parent_run_id} from MLflow at {tracking_uri}: {exc}"
        ) from exc
    return dict(sorted(curves.items()))
