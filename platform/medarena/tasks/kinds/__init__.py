"""What differs between classification, segmentation and detection, in one place per kind.

A :class:`TaskKind` says

* what a model is trained against (``targets``) and which labels a dataset may hold
  (``check_labels``);
* its output contract: what the model's ``forward`` must return (``output_contract``: floats of
  the kind's shape, finite, and the messages participants read when they are not), and how raw
  outputs become predictions in the field's form (``decode_all``: probabilities, label maps, or
  candidates in world millimetres);
* how predictions are scored: the task's metrics on validation data during training
  (``validation_scores``), and the official scores (``score``: every metric of the kind with a
  bootstrap interval, and per-case values), built of pieces (``aggregates``, ``per_case``, …)
  that ``medarena evaluate`` calls on what it reads from prediction files.

Trial workers, the trusted scorer and the evaluation of files all use it, so a submission is
judged the same way during the search, on the hidden test set and as files. The kinds use
:mod:`medarena.metrics` and nothing above it: callers hand them arrays and read what they return.
"""

from __future__ import annotations

from typing import Any

from medarena.tasks.kinds._base import DECODE_BATCH, Candidates, Predictions, Reference, TaskKind
from medarena.tasks.kinds._contract import OutputContract, OutputContractError
from medarena.tasks.kinds._scores import MetricValue, Scores
from medarena.tasks.kinds.classification import CLASSIFICATION, Classification
from medarena.tasks.kinds.detection import DETECTION, Detection
from medarena.tasks.kinds.segmentation import SEGMENTATION, Segmentation

KINDS: dict[str, TaskKind[Any, Any]] = {
    k.name: k for k in (CLASSIFICATION, SEGMENTATION, DETECTION)
}


def get_kind(name: str) -> TaskKind[Any, Any]:
    """The kind called ``name`` (a task's ``kind``); ``KeyError`` for an unknown one."""
    return KINDS[name]


__all__ = [
    "CLASSIFICATION",
    "DECODE_BATCH",
    "DETECTION",
    "KINDS",
    "SEGMENTATION",
    "Candidates",
    "Classification",
    "Detection",
    "MetricValue",
    "OutputContract",
    "OutputContractError",
    "Predictions",
    "Reference",
    "Scores",
    "Segmentation",
    "TaskKind",
    "get_kind",
]
