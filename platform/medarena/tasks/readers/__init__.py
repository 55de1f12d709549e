"""Dataset readers: each turns a task's ``dataset.params`` into a :class:`CaseArrays`.

A reader is a function ``(params, preprocessing) -> CaseArrays`` registered under the name that
task files use in ``dataset.reader``; it applies the task's preprocessing so that every case
comes out with the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medarena.exceptions import TaskSpecError
from medarena.tasks.readers._arrays import CaseArrays, Lesions, voxel_to_world, world_to_voxel
from medarena.tasks.readers.synthetic_ct import synthetic_ct_slices
from medarena.tasks.spec import PreprocessingSpec

Reader = Callable[[dict[str, Any], PreprocessingSpec], CaseArrays]

READERS: dict[str, Reader] = {
    "synthetic-ct-slices": synthetic_ct_slices,
}


def get_reader(name: str) -> Reader:
    """The reader called ``name``; an unknown one lists the known ones."""
    try:
        return READERS[name]
    except KeyError:
        known = ", ".join(sorted(READERS))
        raise TaskSpecError(f"unknown dataset reader {name!r}; known readers: {known}") from None


__all__ = [
    "READERS",
    "CaseArrays",
    "Lesions",
    "Reader",
    "get_reader",
    "voxel_to_world",
    "world_to_voxel",
]
