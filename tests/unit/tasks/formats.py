"""Writers of tiny datasets in the real formats, for tests that read or train through the readers.

Each writes files exactly as the public datasets lay them out (MedMNIST .npz, the Decathlon
folder, LUNA16's MetaImage volumes and CSVs, DICOM series) and returns what a test needs to
check the reader against: the folder, and the ground truth it wrote.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk  # noqa: N813
import yaml

from medarena.tasks import TaskSpec

RAS = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def write_medmnist(
    path: Path,
    *,
    sizes: Sequence[int] = (9, 6, 6),
    shape: Sequence[int] = (16, 16),
    rgb: bool = False,
    n_classes: int = 3,
    seed: int = 0,
) -> Path:
    """A MedMNIST-style .npz: uint8 images whose brightness encodes the class, labels (N, 1).

    ``shape`` of two values gives 2D images (``rgb`` adds a last axis of 3), of three 3D ones.
    """
    rng = np.random.default_rng(seed)
    arrays: dict[str, npt.NDArray[np.uint8]] = {}
    for split, n in zip(("train", "val", "test"), sizes, strict=True):
        labels = np.arange(n) % n_classes
        base = 40 + 60 * labels.reshape(-1, *[1] * len(shape))
        images = base + rng.integers(0, 30, (n, *shape))
        if rgb:
            images = np.repeat(images[..., None], 3, axis=-1)
        arrays[f"{split}_images"] = images.astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return path


def _image(
    array: npt.NDArray[np.generic],
    spacing_zyx: Sequence[float],
    origin_xyz: Sequence[float],
    direction: Sequence[float] | None = None,
) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    image.SetOrigin([float(o) for o in origin_xyz])
    if direction is not None:
        image.SetDirection(direction)
    return image


def _blob(shape: Sequence[int], centre: Sequence[float], radius: float) -> npt.NDArray[np.bool_]:
    grid = np.indices(shape).astype(float)
    dist = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    return np.asarray(dist <= radius**2)


@dataclass(frozen=True)
class DecathlonCase:
    case_id: str
    image: Path
    label: Path
    label_map: npt.NDArray[np.uint8]


def write_decathlon(
    root: Path,
    *,
    n_cases: int = 8,
    shape: Sequence[int] = (8, 16, 16),
    spacing: Sequence[float] = (2.0, 1.0, 0.75),
    channels: int = 1,
    direction: Sequence[float] | None = None,
    seed: int = 0,
) -> list[DecathlonCase]:
    """A Decathlon task folder: dataset.json, imagesTr/ and labelsTr/ (labels 0, 1, 2).

    Case ids are ``pat<P>_<K>`` with two cases per patient, to test ``patient_regex``. Each label
    map has a bright sphere (label 1) with a core (label 2); ``channels`` > 1 writes 4-D images.
    """
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    cases = []
    for i in range(n_cases):
        case_id = f"pat{i // 2:02d}_{i % 2}"
        centre = [s / 2 + rng.uniform(-1, 1) for s in shape]
        label = _blob(shape, centre, 3.0).astype(np.uint8) + _blob(shape, centre, 1.5)
        image = label * 100.0 + rng.normal(0, 10, (channels, *shape))
        origin = (rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(-50, 50))
        if channels == 1:
            itk_image = _image(image[0].astype(np.float32), spacing, origin, direction)
        else:
            itk_image = sitk.JoinSeries(
                [_image(c.astype(np.float32), spacing, origin, direction) for c in image]
            )
        label_image = _image(label.astype(np.uint8), spacing, origin, direction)
        image_path = root / "imagesTr" / f"{case_id}.nii.gz"
        label_path = root / "labelsTr" / f"{case_id}.nii.gz"
        sitk.WriteImage(itk_image, str(image_path))
        sitk.WriteImage(label_image, str(label_path))
        cases.append(DecathlonCase(case_id, image_path, label_path, label.astype(np.uint8)))
    index = {
        "name": "Tiny",
        "modality": {str(c): "MRI" for c in range(channels)},
        "labels": {"0": "background", "1": "outer", "2": "core"},
        "numTraining": n_cases,
        "training": [
            {"image": f"./imagesTr/{c.case_id}.nii.gz", "label": f"./labelsTr/{c.case_id}.nii.gz"}
            for c in cases
        ],
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(index, indent=2))
    return cases


@dataclass(frozen=True)
class Luna16Finding:
    seriesuid: str
    xyz: tuple[float, float, float]
    voxel_zyx: tuple[int, int, int]
    diameter_mm: float
    excluded: bool


def write_luna16(
    root: Path,
    *,
    n_series: int = 6,
    shape: Sequence[int] = (12, 16, 16),
    spacing: Sequence[float] = (2.5, 0.7, 0.7),
    seed: int = 0,
) -> list[Luna16Finding]:
    """LUNA16's layout: ``subset0/``, ``subset1/`` of ``<seriesuid>.mhd/.raw`` (HU, int16),
    ``annotations.csv`` and ``annotations_excluded.csv`` (with a diameter of -1).

    Series ``i`` has ``i % 3`` nodules (bright spheres) and the first series an excluded finding.
    Returns the findings with the voxels they were drawn at.
    """
    rng = np.random.default_rng(seed)
    findings: list[Luna16Finding] = []
    for i in range(n_series):
        uid = f"1.3.6.1.4.1.14519.5.2.1.6279.6001.{100000 + i}"
        origin = (rng.uniform(-200, -150), rng.uniform(-200, -150), rng.uniform(-300, -200))
        hu = np.full(shape, -800.0) + rng.normal(0, 20, shape)
        image = _image(hu.astype(np.int16), spacing, origin)
        for k in range(i % 3 + (1 if i == 0 else 0)):
            voxel = (
                int(rng.integers(2, shape[0] - 2)),
                int(rng.integers(3, shape[1] - 3)),
                int(rng.integers(3, shape[2] - 3)),
            )
            excluded = i == 0 and k == 0
            if not excluded:
                hu[_blob(shape, voxel, 1.5)] = 50.0
            xyz = image.TransformIndexToPhysicalPoint(voxel[::-1])
            diameter = -1.0 if excluded else 2 * 1.5 * spacing[1]
            findings.append(Luna16Finding(uid, tuple(xyz), voxel, diameter, excluded))  # type: ignore[arg-type]
        image = _image(hu.astype(np.int16), spacing, origin)
        folder = root / f"subset{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, str(folder / f"{uid}.mhd"))
    for name, excluded in (("annotations.csv", False), ("annotations_excluded.csv", True)):
        rows = ["seriesuid,coordX,coordY,coordZ,diameter_mm"] + [
            f"{f.seriesuid},{f.xyz[0]!r},{f.xyz[1]!r},{f.xyz[2]!r},{f.diameter_mm!r}"
            for f in findings
            if f.excluded == excluded
        ]
        (root / name).write_text("\n".join(rows) + "\n")
    return findings


@dataclass(frozen=True)
class DicomCase:
    case_id: str
    patient_id: str
    label: int
    mask: npt.NDArray[np.uint8]


def write_dicom(
    root: Path,
    *,
    n_cases: int = 8,
    shape: Sequence[int] = (5, 8, 8),
    spacing: Sequence[float] = (2.5, 0.9, 0.8),
    seed: int = 0,
) -> list[DicomCase]:
    """CT series as DICOM under ``root/series/<case>/study/<k>.dcm``, two series per patient,
    class labels in ``root/labels.csv`` (0/1) and label maps in ``root/masks/<case>.nii.gz``.

    Slices carry PatientID, study and series UIDs, ImagePositionPatient, orientation,
    PixelSpacing, SliceThickness and InstanceNumber, as scanners write them.
    """
    rng = np.random.default_rng(seed)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    cases = []
    for i in range(n_cases):
        case_id, patient = f"case{i:02d}", f"PAT{i // 2:03d}"
        label = i % 2
        mask = _blob(shape, [s / 2 for s in shape], 2.0 + label).astype(np.uint8)
        hu = (mask * 200 + rng.normal(0, 10, shape) - 100).astype(np.int16)
        origin = (-100.0 + i, -80.0, 30.0 + 5 * i)
        series_uid = f"1.2.826.0.1.3680043.2.1125.{i + 1}"
        folder = root / "series" / case_id / "study"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(shape[0]):
            z = origin[2] + k * spacing[0]
            slice_ = sitk.GetImageFromArray(hu[k])
            slice_.SetSpacing((spacing[2], spacing[1]))
            tags = {
                "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
                "0008|0018": f"{series_uid}.{k + 1}",
                "0008|0060": "CT",
                "0010|0010": f"Anonymous^{patient}",
                "0010|0020": patient,
                "0020|000d": f"{series_uid}.0",
                "0020|000e": series_uid,
                "0020|0013": str(k + 1),
                "0020|0032": f"{origin[0]!r}\\{origin[1]!r}\\{z!r}",
                "0020|0037": "1\\0\\0\\0\\1\\0",
                "0028|0030": f"{spacing[1]!r}\\{spacing[2]!r}",
                "0018|0050": f"{spacing[0]!r}",
            }
            for tag, value in tags.items():
                slice_.SetMetaData(tag, value)
            writer.SetFileName(str(folder / f"{k:03d}.dcm"))
            writer.Execute(slice_)
        sitk.WriteImage(_image(mask, spacing, origin), str(root / "masks" / f"{case_id}.nii.gz"))
        cases.append(DicomCase(case_id, patient, label, mask))
    rows = ["case_id,label"] + [f"{c.case_id},{c.label}" for c in cases]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return cases


def task_spec(text: str) -> TaskSpec:
    """A TaskSpec from YAML text, as a task.yaml would give it."""
    return TaskSpec.model_validate(yaml.safe_load(textwrap.dedent(text)))
