"""Synthetic data, fixed splits and split hashes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from medarena.tasks import TaskCatalogue, load_task_data
from medarena.tasks.readers import CaseArrays
from medarena.tasks.readers.synthetic_ct import synthetic_ct_slices
from medarena.tasks.spec import PreprocessingSpec, SplitSpec
from medarena.tasks.splits import assign_splits, split_hash


def test_synthetic_slices_are_deterministic_and_balanced() -> None:
    a = synthetic_ct_slices({"n_cases": 200, "image_size": 24, "seed": 5}, PreprocessingSpec())
    b = synthetic_ct_slices({"n_cases": 200, "image_size": 24, "seed": 5}, PreprocessingSpec())
    c = synthetic_ct_slices({"n_cases": 200, "image_size": 24, "seed": 6}, PreprocessingSpec())
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (200, 1, 24, 24)
    assert a.images.min() >= 0.0 and a.images.max() <= 1.0
    assert np.bincount(a.labels).tolist() == [50, 50, 50, 50]


def test_classes_differ_where_the_task_says() -> None:
    """Cysts darken the liver and hyperdense lesions brighten it, relative to normal slices."""
    d = synthetic_ct_slices(
        {"n_cases": 800, "image_size": 32, "seed": 1, "noise_hu": 0}, PreprocessingSpec()
    )
    mean = [d.images[d.labels == k].mean() for k in range(4)]
    assert mean[1] < mean[0] < mean[2]
    assert mean[3] < mean[0]


def _arrays(n: int, patients: int) -> CaseArrays:
    rng = np.random.default_rng(0)
    return CaseArrays(
        case_ids=np.array([f"c{i}" for i in range(n)]),
        groups=np.array([f"p{i % patients}" for i in range(n)]),
        images=rng.random((n, 1, 4, 4), dtype=np.float32),
        labels=(np.arange(n) % patients % 3).astype(np.int64),
    )


def test_split_is_fixed_stratified_and_grouped() -> None:
    arrays = _arrays(300, patients=100)
    spec = SplitSpec(train=0.6, val=0.2, test=0.2, seed=3)
    split = assign_splits(arrays, spec)
    np.testing.assert_array_equal(split, assign_splits(arrays, spec))
    for patient in np.unique(arrays.groups):
        assert len(set(split[arrays.groups == patient])) == 1
    for label in range(3):
        counts = {
            s: int(np.sum((split == s) & (arrays.labels == label)))
            for s in ("train", "val", "test")
        }
        assert all(counts.values()), counts
    assert not np.array_equal(split, assign_splits(arrays, SplitSpec(seed=4)))


def test_split_hash_changes_with_assignment_and_content() -> None:
    arrays = _arrays(60, patients=60)
    split = assign_splits(arrays, SplitSpec(seed=0))
    base = split_hash(arrays, split)
    assert base == split_hash(arrays, split.copy())
    assert base != split_hash(arrays, assign_splits(arrays, SplitSpec(seed=1)))
    images = arrays.images.copy()
    images[7, 0, 0, 0] += 1.0
    assert base != split_hash(dataclasses.replace(arrays, images=images), split)
    labels = arrays.labels.copy()
    labels[7] = (labels[7] + 1) % 3
    assert base != split_hash(dataclasses.replace(arrays, labels=labels), split)


def test_worker_data_has_no_test_labels(catalogue: Path, tmp_path: Path) -> None:
    spec = TaskCatalogue(catalogue).get("tiny-ct")
    data = load_task_data(spec, cache_dir=tmp_path / "cache")
    worker = data.worker_data()
    names = {f.name for f in dataclasses.fields(worker)}
    assert names == {
        "kind", "num_classes", "train_x", "train_y", "val_x", "val_reference", "test_x",
        "test_spacing", "test_origin",
    }  # fmt: skip
    assert len(worker.test_x) == data.size("test") == len(data.reference("test"))
    assert len(worker.train_y) + len(worker.val_reference) + len(worker.test_x) == 600


def test_cache_round_trip_gives_the_same_hash(catalogue: Path, tmp_path: Path) -> None:
    spec = TaskCatalogue(catalogue).get("tiny-ct")
    first = load_task_data(spec, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert not list((tmp_path / "cache").glob("*.tmp"))
    second = load_task_data(spec, cache_dir=tmp_path / "cache")
    assert first.split_hash == second.split_hash


@pytest.mark.parametrize("seed", [0, 1])
def test_split_sizes_follow_fractions(seed: int) -> None:
    arrays = _arrays(400, patients=400)
    split = assign_splits(arrays, SplitSpec(train=0.5, val=0.25, test=0.25, seed=seed))
    sizes = {s: int(np.sum(split == s)) for s in ("train", "val", "test")}
    assert abs(sizes["train"] - 200) <= 3 and abs(sizes["val"] - 100) <= 3
