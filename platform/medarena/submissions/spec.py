"""``submission.yaml``: name, entry point and a search space in Optuna's terms."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EXACT_INT = 2**53
"""Integer bounds are kept within what a float holds exactly: Optuna stores values as floats."""
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ExactInt = Annotated[int, Field(ge=-EXACT_INT, le=EXACT_INT)]


class FloatParam(_Strict):
    """A float in ``[low, high]``, optionally sampled on a log scale."""

    type: Literal["float"]
    low: FiniteFloat
    high: FiniteFloat
    log: bool = False

    @model_validator(mode="after")
    def _check_bounds(self) -> FloatParam:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if not math.isfinite(self.high - self.low):
            raise ValueError(f"the range {self.low}..{self.high} is wider than a float holds")
        if self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        return self


class IntParam(_Strict):
    """An integer in ``[low, high]`` with a step, optionally on a log scale."""

    type: Literal["int"]
    low: ExactInt
    high: ExactInt
    step: int = Field(1, ge=1, le=EXACT_INT)
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
    choices: list[str | int | float | bool] = Field(min_length=1, max_length=1000)

    @field_validator("choices")
    @classmethod
    def _check_choices(
        cls, value: list[str | int | float | bool]
    ) -> list[str | int | float | bool]:
        for i, choice in enumerate(value):
            if isinstance(choice, float) and not math.isfinite(choice):
                raise ValueError(f"choice {i + 1} is {choice}; choices must be finite")
            if isinstance(choice, str) and len(choice) > 256:
                raise ValueError(f"choice {i + 1} is longer than 256 characters")
            if choice in value[:i]:
                raise ValueError(
                    f"choice {i + 1} ({choice!r}) equals an earlier one: 1, 1.0 and true are "
                    "equal in Python, and the search could not tell them apart"
                )
        return value


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

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    description: str = Field("", max_length=10_000)
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
            if not name.isidentifier() or name in reserved or len(name) > 64:
                raise ValueError(
                    f"parameter {name!r} must be a Python identifier of at most 64 characters "
                    f"other than {sorted(reserved)}"
                )
        return value
