"""The metric registry: name -> function + metadata.

``compute`` has one signature per ``kind``:

* classification: ``compute(y_true, y_score, **conventions) -> float`` over all cases
  (``y_true`` integer class indices ``(n,)``, ``y_score`` probabilities ``(n, n_classes)``);
* segmentation: ``compute(reference, prediction, *, spacing=None, **conventions) -> float`` for
  one case and one binary mask; a task's score is the aggregate of these per-case values;
* detection: ``compute(matches, **conventions) -> float`` over a
  :class:`~medarena.metrics.detection.DetectionMatches` of all scans.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from medarena.exceptions import UserError

MetricKind = Literal["classification", "segmentation", "detection"]


@dataclass(frozen=True)
class MetricInfo:
    """What a leaderboard needs to know about a metric to rank and display it."""

    name: str
    title: str
    kind: MetricKind
    higher_is_better: bool
    range: tuple[float, float]
    compute: Callable[..., float]
    reference: str = ""

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` for this metric."""
        return a > b if self.higher_is_better else a < b

    @property
    def worst(self) -> float:
        """The worst value the metric can take (used for cases missing from predictions)."""
        return self.range[0] if self.higher_is_better else self.range[1]


_REGISTRY: dict[str, MetricInfo] = {}


def register(info: MetricInfo) -> MetricInfo:
    """Add a metric to the registry; names are unique."""
    if info.name in _REGISTRY:
        raise ValueError(f"metric {info.name!r} is registered twice")
    _REGISTRY[info.name] = info
    return info


def get_metric(name: str) -> MetricInfo:
    """The metric called ``name``; an unknown name lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UserError(f"unknown metric {name!r}; known metrics: {known}") from None


def available_metrics(kind: MetricKind | None = None) -> list[MetricInfo]:
    """Every registered metric (of ``kind`` if given), sorted by name."""
    infos = (_REGISTRY[name] for name in sorted(_REGISTRY))
    return [info for info in infos if kind is None or info.kind == kind]


def metric_names(kind: MetricKind) -> list[str]:
    """Names of the registered metrics of one kind, in registration order."""
    return [info.name for info in _REGISTRY.values() if info.kind == kind]
