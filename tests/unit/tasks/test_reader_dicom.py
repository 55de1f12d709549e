"""DICOM series read through the platform: PatientID groups, CSV labels or masks, bad series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813
from formats import task_spec, write_dicom

from medarena.exceptions import DatasetError, TaskSpecError
from medarena.tasks import load_task_data
from medarena.tasks.readers import get_reader
from medarena.tasks.spec import PreprocessingSpec

CLASSIFICATION = """
name: tiny-dicom
title: t
kind: classification
classes: [small, large]
dataset: {{reader: dicom, params: {{root: "{root}/series", labels: ../labels.csv}}}}
split: {{method: stratified, train: 0.5, val: 0.25, test: 0.25, seed: 2}}
metrics: {{primary: auc}}
"""


def test_series_labels_and_patient_groups(tmp_path: Path) -> None:
    cases = write_dicom(tmp_path / "d", n_cases=8)
    data = load_task_data(task_spec(CLASSIFICATION.format(root=tmp_path / "d")))
    a = data.arrays
    assert a.case_ids.tolist() == [c.case_id for c in cases]
    assert a.groups.tolist() == [c.patient_id for c in cases]
    assert a.labels.tolist() == [c.label for c in cases]
    assert a.images.shape == (8, 1, 5, 8, 8)
    np.testing.assert_allclose(a.spacing, np.tile([2.5, 0.9, 0.8], (8, 1)))
    np.testing.assert_allclose(a.origin[3], [45.0, -80.0, -97.0])
    for patient in np.unique(a.groups):
        assert len(set(data.split[a.groups == patient])) == 1


def test_masks_give_label_maps(tmp_path: Path) -> None:
    cases = write_dicom(tmp_path / "d", n_cases=4)
    prep = PreprocessingSpec(window=(40.0, 400.0), size=[6, 8, 8])
    a = get_reader("dicom")({"root": str(tmp_path / "d" / "series"), "masks": "../masks"}, prep)
    assert a.labels.shape == (4, 6, 8, 8)
    np.testing.assert_array_equal(a.labels[:, 1:], np.stack([c.mask for c in cases]))  # padded
    np.testing.assert_allclose(a.origin[0], [30.0 - 2.5, -80.0, -100.0])
    assert a.images.min() >= 0.0 and a.images.max() <= 1.0


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("corrupt", r"case 'case02': .*002\.dcm is not a readable slice"),
        ("missing slice", r"case 'case02': the slices are not evenly spaced"),
        ("no label", r"labels\.csv: no label for case\(s\) \['case02'\]"),
        ("mask shape", r"case 'case02': label map .*case02\.nii\.gz has shape \(4, 8, 8\)"),
        ("two series", r"case 'case02': .* holds 2 DICOM series"),
    ],
)
def test_bad_series_are_named(tmp_path: Path, problem: str, message: str) -> None:
    write_dicom(tmp_path / "d", n_cases=4)
    study = tmp_path / "d" / "series" / "case02" / "study"
    params = {"root": str(tmp_path / "d" / "series"), "labels": "../labels.csv"}
    if problem == "corrupt":
        (study / "002.dcm").write_bytes(b"not a dicom file" * 8)
    elif problem == "missing slice":
        (study / "002.dcm").unlink()
    elif problem == "no label":
        csv = tmp_path / "d" / "labels.csv"
        csv.write_text(
            "\n".join(line for line in csv.read_text().splitlines() if "case02" not in line)
        )
    elif problem == "mask shape":
        params = {"root": params["root"], "masks": "../masks"}
        mask = tmp_path / "d" / "masks" / "case02.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 8, 8), np.uint8)), str(mask))
    else:
        other = tmp_path / "d" / "series" / "case03" / "study"
        (other / "000.dcm").rename(study.parent / "extra.dcm")
    with pytest.raises(DatasetError, match=message):
        get_reader("dicom")(params, PreprocessingSpec())


def test_labels_or_masks_not_both(tmp_path: Path) -> None:
    with pytest.raises(TaskSpecError, match="give either 'labels'"):
        get_reader("dicom")({"root": str(tmp_path)}, PreprocessingSpec())
