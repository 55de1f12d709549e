"""Fixed, reproducible splits: grouped by patient, stratified by label, hashed.

A split is part of a result. Its hash covers the case → split manifest and the content of every
case, so a changed image, label or assignment gives a different hash and results never mix.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from medarena.tasks.readers import CaseArrays
from medarena.tasks.spec import SplitSpec

SPLITS = ("train", "val", "test")


def assign_splits(arrays: CaseArrays, spec: SplitSpec) -> npt.NDArray[np.str_]:
    """The split of every case, drawn from ``spec.seed``; all cases of a patient share one split.

    With ``method: stratified`` each label is divided in the split's proportions (a patient's
    label is that of its first case), so small classes appear in every split.
    """
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
