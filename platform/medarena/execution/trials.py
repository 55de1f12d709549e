"""What a trial job is given and what it gives back: plain data, built by the trusted side."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medarena.tasks.kinds import Predictions


@dataclass(frozen=True)
class TrialConfig:
    """What one trial needs besides the data: which code, which parameters, which budget."""

    submission_sha256: str
    entry_file: str
    entry_class: str
    params: dict[str, Any]
    metrics: tuple[str, ...]
    max_epochs: int
    patience: int
    batch_size: int
    seed: int
    use_gpu: bool = False
    time_limit_s: float | None = None


@dataclass
class TrialOutcome:
    """What a job sends back, built by the supervisor from checked plain data.

    ``failure`` names what went wrong (a :class:`~medarena.sandbox.Failure` value, '' when none);
    ``weights`` are the best epoch's ``safetensors``; ``test_predictions`` come only from an
    inference job.
    """

    ok: bool
    best_value: float = math.nan
    best_epoch: int = -1
    epochs: int = 0
    fit_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    weights: bytes | None = None
    test_predictions: Predictions | None = None
    error: str = ""
    failure: str = ""
    pruned: bool = False
    sandboxed: bool = True


EpochHook = Callable[[int, dict[str, float]], bool]
"""Called after each epoch with (epoch, history row); answering true stops the trial (pruning)."""
