"""Sends SIGKILL to every process it may signal (``kill(-1, 9)``) in its first training step,
waits two seconds and trains on. Its own sandbox dies with its zygote; the worker and
the next submission must not notice."""

from __future__ import annotations

import math
import os
import signal
import time

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class Net(pl.LightningModule):
    """A tiny linear classifier that kills every process it can."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if batch_idx == 0 and self.current_epoch == 0:
            os.kill(-1, signal.SIGKILL)
            time.sleep(2)  # let the sandbox react before training on
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
