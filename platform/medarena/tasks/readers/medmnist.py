"""MedMNIST ``.npz`` files (2D and 3D), with the split they ship with.

A MedMNIST file holds ``{train,val,test}_images`` (uint8; ``(N, H, W)`` grey, ``(N, H, W, 3)``
RGB, or ``(N, D, H, W)`` volumes) and ``{train,val,test}_labels`` (``(N, 1)`` class indices).
MedMNIST has no voxel spacing and no patient identifiers: images get spacing 1 and each case is
its own group, so only the official split (``split.method: predefined``), which its authors made
by patient, keeps patients apart.
"""

from __future__ import annotations

import zipfile
from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.exceptions import DatasetError
from medarena.tasks.preprocessing import Volume, preprocess
from medarena.tasks.readers._arrays import CaseArrays
from medarena.tasks.readers._common import assemble, check_params, expand_path
from medarena.tasks.spec import PreprocessingSpec

SPLITS = ("train", "val", "test")
HOW_TO_GET = (
    "Download the MedMNIST file (e.g. organamnist.npz) from https://zenodo.org/records/10519652 "
    "or with `pip install medmnist && python -m medmnist download`, which saves it under "
    "~/.medmnist/."
)


def _images(raw: npt.NDArray[Any], *, path: str, key: str) -> npt.NDArray[np.float32]:
    """``(N, C, *spatial)`` floats in [0, 1] from MedMNIST's uint8 arrays."""
    if raw.ndim == 4 and raw.shape[-1] == 3 and raw.shape[1] != 3:
        raw = np.moveaxis(raw, -1, 1)
    elif raw.ndim in (3, 4):
        raw = raw[:, None]
    else:
        raise DatasetError(
            f"{path}: {key} has shape {raw.shape}; MedMNIST images are (N, H, W), (N, H, W, 3) "
            "or (N, D, H, W)"
        )
    scale = 255.0 if raw.dtype == np.uint8 else 1.0
    return (raw.astype(np.float32) / scale).astype(np.float32)


def _labels(raw: npt.NDArray[Any], *, path: str, key: str, n: int) -> npt.NDArray[np.int64]:
    if raw.ndim == 2 and raw.shape[1] > 1:
        raise DatasetError(
            f"{path}: {key} has {raw.shape[1]} labels per case (a multi-label dataset such as "
            "ChestMNIST); MedArena's classification tasks take one class per case"
        )
    labels = raw.reshape(-1)
    if len(labels) != n:
        raise DatasetError(f"{path}: {key} has {len(labels)} labels for {n} images")
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{path}: {key} holds negative class indices")
    return labels.astype(np.int64)


def medmnist(params: dict[str, Any], preprocessing: PreprocessingSpec) -> CaseArrays:
    """Read ``params['path']``; ``use_official_split`` (default true) keeps MedMNIST's split.

    Case ids are ``<split>-<index>`` in the file's order, so they are stable across reads.
    """
    check_params(params, reader="medmnist", required=["path"], optional=["use_official_split"])
    path = expand_path(params["path"], key="path")
    if not path.is_file():
        raise DatasetError(f"data file not found: {path} (dataset.params.path). {HOW_TO_GET}")
    if preprocessing.spacing is not None:
        raise DatasetError(
            f"{path}: MedMNIST files carry no voxel spacing; remove preprocessing.spacing"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc}); download it again") from exc
    expected = [f"{s}_{part}" for s in SPLITS for part in ("images", "labels")]
    missing = [k for k in expected if k not in arrays]
    if missing:
        raise DatasetError(f"{path}: missing array(s) {missing}; is it a MedMNIST file?")
    case_ids: list[str] = []
    split: list[str] = []
    volumes: list[Volume] = []
    labels: list[npt.NDArray[np.int64]] = []
    for s in SPLITS:
        images = _images(arrays[f"{s}_images"], path=str(path), key=f"{s}_images")
        n = len(images)
        labels.append(_labels(arrays[f"{s}_labels"], path=str(path), key=f"{s}_labels", n=n))
        ndim = images.ndim - 2
        for image in images:
            volume = Volume(image=image, label=None, spacing=np.ones(ndim), origin=np.zeros(ndim))
            volumes.append(preprocess(volume, preprocessing))
        case_ids += [f"{s}-{i:06d}" for i in range(n)]
        split += [s] * n
    return assemble(
        case_ids,
        case_ids,
        volumes,
        labels=np.concatenate(labels),
        predefined_split=split if params.get("use_official_split", True) else None,
    )
