"""Hands over a pickle instead of plain data: it replaces ``numpy.save`` so that the guest's
val.npy is an object array whose element, when unpickled, creates the marker file the test
named (on the supervisor's side: it must never unpickle)."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (PARAMS["marker"], "w"))


def pickled_save(
    file: object, arr: object, allow_pickle: bool = True, fix_imports: bool = True
) -> None:
    payload = np.empty(1, dtype=object)
    payload[0] = Payload()
    real_save(file, payload, allow_pickle=True)


real_save = np.save
np.save = pickled_save


class Net(pl.LightningModule):
    """A tiny linear classifier whose numpy.save writes pickles."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
