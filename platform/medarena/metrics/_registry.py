"""The metric registry: name -> function + metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from medarena.exceptions import UserError

ClassificationMetric = Callable[[npt.NDArray[np.int_], npt.NDArray[np.floating]], float]


@dataclass(frozen=True)
class MetricInfo:
    """What a leaderboard needs to know about a metric to rank and display it."""

    name: str
    title: str
    kind: Literal["classification", "segmentation", "detection"]
    higher_is_better: bool
    range: tuple[float, float]
    compute: ClassificationMetric

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b`` for this metric."""
        return a > b if self.higher_is_better else a < b


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


def available_metrics() -> list[MetricInfo]:
    """Every registered metric, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
