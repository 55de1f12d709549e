"""The Medical Segmentation Decathlon layout: ``dataset.json``, ``imagesTr/``, ``labelsTr/``.

``dataset.json`` lists the training cases (``{"image": "./imagesTr/x.nii.gz", "label":
"./labelsTr/x.nii.gz"}``), the label names (``labels``: ``{"0": "background", ...}``) and the
modalities (``modality``: ``{"0": "MRI"}``; several make a 4-D image whose last axis becomes the
channels). Images and label maps are NIfTI, read by SimpleITK with their spacing, origin and
direction. ``imagesTs/`` has no labels and is not read: the test split comes out of the training
cases, so that its labels exist.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk  # noqa: N813  (the field's name for it)

from medarena.exceptions import DatasetError
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
    to_volume,
)
from medarena.tasks.spec import PreprocessingSpec

HOW_TO_GET = (
    "Download the task's .tar (e.g. Task04_Hippocampus.tar) from http://medicaldecathlon.com/ and "
    "extract it; the folder must hold dataset.json, imagesTr/ and labelsTr/."
)


def _case_id(image: str) -> str:
    name = Path(image).name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _read_index(root: Path) -> dict[str, Any]:
    path = root / "dataset.json"
    if not path.is_file():
        raise DatasetError(f"{root}: no dataset.json; is it a Decathlon task folder? {HOW_TO_GET}")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
    entries = index.get("training") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DatasetError(f"{path}: expected a non-empty list 'training' of image/label pairs")
    return dict(index)


def _group(case_id: str, pattern: re.Pattern[str] | None) -> str:
    """The patient of a case: ``patient_regex``'s first group (or ``patient``), else the case."""
    if pattern is None:
        return case_id
    match = pattern.search(case_id)
    if match is None:
        raise DatasetError(
            f"case {case_id!r}: dataset.params.patient_regex {pattern.pattern!r} does not match "
            "its id; write a pattern that matches every case id"
        )
    named = match.groupdict().get("patient")
    return named or (match.group(1) if pattern.groups else match.group(0))


def decathlon(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """Read the training cases of the MSD task folder ``params['root']``.

    Label values must be among the keys of ``dataset.json``'s ``labels``; every label map must
    lie on its image's voxel grid.
    """
    check_params(params, reader="decathlon", required=["root"], optional=["patient_regex"])
    root = require_dir(expand_path(params["root"], key="root"), key="root", how_to_get=HOW_TO_GET)
    index = _read_index(root)
    regex = params.get("patient_regex")
    pattern = re.compile(regex) if regex else None
    declared = {int(k) for k in index.get("labels", {})}
    channels = len(index.get("modality", {})) or None
    case_ids: list[str] = []
    volumes: list[Volume] = []
    for entry in track(index["training"]):
        if not isinstance(entry, dict) or not entry.get("image"):
            raise DatasetError(f"{root / 'dataset.json'}: a 'training' entry has no 'image'")
        case = _case_id(str(entry["image"]))
        if not entry.get("label"):
            raise DatasetError(
                f"case {case!r}: dataset.json gives no label map for it; add its 'label' or "
                "remove the case from 'training'"
            )
        image = read_image(root / entry["image"], case=case)
        label_path = root / entry["label"]
        if not label_path.is_file():
            raise DatasetError(
                f"case {case!r}: label map not found: {label_path}; every training case needs one"
            )
        label = read_image(label_path, case=case, what="label map")
        check_same_grid(image, label, case=case, label_path=label_path)
        found = image.GetSize()[3] if image.GetDimension() == 4 else 1
        if channels is not None and found != channels:
            raise DatasetError(
                f"case {case!r}: image {root / entry['image']} has {found} channel(s) but "
                f"dataset.json's 'modality' declares {channels}"
            )
        values = set(np.unique(sitk.GetArrayViewFromImage(label)).tolist())
        extra = sorted(values - declared) if declared else []
        if extra:
            raise DatasetError(
                f"case {case!r}: label map {label_path} holds value(s) {extra} that dataset.json's "
                f"'labels' does not declare ({sorted(declared)})"
            )
        case_ids.append(case)
        volumes.append(to_volume(image, (label, label_path), preprocessing, case=case))
    return assemble(case_ids, [_group(c, pattern) for c in case_ids], volumes)
