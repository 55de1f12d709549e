"""Readers and validators for reference, prediction and case-list files, in the field's formats.

Every problem raises :class:`~medarena.exceptions.PredictionFileError` whose message names the
file, the case (or row) and the problem, and says how to fix it.

* classification: reference CSV ``case_id,label`` (integer class index); predictions CSV
  ``case_id`` plus one probability column per class index ``0,1,…``;
* segmentation: folders of ``<case_id>.nii.gz`` (spacing from the header) or ``<case_id>.npy``
  (spacing 1 mm) integer label maps;
* detection: LUNA16 CSVs, reference ``seriesuid,coordX,coordY,coordZ,diameter_mm``, predictions
  ``seriesuid,coordX,coordY,coordZ,probability``, world millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from medarena.exceptions import PredictionFileError

ROW_SUM_TOLERANCE = 1e-3
SPACING_TOLERANCE = 1e-4
SEGMENTATION_SUFFIXES = (".nii.gz", ".nii", ".npy")


def _fail(path: Path, problem: str, fix: str = "") -> PredictionFileError:
    return PredictionFileError(f"{path}: {problem}" + (f"; {fix}" if fix else ""))


def _read_csv(path: Path, *, id_column: str, required: list[str]) -> pd.DataFrame:
    """A CSV with string ids and the required columns; empty files and bad columns refused."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty", f"expected a header line {','.join(required)}")
    try:
        frame = pd.read_csv(path, dtype={id_column: str}, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not a readable CSV file ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise _fail(
            path,
            f"missing column(s) {', '.join(missing)} (found: {', '.join(frame.columns)})",
            f"the header must be {','.join(required)}",
        )
    if frame.empty:
        raise _fail(path, "the file has a header but no rows")
    ids = frame[id_column]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2
        raise _fail(path, f"line {row} has an empty {id_column}")
    frame[id_column] = ids.astype(str).str.strip()
    return frame


def _numeric(
    frame: pd.DataFrame, path: Path, column: str, id_column: str
) -> npt.NDArray[np.float64]:
    """A column as finite floats; the first bad value is reported with its case id."""
    values: npt.NDArray[np.float64] = pd.to_numeric(frame[column], errors="coerce").to_numpy(
        dtype=np.float64
    )
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(
            path,
            f"case {frame[id_column].iloc[i]!r}: column {column!r} has "
            f"{frame[column].iloc[i]!r}, not a finite number",
            "NaN, infinite and empty values cannot be scored",
        )
    return values


def _no_duplicates(ids: pd.Series, path: Path) -> None:
    dup = ids[ids.duplicated()]
    if not dup.empty:
        raise _fail(path, f"case {dup.iloc[0]!r} appears more than once", "give each case one row")


def read_case_list(path: Path) -> list[str]:
    """Case ids, one per line, or a CSV whose first column (``case_id``/``seriesuid``) has them."""
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise _fail(path, "the case list is empty", "list one case id per line")
    first = lines[0].split(",")[0].strip()
    if first in ("case_id", "seriesuid"):
        lines = lines[1:]
    ids = [ln.split(",")[0].strip() for ln in lines]
    if not ids:
        raise _fail(path, "the case list has a header but no cases")
    seen: set[str] = set()
    for case in ids:
        if case in seen:
            raise _fail(path, f"case {case!r} appears more than once")
        seen.add(case)
    return ids


# --------------------------------------------------------------------------- classification


def read_classification_reference(path: Path) -> dict[str, int]:
    """``case_id -> label`` from a ``case_id,label`` CSV; labels are non-negative integers."""
    path = Path(path)
    frame = _read_csv(path, id_column="case_id", required=["case_id", "label"])
    _no_duplicates(frame["case_id"], path)
    labels = _numeric(frame, path, "label", "case_id")
    bad = (labels < 0) | (labels != np.round(labels))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(
            path,
            f"case {frame['case_id'].iloc[i]!r}: label {frame['label'].iloc[i]!r} is not a "
            "class index",
            "labels are integers 0, 1, …",
        )
    return dict(zip(frame["case_id"], labels.astype(int).tolist(), strict=True))


def read_classification_predictions(
    path: Path, *, n_classes: int | None = None
) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Case ids and an ``(n, n_classes)`` probability matrix from ``case_id,0,1,…``.

    Probabilities must be finite, in [0, 1], and each row must sum to 1 (within 1e-3).
    """
    path = Path(path)
    frame = _read_csv(path, id_column="case_id", required=["case_id"])
    class_columns = [c for c in frame.columns if c != "case_id"]
    if not all(c.isdigit() for c in class_columns) or not class_columns:
        raise _fail(
            path,
            f"columns {', '.join(class_columns) or '(none)'} are not class indices",
            "the header must be case_id,0,1,… with one probability column per class",
        )
    expected = [str(k) for k in range(len(class_columns))]
    if sorted(class_columns, key=int) != expected:
        raise _fail(path, f"class columns {', '.join(class_columns)} are not 0…{len(expected) - 1}")
    if n_classes is not None and len(expected) < n_classes:
        raise _fail(
            path,
            f"{len(expected)} probability columns, but the reference has class {n_classes - 1}",
            f"add columns up to {n_classes - 1}",
        )
    _no_duplicates(frame["case_id"], path)
    probs = np.stack([_numeric(frame, path, c, "case_id") for c in expected], axis=1)
    out_of_range = (probs < 0) | (probs > 1)
    if out_of_range.any():
        i, k = (int(v) for v in np.argwhere(out_of_range)[0])
        raise _fail(
            path,
            f"case {frame['case_id'].iloc[i]!r}: probability {probs[i, k]!r} of class {k} is "
            "outside [0, 1]",
            "write probabilities (e.g. softmax outputs), not logits",
        )
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise _fail(
            path,
            f"case {frame['case_id'].iloc[i]!r}: probabilities sum to {sums[i]:.6g}, not 1",
            "each row must hold one probability per class, summing to 1",
        )
    return frame["case_id"].tolist(), probs


# --------------------------------------------------------------------------- segmentation


@dataclass(frozen=True)
class LabelMap:
    """An integer label map with its voxel spacing in mm."""

    array: npt.NDArray[np.int64]
    spacing: tuple[float, ...]
    path: Path


def segmentation_files(folder: Path) -> dict[str, Path]:
    """``case_id -> file`` for every ``<case_id>.nii.gz``/``.nii``/``.npy`` in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _fail(folder, "not a folder", "pass a folder of <case_id>.nii.gz or .npy files")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in SEGMENTATION_SUFFIXES if path.name.endswith(s)), None)
        if suffix is None or not path.is_file():
            continue
        case = path.name[: -len(suffix)]
        if case in found:
            raise _fail(path, f"case {case!r} has two files ({found[case].name}, {path.name})")
        found[case] = path
    if not found:
        raise _fail(folder, "no .nii.gz, .nii or .npy files", "name files <case_id>.nii.gz")
    return found


