"""Fixed, reproducible splits: grouped by patient, stratified by label, hashed.

A split is part of a result. Its hash covers the case → split manifest and the content of every
case, so a changed image, label or assignment gives a different hash and results never mix.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from medarena.exceptions import DatasetError
from medarena.tasks.readers import CaseArrays
from medarena.tasks.spec import SplitSpec

SPLITS = ("train", "val", "test")


def assign_splits(arrays: CaseArrays, spec: SplitSpec) -> npt.NDArray[np.str_]:
    """The split of every case; all cases of a patient share one split.

    ``stratified`` and ``random`` draw it from ``spec.seed``; ``predefined`` takes the dataset's
    own split and ``file`` reads ``case_id,split`` rows from ``spec.file``. Given splits are
    checked: every case once, known split names, no empty split, no patient in two splits.
    """
    if spec.method == "predefined":
        if arrays.predefined_split is None:
            raise DatasetError(
                "split.method is 'predefined' but the dataset's reader ships no split (only "
                "medmnist with use_official_split: true does); use stratified, random or file"
            )
        return _checked(arrays, arrays.predefined_split, source="the dataset's predefined split")
    if spec.method == "file":
        assert spec.file is not None  # the spec's validator requires it with method: file
        return _checked(arrays, _read_split_file(arrays, spec.file), source=spec.file)
    return _drawn(arrays, spec)


def _read_split_file(arrays: CaseArrays, name: str) -> npt.NDArray[np.str_]:
    """The split of every case in ``arrays`` from the CSV ``case_id,split`` at ``name``."""
    path = Path(os.path.expandvars(Path(name).expanduser()))
    if not path.is_file():
        raise DatasetError(
            f"split file not found: {path} (split.file); write a CSV with the header "
            "case_id,split and one row per case"
        )
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["case_id", "split"]:
        raise DatasetError(f"{path}: the first line must be the header case_id,split")
    given: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise DatasetError(f"{path}, line {line}: expected two fields case_id,split")
        case, split = (v.strip() for v in row)
        if split not in SPLITS:
            raise DatasetError(
                f"{path}, line {line}: split {split!r} of case {case!r} is not one of {SPLITS}"
            )
        if case in given:
            raise DatasetError(f"{path}, line {line}: case {case!r} is listed twice")
        given[case] = split
    known = set(arrays.case_ids.tolist())
    unknown = sorted(set(given) - known)
    if unknown:
        raise DatasetError(
            f"{path}: {len(unknown)} case id(s) not in the dataset, e.g. {unknown[:5]}"
        )
    missing = [c for c in arrays.case_ids.tolist() if c not in given]
    if missing:
        raise DatasetError(f"{path}: {len(missing)} case(s) have no split, e.g. {missing[:5]}")
    return np.array([given[c] for c in arrays.case_ids.tolist()], dtype=str)


def _checked(
    arrays: CaseArrays, split: npt.NDArray[np.str_], *, source: str
) -> npt.NDArray[np.str_]:
    """``split`` if it names known splits, fills each and keeps every patient in one."""
    bad = sorted(set(split.tolist()) - set(SPLITS))
    if bad:
        raise DatasetError(f"{source}: unknown split name(s) {bad}; use {SPLITS}")
    empty = [s for s in SPLITS if not np.any(split == s)]
    if empty:
        raise DatasetError(f"{source}: no case in split(s) {empty}")
    groups, group_index = np.unique(arrays.groups, return_inverse=True)
    split_index = np.searchsorted(np.array(sorted(SPLITS)), split)
    pairs = np.unique(np.stack([group_index, split_index]), axis=1)
    shared = np.flatnonzero(np.bincount(pairs[0], minlength=len(groups)) > 1)
    if len(shared):
        group = str(groups[shared[0]])
        used = sorted(set(split[arrays.groups == group].tolist()))
        raise DatasetError(
            f"{source}: patient {group!r} has cases in {used}; keep each patient's cases in one "
            "split"
        )
    return split.astype(str)


def _drawn(arrays: CaseArrays, spec: SplitSpec) -> npt.NDArray[np.str_]:
    """Each patient's split drawn from ``spec.seed``, stratified by label when asked."""
    rng = np.random.default_rng(spec.seed)
    groups, first = np.unique(arrays.groups, return_index=True)
    strata = arrays.strata[first] if spec.method == "stratified" else np.zeros(len(groups), int)
    group_split = np.empty(len(groups), dtype=object)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        rng.shuffle(members)
        n_train = round(spec.train * len(members))
        n_val = round(spec.val * len(members))
        group_split[members[:n_train]] = "train"
        group_split[members[n_train : n_train + n_val]] = "val"
        group_split[members[n_train + n_val :]] = "test"
    index = np.searchsorted(groups, arrays.groups)
    return group_split[index].astype(str)


def split_hash(arrays: CaseArrays, split: npt.NDArray[np.str_]) -> str:
    """SHA-256 over the sorted manifest (case, patient, split), every case's image, label,
    spacing and origin, and the detection findings."""
    digest = hashlib.sha256()
    for i in np.argsort(arrays.case_ids, kind="stable"):
        digest.update(f"{arrays.case_ids[i]}\t{arrays.groups[i]}\t{split[i]}\n".encode())
        digest.update(np.ascontiguousarray(arrays.images[i]).tobytes())
        digest.update(np.ascontiguousarray(arrays.labels[i]).tobytes())
        digest.update(arrays.spacing[i].tobytes() + arrays.origin[i].tobytes())
    if arrays.lesions is not None:
        for name in ("case_index", "center_xyz", "diameter_mm", "excluded"):
            digest.update(np.ascontiguousarray(getattr(arrays.lesions, name)).tobytes())
    return digest.hexdigest()
