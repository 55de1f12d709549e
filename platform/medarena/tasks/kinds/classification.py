"""Classification: logits ``(n, C)`` -> softmax probabilities; metrics over all cases."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from medarena.metrics import (
    ClassificationConventions,
    available_metrics,
    bootstrap_ci,
    get_metric,
    per_class_statistics,
)
from medarena.metrics.classification import case_correct, predicted_class
from medarena.tasks.kinds._base import FloatArray, Reference
from medarena.tasks.kinds._labels import ClassLabelKind
from medarena.tasks.kinds._scores import MetricValue, Scores

Labels = npt.NDArray[np.integer]


class Classification(ClassLabelKind[FloatArray, ClassificationConventions]):
    name = "classification"
    contract = "logits of shape (batch, num_classes)"
    conventions_type = ClassificationConventions

    label_what = "class index"
    label_where = "no case has it"
    label_background = False

    def logits_shape(
        self, n: int, *, num_classes: int, input_shape: tuple[int, ...]
    ) -> tuple[int, ...]:
        return (n, num_classes)

    def decode(
        self, logits: npt.NDArray[np.float32], *, spacing: FloatArray, origin: FloatArray
    ) -> FloatArray:
        z = logits.astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def concat(self, parts: list[FloatArray], *, offsets: list[int]) -> FloatArray:
        return np.concatenate(parts)

    def validation_scores(
        self, predictions: FloatArray, reference: Reference, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        return {name: get_metric(name).compute(reference.labels, predictions) for name in metrics}

    # Scoring, and its pieces

    def score(
        self,
        predictions: FloatArray,
        reference: Reference,
        *,
        conventions: ClassificationConventions | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> Scores:
        labels = np.asarray(reference.labels)
        return Scores(
            self.aggregates(
                labels, predictions, conventions=conventions, n_bootstrap=n_bootstrap, seed=seed
            ),
            self.per_case(labels, predictions),
        )

    def aggregates(
        self,
        y_true: Labels,
        probabilities: npt.NDArray[np.floating],
        *,
        conventions: ClassificationConventions | None = None,
        n_bootstrap: int = 1000,
        seed: int = 0,
    ) -> dict[str, MetricValue]:
        """Every classification metric over all cases, each with its bootstrap interval."""
        conv = self.resolve(conventions)
        out: dict[str, MetricValue] = {}
        for info in available_metrics("classification"):
            kwargs = conv.metric_options(info.name)
            value = info.compute(y_true, probabilities, **kwargs)
            ci = bootstrap_ci(
                info.compute, y_true, probabilities, n_samples=n_bootstrap, seed=seed, **kwargs
            )
            out[info.name] = MetricValue(float(value), ci)
        return out

    def per_case(
        self, y_true: Labels, probabilities: npt.NDArray[np.floating]
    ) -> dict[str, FloatArray]:
        """``correct`` (1 or 0) and ``probability_of_label`` of each case."""
        rows = np.arange(len(y_true))
        return {
            "correct": case_correct(y_true, probabilities).astype(np.float64),
            "probability_of_label": np.asarray(probabilities[rows, y_true], dtype=np.float64),
        }

    def predicted(self, probabilities: npt.NDArray[np.floating]) -> npt.NDArray[np.int_]:
        """The predicted class of each case: the most probable one (the first on ties)."""
        return predicted_class(probabilities)

    def per_class(
        self, y_true: Labels, probabilities: npt.NDArray[np.floating]
    ) -> dict[str, dict[str, float]]:
        """Sensitivity, specificity, PPV and F1 of each class (one-vs-rest), by class index."""
        stats = per_class_statistics(y_true, probabilities)
        return {
            str(k): {name: float(v[k]) for name, v in stats.items()}
            for k in range(probabilities.shape[1])
        }

    def worst_case(self, label: int, n_classes: int) -> FloatArray:
        """The probabilities scored for a case without a prediction: 0 for its true class, the
        rest spread evenly over the other classes (wrong, and ranked last for its AUC)."""
        row = np.empty(n_classes)
        row[:] = 1.0 / (n_classes - 1)
        row[label] = 0.0
        return row


CLASSIFICATION = Classification()
