"""Scores with bootstrap intervals from in-memory predictions and ground truth.

The platform's scorer (which alone holds the test labels) calls :func:`score_predictions`;
``medarena evaluate`` (:mod:`.evaluation`) reads prediction files first and calls the same
pieces. What a score is for each kind (its metrics, the seeded case-level, or scan-level for
detection, bootstrap interval of every aggregate, the per-case values) is the kind's own:
:meth:`medarena.tasks.kinds.TaskKind.score`.
"""

from __future__ import annotations

from typing import Any

from medarena.metrics import (
    ClassificationConventions,
    DetectionConventions,
    SegmentationConventions,
)
from medarena.tasks.kinds import MetricValue, Reference, Scores, TaskKind, get_kind

Conventions = ClassificationConventions | SegmentationConventions | DetectionConventions

__all__ = ["Conventions", "MetricValue", "Scores", "score_predictions"]


def score_predictions(
    kind: str | TaskKind[Any, Any],
    predictions: Any,
    reference: Reference,
    *,
    conventions: Conventions | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Scores:
    """A trained model's predictions of a task's cases, scored against their ground truth.

    ``kind``: the task's kind or its name; ``conventions`` must be the kind's (its defaults
    when ``None``).
    """
    task_kind = get_kind(kind) if isinstance(kind, str) else kind
    return task_kind.score(
        predictions, reference, conventions=conventions, n_bootstrap=n_bootstrap, seed=seed
    )
