"""The in-memory form every reader produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CaseArrays:
    """All cases of a dataset: one image and label per case, and the patient it belongs to."""

    case_ids: npt.NDArray[np.str_]
    groups: npt.NDArray[np.str_]
    images: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        n = len(self.case_ids)
        sizes = {len(self.groups), len(self.images), len(self.labels)}
        if sizes != {n}:
            raise ValueError(f"inconsistent case counts: {n} ids, sizes {sorted(sizes)}")
        if len(set(self.case_ids.tolist())) != n:
            raise ValueError("duplicated case ids")
