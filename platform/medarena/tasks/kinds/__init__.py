"""What differs between classification, segmentation and detection, in one place per kind.

A :class:`TaskKind` says what a model is trained against (``targets``), how its raw outputs
become predictions in the field's form (``decode``: probabilities, label maps, or candidates in
world millimetres), and how the task's metrics are computed on validation data during training
(``validation_scores``). Trial workers and the trusted scorer both use it, so a submission is
judged the same way during the search and on the hidden test set.
"""

from __future__ import annotations

from medarena.tasks.kinds._base import Candidates, Reference, TaskKind
from medarena.tasks.kinds.classification import CLASSIFICATION
from medarena.tasks.kinds.detection import DETECTION
from medarena.tasks.kinds.segmentation import SEGMENTATION

KINDS: dict[str, TaskKind] = {k.name: k for k in (CLASSIFICATION, SEGMENTATION, DETECTION)}


def get_kind(name: str) -> TaskKind:
    return KINDS[name]


__all__ = ["KINDS", "Candidates", "Reference", "TaskKind", "get_kind"]
