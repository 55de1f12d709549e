"""The check of a dataset's labels against the task's declared classes, worded per kind, and
:class:`ClassLabelKind`, the base of the kinds whose labels are class indices."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from medarena.exceptions import DatasetError
from medarena.tasks.kinds._base import C, P, Reference, TaskKind


def check_class_values(
    labels: npt.NDArray[np.integer],
    *,
    case_ids: npt.NDArray[np.str_],
    classes: list[str],
    task: str,
    what: str,
    where: str,
    background: bool,
) -> None:
    """Raise :class:`DatasetError` unless every label is a declared class and no class is empty.

    ``what`` names one label ("class index"), ``where`` says why a class is empty ("no case has
    it"); with ``background``, class 0 counts as present even when no case holds it.
    """
    flat = labels.reshape(len(labels), -1)
    out_of_range = (flat < 0) | (flat >= len(classes))
    if out_of_range.any():
        case = int(np.flatnonzero(out_of_range.any(axis=1))[0])
        value = int(flat[case][out_of_range[case]][0])
        raise DatasetError(
            f"case {str(case_ids[case])!r}: {what} {value} is not one of the task's "
            f"{len(classes)} classes {classes} (0..{len(classes) - 1}); add the class to "
            "'classes' in task.yaml or fix the labels"
        )
    present = np.bincount(flat.ravel().astype(np.intp), minlength=len(classes)) > 0
    if background:
        present[0] = True  # a dataset of full-foreground crops still has a background class
    empty = [f"{k} {classes[k]!r}" for k in np.flatnonzero(~present)]
    if empty:
        raise DatasetError(
            f"task {task!r}: class(es) {', '.join(empty)}: {where}; remove it from "
            "'classes' in task.yaml or check the data"
        )


class ClassLabelKind(TaskKind[P, C]):
    """A kind whose labels are class indices, per case or per voxel (classification,
    segmentation): the model is trained against the labels themselves as ``int64``, returns one
    channel per class, and a dataset's labels are checked with :func:`check_class_values`,
    worded by the class attributes below."""

    label_what: ClassVar[str]
    """One label in the check's messages ("class index")."""
    label_where: ClassVar[str]
    """Why a class is empty ("no case has it")."""
    label_background: ClassVar[bool]
    """Whether class 0 is background, present even when no case holds it."""

    def targets(self, reference: Reference, *, image_shape: tuple[int, ...]) -> npt.NDArray[Any]:
        return reference.labels.astype(np.int64)

    def check_labels(
        self,
        labels: npt.NDArray[np.integer],
        *,
        case_ids: npt.NDArray[np.str_],
        classes: list[str],
        task: str,
    ) -> None:
        check_class_values(
            labels, case_ids=case_ids, classes=classes, task=task, what=self.label_what,
            where=self.label_where, background=self.label_background,
        )  # fmt: skip

    def output_channels(self, num_classes: int) -> int:
        return num_classes
