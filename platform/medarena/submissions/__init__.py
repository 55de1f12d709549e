"""Submissions: the folder format and its validation (the code runs in :mod:`medarena.sandbox`)."""

from __future__ import annotations

from medarena.submissions.bundle import SubmissionBundle, load_submission
from medarena.submissions.spec import (
    CategoricalParam,
    EntryPoint,
    FloatParam,
    IntParam,
    SearchParam,
    SubmissionSpec,
)

__all__ = [
    "CategoricalParam",
    "EntryPoint",
    "FloatParam",
    "IntParam",
    "SearchParam",
    "SubmissionBundle",
    "SubmissionSpec",
    "load_submission",
]
