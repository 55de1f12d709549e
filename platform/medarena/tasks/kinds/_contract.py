"""The output contract: what a model's ``forward()`` must return, and what participants are told
when it does not.

A sandbox hands its outputs over as a ``.npy`` file. :meth:`OutputContract.parse` reads those
bytes without unpickling anything (``allow_pickle=False``) and :meth:`OutputContract.check`
holds the array to the contract: floats, exactly the kind's shape for the batch, every value
finite. A violation raises :class:`OutputContractError`, whose message is the participant's
(the supervisor reports it as an output contract violation); getting the file out of the
sandbox safely is the supervisor's part (:mod:`medarena.execution.outputs`).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


class OutputContractError(ValueError):
    """Outputs that break a task's output contract; the message is meant for the participant."""


@dataclass(frozen=True)
class OutputContract:
    """The outputs of one batch of inputs: floats of ``shape``, all finite.

    ``description`` is the contract in words ("logits of shape (batch, num_classes)"), as the
    participant's messages give it.
    """

    description: str
    shape: tuple[int, ...]

    def parse(self, raw: bytes) -> npt.NDArray[np.float32]:
        """The ``.npy`` bytes a sandbox wrote, as a checked ``float32`` array; no pickle."""
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # PK...: a bad .npz
            raise OutputContractError(
                f"forward()'s output is not a plain .npy array: {exc}"
            ) from None
        if not isinstance(array, np.ndarray):  # np.load opens an .npz archive as a mapping
            array.close()
            raise OutputContractError(
                "forward()'s output is not a plain .npy array: it is an .npz archive"
            )
        return self.check(array)

    def check(self, array: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """``array`` as ``float32`` if it keeps the contract; else :class:`OutputContractError`."""
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
            raise OutputContractError(
                f"forward() must return floats, got {getattr(array, 'dtype', type(array).__name__)}"
            )
        if array.shape != self.shape:
            raise OutputContractError(
                f"forward() must return {self.description} = {self.shape}, got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise OutputContractError("forward() returned non-finite values (NaN or inf)")
        return array.astype(np.float32, copy=False)

    def never_scored(self, metric: str) -> str:
        """The message for a trial whose validation ``metric`` was NaN in every epoch."""
        return (
            f"the validation metric {metric!r} was NaN in every epoch; check that forward() "
            f"returns finite {self.description}"
        )
