"""A sweep's Optuna study in SQL, and the seed of each trial's sampler."""

from __future__ import annotations

from typing import Literal

import numpy as np
import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from medarena.exceptions import PlatformError
from medarena.metrics import get_metric
from medarena.schema_lock import schema_lock
from medarena.tasks import TaskSpec


def slot_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` of a sweep seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def direction(task: TaskSpec) -> Literal["maximize", "minimize"]:
    """Whether the sweep maximizes or minimizes the task's primary metric."""
    return "maximize" if get_metric(task.metrics.primary).higher_is_better else "minimize"


def open_study(task: TaskSpec, *, storage_url: str, study_name: str) -> optuna.Study:
    """The sweep's study in SQL, created on first use."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with schema_lock(storage_url):  # Optuna creates its tables on first use
            return optuna.create_study(
                study_name=study_name,
                storage=storage_url,
                sampler=optuna.samplers.RandomSampler(seed=task.budget.seed),
                direction=direction(task),
                load_if_exists=True,
            )
    except Exception as exc:  # SQLAlchemy's and Optuna's errors
        raise PlatformError(
            f"cannot open the study {study_name!r} at {_shown(storage_url)}: {exc}"
        ) from exc


def _shown(url: str) -> str:
    """``url`` with its password masked (what is not a database URL is not shown at all)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "a URL that is not a database URL (MEDARENA_STUDY_DB_URL)"
