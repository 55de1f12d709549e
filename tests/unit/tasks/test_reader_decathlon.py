"""Decathlon folders read through the platform: geometry, orientation, patients, bad cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813
from formats import RAS, task_spec, write_decathlon

from medarena.exceptions import DatasetError
from medarena.tasks import load_task_data
from medarena.tasks.checks import check_labels
from medarena.tasks.readers import get_reader, voxel_to_world
from medarena.tasks.spec import PreprocessingSpec

SPEC = """
name: tiny-msd
title: t
kind: segmentation
classes: [background, outer, core]
dataset: {{reader: decathlon, params: {{root: "{root}", patient_regex: '^(pat\\d+)_'}}}}
preprocessing: {{normalize: zscore}}
split: {{method: random, train: 0.5, val: 0.25, test: 0.25, seed: 1}}
metrics: {{primary: dice, report: [hd95]}}
"""


def test_cases_keep_spacing_origin_and_patients(tmp_path: Path) -> None:
    cases = write_decathlon(tmp_path / "Task", n_cases=8)
    data = load_task_data(task_spec(SPEC.format(root=tmp_path / "Task")))
    a = data.arrays
    assert a.images.shape == (8, 1, 8, 16, 16) and a.labels.shape == (8, 8, 16, 16)
    np.testing.assert_array_equal(a.labels, np.stack([c.label_map for c in cases]))
    np.testing.assert_allclose(a.spacing, np.tile([2.0, 1.0, 0.75], (8, 1)))
    origin = sitk.ReadImage(str(cases[3].image)).GetOrigin()
    np.testing.assert_allclose(a.origin[3], origin[::-1])
    np.testing.assert_allclose(a.images.mean(axis=(1, 2, 3, 4)), 0.0, atol=1e-5)
    assert a.groups.tolist() == [
        "pat00",
        "pat00",
        "pat01",
        "pat01",
        "pat02",
        "pat02",
        "pat03",
        "pat03",
    ]
    for patient in np.unique(a.groups):
        assert len(set(data.split[a.groups == patient])) == 1


def test_oriented_images_keep_world_positions(tmp_path: Path) -> None:
    """A RAS-stored NIfTI is reoriented; each voxel still sits at the same millimetres."""
    cases = write_decathlon(tmp_path / "Task", n_cases=2, direction=RAS)
    a = get_reader("decathlon")({"root": str(tmp_path / "Task")}, PreprocessingSpec())
    label = sitk.ReadImage(str(cases[0].label))
    core = np.argwhere(cases[0].label_map == 2).mean(axis=0)
    world = label.TransformContinuousIndexToPhysicalPoint(core[::-1].tolist())
    read_core = np.argwhere(a.labels[0] == 2).mean(axis=0)
    np.testing.assert_allclose(voxel_to_world(read_core, a.spacing[0], a.origin[0]), world)


def test_multimodal_images_become_channels_and_resampling_keeps_extent(tmp_path: Path) -> None:
    write_decathlon(tmp_path / "Task", n_cases=2, channels=2)
    prep = PreprocessingSpec(spacing=[2.0, 2.0, 1.5], size=[8, 8, 8])
    a = get_reader("decathlon")({"root": str(tmp_path / "Task")}, prep)
    assert a.images.shape == (2, 2, 8, 8, 8) and a.labels.shape == (2, 8, 8, 8)
    np.testing.assert_allclose(a.spacing[0], [2.0, 2.0, 1.5])
    assert set(np.unique(a.labels).tolist()) == {0, 1, 2}


def _break(root: Path, problem: str) -> None:
    index = json.loads((root / "dataset.json").read_text())
    label = root / "labelsTr" / "pat01_1.nii.gz"
    if problem == "corrupt":
        image = root / "imagesTr" / "pat01_1.nii.gz"
        image.write_bytes(image.read_bytes()[:60])
    elif problem == "no label entry":
        del index["training"][3]["label"]
    elif problem == "no label file":
        label.unlink()
    elif problem in ("shape", "spacing", "values"):
        img = sitk.ReadImage(str(label))
        array = sitk.GetArrayFromImage(img)
        if problem == "shape":
            new = sitk.GetImageFromArray(array[:-1])
            new.SetOrigin(img.GetOrigin())
            new.SetSpacing(img.GetSpacing())
        else:
            new = sitk.GetImageFromArray(array + (5 if problem == "values" else 0))
            new.CopyInformation(img)
            if problem == "spacing":
                new.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(new, str(label))
    (root / "dataset.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("corrupt", r"case 'pat01_1': cannot read image file .*pat01_1\.nii\.gz.*corrupt"),
        ("no label entry", r"case 'pat01_1': dataset.json gives no label map"),
        ("no label file", r"case 'pat01_1': label map not found: .*labelsTr/pat01_1\.nii\.gz"),
        (
            "shape",
            r"case 'pat01_1': label map .* has shape \(7, 16, 16\) but its image has \(8, 16, 16\)",
        ),
        (
            "spacing",
            r"case 'pat01_1': label map .* has spacing \(1, 1, 1\) mm but its image has "
            r"\(2, 1, 0\.75\)",
        ),
        ("values", r"case 'pat01_1': label map .* holds value\(s\) \[5, 6, 7\] that dataset\.json"),
    ],
)
def test_bad_cases_are_named_and_nothing_is_cached(
    tmp_path: Path, problem: str, message: str
) -> None:
    write_decathlon(tmp_path / "Task", n_cases=4)
    _break(tmp_path / "Task", problem)
    with pytest.raises(DatasetError, match=message):
        load_task_data(task_spec(SPEC.format(root=tmp_path / "Task")), cache_dir=tmp_path / "cache")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_missing_folder_says_where_to_get_the_data(tmp_path: Path) -> None:
    spec = task_spec(SPEC.format(root=tmp_path / "Task04_Hippocampus"))
    with pytest.raises(DatasetError) as info:
        load_task_data(spec, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert (
        f"data folder not found: {tmp_path / 'Task04_Hippocampus'} (dataset.params.root)" in message
    )
    assert "medicaldecathlon.com" in message and "medarena tasks prepare" in message
    assert not (tmp_path / "cache").exists()


def test_unknown_params_and_unmatched_patient_regex(tmp_path: Path) -> None:
    write_decathlon(tmp_path / "Task", n_cases=2)
    from medarena.exceptions import TaskSpecError

    with pytest.raises(TaskSpecError, match=r"unknown \['roots'\]"):
        get_reader("decathlon")({"root": str(tmp_path), "roots": 1}, PreprocessingSpec())
    with pytest.raises(DatasetError, match=r"case 'pat00_0': dataset.params.patient_regex"):
        get_reader("decathlon")(
            {"root": str(tmp_path / "Task"), "patient_regex": "^subject"}, PreprocessingSpec()
        )


def test_a_label_no_case_contains_is_an_error(tmp_path: Path) -> None:
    write_decathlon(tmp_path / "Task", n_cases=2)
    text = SPEC.format(root=tmp_path / "Task").replace(
        "[background, outer, core]", "[background, outer, core, extra]"
    )
    arrays = get_reader("decathlon")({"root": str(tmp_path / "Task")}, PreprocessingSpec())
    with pytest.raises(DatasetError, match=r"class\(es\) 3 'extra': no label map contains it"):
        check_labels(arrays, task_spec(text))
