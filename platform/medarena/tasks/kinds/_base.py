"""The interface each task kind implements, and what the kinds share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from medarena.tasks.kinds._contract import OutputContract
from medarena.tasks.kinds._scores import Scores
from medarena.tasks.readers import Lesions

FloatArray = npt.NDArray[np.float64]

DECODE_BATCH = 64
"""Cases decoded at a time (:meth:`TaskKind.decode_all`)."""


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

P = TypeVar("P")
"""The kind's predictions."""
C = TypeVar("C")
"""The kind's metric conventions (:mod:`medarena.metrics.conventions`)."""


class TaskKind(ABC, Generic[P, C]):
    """The behaviour of one task kind; see the package docstring.

    Training: :meth:`targets`, :meth:`check_labels`. The output contract: :meth:`output_contract`
    (shape, dtype, the participant's messages), :meth:`decode_all` (raw outputs -> ``P``).
    Scoring: :meth:`validation_scores` (point values during training) and :meth:`score` (the
    official scores: aggregates with intervals and per-case values). Each kind also has the
    pieces its ``score`` is built of, which ``medarena evaluate`` calls on what it reads from
    files.
    """

    name: ClassVar[str]
    contract: ClassVar[str]
    """The output contract in words, for error messages."""
    conventions_type: type[C]
    """The kind's conventions; its defaults apply where none are given."""

    # Training

    @abstractmethod
    def targets(self, reference: Reference, *, image_shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """What ``training_step`` receives as ``y`` for these cases (``image_shape``: spatial)."""

    def check_labels(
        self,
        labels: npt.NDArray[np.integer],
        *,
        case_ids: npt.NDArray[np.str_],
        classes: list[str],
        task: str,
    ) -> None:
        """Raise :class:`~medarena.exceptions.DatasetError` unless a dataset's labels fit the
        task's ``classes``; by default nothing is checked."""

    # The output contract

    @abstractmethod
    def output_channels(self, num_classes: int) -> int:
        """How many channels (or logits) the model's ``forward`` must return."""

    @abstractmethod
    def logits_shape(
        self, n: int, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> tuple[int, ...]:
        """The shape ``forward`` must return for ``n`` inputs."""

    def output_contract(
        self, n: int, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> OutputContract:
        """What ``forward`` must return for ``n`` inputs, and the messages when it does not."""
        shape = self.logits_shape(n, num_classes=num_classes, input_shape=input_shape)
        return OutputContract(self.contract, shape)

    @abstractmethod
    def decode(
        self, logits: npt.NDArray[np.float32], *, spacing: FloatArray, origin: FloatArray
    ) -> P:
        """Raw model outputs of a batch of cases -> predictions in the field's form."""

    @abstractmethod
    def concat(self, parts: list[P], *, offsets: list[int]) -> P:
        """Join the predictions of consecutive batches (``offsets``: first case of each)."""

    def decode_all(
        self, logits: npt.NDArray[np.float32], *, spacing: FloatArray, origin: FloatArray
    ) -> P:
        """Raw outputs of any number of cases -> predictions, :data:`DECODE_BATCH` at a time."""
        parts, offsets = [], []
        for start in range(0, len(logits), DECODE_BATCH):
            stop = start + DECODE_BATCH
            parts.append(
                self.decode(
                    logits[start:stop], spacing=spacing[start:stop], origin=origin[start:stop]
                )
            )
            offsets.append(start)
        return self.concat(parts, offsets=offsets)

    # Scoring

    @abstractmethod
    def validation_scores(
        self, predictions: P, reference: Reference, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        """The task's metrics on validation cases (point values; no intervals)."""

    @abstractmethod
    def score(
        self,
        predictions: P,
        reference: Reference,
        *,
        conventions: C | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> Scores:
        """Every metric of the kind with a seeded bootstrap interval, and the per-case values
        (:class:`Scores`): a trained model's predictions against their ground truth."""

    def resolve(self, conventions: C | None) -> C:
        """``conventions``, or the kind's defaults when ``None``."""
        if conventions is None:
            return self.conventions_type()
        if not isinstance(conventions, self.conventions_type):
            raise TypeError(
                f"{self.name} is scored with {self.conventions_type.__name__}, "
                f"not {type(conventions).__name__}"
            )
        return conventions
