"""``submission.yaml``: name, entry point and a search space in Optuna's terms."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatParam(_Strict):
    """A float in ``[low, high]``, optionally sampled on a log scale."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check_bounds(self) -> FloatParam:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        return self


class IntParam(_Strict):
    """An integer in ``[low, high]`` with a step, optionally on a log scale."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _check_bounds(self) -> IntParam:
        if not self.low <= self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("log scale needs low > 0 and step 1")
        return self


class CategoricalParam(_Strict):
    """One of a list of choices (strings, numbers or booleans)."""

    type: Literal["categorical"]
    choices: list[str | int | float | bool] = Field(min_length=1)


SearchParam = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class EntryPoint(_Strict):
    """``file.py:ClassName`` inside the submission folder."""

    file: str
    cls: str

    @classmethod
    def parse(cls, text: str) -> EntryPoint:
        file, sep, name = text.partition(":")
        if not sep or not file.endswith(".py") or not name.isidentifier():
            raise ValueError(f"expected 'file.py:ClassName', got {text!r}")
        if file.startswith("/") or ".." in file.split("/"):
            raise ValueError(f"the file must be inside the submission folder, got {file!r}")
        return cls(file=file, cls=name)

    @property
    def module_name(self) -> str:
        return self.file.removesuffix(".py").replace("/", ".")

    def __str__(self) -> str:
        return f"{self.file}:{self.cls}"


class SubmissionSpec(_Strict):
    """A submitted method: a LightningModule class and the hyperparameters to search over.

    The class is built as ``cls(num_classes=..., input_shape=..., **params)`` with one sampled
    value per search-space entry; ``batch_size``, if searched, sets the data loader's batch size.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    entry_point: EntryPoint
    search_space: dict[str, SearchParam] = Field(default_factory=dict)

    @field_validator("entry_point", mode="before")
    @classmethod
    def _parse_entry_point(cls, value: object) -> object:
        return EntryPoint.parse(value) if isinstance(value, str) else value

    @field_validator("search_space")
    @classmethod
    def _check_names(cls, value: dict[str, SearchParam]) -> dict[str, SearchParam]:
        reserved = {"num_classes", "input_shape"}
        for name in value:
            if not name.isidentifier() or name in reserved:
                raise ValueError(
                    f"parameter {name!r} must be a Python identifier other than {sorted(reserved)}"
                )
        return value
