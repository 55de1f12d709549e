"""LUNA16 volumes and CSVs read through the platform: findings in millimetres, bad rows named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from formats import task_spec, write_luna16

from medarena.exceptions import DatasetError
from medarena.tasks import load_task_data
from medarena.tasks.readers import get_reader, world_to_voxel
from medarena.tasks.spec import PreprocessingSpec

SPEC = """
name: tiny-luna
title: t
kind: detection
classes: [nodule]
dataset:
  reader: luna16
  params: {{root: "{root}", subsets: [subset0, subset1], excluded: annotations_excluded.csv}}
preprocessing: {prep}
split: {{method: stratified, train: 0.5, val: 0.25, test: 0.25}}
metrics: {{primary: cpm, report: [sensitivity]}}
"""


@pytest.mark.parametrize(
    "prep",
    ["{}", "{spacing: [2.0, 1.0, 1.0], window: [-600, 1500], size: [16, 12, 12]}"],
)
def test_findings_round_trip_to_their_voxels(tmp_path: Path, prep: str) -> None:
    findings = write_luna16(tmp_path / "luna")
    data = load_task_data(task_spec(SPEC.format(root=tmp_path / "luna", prep=prep)))
    a = data.arrays
    assert a.lesions is not None and len(a.case_ids) == 6
    assert a.labels.tolist() == [0, 1, 2, 0, 1, 2]
    included = [f for f in findings if not f.excluded]
    for k, case in enumerate(a.lesions.case_index):
        uid = a.case_ids[case]
        truth = next(
            f
            for f in findings
            if f.seriesuid == uid and np.allclose(f.xyz, a.lesions.center_xyz[k])
        )
        assert a.lesions.excluded[k] == truth.excluded
        voxel = world_to_voxel(a.lesions.center_xyz[k], a.spacing[case], a.origin[case])
        if prep == "{}":
            np.testing.assert_allclose(voxel, truth.voxel_zyx, atol=1e-6)
        if not truth.excluded:
            image = a.images[case, 0]
            assert image[tuple(np.round(voxel).astype(int))] > np.median(image) + 0.2
    assert int((~a.lesions.excluded).sum()) == len(included)
    assert a.lesions.diameter_mm[a.lesions.excluded].tolist() == [-1.0]


def test_subsets_select_volumes(tmp_path: Path) -> None:
    write_luna16(tmp_path / "luna")
    a = get_reader("luna16")(
        {"root": str(tmp_path / "luna"), "subsets": "subset1"}, PreprocessingSpec()
    )
    assert len(a.case_ids) == 3 and a.labels.tolist() == [1, 0, 2]
    assert a.lesions is not None and set(a.lesions.case_index.tolist()) == {0, 2}


def test_annotation_outside_the_volume_names_the_series(tmp_path: Path) -> None:
    findings = write_luna16(tmp_path / "luna")
    csv = tmp_path / "luna" / "annotations.csv"
    uid = findings[1].seriesuid
    csv.write_text(csv.read_text() + f"{uid},500.0,0.0,0.0,5.0\n")
    with pytest.raises(
        DatasetError,
        match=rf"series {uid}: the finding at \(500, 0, 0\) mm \(.*annotations\.csv, line 8\) "
        "lies outside its volume",
    ):
        get_reader("luna16")({"root": str(tmp_path / "luna")}, PreprocessingSpec())


def test_crop_that_removes_a_finding_is_an_error(tmp_path: Path) -> None:
    write_luna16(tmp_path / "luna")
    with pytest.raises(
        DatasetError, match=r"preprocessing.size \[2, 2, 2\] crops away the finding"
    ):
        get_reader("luna16")({"root": str(tmp_path / "luna")}, PreprocessingSpec(size=[2, 2, 2]))


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (
            "corrupt",
            r"case '1\.3\.6\.1\.4\.1\.14519\.5\.2\.1\.6279\.6001\.100002': "
            r"cannot read image file .*100002\.mhd",
        ),
        ("columns", r"annotations\.csv: missing column\(s\) \['diameter_mm'\]"),
        ("subset", r"no folder under .* matches dataset\.params\.subsets entry 'subset7'"),
        (
            "root",
            r"data folder not found: .*nowhere \(dataset\.params\.root\)"
            r".*luna16\.grand-challenge\.org",
        ),
    ],
)
def test_bad_inputs_are_named(tmp_path: Path, problem: str, message: str) -> None:
    write_luna16(tmp_path / "luna")
    params: dict[str, object] = {"root": str(tmp_path / "luna")}
    if problem == "corrupt":
        raw = next((tmp_path / "luna").glob("subset0/*100002.raw"))
        raw.write_bytes(raw.read_bytes()[:100])
    elif problem == "columns":
        csv = tmp_path / "luna" / "annotations.csv"
        csv.write_text(csv.read_text().replace(",diameter_mm", ",diam"))
    elif problem == "subset":
        params["subsets"] = ["subset0", "subset7"]
    else:
        params["root"] = str(tmp_path / "nowhere")
    spec = task_spec(SPEC.format(root=tmp_path / "luna", prep="{}"))
    spec = spec.model_copy(update={"dataset": spec.dataset.model_copy(update={"params": params})})
    with pytest.raises(DatasetError, match=message):
        load_task_data(spec, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
