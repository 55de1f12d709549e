"""The task spec: what ``tasks/<name>/task.yaml`` declares, validated with pydantic."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from medarena.exceptions import TaskSpecError
from medarena.sandbox.limits import SandboxLimits
from medarena.yamlfile import format_validation_error, read_yaml_mapping

if TYPE_CHECKING:
    from medarena.metrics import (
        ClassificationConventions,
        DetectionConventions,
        SegmentationConventions,
    )

    Conventions = ClassificationConventions | SegmentationConventions | DetectionConventions


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Strict):
    """Which reader builds the arrays, and its parameters."""

    reader: str
    params: dict[str, Any] = Field(default_factory=dict)


class PreprocessingSpec(_Strict):
    """What is done to every image before training, in this order.

    ``spacing`` resamples to a voxel size in mm (array axis order: ``[z, y, x]`` or ``[y, x]``;
    images linearly, label maps by nearest neighbour); ``window`` maps a CT intensity window
    ``[level, width]`` to [0, 1]; ``normalize`` rescales intensities per image; ``size`` crops or
    pads every image around its centre to a fixed shape, so that cases can be batched.
    """

    spacing: list[float] | None = None
    window: tuple[float, float] | None = None
    normalize: Literal["none", "zscore", "minmax"] = "none"
    size: list[int] | None = None


class SplitSpec(_Strict):
    """How cases are divided into train, validation and test; fixed by ``seed``.

    ``stratified`` and ``random`` draw the split from ``seed`` in the ``train``/``val``/``test``
    proportions; ``predefined`` takes the split the dataset ships with (MedMNIST's); ``file``
    reads a CSV ``case_id,split`` named by ``file`` (relative to the task folder). Every method
    keeps all cases of a patient in one split.
    """

    method: Literal["stratified", "random", "predefined", "file"] = "stratified"
    train: float = Field(0.6, gt=0, lt=1)
    val: float = Field(0.2, gt=0, lt=1)
    test: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    file: str | None = None

    @field_validator("file")
    @classmethod
    def _file_beside_task(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A relative ``file`` is relative to the folder of the task.yaml that names it."""
        task_dir = (info.context or {}).get("task_dir")
        if value is None or task_dir is None or value.startswith(("~", "$")):
            return value
        return value if Path(value).is_absolute() else str(Path(task_dir) / value)

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitSpec:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        if (self.method == "file") != (self.file is not None):
            raise ValueError("'file' names the split CSV and goes with 'method: file' only")
        return self


class MetricsSpec(_Strict):
    """The metrics reported for the task; ``primary`` ranks the leaderboard."""

    primary: str
    report: list[str] = Field(default_factory=list)
    conventions: dict[str, Any] = Field(
        default_factory=dict,
        description="options of the kind's conventions class (see docs/metrics.md)",
    )

    @property
    def names(self) -> list[str]:
        return [self.primary, *[m for m in self.report if m != self.primary]]

    @model_validator(mode="after")
    def _metrics_are_registered(self) -> MetricsSpec:
        from medarena.metrics import available_metrics

        known = {m.name for m in available_metrics()}
        unknown = [m for m in self.names if m not in known]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(sorted(known))}")
        return self


class Budget(_Strict):
    """The same search budget for every submission to a task."""

    trials: int = Field(8, ge=1, le=10_000)
    max_epochs: int = Field(20, ge=1)
    patience: int = Field(5, ge=1, description="epochs without improvement before stopping")
    batch_size: int = Field(64, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    time_limit_s: float | None = Field(None, gt=0, description="wall-clock limit of one trial")
    pruner: Literal["none", "median"] = Field(
        "none", description="stop trials whose per-epoch validation value is below the median"
    )
    seed: int = 0
    limits: SandboxLimits = Field(
        default_factory=SandboxLimits, description="what submitted code may use, per sandbox"
    )


class TaskSpec(_Strict):
    """A task: data, fixed split, metrics and budget. Changing data or split needs a new version."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str
    kind: Literal["classification", "segmentation", "detection"]
    version: int = Field(1, ge=1)
    description: str = ""
    classes: list[str] = Field(
        min_length=1,
        description="class names (classification), label names with background first "
        "(segmentation), or the finding's name (detection)",
    )
    dataset: DatasetSpec
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    split: SplitSpec = SplitSpec()
    metrics: MetricsSpec
    budget: Budget = Budget()

    @model_validator(mode="after")
    def _metrics_fit_kind(self) -> TaskSpec:
        from medarena.metrics import get_metric

        wrong = [m for m in self.metrics.names if get_metric(m).kind != self.kind]
        if wrong:
            raise ValueError(f"metric(s) {wrong} do not apply to a {self.kind} task")
        self.conventions()
        return self

    def conventions(self) -> Conventions:
        """The metric conventions of this task: the kind's defaults, overridden by the spec."""
        from medarena.metrics import (
            ClassificationConventions,
            DetectionConventions,
            SegmentationConventions,
        )

        cls: type[Conventions] = {
            "classification": ClassificationConventions,
            "segmentation": SegmentationConventions,
            "detection": DetectionConventions,
        }[self.kind]
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(self.metrics.conventions) - known)
        if unknown:
            raise ValueError(
                f"metrics.conventions: unknown option(s) {unknown} for {self.kind}; "
                f"known: {sorted(known)}"
            )
        return cls(**self.metrics.conventions)


def load_task_spec(path: Path) -> TaskSpec:
    """Read and validate a task.yaml; errors name the file and the field."""
    data = read_yaml_mapping(path, error=TaskSpecError)
    try:
        return TaskSpec.model_validate(data, context={"task_dir": str(path.parent)})
    except ValidationError as exc:
        raise TaskSpecError(format_validation_error(path, exc)) from exc


def dump_task_spec(spec: TaskSpec) -> str:
    """The spec as YAML, for ``medarena tasks show``."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
