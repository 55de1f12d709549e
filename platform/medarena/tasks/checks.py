"""Checks of a dataset's labels against the task's declared ``classes``, before anything is cached.

Readers know files, not tasks; this is where the two meet, and the task's kind says what its
labels may be (:meth:`~medarena.tasks.kinds.TaskKind.check_labels`). An empty class is an
error, not a warning: a class without a case (classification) or a label that no case contains
(segmentation) makes its per-class metrics undefined on every split, which is a mistake in the
task or in the data that should stop the task before anyone trains on it.
"""

from __future__ import annotations

from medarena.tasks.kinds import get_kind
from medarena.tasks.readers import CaseArrays
from medarena.tasks.spec import TaskSpec


def check_labels(arrays: CaseArrays, spec: TaskSpec) -> None:
    """Raise :class:`~medarena.exceptions.DatasetError` unless every label is a declared class
    and no class is empty.

    Detection tasks are not checked here: their readers check each finding against its volume.
    """
    get_kind(spec.kind).check_labels(
        arrays.labels, case_ids=arrays.case_ids, classes=spec.classes, task=spec.name
    )