def load_label_map(path: Path) -> LabelMap:
    """Read one label map: NIfTI (spacing from the header) or ``.npy`` (spacing 1 mm)."""
    path = Path(path)
    try:
        if path.name.endswith(".npy"):
            data = np.load(path, allow_pickle=False)
            spacing: tuple[float, ...] = (1.0,) * data.ndim
        else:
            import nibabel as nib

            image: Any = nib.load(path)
            data = np.asanyarray(image.dataobj)
            spacing = tuple(float(z) for z in image.header.get_zooms()[: data.ndim])
    except Exception as exc:
        raise _fail(path, f"cannot read the label map ({type(exc).__name__}: {exc})") from exc
    data = np.squeeze(data) if data.ndim > 3 else data
    if data.ndim not in (2, 3):
        raise _fail(path, f"a label map must be 2-D or 3-D, got shape {data.shape}")
    if data.dtype.kind == "b":
        data = data.astype(np.int64)
    integral = data.dtype.kind in "iu" or (
        data.dtype.kind == "f" and bool(np.all(np.isfinite(data))) and not np.any(data % 1)
    )
    if not integral:
        raise _fail(path, "the label map holds non-integer values", "save integer labels")
    labels = data.astype(np.int64)
    if labels.min(initial=0) < 0:
        raise _fail(path, "the label map holds negative labels")
    return LabelMap(labels, spacing[: labels.ndim], path)


def check_same_grid(reference: LabelMap, prediction: LabelMap, case: str) -> None:
    """Refuse a prediction whose shape or spacing differs from its reference."""
    if reference.array.shape != prediction.array.shape:
        raise _fail(
            prediction.path,
            f"case {case!r}: shape {prediction.array.shape} differs from the reference's "
            f"{reference.array.shape} ({reference.path})",
            "predict on the reference's voxel grid",
        )
    ref_s, pred_s = np.asarray(reference.spacing), np.asarray(prediction.spacing)
    if not np.allclose(ref_s, pred_s, rtol=SPACING_TOLERANCE, atol=0):
        raise _fail(
            prediction.path,
            f"case {case!r}: spacing {tuple(pred_s.tolist())} mm differs from the reference's "
            f"{tuple(ref_s.tolist())} mm",
            "copy the reference's header (spacing) into the prediction",
        )


# --------------------------------------------------------------------------- detection

DETECTION_REFERENCE_COLUMNS = ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]
DETECTION_PREDICTION_COLUMNS = ["seriesuid", "coordX", "coordY", "coordZ", "probability"]


@dataclass(frozen=True)
class PointTable:
    """Rows of a LUNA16 CSV: series ids, world coordinates (mm) and one value per row."""

    seriesuid: list[str]
    xyz: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]


def read_detection_csv(path: Path, *, kind: str) -> PointTable:
    """A LUNA16 annotations (``kind="reference"``) or candidates (``"predictions"``) CSV."""
    path = Path(path)
    columns = DETECTION_REFERENCE_COLUMNS if kind == "reference" else DETECTION_PREDICTION_COLUMNS
    try:
        frame = _read_csv(path, id_column="seriesuid", required=columns)
    except PredictionFileError as exc:
        if kind == "reference" and "no rows" in str(exc):
            return PointTable([], np.zeros((0, 3)), np.zeros(0))
        raise
    xyz = np.stack([_numeric(frame, path, c, "seriesuid") for c in columns[1:4]], axis=1)
    value = _numeric(frame, path, columns[4], "seriesuid")
    return PointTable(frame["seriesuid"].tolist(), xyz, value)
