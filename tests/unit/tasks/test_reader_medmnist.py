"""MedMNIST .npz files read through the platform: 2D, RGB, 3D, the official split, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from formats import task_spec, write_medmnist

from medarena.exceptions import DatasetError
from medarena.tasks import load_task_data
from medarena.tasks.checks import check_labels
from medarena.tasks.readers import get_reader
from medarena.tasks.spec import PreprocessingSpec

SPEC = """
name: tiny-medmnist
title: t
kind: classification
classes: [a, b, c]
dataset: {{reader: medmnist, params: {{path: "{path}", use_official_split: {official}}}}}
split: {{method: {method}}}
metrics: {{primary: auc}}
"""


def test_official_split_and_images(tmp_path: Path) -> None:
    path = write_medmnist(tmp_path / "tiny.npz")
    data = load_task_data(task_spec(SPEC.format(path=path, official="true", method="predefined")))
    a = data.arrays
    assert a.images.shape == (21, 1, 16, 16) and a.images.dtype == np.float32
    assert a.images.min() >= 0.0 and a.images.max() <= 1.0
    assert [data.size(s) for s in ("train", "val", "test")] == [9, 6, 6]
    assert data.split[0] == "train" and a.case_ids[0] == "train-000000"
    assert a.labels.tolist()[:4] == [0, 1, 2, 0]
    np.testing.assert_array_equal(a.spacing, np.ones((21, 2)))


@pytest.mark.parametrize(
    ("shape", "rgb", "expected"),
    [((16, 16), True, (21, 3, 16, 16)), ((8, 8, 8), False, (21, 1, 8, 8, 8))],
)
def test_rgb_and_volumes(
    tmp_path: Path, shape: tuple[int, ...], rgb: bool, expected: tuple[int, ...]
) -> None:
    path = write_medmnist(tmp_path / "x.npz", shape=shape, rgb=rgb)
    arrays = get_reader("medmnist")({"path": str(path)}, PreprocessingSpec(size=None))
    assert arrays.images.shape == expected


def test_path_expands_variables_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_medmnist(tmp_path / "data" / "x.npz")
    monkeypatch.setenv("TINY_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for path in ("$TINY_DATA/x.npz", "${TINY_DATA}/x.npz", "~/data/x.npz"):
        assert len(get_reader("medmnist")({"path": path}, PreprocessingSpec()).case_ids) == 21


def test_predefined_split_needs_the_official_one(tmp_path: Path) -> None:
    path = write_medmnist(tmp_path / "x.npz")
    spec = task_spec(SPEC.format(path=path, official="false", method="predefined"))
    with pytest.raises(DatasetError, match="ships no split"):
        load_task_data(spec)
    data = load_task_data(task_spec(SPEC.format(path=path, official="false", method="stratified")))
    assert data.size("train") > 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", r"data file not found: .*nope\.npz \(dataset\.params\.path\).*zenodo"),
        ("unset", r"environment variable NO_SUCH_VARIABLE_X is not set"),
        ("corrupt", r"x\.npz: not a readable \.npz file"),
        ("multilabel", r"x\.npz: train_labels has 2 labels per case"),
        ("keys", r"x\.npz: missing array\(s\) \['test_images', 'test_labels'\]"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, setup: str, message: str) -> None:
    path = write_medmnist(tmp_path / "x.npz")
    params = {"path": str(path)}
    if setup == "missing":
        params["path"] = str(tmp_path / "nope.npz")
    elif setup == "unset":
        params["path"] = "$NO_SUCH_VARIABLE_X/x.npz"
    elif setup == "corrupt":
        path.write_bytes(path.read_bytes()[:100])
    else:
        with np.load(path) as f:
            arrays = dict(f)
        if setup == "multilabel":
            arrays["train_labels"] = np.zeros((9, 2), np.uint8)
        else:
            del arrays["test_images"], arrays["test_labels"]
        np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message):
        get_reader("medmnist")(params, PreprocessingSpec())


def test_a_class_without_cases_is_an_error(tmp_path: Path) -> None:
    path = write_medmnist(tmp_path / "x.npz")
    text = SPEC.format(path=path, official="true", method="predefined")
    arrays = get_reader("medmnist")({"path": str(path)}, PreprocessingSpec())
    with pytest.raises(DatasetError, match=r"class\(es\) 3 'd': no case has it"):
        check_labels(arrays, task_spec(text.replace("[a, b, c]", "[a, b, c, d]")))
    with pytest.raises(DatasetError, match=r"case 'train-000002': class index 2 is not one of"):
        check_labels(arrays, task_spec(text.replace("[a, b, c]", "[a, b]")))
    check_labels(arrays, task_spec(text))
