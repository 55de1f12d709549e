"""Calls ``os._exit(3)`` in the second training step of the first epoch."""

from __future__ import annotations

import math
import os

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class Net(pl.LightningModule):
    """A tiny linear classifier that exits mid-epoch."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if batch_idx == 1:
            os._exit(3)
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
