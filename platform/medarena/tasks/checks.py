"""Checks of a dataset's labels against the task's declared ``classes``, before anything is cached.

Readers know files, not tasks; this is where the two meet. An empty class is an error, not a
warning: a class without a case (classification) or a label that no case contains
(segmentation) makes its per-class metrics undefined on every split, which is a mistake in the
task or in the data that should stop the task before anyone trains on it.
"""

from __future__ import annotations

import numpy as np

from medarena.exceptions import DatasetError
from medarena.tasks.readers import CaseArrays
from medarena.tasks.spec import TaskSpec


def check_labels(arrays: CaseArrays, spec: TaskSpec) -> None:
    """Raise :class:`DatasetError` unless every label is a declared class and no class is empty.

    Detection tasks are not checked here: their readers check each finding against its volume.
    """
    if spec.kind == "detection":
        return
    classes = spec.classes
    what = "class index" if spec.kind == "classification" else "label value"
    flat = arrays.labels.reshape(len(arrays.labels), -1)
    out_of_range = (flat < 0) | (flat >= len(classes))
    if out_of_range.any():
        case = int(np.flatnonzero(out_of_range.any(axis=1))[0])
        value = int(flat[case][out_of_range[case]][0])
        raise DatasetError(
            f"case {str(arrays.case_ids[case])!r}: {what} {value} is not one of the task's "
            f"{len(classes)} classes {classes} (0..{len(classes) - 1}); add the class to "
            "'classes' in task.yaml or fix the labels"
        )
    present = np.bincount(flat.ravel().astype(np.intp), minlength=len(classes)) > 0
    if spec.kind == "segmentation":
        present[0] = True  # a dataset of full-foreground crops still has a background class
    empty = [f"{k} {classes[k]!r}" for k in np.flatnonzero(~present)]
    if empty:
        where = "no case has it" if spec.kind == "classification" else "no label map contains it"
        raise DatasetError(
            f"task {spec.name!r}: class(es) {', '.join(empty)}: {where}; remove it from "
            "'classes' in task.yaml or check the data"
        )
