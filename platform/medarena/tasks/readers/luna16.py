"""LUNA16: MetaImage CT volumes (``subsetN/<seriesuid>.mhd`` + ``.raw``) and nodule CSVs.

``annotations.csv`` (``seriesuid,coordX,coordY,coordZ,diameter_mm``) gives the nodules to find,
in world millimetres (x, y, z); the optional ``annotations_excluded.csv`` (same columns, a
diameter of -1 where unknown) gives findings that count neither as hits nor as false positives.
Volumes are read by SimpleITK with their spacing and origin; the findings stay in world
coordinates and every one is checked to lie inside its volume, before and after preprocessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medarena.exceptions import DatasetError
from medarena.tasks.preprocessing import Volume
from medarena.tasks.progress import track
from medarena.tasks.readers._arrays import CaseArrays, Lesions, world_to_voxel
from medarena.tasks.readers._common import (
    assemble,
    check_params,
    expand_path,
    read_image,
    require_dir,
    require_file,
    to_volume,
)
from medarena.tasks.spec import PreprocessingSpec

HOW_TO_GET = (
    "Download subset0.zip ... subset9.zip, annotations.csv and evaluationScript.zip (which holds "
    "annotations/annotations_excluded.csv) from https://luna16.grand-challenge.org/Download/ and "
    "extract the subsets into that folder."
)
COLUMNS = ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]


def _read_findings(path: Path, *, key: str) -> pd.DataFrame:
    require_file(path, key=key, how_to_get=HOW_TO_GET)
    try:
        table = pd.read_csv(path, dtype={"seriesuid": str})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from exc
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; expected {','.join(COLUMNS)}")
    coords = table[COLUMNS[1:]].apply(pd.to_numeric, errors="coerce")
    bad = coords.isna().any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(
            f"{path}, line {row + 2} (seriesuid {table['seriesuid'].iloc[row]}): coordinates "
            "and diameter must be numbers"
        )
    table[COLUMNS[1:]] = coords
    table["line"] = np.arange(len(table)) + 2
    table["source"] = str(path)
    return table


def _volumes(root: Path, subsets: list[str]) -> dict[str, Path]:
    """``seriesuid -> .mhd path`` over the folders matched by ``subsets`` (names or globs)."""
    found: dict[str, Path] = {}
    for pattern in subsets:
        folders = sorted(p for p in root.glob(pattern) if p.is_dir())
        if not folders:
            raise DatasetError(
                f"no folder under {root} matches dataset.params.subsets entry {pattern!r}. "
                f"{HOW_TO_GET}"
            )
        for mhd in sorted(p for folder in folders for p in folder.glob("*.mhd")):
            if mhd.stem in found:
                raise DatasetError(f"series {mhd.stem} appears twice: {found[mhd.stem]} and {mhd}")
            found[mhd.stem] = mhd
    if not found:
        raise DatasetError(f"no .mhd volumes in the folders {subsets} under {root}. {HOW_TO_GET}")
    return found


def _patients(path: Path | None, series: list[str]) -> list[str]:
    if path is None:
        return series
    require_file(path, key="patient_map", how_to_get="Write a CSV with columns seriesuid,patient.")
    table = pd.read_csv(path, dtype=str)
    if list(table.columns[:2]) != ["seriesuid", "patient"]:
        raise DatasetError(f"{path}: expected the columns seriesuid,patient")
    patients = dict(zip(table["seriesuid"], table["patient"], strict=True))
    missing = [s for s in series if s not in patients]
    if missing:
        raise DatasetError(f"{path}: no patient for series {missing[:5]}; add a row for each")
    return [patients[s] for s in series]


def _outside(index: np.ndarray[Any, Any], shape: tuple[int, ...]) -> bool:
    """Whether a continuous voxel index lies outside the voxels (their centres ± half)."""
    return bool(np.any(index < -0.5) or np.any(index > np.array(shape) - 0.5))


def luna16(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """Read LUNA16 volumes and findings; ``labels`` counts each case's included findings.

    Params: ``root``; ``subsets`` (folder names or globs under root, default ``["subset*"]``);
    ``annotations`` (default ``annotations.csv``) and ``excluded`` (optional) CSVs, relative to
    root; ``patient_map`` (optional CSV ``seriesuid,patient``; default: one patient per series).
    Findings of series outside the chosen subsets are left out.
    """
    check_params(
        params,
        reader="luna16",
        required=["root"],
        optional=["subsets", "annotations", "excluded", "patient_map"],
    )
    root = require_dir(expand_path(params["root"], key="root"), key="root", how_to_get=HOW_TO_GET)
    subsets = params.get("subsets", ["subset*"])
    series_files = _volumes(root, [subsets] if isinstance(subsets, str) else list(subsets))
    tables = [
        _read_findings(
            expand_path(params.get("annotations", "annotations.csv"), key="annotations", base=root),
            key="annotations",
        ).assign(excluded=False)
    ]
    if params.get("excluded"):
        excluded_path = expand_path(params["excluded"], key="excluded", base=root)
        tables.append(_read_findings(excluded_path, key="excluded").assign(excluded=True))
    findings = pd.concat(tables, ignore_index=True)
    findings = findings[findings["seriesuid"].isin(series_files)]

    series = sorted(series_files)
    volumes: list[Volume] = []
    for uid in track(series):
        image = read_image(series_files[uid], case=uid)
        for row in findings[findings["seriesuid"] == uid].itertuples():
            xyz = [float(row.coordX), float(row.coordY), float(row.coordZ)]
            index = np.array(image.TransformPhysicalPointToContinuousIndex(xyz))
            if _outside(index, image.GetSize()):
                raise DatasetError(
                    f"series {uid}: the finding at ({xyz[0]:g}, {xyz[1]:g}, {xyz[2]:g}) mm "
                    f"({row.source}, line {row.line}) lies outside its volume "
                    f"{series_files[uid]}; coordinates are world millimetres x, y, z: fix the "
                    "row or the volume"
                )
        volumes.append(to_volume(image, None, preprocessing, case=uid))

    case_of = {uid: i for i, uid in enumerate(series)}
    lesions = Lesions(
        case_index=findings["seriesuid"].map(case_of).to_numpy(dtype=np.intp),
        center_xyz=findings[["coordX", "coordY", "coordZ"]].to_numpy(dtype=np.float64),
        diameter_mm=findings["diameter_mm"].to_numpy(dtype=np.float64),
        excluded=findings["excluded"].to_numpy(dtype=bool),
    )
    for k, (case, xyz) in enumerate(zip(lesions.case_index, lesions.center_xyz, strict=True)):
        volume = volumes[case]
        if _outside(world_to_voxel(xyz, volume.spacing, volume.origin), volume.shape):
            row = findings.iloc[k]
            raise DatasetError(
                f"series {series[case]}: preprocessing.size {preprocessing.size} crops away the "
                f"finding at {tuple(float(v) for v in xyz)} mm ({row['source']}, line "
                f"{row['line']}); make preprocessing.size larger"
            )
    counts = np.bincount(lesions.case_index[~lesions.excluded], minlength=len(series))
    return assemble(
        series,
        _patients(
            expand_path(params["patient_map"], key="patient_map", base=root)
            if params.get("patient_map")
            else None,
            series,
        ),
        volumes,
        labels=counts.astype(np.int64),
        lesions=lesions,
    )
