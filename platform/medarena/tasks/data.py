"""A task's arrays divided by split, and the part of them that trial workers may see.

:class:`TaskData` lives in the trusted process and holds the test labels. :class:`WorkerData` is
what is shipped to workers: training inputs and targets, validation inputs and ground truth, and
test *inputs* with their geometry only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.tasks.checks import check_labels
from medarena.tasks.kinds import Reference, get_kind
from medarena.tasks.readers import CaseArrays, Lesions, get_reader
from medarena.tasks.spec import TaskSpec
from medarena.tasks.splits import SPLITS, assign_splits, split_hash

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class WorkerData:
    """Everything a trial worker receives about a task. There is no field for test labels."""

    kind: str
    num_classes: int
    train_x: npt.NDArray[np.float32]
    train_y: npt.NDArray[Any]
    val_x: npt.NDArray[np.float32]
    val_reference: Reference
    test_x: npt.NDArray[np.float32]
    test_spacing: FloatArray
    test_origin: FloatArray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def val_spacing(self) -> FloatArray:
        return self.val_reference.spacing

    @property
    def val_origin(self) -> FloatArray:
        return self.val_reference.origin


@dataclass(frozen=True)
class TaskData:
    """A task's cases with their fixed split. Only the scorer reads :meth:`reference` of test."""

    spec: TaskSpec
    arrays: CaseArrays
    split: npt.NDArray[np.str_]
    split_hash: str

    def indices(self, name: str) -> npt.NDArray[np.intp]:
        return np.flatnonzero(self.split == name)

    def size(self, name: str) -> int:
        return len(self.indices(name))

    def reference(self, name: str) -> Reference:
        """The ground truth of one split (``"test"`` only in the trusted scorer)."""
        idx = self.indices(name)
        a = self.arrays
        lesions = a.lesions.subset(idx) if a.lesions is not None else None
        return Reference(a.labels[idx], a.spacing[idx], a.origin[idx], lesions)

    def worker_data(self) -> WorkerData:
        kind = get_kind(self.spec.kind)
        a = self.arrays
        train, val, test = (self.indices(s) for s in SPLITS)
        image_shape = tuple(a.images.shape[2:])
        return WorkerData(
            kind=self.spec.kind,
            num_classes=len(self.spec.classes),
            train_x=a.images[train],
            train_y=kind.targets(self.reference("train"), image_shape=image_shape),
            val_x=a.images[val],
            val_reference=self.reference("val"),
            test_x=a.images[test],
            test_spacing=a.spacing[test],
            test_origin=a.origin[test],
        )

    @property
    def test_case_ids(self) -> npt.NDArray[np.str_]:
        return self.arrays.case_ids[self.indices("test")]


def _cache_path(spec: TaskSpec, cache_dir: Path) -> Path:
    key = json.dumps(
        [spec.dataset.model_dump(mode="json"), spec.preprocessing.model_dump(mode="json")],
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{spec.name}-v{spec.version}-{digest}.npz"


def _flatten(arrays: CaseArrays) -> dict[str, npt.NDArray[Any]]:
    """Every array field of ``arrays`` (and of its findings, prefixed ``lesions.``)."""
    out: dict[str, npt.NDArray[Any]] = {}
    for f in dataclasses.fields(arrays):
        value = getattr(arrays, f.name)
        if isinstance(value, Lesions):
            for g in dataclasses.fields(value):
                out[f"lesions.{g.name}"] = getattr(value, g.name)
        elif isinstance(value, np.ndarray):
            out[f.name] = value
    return out


def _unflatten(stored: dict[str, npt.NDArray[Any]]) -> CaseArrays:
    lesion_fields = {k.removeprefix("lesions."): v for k, v in stored.items() if "." in k}
    fields = {k: v for k, v in stored.items() if "." not in k}
    lesions = Lesions(**lesion_fields) if lesion_fields else None
    return CaseArrays(**fields, lesions=lesions)


def _read(spec: TaskSpec) -> CaseArrays:
    """Run the task's reader and check its labels against the task's classes."""
    arrays = get_reader(spec.dataset.reader)(spec.dataset.params, spec.preprocessing)
    check_labels(arrays, spec)
    return arrays


def _read_cached(spec: TaskSpec, cache_dir: Path | None) -> CaseArrays:
    """The reader's arrays, from the cache when present; the cache is written atomically."""
    if cache_dir is None:
        return _read(spec)
    path = _cache_path(spec, cache_dir)
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return _unflatten({k: f[k] for k in f.files})
    arrays = _read(spec)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **_flatten(arrays))  # type: ignore[arg-type]
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return arrays


def load_task_data(spec: TaskSpec, *, cache_dir: Path | None = None) -> TaskData:
    """Build (or read from ``cache_dir``) a task's arrays and assign its fixed split."""
    arrays = _read_cached(spec, cache_dir)
    split = assign_splits(arrays, spec.split)
    return TaskData(spec=spec, arrays=arrays, split=split, split_hash=split_hash(arrays, split))
