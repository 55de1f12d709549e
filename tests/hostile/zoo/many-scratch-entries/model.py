"""Creates 5000 empty files in /scratch in its first training step (no bytes, but inodes of the
host's disk; the zoo's task allows 1000 entries), then waits five seconds inside the same epoch,
then raises ``LEAK``: the box must be stopped before that."""

from __future__ import annotations

import math
import os
import time

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class Net(pl.LightningModule):
    """A tiny linear classifier that creates many files in /scratch."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if batch_idx == 0:
            os.makedirs("/scratch/many", exist_ok=True)
            for i in range(5000):
                open(f"/scratch/many/{i}", "wb").close()
            time.sleep(5)
            raise RuntimeError("LEAK: 5000 files stayed in /scratch for five seconds")
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
