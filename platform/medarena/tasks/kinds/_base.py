"""The interface each task kind implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from medarena.tasks.readers import Lesions

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Reference:
    """The ground truth of a set of cases, in whatever form the kind's metrics need.

    ``labels`` are class indices (classification), label maps (segmentation) or findings per
    case (detection, with ``lesions``); ``spacing`` and ``origin`` place voxels in millimetres.
    """

    labels: npt.NDArray[np.integer]
    spacing: FloatArray
    origin: FloatArray
    lesions: Lesions | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Candidates:
    """Detection candidates of a set of cases: case index, world (x, y, z) mm, probability."""

    case_index: npt.NDArray[np.intp]
    center_xyz: FloatArray
    probability: FloatArray


Predictions = Any
"""Class probabilities ``(n, C)``, label maps ``(n, *spatial)`` or :class:`Candidates`."""


class TaskKind(Protocol):
    """The behaviour of one task kind; see the package docstring."""

    name: str

    def targets(self, reference: Reference, *, image_shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """What ``training_step`` receives as ``y`` for these cases (``image_shape``: spatial)."""

    def output_channels(self, num_classes: int) -> int:
        """How many channels (or logits) the model's ``forward`` must return."""

    def logits_shape(
        self, n: int, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> tuple[int, ...]:
        """The shape ``forward`` must return for ``n`` inputs (the output contract)."""

    contract: str
    """The output contract in words, for error messages."""

    def decode(
        self, logits: npt.NDArray[np.float32], *, spacing: FloatArray, origin: FloatArray
    ) -> Predictions:
        """Raw model outputs of a batch of cases -> predictions in the field's form."""

    def concat(self, parts: list[Predictions], *, offsets: list[int]) -> Predictions:
        """Join the predictions of consecutive batches (``offsets``: first case of each)."""

    def validation_scores(
        self, predictions: Predictions, reference: Reference, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        """The task's metrics on validation cases (point values; no intervals)."""
