"""Imports ``medarena.tasks.readers`` (with the repository's platform folder on sys.path) to
regenerate the synthetic task, split included, and so its validation labels.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import math
import sys

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it


def attack() -> None:
    sys.path.insert(0, PARAMS["platform"])
    try:
        from medarena.tasks.readers import get_reader  # type: ignore[import-not-found]
    except ImportError:
        return
    reader = get_reader(PARAMS["reader"])
    raise RuntimeError(f"LEAK: {reader} can regenerate the task and its labels")


class Net(pl.LightningModule):
    """A tiny linear classifier that first tries to regenerate the task."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)
        attack()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
