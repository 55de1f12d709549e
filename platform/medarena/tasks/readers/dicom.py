"""DICOM series, one per case folder, with class labels from a CSV or label maps beside them.

Every folder directly under ``root`` is one case (its name is the case id) and holds one DICOM
series, possibly in nested study/series folders. SimpleITK (GDCM) sorts the slices by position
and gives spacing, origin and direction; the patient, which keeps a patient's series in one
split, is the DICOM PatientID (0010,0020). Labels come either from ``labels``, a CSV
``case_id,label`` of class indices (classification), or from ``masks``, a folder of label maps
``<case_id>.nii.gz`` (or .nii, .mha, .mhd, .nrrd) on the voxel grids of their series
(segmentation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import SimpleITK as sitk  # noqa: N813  (the field's name for it)

from medarena.exceptions import DatasetError, TaskSpecError
from medarena.tasks.preprocessing import Volume
from medarena.tasks.progress import track
from medarena.tasks.readers._arrays import CaseArrays
from medarena.tasks.readers._common import (
    assemble,
    check_params,
    check_same_grid,
    expand_path,
    read_image,
    require_dir,
    require_file,
    sitk_message,
    to_volume,
)
from medarena.tasks.spec import PreprocessingSpec

HOW_TO_GET = (
    "Put one folder per case under it, each holding that case's DICOM series (see the task's "
    "README.md for where to download it)."
)
MASK_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")
_IGNORED = {"DICOMDIR"}


def _series_files(case: str, folder: Path) -> list[str]:
    """The slice files of the one series in ``folder`` (searched recursively), in order."""
    holders = sorted({p.parent for p in folder.rglob("*") if p.is_file()})
    found: list[tuple[Path, str]] = [
        (d, uid) for d in holders for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(d))
    ]
    if len(found) != 1:
        what = "no DICOM series" if not found else f"{len(found)} DICOM series"
        raise DatasetError(
            f"case {case!r}: {folder} holds {what}; each case folder must hold exactly one "
            "series (move other series into folders of their own)"
        )
    directory, uid = found[0]
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid))
    listed = {Path(f).resolve() for f in files}
    stray = [
        p
        for p in sorted(directory.iterdir())
        if p.is_file()
        and not p.name.startswith(".")
        and p.name not in _IGNORED
        and p.resolve() not in listed
    ]
    if stray:
        raise DatasetError(
            f"case {case!r}: {stray[0]} is not a readable slice of the series in {directory} "
            "(corrupt, truncated or from another series); replace or remove it"
        )
    return files


def _check_even_slices(case: str, reader: sitk.ImageSeriesReader, n: int) -> None:
    """Slices evenly spaced along the normal: a gap means a missing slice."""
    if n < 3 or not reader.HasMetaDataKey(0, "0020|0032"):
        return
    positions = np.array(
        [[float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")] for i in range(n)]
    )
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    if steps.max() - steps.min() > 0.01 * steps.max():
        raise DatasetError(
            f"case {case!r}: the slices are not evenly spaced (gaps from {steps.min():g} to "
            f"{steps.max():g} mm): a slice is missing or the folder mixes series"
        )


def _read_series(case: str, folder: Path) -> tuple[sitk.Image, str]:
    """The series' image and its PatientID."""
    files = _series_files(case, folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise DatasetError(
            f"case {case!r}: cannot read the DICOM series in {folder}: {sitk_message(exc)}"
        ) from exc
    _check_even_slices(case, reader, len(files))
    has_patient = reader.HasMetaDataKey(0, "0010|0020")
    patient = reader.GetMetaData(0, "0010|0020").strip() if has_patient else ""
    if not patient:
        raise DatasetError(
            f"case {case!r}: the series in {folder} has no PatientID (0010,0020), which keeps a "
            "patient's series in one split; write the (pseudonymised) patient id into it"
        )
    return image, patient


def _class_labels(path: Path, cases: list[str]) -> npt.NDArray[np.int64]:
    require_file(path, key="labels", how_to_get="Write a CSV with columns case_id,label.")
    try:
        table = pd.read_csv(path, dtype={"case_id": str})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from exc
    if list(table.columns) != ["case_id", "label"]:
        raise DatasetError(f"{path}: expected the columns case_id,label, got {list(table.columns)}")
    labels = pd.to_numeric(table["label"], errors="coerce")
    if labels.isna().any() or (labels < 0).any() or (labels % 1 != 0).any():
        row = int(np.flatnonzero((labels.isna() | (labels < 0) | (labels % 1 != 0)).to_numpy())[0])
        raise DatasetError(
            f"{path}, line {row + 2}: label {table['label'].iloc[row]!r} is not a class index "
            "(0, 1, ...)"
        )
    by_case = dict(zip(table["case_id"], labels.astype(int), strict=True))
    unlabelled = [c for c in cases if c not in by_case]
    if unlabelled:
        raise DatasetError(f"{path}: no label for case(s) {unlabelled[:5]}; add a row for each")
    unknown = sorted(set(by_case) - set(cases))
    if unknown:
        raise DatasetError(
            f"{path}: case(s) {unknown[:5]} have a label but no series folder under the root"
        )
    return np.array([by_case[c] for c in cases], dtype=np.int64)


def _mask_path(folder: Path, case: str) -> Path:
    for suffix in MASK_SUFFIXES:
        if (folder / f"{case}{suffix}").is_file():
            return folder / f"{case}{suffix}"
    raise DatasetError(
        f"case {case!r}: no label map {case}.nii.gz (or {', '.join(MASK_SUFFIXES[1:])}) in "
        f"{folder}; every case needs one"
    )


def dicom(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """Read one DICOM series per folder under ``params['root']``, with ``labels`` or ``masks``."""
    check_params(params, reader="dicom", required=["root"], optional=["labels", "masks"])
    if ("labels" in params) == ("masks" in params):
        raise TaskSpecError(
            "dataset.params of reader 'dicom': give either 'labels' (a CSV case_id,label, for "
            "classification) or 'masks' (a folder of label maps, for segmentation)"
        )
    root = require_dir(expand_path(params["root"], key="root"), key="root", how_to_get=HOW_TO_GET)
    masks = None
    if "masks" in params:
        masks = require_dir(
            expand_path(params["masks"], key="masks", base=root),
            key="masks",
            how_to_get="Put one label map <case_id>.nii.gz per case in it.",
        )
    folders = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p != masks
    )
    cases = [p.name for p in folders]
    if not cases:
        raise DatasetError(f"no case folders under {root}. {HOW_TO_GET}")
    labels = None
    if "labels" in params:
        labels = _class_labels(expand_path(params["labels"], key="labels", base=root), cases)
    patients: list[str] = []
    volumes: list[Volume] = []
    for case, folder in track(list(zip(cases, folders, strict=True))):
        image, patient = _read_series(case, folder)
        label = None
        if masks is not None:
            path = _mask_path(masks, case)
            label = (read_image(path, case=case, what="label map"), path)
            check_same_grid(image, label[0], case=case, label_path=path)
        patients.append(patient)
        volumes.append(to_volume(image, label, preprocessing, case=case))
    return assemble(cases, patients, volumes, labels=labels)
