"""A task's arrays divided by split, and the part of them that trial workers may see.

:class:`TaskData` lives in the trusted process and holds the test labels. :class:`WorkerData` is
what is shipped to workers: train and validation data with labels, and test *inputs* only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medarena.tasks.readers import CaseArrays, get_reader
from medarena.tasks.spec import TaskSpec
from medarena.tasks.splits import assign_splits, split_hash


@dataclass(frozen=True)
class WorkerData:
    """Everything a trial worker receives about a task. There is no field for test labels."""

    train_x: npt.NDArray[np.float32]
    train_y: npt.NDArray[np.int64]
    val_x: npt.NDArray[np.float32]
    val_y: npt.NDArray[np.int64]
    test_x: npt.NDArray[np.float32]
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


@dataclass(frozen=True)
class TaskData:
    """A task's cases with their fixed split. Only the scorer reads :attr:`test_labels`."""

    spec: TaskSpec
    arrays: CaseArrays
    split: npt.NDArray[np.str_]
    split_hash: str

    def _select(self, name: str) -> npt.NDArray[np.bool_]:
        return np.asarray(self.split == name)

    def size(self, name: str) -> int:
        return int(self._select(name).sum())

    def worker_data(self) -> WorkerData:
        train, val, test = (self._select(s) for s in ("train", "val", "test"))
        return WorkerData(
            train_x=self.arrays.images[train],
            train_y=self.arrays.labels[train],
            val_x=self.arrays.images[val],
            val_y=self.arrays.labels[val],
            test_x=self.arrays.images[test],
            num_classes=len(self.spec.classes),
        )

    @property
    def test_case_ids(self) -> npt.NDArray[np.str_]:
        return self.arrays.case_ids[self._select("test")]

    @property
    def test_labels(self) -> npt.NDArray[np.int64]:
        return self.arrays.labels[self._select("test")]


def _cache_path(spec: TaskSpec, cache_dir: Path) -> Path:
    key = json.dumps(spec.dataset.model_dump(mode="json"), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{spec.name}-v{spec.version}-{digest}.npz"


def _read_cached(spec: TaskSpec, cache_dir: Path | None) -> CaseArrays:
    """The reader's arrays, from the cache when present; the cache is written atomically."""
    if cache_dir is None:
        return get_reader(spec.dataset.reader)(spec.dataset.params, spec.preprocessing)
    path = _cache_path(spec, cache_dir)
    if path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return CaseArrays(
                case_ids=f["case_ids"], groups=f["groups"], images=f["images"], labels=f["labels"]
            )
    arrays = get_reader(spec.dataset.reader)(spec.dataset.params, spec.preprocessing)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                case_ids=arrays.case_ids,
                groups=arrays.groups,
                images=arrays.images,
                labels=arrays.labels,
            )
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return arrays


def load_task_data(spec: TaskSpec, *, cache_dir: Path | None = None) -> TaskData:
    """Build (or read from ``cache_dir``) a task's arrays and assign its fixed split."""
    arrays = _read_cached(spec, cache_dir)
    split = assign_splits(arrays, spec.split)
    return TaskData(spec=spec, arrays=arrays, split=split, split_hash=split_hash(arrays, split))
