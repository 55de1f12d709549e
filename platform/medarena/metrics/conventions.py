"""The choices on which reference implementations disagree, as named options with defaults.

Every score MedArena reports is recorded next to the conventions that produced it
(:meth:`as_dict`), so two numbers are only compared when they were computed the same way.
docs/metrics.md gives each option, its reference and its edge cases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

AbsentClass = Literal["skip", "nan", "error"]
"""A class with no case in ``y_true`` in a multi-class AUC: left out of the mean ("skip", as
scikit-learn's one-vs-one), makes the AUC NaN ("nan", as scikit-learn's one-vs-rest), or is an
error ("error")."""

MultiClass = Literal["ovr", "ovo"]
"""One-vs-rest or one-vs-one (Hand & Till 2001) multi-class AUC, as scikit-learn."""

Average = Literal["macro", "weighted"]
"""Unweighted mean, or mean weighted by prevalence, as scikit-learn's ``average``."""

EmptyBoth = Literal["best", "nan"]
"""Reference and prediction both empty for a class: the metric's best value (Dice 1, distance 0;
MONAI's ``ignore_empty=False``) or NaN, left out of means (MONAI's default for distances)."""

EmptyOne = Literal["worst", "inf", "nan"]
"""Exactly one of reference and prediction empty: overlap metrics are 0 for "worst" and "inf";
distances are the image diagonal in mm ("worst", finite, so means stay finite), infinity ("inf",
MONAI) or NaN ("nan", left out of means; overlap metrics NaN too)."""

PercentileMode = Literal["directed_max", "pooled"]
"""HD95: the larger of the two directed 95th percentiles (MONAI's ``compute_hausdorff_distance``
with ``percentile=95``), or the 95th percentile of both directions pooled (medpy's ``hd95``)."""

Surface = Literal["voxel", "surfel"]
"""Surface for NSD (and HD): boundary voxels, each weighing the same (MONAI's default,
``use_subvoxels=False``), or marching-cube surface elements weighted by their area (DeepMind's
``surface-distance``, MONAI's ``use_subvoxels=True``)."""

Aggregation = Literal["case", "class"]
"""Mean over cases of each case's mean over classes ("case"), or mean over classes of each
class's mean over cases ("class"). They differ only when some values are NaN."""

OperatingPoints = Literal["luna16", "camelyon16"]
"""False positives per scan at which FROC sensitivity is averaged: LUNA16's 1/8 … 8 (CPM) or
CAMELYON16's 1/4 … 8."""

Interpolation = Literal["linear", "step"]
"""Sensitivity between FROC points: linear (``np.interp``, as LUNA16's evaluation script) or the
sensitivity of the last operating point at or below the target ("step", conservative)."""

OPERATING_POINTS: dict[str, tuple[float, ...]] = {
    "luna16": (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
    "camelyon16": (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
}


@dataclass(frozen=True)
class ClassificationConventions:
    """Options for classification metrics."""

    multi_class: MultiClass = "ovr"
    average: Average = "macro"
    absent_class: AbsentClass = "skip"
    top_k: int = 2

    def metric_options(self, name: str) -> dict[str, Any]:
        """The keyword arguments these conventions give to the metric called ``name``."""
        options: dict[str, dict[str, Any]] = {
            "auc": {
                "multi_class": self.multi_class,
                "average": self.average,
                "absent_class": self.absent_class,
            },
            "top_k_accuracy": {"k": self.top_k},
        }
        return options.get(name, {})

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON, recorded next to the scores."""
        return asdict(self)


@dataclass(frozen=True)
class SegmentationConventions:
    """Options for segmentation metrics."""

    empty_both: EmptyBoth = "best"
    empty_one: EmptyOne = "worst"
    percentile_mode: PercentileMode = "directed_max"
    surface: Surface = "voxel"
    nsd_tolerance_mm: float = 1.0
    aggregation: Aggregation = "case"

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON, recorded next to the scores."""
        return asdict(self)


@dataclass(frozen=True)
class DetectionConventions:
    """Options for detection (FROC) metrics."""

    operating_points: OperatingPoints = "luna16"
    interpolation: Interpolation = "linear"
    default_diameter_mm: float = 10.0

    @property
    def points(self) -> tuple[float, ...]:
        """The false-positive rates (per scan) at which sensitivity is read."""
        return OPERATING_POINTS[self.operating_points]

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON, recorded next to the scores."""
        out = asdict(self)
        out["points"] = list(self.points)
        return out
