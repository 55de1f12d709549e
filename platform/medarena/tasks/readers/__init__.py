"""Dataset readers: each turns a task's ``dataset.params`` into a :class:`CaseArrays`.

A reader is a function ``(params, preprocessing) -> CaseArrays`` registered under the name that
task files use in ``dataset.reader``; it applies the task's preprocessing so that every case
comes out with the same shape.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from medarena.exceptions import TaskSpecError
from medarena.tasks.readers._arrays import CaseArrays, Lesions, voxel_to_world, world_to_voxel
from medarena.tasks.readers.synthetic_ct import synthetic_ct_organs, synthetic_ct_slices
from medarena.tasks.readers.synthetic_volumes import synthetic_ct_volumes, synthetic_lung_nodules
from medarena.tasks.spec import PreprocessingSpec

Reader = Callable[[dict[str, Any], PreprocessingSpec], CaseArrays]


def _lazy(module: str, name: str) -> Reader:
    """A reader imported on first call: file formats pull in SimpleITK and pandas (about 1 s)."""

    def read(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
        reader: Reader = getattr(importlib.import_module(module), name)
        return reader(params, preprocessing)

    read.__name__ = read.__qualname__ = name
    read.__doc__ = f"``{module}.{name}``, imported when first called."
    return read


READERS: dict[str, Reader] = {
    "synthetic-ct-slices": synthetic_ct_slices,
    "synthetic-ct-organs": synthetic_ct_organs,
    "synthetic-ct-volumes": synthetic_ct_volumes,
    "synthetic-lung-nodules": synthetic_lung_nodules,
    "medmnist": _lazy("medarena.tasks.readers.medmnist", "medmnist"),
    "decathlon": _lazy("medarena.tasks.readers.decathlon", "decathlon"),
    "luna16": _lazy("medarena.tasks.readers.luna16", "luna16"),
    "dicom": _lazy("medarena.tasks.readers.dicom", "dicom"),
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
