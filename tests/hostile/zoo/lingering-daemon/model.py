"""Leaves a daemon behind: in its first training step it double-forks a process in its own
session that closes its descriptors and sleeps forever. The trial ends normally; the box
must kill the daemon when it is closed."""

from __future__ import annotations

import math
import os
import time

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


def spawn_daemon() -> None:
    if os.fork() != 0:
        return
    try:
        os.setsid()
        if os.fork() == 0:
            os.closerange(0, 1024)
            while True:
                time.sleep(0.5)
    finally:
        os._exit(0)


class Net(pl.LightningModule):
    """A tiny linear classifier that leaves a daemon behind."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if batch_idx == 0 and self.current_epoch == 0:
            spawn_daemon()
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
